"""``ecad-hub quickstart``: the whole workflow on the embedded digits model, offline, on a CPU.

1. load the embedded pipeline (32x32 digits, PixArt architecture, packaged weights);
2. a short NSGA-II search (embedded reward model as the quality metric);
3. export the front as a Hub-ready folder (``Frontier.save_pretrained``) and load it back with
   ``ECADPipeline.from_pretrained``; its default schedule is chosen on quality
   (:func:`ecad_hub.frontier.frontier.quality_default`: the fastest learned schedule whose quality
   is within :data:`ecad_hub.embedded.REWARD_TOLERANCE` (0.02 of the embedded reward, a mean
   log-probability: about 2% lower probability; other metrics: 5% of the all-compute value) of
   all-compute, on the calibration prompts and, once measured, on the held-out pairs too), so the
   card does not recommend a schedule with a visible quality drop;
4. generate an image with the fastest schedule and with none, a comparison grid (rows:
   all-compute and each frontier schedule; columns: prompts), and a table of MAC speedups,
   measured wall-clock speedups and quality.
"""

from __future__ import annotations

import json
import math
import shutil
import textwrap
import time
import warnings
from pathlib import Path
from typing import Callable

from ..errors import SearchError
from ..frontier.frontier import QUALITY_TOLERANCE
from .config import EMBEDDED, SearchConfig
from .evaluate import is_all_compute

DEFAULT_POPULATION = 16
DEFAULT_GENERATIONS = 5
#: Calibration prompts of the quickstart search (the embedded calibration set's first N).
QUICKSTART_PROMPTS = 4
#: Prompts (columns) of the comparison grid: held-out prompts, not the calibration ones.
GRID_PROMPTS = 6
GRID_PROMPT_SEED = 2024
#: At most this many frontier schedules become grid rows (spread along the front).
GRID_MAX_SCHEDULES = 7
UPSCALE = 4
#: Held-out (prompt, seed) pairs the final front's quality is also measured on.
HELDOUT_PAIRS = 12


def _pick_spread(schedules: list, k: int) -> list:
    """``k`` schedules spread along the front, always including the fastest."""
    if len(schedules) <= k:
        return list(schedules)
    idx = sorted({round(i * (len(schedules) - 1) / (k - 1)) for i in range(k)})
    return [schedules[i] for i in idx]


def _to_uint8(images):
    import numpy as np

    arr = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    return (arr * 255 + 0.5).astype(np.uint8)


def _save_png(image_hwc, path: Path, upscale: int = UPSCALE) -> None:
    from PIL import Image

    img = Image.fromarray(image_hwc)
    if upscale > 1:
        img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    img.save(path)


def _grid_png(rows: list[tuple[str, object]], prompts: list[str], path: Path) -> None:
    """rows: (label, uint8 images [n_cols, H, W, 3])."""
    from ..plotting import new_figure, plot_style, save_png_deterministic

    n_rows, n_cols = len(rows), len(prompts)
    with plot_style():
        fig = new_figure(1.3 * n_cols + 1.3, 1.3 * n_rows + 1.0)
        left = 1.2 / (1.3 * n_cols + 1.3)
        top = 1 - 0.85 / (1.3 * n_rows + 1.0)
        fig.subplots_adjust(left=left, right=0.99, bottom=0.01, top=top, wspace=0.04, hspace=0.06)
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        for r, (label, images) in enumerate(rows):
            for c in range(n_cols):
                ax = axes[r][c]
                ax.imshow(images[c], interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(textwrap.fill(prompts[c], width=22), fontsize=6)
                if c == 0:
                    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
        save_png_deterministic(fig, path)


def _time_call(fn: Callable, repeats: int = 2) -> tuple[object, float]:
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _tolerance(metric: str | None) -> float | None:
    """The quality drop the quickstart's default may have, in the metric's units (``None``: 5% relative)."""
    from ..embedded import REWARD_METRIC, REWARD_TOLERANCE

    return REWARD_TOLERANCE if metric == REWARD_METRIC else None


def _export_frontier(run_dir: Path, folder: Path):
    """The search's front as a Hub-ready folder (``Frontier.save_pretrained``), its default chosen on
    the calibration quality (:func:`~ecad_hub.frontier.frontier.quality_default`)."""
    from ..frontier import Frontier
    from ..frontier.frontier import quality_default

    frontier = Frontier.load(run_dir)
    frontier.default = quality_default(frontier, tolerance=_tolerance(frontier.metric))
    frontier.save_pretrained(folder)
    return frontier


def choose_default_on_heldout(folder: Path, heldout: dict) -> str:
    """Set the default of the frontier saved in ``folder`` to the fastest schedule within tolerance of
    all-compute on both the calibration and the held-out quality (``heldout``: ``{name: quality,
    "all-compute": quality}``); rewrites the folder if it changes. Returns the default."""
    from ..frontier import Frontier
    from ..frontier.frontier import quality_default

    frontier = Frontier.load(folder)
    if not heldout or "all-compute" not in heldout:
        return frontier.default
    chosen = quality_default(frontier, heldout=heldout, tolerance=_tolerance(frontier.metric))
    if chosen != frontier.default:
        frontier.default = chosen
        frontier.save_pretrained(folder)
    return chosen


def _load_back(folder: Path, base_model: str, dtype):
    """``ECADPipeline.from_pretrained(folder)`` on the locally stored base model."""
    from ..pipeline import ECADPipeline
    from .model import resolve_source

    source, _ = resolve_source(base_model)
    with warnings.catch_warnings():
        # the frontier names the base model "embedded"; we point at its packaged folder
        warnings.simplefilter("ignore")
        pipe = ECADPipeline.from_pretrained(folder, base_model=source, dtype=dtype, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def quickstart(out: str | Path = "quickstart-out", *, generations: int | None = None, population: int | None = None,
               seed: int = 0, metric: str | None = None, num_threads: int | None = None,
               base_model: str = EMBEDDED, prompts: str | None = None, num_prompts: int | None = None,
               num_inference_steps: int | None = None, grid_prompts: list[str] | None = None,
               max_sequence_length: int | None = None, echo: Callable[[str], None] = print,
               comparison: Callable[..., dict] | None = None, heldout: int = HELDOUT_PAIRS) -> dict:
    """Run the quickstart; returns the paths written and the table rows. See the module docstring.

    ``comparison``: called after the timing step as ``comparison(pipe=, base_model=, frontier_dir=,
    settings=, out=, echo=)`` (``ecad_hub.compare.quickstart.quickstart_comparison``: the frontier
    beside FirstBlockCache and FORA on held-out prompts, added to the exported card); it returns
    ``{"heldout": {name: quality}, "lines": [...]}``. Without it the held-out quality of each
    schedule is measured here (``heldout`` (prompt, seed) pairs disjoint from the calibration prompts).
    """
    import torch

    from .evaluate import torch_threads
    from .model import load_pipeline, model_info
    from .runner import run_search

    t_start = time.perf_counter()
    total = 4 if comparison is None else 5  # steps announced
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = num_threads or 1
    run_dir = out / "search"
    if (run_dir / "search.json").is_file():
        shutil.rmtree(run_dir)  # a previous quickstart's run: start over
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise SearchError(f"{run_dir} exists and is not a search run; remove it or pick another --out")

    with torch_threads(threads):
        info = model_info(base_model)
        echo(f"[1/{total}] loading the {'embedded digits' if base_model == EMBEDDED else base_model} model "
             f"({info.pipeline_class}, {info.architecture.describe()})")
        pipe = load_pipeline(base_model, dtype="float32", device="cpu")

        if metric is None:
            metric = "embedded-reward" if base_model == EMBEDDED else "fidelity"
            if metric == "embedded-reward":
                from ..embedded import REWARD_PATH

                if not (Path(REWARD_PATH) / "model.safetensors").is_file():
                    metric = "fidelity"  # no reward weights: the metric that needs none
        cfg = SearchConfig(
            base_model=base_model, metric=metric, population=population or DEFAULT_POPULATION,
            generations=generations or DEFAULT_GENERATIONS, seed=seed, num_threads=threads, prompts=prompts,
            num_prompts=num_prompts or (QUICKSTART_PROMPTS if prompts is None else None),
            num_inference_steps=num_inference_steps, max_sequence_length=max_sequence_length,
        )
        echo(f"[2/{total}] searching: population {cfg.population}, {cfg.generations} generations, metric {metric} "
             f"-> {run_dir}")
        result = run_search(cfg, run_dir, pipe=pipe, progress=True, log=lambda s: echo("      " + s))

        echo(f"[3/{total}] exporting the frontier ({len(result.front)} schedules) and loading it back with ECADPipeline")
        frontier_dir = out / "frontier"
        frontier = _export_frontier(run_dir, frontier_dir)
        ecad = _load_back(frontier_dir, base_model, torch.float32)

        echo(f"[4/{total}] generating and timing images with and without caching")
        search_doc = json.loads((run_dir / "search.json").read_text())
        settings = {k: search_doc[k] for k in ("height", "width", "num_inference_steps", "guidance_scale",
                                               "max_sequence_length")}
        if grid_prompts is None:
            if base_model == EMBEDDED:
                from ..embedded import default_prompts

                grid_prompts = default_prompts(GRID_PROMPTS, seed=GRID_PROMPT_SEED)
            else:
                from .prompts import GENERIC_PROMPTS

                grid_prompts = list(GENERIC_PROMPTS[:GRID_PROMPTS])
        call = dict(height=settings["height"], width=settings["width"],
                    num_inference_steps=settings["num_inference_steps"], guidance_scale=settings["guidance_scale"],
                    output_type="pt")
        call.update(info.adapter.call_kwargs(settings, prompt_embeds=False))

        def generate(prompts):
            gens = [torch.Generator().manual_seed(1000 + i) for i in range(len(prompts))]
            with torch.no_grad():
                return ecad(prompt=list(prompts), generator=gens, **call).images

        schedules = frontier.schedules  # most to least compute
        fastest = schedules[-1]
        ecad.set_schedule(fastest.name)
        fast_img = generate(grid_prompts[:1])
        ecad.disable_cache()
        full_img = generate(grid_prompts[:1])
        _save_png(_to_uint8(fast_img)[0], out / f"fastest-{fastest.name}.png")
        _save_png(_to_uint8(full_img)[0], out / "all-compute.png")

        generate(grid_prompts)  # warm-up
        full_grid, t_full = _time_call(lambda: generate(grid_prompts))
        rows = [("all-compute\n1.00x MACs", _to_uint8(full_grid))]
        recorded = schedules[0].metrics.get("quality") or [{}]
        table = [("all-compute", 1.0, 1.0, recorded[0].get("all_compute_value"))]
        shown = {s.name for s in _pick_spread(schedules, GRID_MAX_SCHEDULES)}
        ecad.enable_cache()
        for s in schedules:
            ecad.set_schedule(s.name)
            imgs, t = _time_call(lambda: generate(grid_prompts))
            table.append((s.name, s.mac_speedup or 1.0, t_full / t, frontier.quality(s)))
            if s.name in shown:
                rows.append((f"{s.name}\nwall {t_full / t:.2f}x", _to_uint8(imgs)))
        ecad.disable_cache()
        grid_path = out / "grid.png"
        _grid_png(rows, list(grid_prompts), grid_path)

        compared = None
        if comparison is not None:
            echo(f"[5/{total}] comparing the frontier with FirstBlockCache and FORA on held-out prompts")
            compared = comparison(pipe=pipe, base_model=base_model, frontier_dir=frontier_dir, settings=settings,
                                  out=out, echo=echo)
            heldout_q = dict(compared.get("heldout") or {})
        else:
            heldout_q = _heldout_quality(pipe, settings, schedules, metric, base_model, cfg, heldout)
        default = choose_default_on_heldout(frontier_dir, heldout_q)

    metric_label = frontier.metric or metric
    lines = [f"{'schedule':<16} {'MAC speedup':>11} {'wall-clock':>10} {metric_label + ' (calibration)':>28} "
             f"{'(held-out)':>11}"]
    for name, mac, wall, q in table:
        h = heldout_q.get(name)
        lines.append(f"{name:<16} {mac:>10.2f}x {wall:>9.2f}x {('-' if q is None else f'{q:.4g}'):>28} "
                     f"{('-' if h is None else f'{h:.4g}'):>11}")
    elapsed = time.perf_counter() - t_start
    echo("")
    echo("\n".join(lines))
    echo("")
    if compared is not None:
        echo("compared on held-out prompts (executed MACs; quality; PSNR vs all-compute), also in "
             f"{frontier_dir}/README.md and {out}/compare.png:")
        echo("\n".join(compared.get("lines") or []))
        echo("")
    tol = _tolerance(frontier.metric)
    echo(f"default schedule: {default} (the fastest whose {frontier.metric or 'quality'} is within "
         f"{f'{tol:g}' if tol is not None else f'{100 * QUALITY_TOLERANCE:g}%'} of all-compute on the calibration "
         f"and held-out prompts)")
    echo(f"wrote {out}/: search/ (run directory), frontier/ (Hub-ready: `Frontier.load('{frontier_dir}')."
         f"push_to_hub('you/digits-ecad')`), grid.png, all-compute.png, fastest-{fastest.name}.png")
    echo(f"quickstart finished in {elapsed:.0f} s")
    return {"out": out, "run_dir": run_dir, "frontier_dir": frontier_dir, "grid": grid_path, "table": table,
            "default": default,
            "seconds": elapsed, "front": result.front, "heldout": heldout_q,
            "comparison": None if compared is None else compared.get("result")}


def _heldout_quality(pipe, settings: dict, schedules, metric: str, base_model: str, cfg, n: int) -> dict:
    """Quality of each schedule (and all-compute) on ``n`` held-out (prompt, seed) pairs whose prompts are
    not calibration prompts (embedded model: :func:`ecad_hub.embedded.heldout_prompt_seed_pairs`)."""
    if base_model != EMBEDDED or n <= 0:
        return {}
    from ..embedded import heldout_prompt_seed_pairs
    from ..metrics import load_metric
    from .evaluate import Evaluator
    from .prompts import resolve_prompts

    calibration = set(resolve_prompts(cfg.prompts, cfg.num_prompts, embedded_model=True).prompts)
    pairs = [(p, sd) for p, sd in heldout_prompt_seed_pairs(4 * n) if p not in calibration][:n]
    ev = Evaluator(pipe, settings, [p for p, _ in pairs], metric=load_metric(metric, {}))
    ev.seeds = [sd for _, sd in pairs]
    ev.make_reference()
    out = {"all-compute": ev.score(ev.reference)}
    for s in schedules:
        out[s.name] = out["all-compute"] if is_all_compute(s) else ev.evaluate(s)["quality"]
    return out


def run_quickstart(args) -> int:
    from ..utils.logging import quiet_libraries

    quiet_libraries()
    quickstart(args.out, generations=args.generations, population=args.population, seed=args.seed,
               metric=args.metric, num_threads=args.num_threads, base_model=getattr(args, "model", None) or EMBEDDED,
               comparison=getattr(args, "comparison", None))
    return 0
