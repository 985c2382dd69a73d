"""One conformance suite for every supported transformer class (cases in ``tests/families/``).

For each tiny random-weight transformer, over a short denoising loop (one forward per step, CFG
batched): the all-compute schedule is bit-identical to no schedule; random schedules give what
an independent reference of the semantics gives (plain torch forward hooks that substitute the
last computed output, per call of a sub-module within a block forward); every hooked
sub-module runs exactly where the mask says; the MACs actually executed (FlopCounterMode around
the loop) equal the MAC model; ``remove()`` restores the original outputs and leaves no hook.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ecad_hub import CacheSchedule, apply_schedule, profile_macs
from ecad_hub.adapters import adapter_for
from ecad_hub.macs import counted_global

from families import FamilyCase, all_cases, build_transformer, step_inputs
from tiny_models import single_threaded

STEPS = 4
CASES = all_cases()


def _adapter(case: FamilyCase, transformer):
    if case.auto:
        from ecad_hub.adapters.auto import derive_adapter

        return derive_adapter(transformer, step_inputs(case, transformer, None, 0) if case.inputs else None)
    return adapter_for(case.transformer_class)


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def model(request):
    case: FamilyCase = request.param
    with single_threaded():
        adapter = adapter_for(case.transformer_class) if not case.auto else None
        transformer = build_transformer(case, adapter) if adapter is not None else _build_auto(case)
        adapter = adapter or _adapter(case, transformer)
        arch = adapter.architecture(dict(transformer.config))
        inputs = [step_inputs(case, transformer, adapter, s) for s in range(STEPS)]
        yield case, transformer, adapter, arch, inputs


def _build_auto(case: FamilyCase):
    return build_transformer(case, type("A", (), {"model_class": lambda self: case.model_cls})())


def _first(out):
    if isinstance(out, (tuple, list)):
        return out[0]
    return getattr(out, "sample", out)


def _loop(transformer, inputs) -> list[torch.Tensor]:
    with torch.no_grad():
        return [_first(transformer(**kw, return_dict=False)).clone() for kw in inputs]


def _random_schedule(arch, seed: int, p: float = 0.5) -> CacheSchedule:
    rng = np.random.default_rng(seed)
    masks = {g.name: rng.random((STEPS, g.num_blocks, len(g.components))) > p for g in arch.groups}
    return CacheSchedule(f"random-{seed}", STEPS, arch, masks)


class Reference:
    """The semantics, independently: each sub-module still runs, and a torch forward hook
    replaces its output with the last computed one wherever the mask says reuse (step 0 always
    computes). Outputs are kept per (sub-module, n-th call within the block forward)."""

    def __init__(self, transformer, schedule: CacheSchedule):
        self.step = 0
        self.cache: dict = {}
        self.calls: dict = defaultdict(int)
        self.per_forward: dict = defaultdict(int)  # calls per (group, block, component) in one forward
        self.handles = []
        effective = schedule.effective_masks()
        for gi, g in enumerate(schedule.architecture.groups):
            present = g.present()
            for bi, block in enumerate(transformer.get_submodule(g.name)):
                comps = [(ci, c) for ci, c in enumerate(g.components) if present[bi, ci]]
                self.handles.append(block.register_forward_pre_hook(self._reset(gi, bi, comps)))
                for ci, comp in comps:
                    module = block.get_submodule(comp)
                    self.handles.append(module.register_forward_hook(self._hook(gi, bi, ci, effective[g.name])))

    def _reset(self, gi, bi, comps):
        def pre(module, args):
            for ci, _ in comps:
                self.calls[(gi, bi, ci)] = 0
        return pre

    def _hook(self, gi, bi, ci, mask):
        def hook(module, args, output):
            k = self.calls[(gi, bi, ci)]
            self.calls[(gi, bi, ci)] += 1
            if self.step == 0:
                self.per_forward[(gi, bi, ci)] += 1
            key = (gi, bi, ci, k)
            if mask[self.step, bi, ci] or key not in self.cache:
                self.cache[key] = output
                return output
            return self.cache[key]
        return hook

    def run(self, transformer, inputs):
        out = []
        with torch.no_grad():
            for s, kw in enumerate(inputs):
                self.step = s
                out.append(_first(transformer(**kw, return_dict=False)).clone())
        return out

    def remove(self):
        for h in self.handles:
            h.remove()


def _assert_close(got, expected, atol):
    for s, (a, b) in enumerate(zip(got, expected)):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=atol, rtol=1e-4), f"step {s}: max diff {(a - b).abs().max():.3g}"


def test_all_compute_is_bit_identical_and_remove_restores(model):
    case, transformer, adapter, arch, inputs = model
    with single_threaded():
        plain = _loop(transformer, inputs)
        with apply_schedule(transformer, CacheSchedule.all_compute(arch, STEPS)):
            same = _loop(transformer, inputs)
        schedule = _random_schedule(arch, 0)
        handle = apply_schedule(transformer, schedule)
        cached = _loop(transformer, inputs)
        handle.remove()
        after = _loop(transformer, inputs)
    for a, b in zip(plain, same):
        assert torch.equal(a, b)
    for a, b in zip(plain, after):
        assert torch.equal(a, b)
    assert not any(getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.hooks for m in transformer.modules())
    assert any(not torch.equal(a, b) for a, b in zip(plain, cached)), "the random schedule changed nothing"


@pytest.mark.parametrize("seed", [1, 2])
def test_random_schedules_equal_the_reference_semantics(model, seed):
    case, transformer, adapter, arch, inputs = model
    schedule = _random_schedule(arch, seed, p=0.4 + 0.2 * (seed % 2))
    with single_threaded():
        ref = Reference(transformer, schedule)
        try:
            expected = ref.run(transformer, inputs)
        finally:
            ref.remove()
        with apply_schedule(transformer, schedule) as handle:
            got = _loop(transformer, inputs)
            counts = handle.computed_counts()
            hooked = set(handle._component_hooks)
    _assert_close(got, expected, case.atol)
    # every hooked sub-module ran exactly where the effective mask computes (x its calls per forward)
    eff = schedule.effective_masks()
    for gi, g in enumerate(arch.groups):
        for bi in range(g.num_blocks):
            for ci in range(len(g.components)):
                if (gi, bi, ci) in hooked:
                    per = ref.per_forward[(gi, bi, ci)]
                    assert per >= 1
                    assert list(counts[g.name][:, bi, ci]) == list(eff[g.name][:, bi, ci].astype(int) * per), \
                        (g.name, bi, g.components[ci])


@pytest.mark.parametrize("fast_path", [False, True])
def test_executed_macs_equal_the_mac_model(model, fast_path):
    """Exactly, through the blocks' own forwards; a fast path (a fully reused block assembled from
    cached outputs) may only do less (SD3's last block skips a norm projection it no longer needs)."""
    case, transformer, adapter, arch, inputs = model
    if case.inputs is not None:
        pytest.skip("custom inputs: the MAC model's inputs are the adapter's profile inputs")
    schedule = _random_schedule(arch, 3)
    lh, lw = case.latent_size
    kw = {} if case.latent_frames is None else {"num_frames": case.latent_frames, "vae_temporal_factor": 1}
    profile = profile_macs(transformer, lh, lw, batch_size=case.batch_size, text_len=case.text_len,
                           vae_scale_factor=1, **kw)
    executed = []
    with single_threaded(), apply_schedule(transformer, schedule, fast_path=fast_path), torch.no_grad():
        for s in range(STEPS):
            counter = FlopCounterMode(display=False, depth=None)
            with counter:
                transformer(**inputs[s], return_dict=False)
            executed.append(counted_global(counter.get_flop_counts(), False))
    model_macs = profile.step_macs(schedule)
    if fast_path:
        assert all(e <= m for e, m in zip(executed, model_macs)), (executed, model_macs)
    else:
        assert executed == model_macs
    assert executed[0] == profile.full_step_macs and min(executed) < profile.full_step_macs
