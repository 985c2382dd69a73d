"""Tiny cases of every supported transformer class, for the conformance suite (``tests/test_conformance.py``).

One module per family (``tests/families/<family>.py``) lists its cases in ``CASES``: a tiny
config of the diffusers class (a few blocks, narrow widths), the latent size, batch and text
length to run at. Inputs of one forward are the adapter's own MAC-profiling inputs
(``adapter.profile_inputs``) with random values, so the executed MACs of a run can be compared
exactly with the MAC model; a case may supply its own inputs instead (``inputs=``).
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass(frozen=True)
class FamilyCase:
    """One transformer configuration to run the conformance suite on."""

    id: str
    config: dict  # with "_class_name"; built with the adapter's model_class() (or `model_cls`)
    latent_size: tuple[int, int] = (8, 8)  # (height, width) in latent pixels (before patching)
    batch_size: int = 2
    text_len: int = 8
    latent_frames: int | None = None  # video: latent frames
    timestep_scale: float = 1000.0  # timesteps are drawn in [0, timestep_scale)
    model_cls: Any = None  # the class to build when diffusers has none of that name
    inputs: Callable | None = None  # (transformer, adapter, step, seed) -> forward kwargs
    auto: bool = False  # exercise the automatic adapter (the class has no hand adapter)
    atol: float = 1e-5
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def transformer_class(self) -> str:
        return self.config["_class_name"]


def all_cases() -> list[FamilyCase]:
    cases = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        cases.extend(getattr(module, "CASES", ()))
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), f"duplicate case ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    return cases


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Random weights everywhere: diffusers zero-initialises output projections (adaLN-zero, the
    last layer), which would make a cached and a computed output trivially equal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.dtype.is_floating_point:
                continue
            if p.ndim >= 2:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(max(1, fan_in)))
            elif name.endswith("weight") and torch.all(p == 1):  # a norm's scale
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def build_transformer(case: FamilyCase, adapter, seed: int = 0) -> torch.nn.Module:
    cls = case.model_cls or adapter.model_class()
    clean = {k: v for k, v in case.config.items() if not k.startswith("_")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls.from_config(clean)
    _randomize(model, seed)
    return model.float().eval()


def _fill(value, g: torch.Generator, key: str, step: int, case: FamilyCase):
    if isinstance(value, dict):
        return {k: _fill(v, g, k, step, case) for k, v in value.items()}
    if not isinstance(value, torch.Tensor):
        return value
    if key in ("timestep", "timesteps"):
        t = case.timestep_scale * (1.0 - (step + 0.5) / 8)
        return torch.full(value.shape, t, dtype=value.dtype if value.dtype.is_floating_point else torch.float32)
    if value.dtype.is_floating_point:
        return torch.randn(value.shape, generator=g, dtype=value.dtype)
    return value.clone()


def step_inputs(case: FamilyCase, transformer, adapter, step: int, seed: int = 0) -> dict:
    """Keyword arguments of one forward at denoising ``step``: the adapter's profile inputs, random.

    The latents change every step; the text conditioning is the same at every step (as in a real
    denoising loop).
    """
    if case.inputs is not None:
        return case.inputs(transformer, adapter, step, seed)
    config = dict(transformer.config)
    lh, lw = case.latent_size
    kwargs = {} if case.latent_frames is None else {"latent_frames": case.latent_frames}
    base = adapter.profile_inputs(config, lh, lw, case.batch_size, case.text_len, "cpu", **kwargs)
    text = torch.Generator().manual_seed(seed)
    latents = torch.Generator().manual_seed(seed * 1_000_003 + step + 1)
    out = {}
    for key, value in base.items():
        g = latents if key in ("hidden_states", "x", "latents") else text
        out[key] = _fill(value, g, key, step, case)
    return out
