"""The Pareto front of a search: which evaluated schedules are on it, the per-generation summary,
the front as schedule files (``front/<name>.json``, named as an export of the front names them:
:func:`ecad_hub.frontier.layout.assign_names`) and ``frontier.png``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..frontier.layout import assign_names
from ..schedule import CacheSchedule
from .genome import Genome
from .pareto import nondominated

#: Speedups at which the per-generation summary reports the best quality.
SUMMARY_SPEEDUPS = (1.5, 2.0, 3.0)


def front_hashes(hashes: Sequence[str], evaluations: Mapping[str, dict], cost_of: Callable[[dict], float],
                 genome: Genome) -> list[str]:
    """The nondominated feasible (>= 1 reuse) schedules among ``hashes``, by increasing cost."""
    hs = [h for h in hashes if genome.reused_bits(genome.from_hex(evaluations[h]["genome"])) > 0]
    if not hs:
        return []
    cost = [cost_of(evaluations[h]) for h in hs]
    quality = [evaluations[h]["quality"] for h in hs]
    keep = nondominated(cost, quality)
    front = [h for h, k in zip(hs, keep) if k]
    front.sort(key=lambda h: cost_of(evaluations[h]))
    return front


def best_quality_at_speedup(front: Sequence[str], evaluations: Mapping[str, dict],
                            cost_of: Callable[[dict], float]) -> dict:
    """``{"1.5x": best quality among front members at least that much faster, ...}`` (``None``: none)."""
    best = {}
    for s in SUMMARY_SPEEDUPS:
        qs = [evaluations[h]["quality"] for h in front if 1.0 / cost_of(evaluations[h]) >= s]
        best[f"{s:g}x"] = max(qs) if qs else None
    return best


def name_front(schedules: Sequence[CacheSchedule], metric: str) -> list[CacheSchedule]:
    """``schedules`` (with recorded MACs) renamed ``ecad-<speedup>x`` as an export of them would be:
    :func:`~ecad_hub.frontier.layout.assign_names` in frontier order (most compute first, ties:
    better quality first, then content hash). The order of ``schedules`` is kept."""
    def key(i):
        s = schedules[i]
        quality = s.quality(metric)
        return (-float(s.metrics["macs"]["ratio"]), -(quality if quality is not None else -math.inf), s.content_hash)

    order = sorted(range(len(schedules)), key=key)
    names = dict(zip(order, assign_names([schedules[i] for i in order])))
    return [s.replace(name=names[i]) for i, s in enumerate(schedules)]


def front_schedules(context, front: Sequence[str], evaluations: Mapping[str, dict], *, all_compute_quality: float,
                    all_compute_ms: float | None, num_images: int, run_name: str) -> list[CacheSchedule]:
    """The front as schedules carrying their generation settings, MACs, quality (and latency)
    metrics and search provenance, named by :func:`name_front`; ``context`` is the search's
    :class:`~ecad_hub.search.context.SearchContext`."""
    from ..version import __version__

    cfg, info, settings = context.config, context.info, context.settings
    generation = {k: v for k, v in {
        "base_model": cfg.base_model, "revision": cfg.revision, "pipeline_class": info.pipeline_class,
        "height": settings["height"], "width": settings["width"],
        "guidance_scale": settings["guidance_scale"], "scheduler_class": info.scheduler_class,
    }.items() if v is not None}
    out = []
    for h in front:
        rec = evaluations[h]
        x = context.genome.from_hex(rec["genome"])
        speedup = 1.0 / rec["mac_ratio"]
        quality = {"metric": context.metric_name, "value": rec["quality"], "all_compute_value": all_compute_quality,
                   "prompt_set": context.prompt_set.name, "prompt_set_sha256": context.prompt_set.sha256,
                   "num_images": num_images}
        metrics: dict[str, Any] = {"quality": [quality]}
        if "latency_ms_per_image" in rec:
            metrics["latency"] = {"ms_per_image": rec["latency_ms_per_image"],
                                  "all_compute_ms_per_image": all_compute_ms,
                                  "speedup": round(all_compute_ms / rec["latency_ms_per_image"], 4),
                                  "device": str(context.device) if not cfg.ray else "ray", "dtype": cfg.dtype,
                                  "batch_size": cfg.batch_size or num_images,
                                  "runs": cfg.latency_runs}
        s = context.genome.schedule(
            x, name=f"candidate-{h[:12]}", generation=generation, metrics=metrics,
            provenance={"ecad_hub_version": __version__, "search_run": run_name,
                        "generation": int(rec["generation"]), "candidate": int(rec["candidate"])},
            description=(f"Found by ecad-hub search: {speedup:.2f}x fewer MACs, {context.metric_name} "
                         f"{rec['quality']:.4g} (all-compute {all_compute_quality:.4g}) on {context.prompt_set.name}."),
        )
        out.append(context.profile.annotate(s))
    return name_front(out, context.metric_name)


def plot_generations(path: Path, context, records: list[dict], evaluations: Mapping[str, dict],
                     cost_of: Callable[[dict], float], all_compute_quality: float) -> None:
    """``frontier.png``: the front after the last generation in ``records``, with the fronts of up to
    eight earlier generations faded behind it."""
    from ..plotting import plot_frontier

    def points(hashes):
        return [(1.0 / cost_of(evaluations[h]), evaluations[h]["quality"]) for h in hashes]

    cfg, settings = context.config, context.settings
    k = records[-1]["generation"]
    earlier = records[:-1][-8:]
    faded = {f"gen {r['generation']}": points(r["front"]) for r in earlier}
    label = f"front after generation {k}"
    series = {label: points(records[-1]["front"]), "all-compute": [(1.0, all_compute_quality)]}
    plot_frontier(
        series, path, highlight=label, faded=faded,
        xlabel="MAC speedup (x)" if cfg.cost == "macs" else "latency speedup (x)",
        ylabel=f"{context.metric_name} ({context.prompt_set.name})",
        title=f"{Path(str(cfg.base_model)).name} {settings['height']}x{settings['width']}, "
              f"{settings['num_inference_steps']} steps")
