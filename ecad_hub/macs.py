"""Exact MAC accounting for schedules.

:func:`profile_macs` runs the transformer once on the ``meta`` device (no weights, no memory)
under :class:`torch.utils.flop_counter.FlopCounterMode` and records the multiply-accumulates
of every (group, block, component) sub-module and of everything else (patch embedding,
timestep/caption embeddings, the norms' modulation projections inside blocks, the output
head). A step's MACs are then linear in the schedule's mask::

    step_macs[s] = always + sum of the MACs of the sub-modules computed at step s

with ECAD's rule that a reuse with nothing cached yet (step 0) is computed.

Convention: by default the attention score/value products (``softmax(QK^T)V``, which PyTorch
runs as one fused kernel on GPUs) are *not* counted, exactly as in the ECAD reference figures
(PixArt-XL-2-256, batch 2, 120 text tokens: 285,689,806,848 MACs per full step, 1,498,447,872
per fully reused step). Pass ``attention_scores=True`` to count them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .adapters import adapter_for, load_transformer_config
from .errors import ArchitectureMismatchError, EcadError
from .schedule import Architecture, CacheSchedule

#: aten ops that are the attention score/value products when attention runs unfused
_ATTENTION_PRODUCT_OPS = ("aten.bmm", "aten.baddbmm", "aten._scaled_dot_product")


@dataclass(frozen=True)
class MacProfile:
    """MACs of one transformer forward, split by sub-module. Build it with :func:`profile_macs`.

    Attributes:
        architecture: the block structure profiled.
        component_macs: per group, an int64 array ``[num_blocks, num_components]``.
        always_macs: MACs spent at every step whatever the mask (outside the scheduled sub-modules).
        outside_blocks_macs: the part of ``always_macs`` outside the block lists.
        attention_product_macs: per group, the attention score/value MACs of each sub-module
            (included in ``component_macs`` only when ``attention_scores`` is true).
        height, width, batch_size, text_len, attention_scores, num_frames: what was profiled.
    """

    architecture: Architecture
    component_macs: Mapping[str, np.ndarray]
    always_macs: int
    outside_blocks_macs: int
    attention_product_macs: Mapping[str, np.ndarray]
    height: int
    width: int
    batch_size: int
    text_len: int
    attention_scores: bool = False
    num_frames: int | None = None  # video: pixel frames profiled (None: an image model)

    # --- totals -----------------------------------------------------------------------------
    @property
    def full_step_macs(self) -> int:
        """MACs of one step that computes everything."""
        return self.always_macs + sum(int(a.sum()) for a in self.component_macs.values())

    def all_compute_macs(self, num_inference_steps: int) -> int:
        return self.full_step_macs * num_inference_steps

    def _check(self, schedule: CacheSchedule) -> None:
        diffs = self.architecture.differences(schedule.architecture)
        if diffs:
            raise ArchitectureMismatchError(
                f"schedule {schedule.name!r} is for {schedule.architecture.describe()}, the profile is of "
                f"{self.architecture.describe()}: {'; '.join(diffs)}"
            )

    def step_macs(self, schedule: CacheSchedule) -> list[int]:
        """MACs of each inference step under ``schedule`` (step 0 counts as fully computed)."""
        self._check(schedule)
        per_step = np.full(schedule.num_inference_steps, self.always_macs, dtype=np.int64)
        for group, eff in schedule.effective_masks().items():
            per_step += (eff * self.component_macs[group][None]).sum(axis=(1, 2), dtype=np.int64)
        return [int(x) for x in per_step]

    def total_macs(self, schedule: CacheSchedule) -> int:
        return sum(self.step_macs(schedule))

    def ratio(self, schedule: CacheSchedule) -> float:
        """Total MACs of ``schedule`` / total MACs of the all-compute schedule."""
        return self.total_macs(schedule) / self.all_compute_macs(schedule.num_inference_steps)

    def speedup(self, schedule: CacheSchedule) -> float:
        """All-compute MACs / ``schedule`` MACs (the speedup the MACs promise)."""
        return self.all_compute_macs(schedule.num_inference_steps) / self.total_macs(schedule)

    def annotate(self, schedule: CacheSchedule) -> CacheSchedule:
        """A copy of ``schedule`` with ``metrics.macs`` filled from this profile."""
        per_step = self.step_macs(schedule)
        total = sum(per_step)
        full = self.all_compute_macs(schedule.num_inference_steps)
        metrics = schedule.metrics
        metrics["macs"] = {
            "per_step": per_step,
            "total": total,
            "all_compute_total": full,
            "ratio": round(total / full, 6),
            "speedup": round(full / total, 4),
            "profile": self.profile_settings(),
        }
        return schedule.replace(metrics=metrics)

    def profile_settings(self) -> dict:
        out = {"height": self.height, "width": self.width, "batch_size": self.batch_size,
               "text_len": self.text_len, "attention_scores": self.attention_scores}
        if self.num_frames is not None:
            out["num_frames"] = self.num_frames
        return out

    # --- serialisation (JSON; used to cache profiles in search runs) -------------------------
    def to_dict(self) -> dict:
        return {
            "architecture": self.architecture.to_dict(),
            "component_macs": {g: a.tolist() for g, a in self.component_macs.items()},
            "attention_product_macs": {g: a.tolist() for g, a in self.attention_product_macs.items()},
            "always_macs": self.always_macs,
            "outside_blocks_macs": self.outside_blocks_macs,
            **self.profile_settings(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "MacProfile":
        return cls(
            architecture=Architecture.from_dict(d["architecture"]),
            component_macs={g: np.asarray(v, dtype=np.int64) for g, v in d["component_macs"].items()},
            attention_product_macs={g: np.asarray(v, dtype=np.int64) for g, v in d["attention_product_macs"].items()},
            always_macs=int(d["always_macs"]),
            outside_blocks_macs=int(d["outside_blocks_macs"]),
            height=int(d["height"]), width=int(d["width"]), batch_size=int(d["batch_size"]),
            text_len=int(d["text_len"]), attention_scores=bool(d["attention_scores"]),
            num_frames=int(d["num_frames"]) if d.get("num_frames") is not None else None,
        )

    def summary(self) -> str:
        frames = f"x{self.num_frames} frames" if self.num_frames is not None else ""
        lines = [f"{self.architecture.describe()} at {self.height}x{self.width}{frames}, batch {self.batch_size}, "
                 f"{self.text_len} text tokens{' (attention products counted)' if self.attention_scores else ''}",
                 f"  full step      {self.full_step_macs:>22,} MACs",
                 f"  always         {self.always_macs:>22,} MACs (outside the scheduled sub-modules)"]
        for g in self.architecture.groups:
            arr = self.component_macs[g.name]
            for c, comp in enumerate(g.components):
                lines.append(f"  {g.name}.*.{comp:<12} {int(arr[:, c].sum()):>16,} MACs over {g.num_blocks} blocks")
        return "\n".join(lines)


def _instantiate_meta(transformer_or_config):
    """A weightless copy of the transformer on the meta device, and its config dict."""
    import torch

    config = load_transformer_config(transformer_or_config)
    adapter = adapter_for(transformer_or_config)
    if isinstance(transformer_or_config, torch.nn.Module):
        # the module's own class, unless the adapter's is a meta-safe subclass of it
        cls = type(transformer_or_config)
        try:
            candidate = adapter.model_class()
        except EcadError:
            candidate = None
        if isinstance(candidate, type) and issubclass(candidate, cls):
            cls = candidate
    else:
        cls = adapter.model_class()
    clean = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        model = cls.from_config(clean)
    return model.eval(), config, adapter


def _meta_inputs(adapter, config, height, width, batch_size, text_len, vae_scale_factor, num_frames,
                 vae_temporal_factor) -> tuple[dict, int, int | None]:
    """The adapter's forward inputs on ``meta`` for a pixel size (and frames); with the text length
    and frame count used (the adapter's defaults where ``None``)."""
    text_len = text_len or adapter.default_text_len
    lh, lw = adapter.latent_size(config, height, width, vae_scale_factor)
    extra = {}
    if num_frames is not None or adapter.temporal_compression is not None:
        num_frames = int(num_frames if num_frames is not None else adapter.default_num_frames)
        extra["latent_frames"] = adapter.latent_frame_count(num_frames, vae_temporal_factor)
    return adapter.profile_inputs(config, lh, lw, batch_size, text_len, "meta", **extra), text_len, num_frames


def profile_macs(
    transformer_or_config,
    height: int,
    width: int,
    batch_size: int = 2,
    text_len: int | None = None,
    *,
    vae_scale_factor: int = 8,
    attention_scores: bool = False,
    exhaustive: bool = False,
    num_frames: int | None = None,
    vae_temporal_factor: int | None = None,
) -> MacProfile:
    """Count the MACs of every scheduled sub-module of a transformer, on the ``meta`` device.

    Args:
        transformer_or_config: a diffusers transformer, its config dict, or a path to its
            ``config.json`` (or the folder holding it). Weights are never touched: a weightless
            copy is built on the ``meta`` device, so FLUX.1-dev profiles in seconds.
        height, width: image size in pixels.
        batch_size: images per transformer forward (2 for PixArt's classifier-free-guidance pair).
        text_len: text tokens (``None``: the adapter's ``default_text_len``, e.g. 120 for PixArt).
        vae_scale_factor: pixels per latent (8 for the SD/PixArt/FLUX VAEs).
        attention_scores: also count the attention score/value products (ECAD's figures do not).
        exhaustive: run every block instead of one per distinct block structure (same result,
            slower; for checking).
        num_frames: video models: frames in pixels (``None``: the adapter's default frame count);
            the latent frame count follows the VAE's temporal compression (``vae_temporal_factor``,
            ``None``: the family's). Image models refuse it.

    Example::

        >>> p = profile_macs("configs/pixart_xl_2_256_transformer.json", 256, 256)
        >>> p.full_step_macs
        285689806848
        >>> p.speedup(CacheSchedule.load("ours_fast.json"))
        2.6759...
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model, config, adapter = _instantiate_meta(transformer_or_config)
    exhaustive = exhaustive or adapter.profile_exhaustive
    arch = adapter.architecture(config)
    inputs, text_len, num_frames = _meta_inputs(adapter, config, height, width, batch_size, text_len,
                                                vae_scale_factor, num_frames, vae_temporal_factor)

    # Blocks of identical structure cost the same (the residual stream has one shape through a
    # group), so unless `exhaustive`, one block per distinct structure is run and its counts
    # stand for its twins: FLUX.1-dev runs 2 of its 57 blocks.
    stands_for = {}
    if not exhaustive:
        for g in arch.groups:
            blocks = model.get_submodule(g.name)
            keep, index_of = [], {}
            for i, block in enumerate(blocks):
                sig = _block_signature(block)
                if sig not in index_of:
                    index_of[sig] = len(keep)
                    keep.append(i)
                stands_for[(g.name, i)] = index_of[sig]
            parent, _, attr = g.name.rpartition(".")  # a group may be nested (a refiner's blocks)
            setattr(model.get_submodule(parent) if parent else model, attr,
                    torch.nn.ModuleList([blocks[i] for i in keep]))
    else:
        stands_for = {(g.name, i): i for g in arch.groups for i in range(g.num_blocks)}

    counter = FlopCounterMode(display=False, depth=None)
    with torch.no_grad(), counter:
        adapter.profile_forward(model, inputs)
    counts = counter.get_flop_counts()
    root = type(model).__name__

    def macs_of(name: str) -> tuple[int, int]:
        """(MACs excluding attention products, attention-product MACs) of module ``name``."""
        ops = counts.get(f"{root}.{name}", {})
        attn = sum(v for op, v in ops.items() if str(op).startswith(_ATTENTION_PRODUCT_OPS))
        total = sum(ops.values())
        return (total - attn) // 2, attn // 2

    def counted(name: str) -> int:
        macs, attn = macs_of(name)
        return macs + attn if attention_scores else macs

    # Everything outside the block lists, from the forward that ran (blocks run once each).
    outside = counted_global(counts, attention_scores)
    for g in arch.groups:
        outside -= sum(counted(f"{g.name}.{i}") for i in set(stands_for[(g.name, b)] for b in range(g.num_blocks)))
    component, attention = {}, {}
    inside_not_scheduled = 0  # e.g. the adaLN modulation projections inside FLUX blocks
    for g in arch.groups:
        comp = np.zeros((g.num_blocks, len(g.components)), dtype=np.int64)
        att = np.zeros_like(comp)
        for b in range(g.num_blocks):
            run = stands_for[(g.name, b)]
            for c, name in enumerate(g.components):
                comp[b, c], att[b, c] = macs_of(f"{g.name}.{run}.{name}")
            inside_not_scheduled += counted(f"{g.name}.{run}") - int((comp[b] + (att[b] if attention_scores else 0)).sum())
        component[g.name] = comp + att if attention_scores else comp
        attention[g.name] = att
    return MacProfile(
        architecture=arch,
        component_macs=component,
        always_macs=outside + inside_not_scheduled,
        outside_blocks_macs=outside,
        attention_product_macs=attention,
        height=height, width=width, batch_size=batch_size, text_len=text_len,
        attention_scores=attention_scores, num_frames=num_frames,
    )


def _block_signature(block) -> tuple:
    """What determines a block's MACs besides its input shapes: its module tree, parameter
    shapes, attention processors and the plain settings stored on each sub-module."""
    sig = []
    for name, module in block.named_modules():
        settings = tuple(sorted(
            (k, v) for k, v in vars(module).items()
            if isinstance(v, (bool, int, float, str, type(None))) and (not k.startswith("_") or k == "_chunk_size")
        ))
        params = tuple((n, tuple(p.shape)) for n, p in module.named_parameters(recurse=False))
        processor = type(getattr(module, "processor", None)).__name__
        sig.append((name, type(module).__name__, params, processor, settings))
    return tuple(sig)


def counted_global(counts, attention_scores: bool) -> int:
    """MACs of the whole forward that ran (attention products only if ``attention_scores``)."""
    ops = counts.get("Global", {})
    attn = sum(v for op, v in ops.items() if str(op).startswith(_ATTENTION_PRODUCT_OPS))
    return (sum(ops.values()) - (0 if attention_scores else attn)) // 2
