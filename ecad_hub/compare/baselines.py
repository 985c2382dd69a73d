"""The methods ``ecad-hub compare`` measures, each a :class:`Method`: a name, a setting and a way
to apply it to a pipeline for a block of generations.

* ECAD schedules (a frontier or schedule files) and static heuristics written as schedules
  (FORA-style recompute-every-N, Delta-DiT-style stage-wise caching of rear/front blocks,
  attention-only caching every N), applied with :func:`ecad_hub.apply_schedule`;
* diffusers' built-in caches (FirstBlockCache, PyramidAttentionBroadcast, FasterCache,
  TaylorSeer, MagCache), each over a sweep of its main knob, applied with their ``apply_*``
  functions; what each needs for a family (cache context, timestep, module names, tensor
  layout) comes from the adapter (:mod:`ecad_hub.adapters.base`, "other caches");
* cache-dit's DBCache with and without its TaylorSeer calibrator (``pip install 'ecad-hub[compare]'``).

No family is named here: a cache that cannot apply to a pipeline is skipped with a one-line note.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Sequence

import numpy as np

from ..schedule import CacheSchedule

#: The method families in table order; ``compare(methods=...)`` selects among these keys.
METHOD_KEYS = ("ecad", "fora", "delta-dit", "attention", "fbc", "pab", "fastercache", "taylorseer", "magcache",
               "dbcache")
#: Display names.
METHOD_NAMES = {
    "ecad": "ECAD", "fora": "FORA", "delta-dit": "Delta-DiT", "attention": "attention-every-N",
    "fbc": "FirstBlockCache", "pab": "PyramidAttentionBroadcast", "fastercache": "FasterCache",
    "taylorseer": "TaylorSeer", "magcache": "MagCache", "dbcache": "cache-dit DBCache",
}
#: Sweeps of each baseline's main knob: ``full`` (benchmark) and ``quick`` (>= 4 settings each).
SWEEPS = {
    "full": {"fora": [2, 3, 4, 5, 6], "delta-dit": [2, 3, 4, 6], "attention": [2, 3, 4, 6],
             "fbc": [0.02, 0.05, 0.1, 0.2, 0.4], "pab": [2, 3, 4, 6], "fastercache": [2, 3, 4, 6],
             "taylorseer": [2, 3, 4, 6], "magcache": [0.02, 0.06, 0.12, 0.24, 0.5],
             "dbcache": [0.04, 0.08, 0.16, 0.32]},
    "quick": {"fora": [2, 3, 4, 6], "delta-dit": [2, 3, 4, 6], "attention": [2, 3, 4, 6],
              "fbc": [0.05, 0.1, 0.2, 0.4], "pab": [2, 3, 4, 6], "fastercache": [2, 3, 4, 6],
              "taylorseer": [2, 3, 4, 6], "magcache": [0.06, 0.12, 0.24, 0.5],
              "dbcache": [0.08, 0.16, 0.32, 0.64]},
}

logger = logging.getLogger(__name__)


@dataclass
class Method:
    """One (method, setting) to measure.

    ``apply(pipe, probe)`` returns a context manager during which the method is active;
    ``before_call(pipe)`` runs before every pipeline call (resets stateful hooks).
    ``needs_context``: the transformer call needs a diffusers cache context (set by the probe).
    """

    key: str
    method: str
    setting: str
    kind: str  # "reference" | "ecad" | "heuristic" | "diffusers" | "cache-dit"
    apply: Callable[[Any, Any], ContextManager]
    before_call: Callable[[Any], None] = lambda pipe: None
    needs_context: bool = False
    schedule: CacheSchedule | None = None
    calibration_quality: float | None = None
    knob: float | None = None
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# schedules: ECAD and the static heuristics
# --------------------------------------------------------------------------------------------

def _schedule_apply(schedule: CacheSchedule):
    def apply(pipe, probe):
        from ..hooks import apply_schedule

        return apply_schedule(pipe, schedule)
    return apply


def all_compute_method() -> Method:
    return Method("all-compute", "all-compute", "-", "reference", lambda pipe, probe: contextlib.nullcontext())


def schedule_method(key: str, schedule: CacheSchedule, setting: str, *, kind: str, knob=None,
                    calibration_quality: float | None = None) -> Method:
    return Method(key, METHOD_NAMES.get(key, key), setting, kind, _schedule_apply(schedule), schedule=schedule,
                  calibration_quality=calibration_quality, knob=knob)


def _periodic(steps: int, period: int) -> np.ndarray:
    return (np.arange(steps) % period) == 0


def _build(architecture, steps: int, select) -> dict:
    """masks {group: [S, B, C]}: ``select(group_index, block_index_global, component) -> rows [S] | None``."""
    masks, offset = {}, 0
    for gi, g in enumerate(architecture.groups):
        m = np.ones((steps, g.num_blocks, len(g.components)), dtype=bool)
        for b in range(g.num_blocks):
            for ci, comp in enumerate(g.components):
                rows = select(gi, offset + b, comp)
                if rows is not None:
                    m[:, b, ci] = rows
        masks[g.name] = m
        offset += g.num_blocks
    return masks


def heuristic_methods(architecture, steps: int, keys: Sequence[str], sweep: dict) -> list[Method]:
    """FORA, Delta-DiT and attention-every-N schedules over their sweeps (those that reuse something)."""
    total_blocks = sum(g.num_blocks for g in architecture.groups)
    out = []

    def add(key, n, name, masks):
        s = CacheSchedule(name, steps, architecture, masks)
        if all(bool(m.all()) for m in s.effective_masks().values()):
            return  # reuses nothing at this step count
        out.append(schedule_method(key, s, f"N={n}", kind="heuristic", knob=n))

    if "fora" in keys:  # FORA: every sub-module recomputed every N steps, reused in between
        for n in sweep["fora"]:
            add("fora", n, f"fora-{n}", _build(architecture, steps, lambda gi, b, c, n=n: _periodic(steps, n)))
    if "delta-dit" in keys:
        # Delta-DiT: in the early (outline) stage the rear blocks are cached, in the late (detail) stage
        # the front blocks; cached blocks are recomputed every N steps
        boundary, half = steps // 2, total_blocks // 2
        stage_early = np.arange(steps) < boundary

        def delta(gi, b, c, n):
            cached_now = stage_early if b >= total_blocks - half else ~stage_early
            if b >= half and b < total_blocks - half:
                return None  # the middle block of an odd count always computes
            return ~cached_now | _periodic(steps, n)
        for n in sweep["delta-dit"]:
            add("delta-dit", n, f"delta-dit-{n}", _build(architecture, steps, lambda gi, b, c, n=n: delta(gi, b, c, n)))
    if "attention" in keys:  # attention sub-modules every N steps, everything else always
        for n in sweep["attention"]:
            add("attention", n, f"attn-every-{n}",
                _build(architecture, steps, lambda gi, b, c, n=n: _periodic(steps, n) if c.startswith("attn") else None))
    return out


# --------------------------------------------------------------------------------------------
# diffusers' caches
# --------------------------------------------------------------------------------------------

def _registries(module):
    for sub in module.modules():
        reg = getattr(sub, "_diffusers_hook", None)
        if reg is not None:
            yield sub, reg


@contextlib.contextmanager
def _diffusers_hooks(transformer, install: Callable[[], None]):
    """Run ``install()`` (which registers diffusers hooks under ``transformer``), then remove exactly
    the hooks it added when the block ends."""
    before = {id(m): set(reg.hooks) for m, reg in _registries(transformer)}
    quiet = logging.getLogger("diffusers.hooks.faster_cache")  # warns "experimental" at every apply
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        install()
    finally:
        quiet.setLevel(level)
    try:
        yield
    finally:
        for m, reg in list(_registries(transformer)):
            for name in [n for n in reg.hooks if n not in before.get(id(m), set())]:
                reg.remove_hook(name, recurse=False)


def reset_stateful(pipe) -> None:
    """Reset every stateful diffusers hook of the transformer (diffusers' caches keep state across calls)."""
    for _, reg in _registries(pipe.transformer):
        reg.reset_stateful_hooks(recurse=False)


def _diffusers_method(key, setting, knob, install_fn, *, needs_context: bool, info=None) -> Method:
    def apply(pipe, probe):
        return _diffusers_hooks(pipe.transformer, lambda: install_fn(pipe, probe))
    return Method(key, METHOD_NAMES[key], setting, "diffusers", apply, before_call=reset_stateful,
                  needs_context=needs_context, knob=knob, info=info or {})


def diffusers_methods(pipe, adapter, config: dict, settings: dict, keys: Sequence[str], sweep: dict, *,
                      mag_ratios=None, skipped: list[str]) -> list[Method]:
    """The diffusers caches that apply to ``pipe`` (the others are noted in ``skipped``)."""
    import torch
    from diffusers.hooks import (FasterCacheConfig, FirstBlockCacheConfig, PyramidAttentionBroadcastConfig,
                                 apply_faster_cache, apply_first_block_cache, apply_pyramid_attention_broadcast)

    out: list[Method] = []
    ctx = bool(adapter.needs_cache_context(pipe))
    groups = adapter.cache_block_groups(config)
    top = {name for name, _ in pipe.transformer.named_children()}
    from diffusers.hooks._common import _ALL_TRANSFORMER_BLOCK_IDENTIFIERS

    block_lists = [g for g in groups if g in top and g in _ALL_TRANSFORMER_BLOCK_IDENTIFIERS]
    steps = int(settings["num_inference_steps"])
    cfg = bool(adapter.pipeline_uses_cfg(float(settings["guidance_scale"])))
    dtype = next(pipe.transformer.parameters()).dtype

    if "fbc" in keys:
        if not block_lists:
            skipped.append(f"FirstBlockCache: the transformer has no block list diffusers' FBC recognises ({', '.join(groups)})")
        else:
            for t in sweep["fbc"]:
                out.append(_diffusers_method("fbc", f"threshold={t:g}", t,
                                             lambda p, probe, t=t: apply_first_block_cache(p.transformer, FirstBlockCacheConfig(threshold=t)),
                                             needs_context=ctx))
    if "pab" in keys:
        for n in sweep["pab"]:
            def install(p, probe, n=n):
                apply_pyramid_attention_broadcast(p.transformer, PyramidAttentionBroadcastConfig(
                    spatial_attention_block_skip_range=n, cross_attention_block_skip_range=2 * n,
                    spatial_attention_block_identifiers=groups, cross_attention_block_identifiers=groups,
                    current_timestep_callback=probe.current_timestep))
            out.append(_diffusers_method("pab", f"spatial N={n}, cross {2 * n}", n, install, needs_context=ctx))
    if "fastercache" in keys:
        fmt = adapter.faster_cache_tensor_format(config)
        if fmt is None:
            skipped.append("FasterCache: not for this transformer's hidden-state layout (the adapter says so)")
        else:
            for n in sweep["fastercache"]:
                def install(p, probe, n=n):
                    apply_faster_cache(p.transformer, FasterCacheConfig(
                        spatial_attention_block_skip_range=n, spatial_attention_block_identifiers=groups,
                        tensor_format=fmt, is_guidance_distilled=not cfg,
                        current_timestep_callback=probe.current_timestep,
                        attention_weight_callback=lambda _m: 0.5,
                        _unconditional_conditional_input_kwargs_identifiers=list(adapter.faster_cache_cfg_kwargs(config))))
                out.append(_diffusers_method("fastercache", f"spatial N={n}", n, install, needs_context=ctx))
    if "taylorseer" in keys:
        from diffusers.hooks import TaylorSeerCacheConfig, apply_taylorseer_cache

        ident = adapter.taylorseer_identifiers(config)
        before = max(1, min(3, steps // 5))
        for n in sweep["taylorseer"]:
            def install(p, probe, n=n):
                apply_taylorseer_cache(p.transformer, TaylorSeerCacheConfig(
                    cache_interval=n, disable_cache_before_step=before, max_order=1,
                    taylor_factors_dtype=dtype, cache_identifiers=ident))
            out.append(_diffusers_method("taylorseer", f"interval={n}", n, install, needs_context=ctx,
                                         info={"disable_cache_before_step": before}))
    if "magcache" in keys:
        if not block_lists:
            skipped.append("MagCache: the transformer has no block list diffusers' MagCache recognises")
        elif mag_ratios is None:
            skipped.append("MagCache: no calibrated magnitude ratios")
        else:
            from diffusers.hooks import MagCacheConfig, apply_mag_cache

            for t in sweep["magcache"]:
                def install(p, probe, t=t):
                    apply_mag_cache(p.transformer, MagCacheConfig(
                        threshold=t, num_inference_steps=steps, mag_ratios=torch.tensor(mag_ratios)))
                out.append(_diffusers_method("magcache", f"threshold={t:g}", t, install, needs_context=ctx,
                                             info={"mag_ratios": [round(float(r), 6) for r in mag_ratios]}))
    return out


class _RatioCatcher(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.results: list[list[float]] = []

    def emit(self, record):
        import ast

        msg = record.getMessage()
        if "Calibration Results:" in msg:
            try:
                self.results.append([float(v) for v in ast.literal_eval(msg.split("Calibration Results:", 1)[1].strip())])
            except (ValueError, SyntaxError):
                pass


def calibrate_mag_ratios(pipe, adapter, settings: dict, run_calls: Callable[[], None], probe) -> list[float] | None:
    """MagCache's magnitude ratios for this pipeline, measured by diffusers' own calibration mode
    (``MagCacheConfig(calibrate=True)``) over the pipeline calls ``run_calls()`` makes (the mean
    over the calls); ``None`` if none were reported."""
    import io
    from contextlib import redirect_stdout

    from diffusers.hooks import MagCacheConfig, apply_mag_cache

    steps = int(settings["num_inference_steps"])
    log = logging.getLogger("diffusers.hooks.mag_cache")
    catcher = _RatioCatcher()
    level = log.level
    log.addHandler(catcher)
    log.setLevel(logging.INFO)
    probe.cache_context = bool(adapter.needs_cache_context(pipe))
    try:
        with _diffusers_hooks(pipe.transformer, lambda: apply_mag_cache(
                pipe.transformer, MagCacheConfig(num_inference_steps=steps, calibrate=True))):
            with redirect_stdout(io.StringIO()):  # diffusers also prints them
                run_calls()
    finally:
        log.removeHandler(catcher)
        log.setLevel(level)
        probe.cache_context = False
    runs = [r for r in catcher.results if len(r) == steps]
    if not runs:
        return None
    return [float(v) for v in np.mean(np.asarray(runs), axis=0)]


# --------------------------------------------------------------------------------------------
# cache-dit (optional)
# --------------------------------------------------------------------------------------------

def cachedit_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("cache_dit") is not None


def cachedit_methods(pipe, settings: dict, sweep: dict, skipped: list[str]) -> list[Method]:
    """cache-dit's DBCache (Fn=1, Bn=0) over a residual-threshold sweep, with and without its
    TaylorSeer calibrator; skipped with a note when cache-dit is not installed."""
    if not cachedit_available():
        skipped.append("cache-dit DBCache: cache-dit is not installed (pip install 'ecad-hub[compare]')")
        return []
    out = []
    for taylor in (False, True):
        for t in sweep["dbcache"]:
            def apply(p, probe, t=t, taylor=taylor):
                return _cachedit_context(p, t, taylor, int(settings["num_inference_steps"]))
            name = "cache-dit DBCache+TaylorSeer" if taylor else "cache-dit DBCache"
            out.append(Method("dbcache-taylorseer" if taylor else "dbcache", name, f"threshold={t:g}", "cache-dit",
                              apply, knob=t))
    return out


@contextlib.contextmanager
def _cachedit_context(pipe, threshold: float, taylor: bool, steps: int):
    import cache_dit

    kwargs: dict[str, Any] = {}
    try:
        from cache_dit import DBCacheConfig

        kwargs["cache_config"] = DBCacheConfig(Fn_compute_blocks=1, Bn_compute_blocks=0,
                                               residual_diff_threshold=threshold, num_inference_steps=steps,
                                               max_warmup_steps=max(1, min(8, steps // 5)))
        if taylor:
            from cache_dit import TaylorSeerCalibratorConfig

            kwargs["calibrator_config"] = TaylorSeerCalibratorConfig(taylorseer_order=1)
    except ImportError:  # older cache-dit: keyword options
        kwargs = dict(Fn_compute_blocks=1, Bn_compute_blocks=0, residual_diff_threshold=threshold,
                      enable_taylorseer=taylor)
    cache_dit.enable_cache(pipe, **kwargs)
    try:
        yield
    finally:
        cache_dit.disable_cache(pipe)
