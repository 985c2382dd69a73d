#!/usr/bin/env python
"""Search benchmark: hypervolume of the front against the number of evaluated schedules.

Methods (same evaluation function, same seeds):

``random``  uniform random masks (every bit a coin flip), evaluated one after the other;
``paper``   the ECAD paper's NSGA-II: random initial population of 72, PointCrossover(4, 0.9),
            BitflipMutation(0.05), duplicate elimination (``SearchConfig.paper()``);
``ecad``    ecad-hub's default search (``SearchConfig()``: structured initial population,
            structured mutation, archive-wide duplicate elimination).

Both NSGA-II variants run through :func:`ecad_hub.search.run_search` (the production code path;
each run writes a normal run directory under ``OUT/runs/``), sharing one cached evaluator: the
embedded model (or ``--model``, e.g. another build of its weights), the first N of the embedded
calibration prompts (``OUT/prompts.json``), 20 steps, and a cheap quality metric
(``fidelity``: PSNR against the all-compute image, capped at 60 dB). Objectives: MAC ratio
(minimise) and quality (maximise); hypervolume reference point: MAC ratio 1.0 and the worst
quality observed by any method. Reported HV is normalised by ``1.0 x (60 dB - worst)``.

    nice -n 5 python scripts/bench_search.py --out bench-out                 # everything
    python scripts/bench_search.py --out bench-out --methods ecad --seeds 0  # a part (resumable)
    python scripts/bench_search.py --out bench-out --report                  # table/JSON/PNG only
    python scripts/bench_search.py --time-only                               # seconds per evaluation

The target of the issue: ``ecad`` reaches the HV that ``paper`` has after 3,600 evaluations
with at most 1,200 evaluations (3x fewer), averaged over >= 3 seeds.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ecad_hub.utils.io import atomic_write_json, read_json  # noqa: E402
from ecad_hub.search import SearchConfig, run_search  # noqa: E402
from ecad_hub.search.pareto import hypervolume, nondominated  # noqa: E402

METHODS = ("random", "paper", "ecad")
CHECKPOINTS = (72, 360, 720, 1200, 1800, 2400, 3600)


# --------------------------------------------------------------------------------------------
# the shared, cached evaluation function
# --------------------------------------------------------------------------------------------

class CachedBackend:
    """The runner's backend interface around one Evaluator, with a cache shared by every run
    (keyed by genome) and persisted in ``OUT/cache-<tag>.json``."""

    def __init__(self, evaluator, genome, cache_path: Path, caches: list[Path]):
        self.evaluator = evaluator
        self.genome = genome
        self.num_images = evaluator.num_images
        self.cache_path = cache_path
        self.cache: dict[str, float] = {}
        for p in caches:
            try:
                self.cache.update(read_json(p).get("quality", {}))
            except Exception:  # noqa: BLE001 - a torn cache file is just ignored
                pass
        self.computed = 0
        self.seconds = 0.0
        self._last = time.monotonic()

    def describe_metric(self):
        return self.evaluator.metric.describe()

    def needs_reference(self):
        return True

    def make_reference(self, progress=None):
        return self.evaluator.reference, 0.0

    def set_reference(self, images):
        pass

    def quality(self, x: np.ndarray) -> float:
        key = self.genome.to_hex(x)
        q = self.cache.get(key)
        if q is None:
            t0 = time.perf_counter()
            q = self.evaluator.evaluate(self.genome.schedule(x))["quality"]
            self.seconds += time.perf_counter() - t0
            self.computed += 1
            self.cache[key] = q
            if time.monotonic() - self._last > 30:
                self.save()
        return q

    def evaluate(self, items, *, measure_latency, on_result, on_images):
        for key, x in items:
            on_result(key, {"quality": self.quality(x)})

    def save(self):
        atomic_write_json(self.cache_path, {"quality": self.cache})
        self._last = time.monotonic()

    def close(self):
        pass


def build(args, out: Path):
    """The pipeline, the evaluator (fidelity on the embedded model's calibration prompts), the genome,
    and the prompt file every run records (``OUT/prompts.json``)."""
    import torch

    from ecad_hub.metrics.fidelity import FidelityMetric
    from ecad_hub.search.evaluate import Evaluator
    from ecad_hub.search.model import info_from_pipeline, load_pipeline
    from ecad_hub.search.genome import Genome
    from ecad_hub.search.prompts import PromptSet

    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, dtype="float32", device="cpu")
    info = info_from_pipeline(pipe, args.model)
    from ecad_hub.search.model import _embedded_defaults

    d = _embedded_defaults()  # the benchmark is defined on the embedded digits model's settings
    settings = dict(height=d["height"], width=d["width"], num_inference_steps=args.steps,
                    guidance_scale=d["guidance_scale"], max_sequence_length=d["max_sequence_length"])
    prompts = PromptSet.embedded(args.num_prompts)
    prompt_file = out / "prompts.json"
    atomic_write_json(prompt_file, {"prompts": list(prompts.prompts)})
    evaluator = Evaluator(pipe, settings, prompts.prompts, metric=FidelityMetric(max_psnr=args.max_psnr))
    evaluator.make_reference()
    genome = Genome(info.architecture, args.steps)
    return pipe, evaluator, genome, prompt_file


# --------------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------------

def run_random(backend, genome, seed: int, evals: int, path: Path, mac_ratio) -> list[tuple[float, float]]:
    """Uniform random masks; records (mac_ratio, quality) in evaluation order (resumable)."""
    done = read_json(path)["points"] if path.exists() else []
    rng = np.random.default_rng([seed, 12345])
    seen = set()
    points = []
    while len(points) < evals:
        x = genome.canonical(rng.random(genome.n_var) < 0.5)
        k = genome.key(x)
        if k in seen or genome.reused_bits(x) == 0:
            continue
        seen.add(k)
        if len(points) < len(done):
            points.append(tuple(done[len(points)]))
            continue
        points.append((mac_ratio(x), backend.quality(x)))
        if len(points) % 200 == 0:
            atomic_write_json(path, {"points": points})
    atomic_write_json(path, {"points": points})
    return points


def run_nsga(method: str, backend, pipe, seed: int, evals: int, run_dir: Path, population: int, steps: int,
             prompt_file: Path, model: str, overrides: dict | None = None) -> list[tuple[float, float]]:
    """A run_search run (resumable) extended generation by generation until it evaluated ``evals`` schedules."""
    generations = math.ceil(evals / population)
    while True:
        base = dict(base_model=model, metric="fidelity", population=population, generations=generations, seed=seed,
                    num_inference_steps=steps, prompts=str(prompt_file), height=32, width=32, guidance_scale=4.5,
                    max_sequence_length=16, **(overrides or {}))
        cfg = SearchConfig.paper(**base) if method == "paper" else SearchConfig(**base)
        resume = (run_dir / "search.json").exists()
        result = run_search(cfg, run_dir, pipe=pipe, backend=backend, resume=resume, progress=False, quiet=True)
        points = points_of_run(run_dir)
        if len(points) >= evals or result.generation < generations - 1:  # enough, or the search stopped
            return points[:evals]
        generations += max(1, math.ceil((evals - len(points)) / population))


def points_of_run(run_dir: Path, evals: int | None = None) -> list[tuple[float, float]]:
    """(mac_ratio, quality) of every distinct schedule the run evaluated, in evaluation order."""
    seen, points = set(), []
    for p in sorted((run_dir / "generations").glob("gen_*.json")):
        for o in read_json(p)["offspring"]:
            if o["hash"] in seen:
                continue
            seen.add(o["hash"])
            if o["feasible"]:
                points.append((o["mac_ratio"], o["quality"]))
            else:
                points.append((1.0, o["quality"]))  # all-compute: counts as an evaluation, adds no HV
    return points[:evals] if evals else points


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

def hv_curve(points, ref_q: float, scale: float, checkpoints) -> dict[int, float]:
    out = {}
    for n in checkpoints:
        if n > len(points):
            continue
        c = [p[0] for p in points[:n]]
        q = [p[1] for p in points[:n]]
        keep = nondominated(c, q)
        out[n] = hypervolume([x for x, k in zip(c, keep) if k], [y for y, k in zip(q, keep) if k], 1.0, ref_q) / scale
    return out


def report(out: Path, args) -> dict:
    methods = list(METHODS) + sorted(args.variants)
    runs: dict[str, dict[int, list]] = {m: {} for m in methods}
    for m in methods:
        for seed in args.seeds:
            if m == "random":
                p = out / "runs" / f"random-seed{seed}.json"
                if p.exists():
                    runs[m][seed] = [tuple(x) for x in read_json(p)["points"]]
            else:
                d = out / "runs" / f"{m}-seed{seed}"
                if (d / "generations").is_dir():
                    runs[m][seed] = points_of_run(d)
    allq = [q for m in runs.values() for pts in m.values() for c, q in pts if c < 1.0]
    if not allq:
        print("nothing to report yet")
        return {}
    ref_q = min(allq)
    scale = (args.max_psnr - ref_q) * 1.0
    grid = sorted(set(CHECKPOINTS) | set(range(72, 3601, 72)))
    table, curves = [], {}
    for m in methods:
        curves[m] = {}
        for seed, pts in runs[m].items():
            curves[m][seed] = hv_curve(pts, ref_q, scale, grid)
        for n in CHECKPOINTS:
            vals = [c[n] for c in curves[m].values() if n in c]
            if len(vals):
                table.append({"method": m, "evaluations": n, "hv_mean": float(np.mean(vals)),
                              "hv_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, "seeds": len(vals)})
    # the target: ecad's mean HV at <= 1200 evaluations >= paper's mean HV at 3600
    def mean_at(m, n):
        vals = [c[n] for c in curves[m].values() if n in c]
        return (float(np.mean(vals)), len(vals)) if vals else (None, 0)

    paper_3600, n_paper = mean_at("paper", 3600)
    ecad_1200, n_ecad = mean_at("ecad", 1200)
    needed = None
    if paper_3600 is not None:
        for n in grid:
            v, k = mean_at("ecad", n)
            if v is not None and k == n_ecad and v >= paper_3600:
                needed = n
                break
    target = {
        "paper_hv_at_3600": paper_3600, "paper_seeds": n_paper, "ecad_hv_at_1200": ecad_1200, "ecad_seeds": n_ecad,
        "ecad_evaluations_to_reach_paper_3600": needed,
        "holds": (paper_3600 is not None and ecad_1200 is not None and ecad_1200 >= paper_3600
                  and min(n_paper, n_ecad) >= 3),
    }
    summary = {"reference": {"mac_ratio": 1.0, "quality": ref_q, "quality_max": args.max_psnr,
                             "hv_normalisation": scale},
               "table": table, "target": target, "curves": {m: {str(s): c for s, c in cs.items()} for m, cs in curves.items()},
               "settings": {k: v for k, v in vars(args).items() if k not in ("report",)}}
    timing = out / "timing.json"
    if timing.exists():
        summary["timing"] = read_json(timing)
    atomic_write_json(out / "bench_search.json", summary)
    print(f"\nhypervolume (normalised; reference: MAC ratio 1.0, quality {ref_q:.3f} dB)")
    print(f"{'method':<8} {'evaluations':>11} {'HV mean':>9} {'± sd':>8} {'seeds':>5}")
    for r in table:
        print(f"{r['method']:<8} {r['evaluations']:>11} {r['hv_mean']:>9.4f} {r['hv_sd']:>8.4f} {r['seeds']:>5}")
    print(f"\ntarget: ecad HV@1200 = {ecad_1200} vs paper HV@3600 = {paper_3600} -> "
          f"{'HOLDS' if target['holds'] else 'does not hold (yet)'}; ecad reaches paper@3600 after {needed} evaluations")
    try:
        plot(out / "bench_search.png", curves, grid)
    except Exception as err:  # noqa: BLE001
        print(f"(no plot: {err})")
    return summary


def plot(path: Path, curves, grid) -> None:
    from ecad_hub.plotting import new_figure, plot_style, save_png_deterministic

    with plot_style():
        fig = new_figure(6.4, 4.2)
        ax = fig.add_subplot()
        for m, cs in curves.items():
            if not cs:
                continue
            xs = [n for n in grid if all(n in c for c in cs.values())]
            if not xs:
                continue
            arr = np.array([[c[n] for n in xs] for c in cs.values()])
            mean, sd = arr.mean(0), arr.std(0)
            ax.plot(xs, mean, label=f"{m} ({len(cs)} seeds)")
            ax.fill_between(xs, mean - sd, mean + sd, alpha=0.2)
        ax.axvline(1200, color="0.5", ls=":", lw=1)
        ax.set_xlabel("evaluated schedules")
        ax.set_ylabel("hypervolume (normalised)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.96)
        save_png_deterministic(fig, path)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="bench-out")
    p.add_argument("--model", default="embedded", help="pipeline (default: the embedded digits model)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--evals", type=int, default=3600, help="evaluations per run for random and paper")
    p.add_argument("--ecad-evals", type=int, default=1200, help="evaluations per run for ecad")
    p.add_argument("--population", type=int, default=72)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--num-prompts", type=int, default=2)
    p.add_argument("--max-psnr", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default=None, help="name of this process's cache file (parallel runs)")
    p.add_argument("--variants", type=json.loads, default={},
                   help='JSON {"name": {SearchConfig overrides}}: variants of ecad\'s default, run to --ecad-evals '
                        '(e.g. \'{"ecad-s4": {"screening": 4}}\'); list their names in --methods')
    p.add_argument("--report", action="store_true", help="only build the table, JSON and PNG")
    p.add_argument("--time-only", action="store_true", help="measure seconds per evaluation and exit")
    args = p.parse_args(argv)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    if args.report:
        report(out, args)
        return 0

    import warnings

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    pipe, evaluator, genome, prompt_file = build(args, out)
    print(f"model loaded and reference made in {time.perf_counter() - t0:.1f} s; {genome.n_var} bits")
    tag = args.tag or f"{os.getpid()}"
    backend = CachedBackend(evaluator, genome, out / f"cache-{tag}.json",
                            [Path(f) for f in glob.glob(str(out / "cache-*.json"))])

    from ecad_hub.macs import profile_macs

    info_profile = profile_macs(pipe.transformer, evaluator.settings["height"], evaluator.settings["width"],
                                batch_size=2, text_len=evaluator.settings["max_sequence_length"],
                                vae_scale_factor=pipe.vae_scale_factor)

    def mac_ratio(x):
        return info_profile.ratio(genome.schedule(x))

    if args.time_only:
        rng = np.random.default_rng(0)
        xs = [genome.canonical(rng.random(genome.n_var) < d) for d in np.linspace(0.1, 0.9, 12)]
        t = time.perf_counter()
        for x in xs:
            evaluator.evaluate(genome.schedule(x))
        per = (time.perf_counter() - t) / len(xs)
        total = 3 * (2 * args.evals + args.ecad_evals)
        print(f"{per:.3f} s per evaluation ({args.num_prompts} prompts, {args.steps} steps, {args.threads} thread(s)); "
              f"the full protocol (3 seeds x ({args.evals} random + {args.evals} paper + {args.ecad_evals} ecad)) = "
              f"{total} evaluations ~ {total * per / 3600:.2f} h of one core (less with cache hits)")
        atomic_write_json(out / "timing.json", {"seconds_per_evaluation": per, "num_prompts": args.num_prompts,
                                                "steps": args.steps, "threads": args.threads})
        return 0

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for seed in args.seeds:
        for m in methods:
            t = time.perf_counter()
            before, secs = backend.computed, backend.seconds
            if m == "random":
                pts = run_random(backend, genome, seed, args.evals, out / "runs" / f"random-seed{seed}.json", mac_ratio)
            else:
                evals = args.evals if m == "paper" else args.ecad_evals
                pts = run_nsga("paper" if m == "paper" else "ecad", backend, pipe, seed, evals,
                               out / "runs" / f"{m}-seed{seed}", args.population, args.steps, prompt_file,
                               args.model, args.variants.get(m))
            backend.save()
            n = backend.computed - before
            print(f"{m:<6} seed {seed}: {len(pts)} schedules, {n} computed ({backend.seconds - secs:.0f} s, "
                  f"{(backend.seconds - secs) / max(n, 1):.3f} s each), wall {time.perf_counter() - t:.0f} s", flush=True)
    report(out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
