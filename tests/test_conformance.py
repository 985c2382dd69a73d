"""One conformance suite for every supported transformer class (cases in ``tests/families/``).

For each tiny random-weight transformer, over a short denoising loop (one forward per step, CFG
batched): the all-compute schedule is bit-identical to no schedule; random schedules give what
an independent reference of the semantics gives (plain torch forward hooks that substitute the
last computed output, per call of a sub-module within a block forward); every hooked
sub-module runs exactly where the mask says; the MACs actually executed (FlopCounterMode around
the loop) equal the MAC model; ``remove()`` restores the original outputs and leaves no hook.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ecad_hub import CacheSchedule, apply_schedule, profile_macs
from ecad_hub.adapters import adapter_for
from ecad_hub.macs import counted_global

from families import FamilyCase, all_cases, build_transformer, step_inputs
from semantics import STEPS, Reference, _assert_close, _loop, _random_schedule
from tiny_models import single_threaded

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
