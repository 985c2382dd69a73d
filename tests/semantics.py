"""The caching semantics, independently of ecad-hub's hooks: a reference the tests compare against.

Shared by the conformance suite and the pipeline tests (a support module, not a test module).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from ecad_hub import CacheSchedule

#: denoising steps of the transformer-level loops
STEPS = 4


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
