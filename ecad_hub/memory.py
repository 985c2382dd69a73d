"""The memory a schedule's cache holds, sized without weights.

:func:`cache_memory` applies the schedule to a weightless copy of the transformer on the ``meta``
device (tensors with shapes and dtypes, no data), runs its steps and sizes the cache after each one
with :meth:`~ecad_hub.hooks.ScheduleHandle.cached_bytes`: the exact bytes the same outputs take on a
GPU, so FLUX.1-dev at 1024x1024 is sized in seconds on a laptop. The cache is the only memory a
schedule adds: after step ``s`` it holds the outputs step ``s + 1`` reuses, nothing after the last
step, and a reused sub-module allocates no activations of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import EcadError
from .hooks import apply_schedule
from .macs import _instantiate_meta, _meta_inputs
from .schedule import CacheSchedule

_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class CacheMemory:
    """Bytes a schedule's cache holds after each denoising step, for one transformer and input size.

    ``bound_bytes`` is every scheduled sub-module's output at once (``outputs_max`` of them): the
    most any schedule of this model can hold at this size, reached by one that reuses everything
    at the step after a full step. ``weights_bytes`` is the transformer's weights in ``dtype``.
    """

    schedule: str
    per_step_bytes: tuple[int, ...]
    outputs_held: tuple[int, ...]
    bound_bytes: int
    outputs_max: int
    weights_bytes: int
    dtype: str
    height: int
    width: int
    batch_size: int
    text_len: int
    num_frames: int | None = None

    @property
    def peak_bytes(self) -> int:
        return max(self.per_step_bytes, default=0)

    @property
    def peak_after_step(self) -> int:
        """The first step after which the cache holds ``peak_bytes``."""
        return self.per_step_bytes.index(self.peak_bytes) if self.per_step_bytes else 0

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "dtype": self.dtype, "height": self.height, "width": self.width,
                "num_frames": self.num_frames, "batch_size": self.batch_size, "text_len": self.text_len,
                "peak_bytes": self.peak_bytes, "peak_after_step": self.peak_after_step,
                "outputs_held_at_peak": self.outputs_held[self.peak_after_step] if self.outputs_held else 0,
                "bound_bytes": self.bound_bytes, "outputs_max": self.outputs_max, "weights_bytes": self.weights_bytes,
                "per_step_bytes": list(self.per_step_bytes), "outputs_held": list(self.outputs_held)}

    def summary(self) -> str:
        held = self.outputs_held[self.peak_after_step] if self.outputs_held else 0
        size = f"{self.height}x{self.width}" + (f"x{self.num_frames}" if self.num_frames else "")
        return (f"cache peak {_human(self.peak_bytes)} after step {self.peak_after_step} ({held} of {self.outputs_max} "
                f"outputs; bound {_human(self.bound_bytes)}) at {size}, batch {self.batch_size}, {self.dtype}; "
                f"weights {_human(self.weights_bytes)}")


def _human(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n} B"


def _dtype(dtype):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if str(dtype) not in _DTYPES:
        raise EcadError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    return getattr(torch, str(dtype))


def _bound_schedule(schedule: CacheSchedule) -> CacheSchedule:
    masks = {}
    for g in schedule.architecture.groups:
        m = np.zeros((2, g.num_blocks, len(g.components)), dtype=bool)
        m[0] = True
        masks[g.name] = m
    return CacheSchedule("bound", 2, schedule.architecture, masks)


def cache_memory(
    transformer_or_config,
    schedule: CacheSchedule,
    height: int,
    width: int,
    batch_size: int = 2,
    text_len: int | None = None,
    *,
    dtype="bfloat16",
    vae_scale_factor: int = 8,
    num_frames: int | None = None,
    vae_temporal_factor: int | None = None,
) -> CacheMemory:
    """Size the cache of ``schedule`` after every step, on the ``meta`` device (no weights, no memory).

    Arguments as :func:`ecad_hub.profile_macs` (``batch_size``: rows per transformer forward, 2
    for a CFG pair; two CFG streams run as separate forwards hold the same bytes), plus ``dtype``
    (``"bfloat16"``, ``"float16"``, ``"float32"`` or a ``torch.dtype``) of the outputs and weights.

    Example::

        >>> m = cache_memory("flux_1_dev_transformer.json", schedule, 1024, 1024, batch_size=1)
        >>> m.peak_bytes, m.bound_bytes
    """
    import torch

    dtype = _dtype(dtype)
    model, config, adapter = _instantiate_meta(transformer_or_config)
    model.to(dtype=dtype)
    inputs, text_len, num_frames = _meta_inputs(adapter, config, height, width, batch_size, text_len,
                                                vae_scale_factor, num_frames, vae_temporal_factor)
    inputs = {k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() and k != "timestep" else v
              for k, v in inputs.items()}

    def run(s: CacheSchedule, steps: int) -> tuple[list[int], list[int]]:
        sizes, held = [], []
        with torch.no_grad(), apply_schedule(model, s) as handle:
            for _ in range(steps):
                adapter.profile_forward(model, inputs)
                sizes.append(handle.cached_bytes())
                held.append(handle.cached_tensors())
        return sizes, held

    bound, bound_held = run(_bound_schedule(schedule), 1)
    sizes, held = run(schedule, schedule.num_inference_steps)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return CacheMemory(schedule.name, tuple(sizes), tuple(held), bound[0], bound_held[0], weights,
                       str(dtype).replace("torch.", ""), height, width, batch_size, text_len, num_frames)
