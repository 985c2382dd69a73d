"""Running a comparison: every method's held-out images, executed MACs and wall-clock.

* **Prompts**: held-out (prompt, seed) pairs disjoint from the calibration set the schedules were
  searched on (prompts and seeds); their embeddings are computed once (the pipeline's own
  ``encode_prompt``, through the adapter) and passed to every call, as in the search.
* **Cost, measured**: every transformer forward that actually runs is counted with PyTorch's
  ``FlopCounterMode`` (entered in a forward pre-hook on the transformer, left in its forward
  hook), so a dynamic cache that skips a varying amount per prompt is charged what it ran.
  MACs follow :mod:`ecad_hub.macs` (attention score/value products not counted). Wall-clock:
  the whole pipeline call (prompt embeddings precomputed, VAE decode included) and the
  denoising loop (first transformer forward start to last transformer forward end), from
  interleaved rounds (each round times every method once, in rotated order), medians.
* **Quality**: the metric on the held-out images; **fidelity**: PSNR against the all-compute
  images of the same prompts and seeds.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import statistics
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import EcadError
from .baselines import (METHOD_KEYS, SWEEPS, Method, all_compute_method, cachedit_methods, calibrate_mag_ratios,
                        diffusers_methods, heuristic_methods, schedule_method)


class CompareError(EcadError):
    """A comparison cannot run as asked (one line)."""


# --------------------------------------------------------------------------------------------
# the probe: hooks on the transformer
# --------------------------------------------------------------------------------------------

class _NoModules:
    """Stands in for FlopCounterMode's module tracker: everything counts under "Global" only (no
    module hooks: cheaper, and safe on module trees other caches rewire)."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def global_flop_counter():
    """A ``FlopCounterMode`` that counts the whole region under ``"Global"`` without tracking modules."""
    from torch.utils.flop_counter import FlopCounterMode

    fc = FlopCounterMode(display=False, depth=1)
    fc.mod_tracker = _NoModules()
    return fc


class Probe:
    """PyTorch forward hooks on the transformer that, per forward: set a diffusers cache context
    where the method needs one and the pipeline sets none (``cache_context``); record the
    current timestep (:meth:`current_timestep`, diffusers' ``current_timestep_callback``); count
    executed MACs (``counting``); and time the first and last forward of a call."""

    def __init__(self, transformer, adapter):
        self.transformer = transformer
        self.adapter = adapter
        self.cache_context = False
        self.counting = False
        self.timestep: float | None = None
        self.macs = 0
        self.forwards = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        self._stack: list = []
        self._handles = [
            transformer.register_forward_pre_hook(self._pre, with_kwargs=True),
            transformer.register_forward_hook(self._post, with_kwargs=True, always_call=True),
        ]

    def current_timestep(self) -> int:
        return int(round(self.timestep)) if self.timestep is not None else 0

    def new_call(self) -> None:
        self.t_first = self.t_last = None

    def _pre(self, module, args, kwargs):
        if self.t_first is None:
            self.t_first = time.perf_counter()
        self.timestep = self.adapter.cache_timestep(args, kwargs)
        frame = []
        if self.cache_context:
            from diffusers.models.cache_utils import CacheMixin

            ctx = CacheMixin.cache_context(module, "cond")
            ctx.__enter__()
            frame.append(ctx)
        if self.counting:
            fc = global_flop_counter()
            fc.__enter__()
            frame.append(fc)
        self._stack.append(frame)
        return None

    def _post(self, module, args, kwargs, output):
        from torch.utils.flop_counter import FlopCounterMode

        from ..macs import counted_global

        frame = self._stack.pop() if self._stack else []
        for ctx in reversed(frame):
            ctx.__exit__(None, None, None)
            if isinstance(ctx, FlopCounterMode):
                self.macs += counted_global(ctx.get_flop_counts(), False)
                self.forwards += 1
        self.t_last = time.perf_counter()
        return None

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


# --------------------------------------------------------------------------------------------
# prompts
# --------------------------------------------------------------------------------------------

def _sha(items) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(list(items), separators=(",", ":")).encode()).hexdigest()


def embedded_calibration_from(frontier) -> list[str] | None:
    """The embedded calibration prompts a frontier was searched on (from its recorded prompt set)."""
    from ..search.prompts import PromptSet

    ps = ((frontier.search or {}).get("prompt_set") or {}) if frontier is not None else {}
    m = re.fullmatch(r"embedded-calibration-(\d+)-seed(\d+)(?:\[:(\d+)\])?", str(ps.get("name", "")))
    if not m:
        return None
    s = PromptSet.embedded(int(m.group(1)), int(m.group(2))).head(int(m.group(3)) if m.group(3) else None)
    return list(s.prompts)


def heldout_pairs(n: int, *, embedded_model: bool, calibration: Sequence[str], prompts_file: str | None = None,
                  seed: int = 0) -> tuple[list[tuple[str, int]], str]:
    """``n`` held-out (prompt, seed) pairs whose prompts are not calibration prompts, and the set's name.

    A prompt file gives the prompts (seeds ``HELDOUT_SEED + i``); else, for the embedded model,
    :func:`ecad_hub.embedded.heldout_prompt_seed_pairs` (calibration prompts dropped, more drawn to
    fill ``n``); else the generic prompts that are not calibration prompts.
    """
    cal = set(calibration)
    if prompts_file is not None:
        from ..search.prompts import PromptSet

        ps = PromptSet.from_file(prompts_file)
        prompts = [p for p in ps.prompts if p not in cal][:n]
        pairs = [(p, 7_000_000 + i) for i, p in enumerate(prompts)]
        name = f"{ps.name} (held-out)"
    elif embedded_model:
        from ..embedded import heldout_prompt_seed_pairs

        k, pairs = n, []
        while len(pairs) < n and k < 64 * n + 64:
            pairs = [(p, s) for p, s in heldout_prompt_seed_pairs(k, seed) if p not in cal][:n]
            k *= 2
        name = f"embedded-heldout-{n}-seed{seed}"
    else:
        from ..search.prompts import GENERIC_PROMPTS

        prompts = [p for p in GENERIC_PROMPTS if p not in cal]
        pairs = [(prompts[i % len(prompts)], 7_000_000 + i) for i in range(min(n, len(prompts)))] if prompts else []
        name = "ecad-hub-generic (held-out)"
    if not pairs:
        raise CompareError("no held-out prompts left after removing the calibration prompts; give --heldout FILE")
    return pairs, name


# --------------------------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------------------------

class _Runner:
    def __init__(self, pipe, settings: dict, pairs: Sequence[tuple[str, int]], metric, batch_size: int | None):
        from ..search.evaluate import Evaluator

        self.pipe = pipe
        self.ev = Evaluator(pipe, settings, [p for p, _ in pairs], metric=metric, batch_size=batch_size)
        self.ev.seeds = [int(s) for _, s in pairs]
        self.adapter = self.ev.adapter
        self.probe = Probe(pipe.transformer, self.adapter)

    @property
    def n(self) -> int:
        return self.ev.num_images

    def _call(self, method: Method, start: int, stop: int):
        import torch

        from ..search.evaluate import _as_images

        method.before_call(self.pipe)
        gens = [torch.Generator(device="cpu").manual_seed(s) for s in self.ev.seeds[start:stop]]
        self.probe.new_call()
        res = self.pipe(generator=gens, **self.ev._call_kwargs(start, stop))
        return _as_images(res).detach().float().cpu()

    @contextlib.contextmanager
    def active(self, method: Method):
        self.probe.cache_context = bool(method.needs_context)
        try:
            with method.apply(self.pipe, self.probe):
                yield
        finally:
            self.probe.cache_context = False

    def images(self, method: Method, *, count: bool = True, limit: int | None = None):
        """(images, executed MACs per image, transformer forwards per image)."""
        import torch

        n = self.n if limit is None else min(limit, self.n)
        self.probe.macs = self.probe.forwards = 0
        self.probe.counting = count
        out = []
        try:
            with self.active(method), torch.no_grad():
                for start in range(0, n, self.ev.batch_size):
                    out.append(self._call(method, start, min(start + self.ev.batch_size, n)))
        finally:
            self.probe.counting = False
        return torch.cat(out), self.probe.macs / n, self.probe.forwards / max(1, math.ceil(n / self.ev.batch_size))

    def time_once(self, method: Method, batch: int) -> tuple[float, float]:
        """(whole pipeline call, denoising loop) in seconds for one call on the first ``batch`` prompts."""
        import torch

        with self.active(method), torch.no_grad():
            t0 = time.perf_counter()
            self._call(method, 0, batch)
            t1 = time.perf_counter()
        loop = (self.probe.t_last - self.probe.t_first) if self.probe.t_first is not None else t1 - t0
        return t1 - t0, loop


# --------------------------------------------------------------------------------------------
# compare()
# --------------------------------------------------------------------------------------------

def _machine(threads: int | None) -> dict:
    import torch

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = None
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": threads or torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_start": load}


def _load_frontier(frontier):
    from ..frontier import Frontier

    if frontier is None or isinstance(frontier, Frontier):
        return frontier
    return Frontier.load(frontier)


def compare(pipe=None, *, base_model: str = "embedded", frontier=None, schedules: Sequence = (),
            settings: dict | None = None, metric: str | None = None, metric_kwargs: dict | None = None,
            heldout: Sequence[tuple[str, int]] | None = None, num_heldout: int = 96, heldout_file: str | None = None,
            calibration_prompts: Sequence[str] | None = None, methods: Sequence[str] = METHOD_KEYS,
            preset: str = "full", sweeps: dict | None = None, timing_rounds: int = 3, timing_batch: int | None = None,
            batch_size: int | None = None, num_threads: int | None = None, calibration_calls: int = 1,
            log: Callable[[str], None] | None = None):
    """Compare ECAD schedules with static heuristics and other caches on held-out prompts.

    Args:
        pipe: a loaded diffusers pipeline (``None``: load ``base_model``, the embedded model by default).
        frontier: an :class:`~ecad_hub.Frontier` or anything :meth:`Frontier.load` takes
            (repo id, folder, search run directory).
        schedules: more ECAD schedules (objects or files).
        settings: ``height``, ``width``, ``num_inference_steps``, ``guidance_scale``,
            ``max_sequence_length`` (default: the frontier's, else the model's defaults).
        metric: quality metric name (default ``embedded-reward`` for the embedded model, else ``fidelity``).
        heldout: explicit (prompt, seed) pairs; else ``heldout_file`` or ``num_heldout`` drawn.
        calibration_prompts: the prompts the schedules were calibrated on (default: the frontier's
            recorded embedded prompt set); held-out prompts equal to one are dropped, and MagCache
            is calibrated on them.
        methods: keys of :data:`~ecad_hub.compare.baselines.METHOD_KEYS` to run.
        preset: ``"full"`` or ``"quick"`` sweeps (>= 4 settings per baseline either way).
        timing_rounds: interleaved timing rounds (medians reported); ``timing_batch`` prompts per timed call.

    Returns:
        :class:`~ecad_hub.compare.CompareResult`.
    """
    import torch

    from ..metrics import load_metric
    from ..search.evaluate import torch_threads
    from ..search.model import EMBEDDED, info_from_pipeline, load_pipeline, model_info
    from ..metrics.fidelity import psnr
    from ..schedule import CacheSchedule
    from .result import CompareResult, CompareRow

    log = log or (lambda s: None)
    t_start = time.perf_counter()
    sweep = dict(SWEEPS[preset])
    sweep.update(sweeps or {})
    unknown = [m for m in methods if m not in METHOD_KEYS]
    if unknown:
        raise CompareError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHOD_KEYS)}")
    fr = _load_frontier(frontier)
    embedded_model = base_model == EMBEDDED
    with torch_threads(num_threads):
        if pipe is None:
            info = model_info(base_model)
            pipe = load_pipeline(base_model, dtype="float32", device="cpu")
        else:
            info = info_from_pipeline(pipe, base_model)
        if settings is None:
            settings = info.defaults()
            if fr is not None:
                settings["num_inference_steps"] = fr.num_inference_steps
                if fr.resolutions:
                    settings["height"], settings["width"] = fr.resolutions[0]
                if fr.guidance_scale is not None:
                    settings["guidance_scale"] = fr.guidance_scale
        settings = dict(settings)
        steps = int(settings["num_inference_steps"])
        metric = metric or ("embedded-reward" if embedded_model else "fidelity")
        quality_metric = load_metric(metric, metric_kwargs or {})

        # --- prompts -------------------------------------------------------------------------
        if calibration_prompts is None:
            calibration_prompts = embedded_calibration_from(fr) if embedded_model else None
            if calibration_prompts is None:
                from ..search.prompts import resolve_prompts

                calibration_prompts = list(resolve_prompts(None, None, embedded_model=embedded_model).prompts)
        calibration_prompts = list(calibration_prompts)
        if heldout is not None:
            pairs, set_name = [(str(p), int(s)) for p, s in heldout], "given"
        else:
            pairs, set_name = heldout_pairs(num_heldout, embedded_model=embedded_model,
                                            calibration=calibration_prompts, prompts_file=heldout_file)
        overlap = sorted({p for p, _ in pairs} & set(calibration_prompts))
        if overlap:
            raise CompareError(f"held-out prompt {overlap[0]!r} is also a calibration prompt")
        log(f"held-out set: {len(pairs)} (prompt, seed) pairs ({set_name}); calibration set: "
            f"{len(calibration_prompts)} prompts")

        runner = _Runner(pipe, settings, pairs, quality_metric, batch_size)
        config = dict(getattr(pipe.transformer, "config", {}) or {})
        from ..adapters import architecture_of

        architecture = architecture_of(pipe.transformer)

        # --- methods -------------------------------------------------------------------------
        skipped: list[str] = []
        todo: list[Method] = [all_compute_method()]
        if "ecad" in methods:
            ecad = list(fr.schedules) if fr is not None else []
            from ..legacy import load_any_schedule

            ecad += [s if isinstance(s, CacheSchedule) else load_any_schedule(s) for s in schedules]
            for s in ecad:
                diffs = architecture.differences(s.architecture)
                if diffs or s.num_inference_steps != steps:
                    skipped.append(f"ECAD {s.name}: not for this pipeline ({'; '.join(diffs) or f'{s.num_inference_steps} steps, not {steps}'})")
                    continue
                if all(bool(m.all()) for m in s.effective_masks().values()):
                    continue  # all-compute is the reference row
                cal_q = fr.quality(s) if fr is not None and s.name in fr else s.quality()
                speed = f"{s.mac_speedup:.2f}x" if s.mac_speedup else "-"
                todo.append(schedule_method("ecad", s, s.name, kind="ecad", knob=s.mac_speedup,
                                            calibration_quality=cal_q))
                todo[-1].info["profile_speedup"] = s.mac_speedup
                del speed
        todo += heuristic_methods(architecture, steps, methods, sweep)
        mag_ratios = None
        if "magcache" in methods:
            cal_runner = _Runner(pipe, settings, [(p, 9_000_000 + i) for i, p in enumerate(calibration_prompts[:4])],
                                 quality_metric, batch_size)
            try:
                mag_ratios = calibrate_mag_ratios(
                    pipe, runner.adapter, settings,
                    lambda: [cal_runner.images(all_compute_method(), count=False) for _ in range(calibration_calls)],
                    cal_runner.probe)
            except Exception as err:  # noqa: BLE001 - a cache that does not apply is skipped, in one line
                skipped.append(f"MagCache: calibration failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
            finally:
                cal_runner.probe.remove()
            if mag_ratios is not None:
                log(f"MagCache calibrated on {min(4, len(calibration_prompts))} calibration prompts ({steps} ratios)")
        todo += diffusers_methods(pipe, runner.adapter, config, settings, methods, sweep, mag_ratios=mag_ratios,
                                  skipped=skipped)
        if "dbcache" in methods:
            todo += cachedit_methods(pipe, settings, sweep, skipped)

        # --- images, MACs, quality ---------------------------------------------------------------
        reference, ref_macs, _ = runner.images(todo[0])
        runner.ev.set_reference(reference)
        measured: list[tuple[Method, dict]] = []
        for i, m in enumerate(todo):
            try:
                if i == 0:
                    images, macs, fwd = reference, ref_macs, None
                else:
                    images, macs, fwd = runner.images(m)
                q = runner.ev.score(images)
                fid = float(psnr(images, reference).mean())
            except Exception as err:  # noqa: BLE001
                msg = str(err).splitlines()[0] if str(err) else type(err).__name__
                skipped.append(f"{m.method} {m.setting}: failed on this pipeline ({type(err).__name__}: {msg})")
                continue
            if i > 0 and m.kind not in ("ecad", "heuristic") and macs >= ref_macs * (1 - 1e-9):
                note = "skipped nothing"
            else:
                note = None
            measured.append((m, {"macs": macs, "quality": q, "fidelity": fid, "note": note}))
            log(f"  {m.method:<28} {m.setting:<22} MACs {ref_macs / macs if macs else float('nan'):5.2f}x  "
                f"{metric} {q:.4g}  PSNR {fid:.1f} dB")

        # --- wall-clock: interleaved rounds, each method timed right after an all-compute call ------
        tb = min(timing_batch or min(8, runner.n), runner.n)
        walls: dict[int, list[float]] = {i: [] for i in range(len(measured))}
        loops: dict[int, list[float]] = {i: [] for i in range(len(measured))}
        wall_ratio: dict[int, list[float]] = {i: [] for i in range(len(measured))}
        loop_ratio: dict[int, list[float]] = {i: [] for i in range(len(measured))}
        order = list(range(1, len(measured)))
        runner.time_once(measured[0][0], tb)  # warm-up
        for r in range(max(1, timing_rounds)):
            k = (r * max(1, len(order) // max(1, timing_rounds))) % max(1, len(order))
            for i in order[k:] + order[:k]:
                w0, l0 = runner.time_once(measured[0][0], tb)
                w, lp = runner.time_once(measured[i][0], tb)
                walls[0].append(w0)
                loops[0].append(l0)
                walls[i].append(w)
                loops[i].append(lp)
                wall_ratio[i].append(w0 / w)
                loop_ratio[i].append(l0 / lp)
            if not order:
                w0, l0 = runner.time_once(measured[0][0], tb)
                walls[0].append(w0)
                loops[0].append(l0)
        runner.probe.remove()

    rows = []
    for i, (m, v) in enumerate(measured):
        wall, loop = statistics.median(walls[i]), statistics.median(loops[i])
        ws = statistics.median(wall_ratio[i]) if i else 1.0
        ls = statistics.median(loop_ratio[i]) if i else 1.0
        rows.append(CompareRow(
            method=m.method, setting=m.setting, kind=m.kind,
            mac_speedup=round(ref_macs / v["macs"], 4) if v["macs"] else None,
            wall_speedup=round(ws, 4), loop_speedup=round(ls, 4),
            quality=round(v["quality"], 6), metric=metric, fidelity_psnr=round(v["fidelity"], 3),
            num_images=runner.n, calibration_quality=None if m.calibration_quality is None else round(float(m.calibration_quality), 6),
            macs_per_image=int(round(v["macs"])), wall_ms=round(1000 * wall, 2), loop_ms=round(1000 * loop, 2),
            knob=m.knob, note=v["note"],
            profile_mac_speedup=m.info.get("profile_speedup"),
        ))
    pair_seeds = [s for _, s in pairs]
    result = CompareResult(
        rows=rows, skipped=skipped, metric=metric,
        prompt_set={"name": set_name, "num_pairs": len(pairs), "sha256": _sha([list(p) for p in pairs]),
                    "seeds": f"{min(pair_seeds)}..{max(pair_seeds)}", "images": runner.n,
                    "disjoint_from_calibration": True},
        calibration={"num_prompts": len(calibration_prompts), "sha256": _sha(calibration_prompts),
                     "frontier": getattr(fr, "source", None) if fr is not None else None},
        settings={k: settings[k] for k in ("height", "width", "num_inference_steps", "guidance_scale") if k in settings},
        machine=_machine(num_threads), timing={"rounds": max(1, timing_rounds), "batch": tb,
                                               "what": "one pipeline call on the first "
                                                       f"{tb} held-out prompts (prompt embeddings precomputed), each "
                                                       "right after an all-compute call; speedup = median over "
                                                       "interleaved rounds of the paired ratios"},
        base_model=base_model, preset=preset, seconds=round(time.perf_counter() - t_start, 1),
        mag_ratios=mag_ratios,
    )
    return result
