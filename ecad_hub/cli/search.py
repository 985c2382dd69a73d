"""CLI commands ``ecad-hub search`` and ``ecad-hub quickstart`` (added by :func:`add_parsers`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..utils.logging import quiet_libraries
from .common import add_base_revision



# --------------------------------------------------------------------------------------------
# parsers
# --------------------------------------------------------------------------------------------

def _metric_arg(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def _add_search_parser(sub) -> None:
    p = sub.add_parser(
        "search", help="search a Pareto frontier of caching schedules (NSGA-II; MACs vs quality)",
        description="Search caching schedules for one pipeline, resolution and step count. Writes a run "
                    "directory (search.json, generations/, evaluations.json, front/*.json, frontier.png, log.txt); "
                    "--resume continues it after an interruption. Publish the front with "
                    "`ecad-hub export RUN_DIR --out DIR` and `ecad-hub push DIR --repo you/name`.")
    p.set_defaults(handler=cmd_search)
    g = p.add_argument_group("model")
    g.add_argument("--model", default="embedded", metavar="ID|PATH",
                   help="diffusers pipeline (Hub id or folder); default: the embedded digits model")
    add_base_revision(g, "search", "the base model's branch, tag or commit sha on the Hub (of --model)",
                      old_revision=True)
    g.add_argument("--height", type=int, help="image height (default: the model's)")
    g.add_argument("--width", type=int, help="image width (default: the model's)")
    g.add_argument("--steps", type=int, dest="num_inference_steps", help="denoising steps (default 20)")
    g.add_argument("--guidance-scale", type=float, help="guidance scale (default: the pipeline's)")
    g.add_argument("--max-sequence-length", type=int, help="text tokens (default: the pipeline's)")
    g.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                   help="weights dtype (default float32)")
    g.add_argument("--device", metavar="DEVICE", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    g = p.add_argument_group("quality")
    g.add_argument("--metric", help="fidelity, clip, image-reward, embedded-reward or a plugin's "
                                    "(default: embedded-reward for the embedded model, else fidelity)")
    g.add_argument("--metric-arg", action="append", type=_metric_arg, default=[], metavar="KEY=VALUE",
                   help="metric keyword argument (repeatable; VALUE is parsed as JSON when it can be), "
                        "e.g. measure=ssim for fidelity, model=openai/clip-vit-base-patch32 for clip")
    g.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it may call ecad_hub.metrics.register_metric); repeatable")
    g.add_argument("--prompts", metavar="FILE", help="calibration prompts: .txt (one per line) or .json "
                                                     "(list or {\"prompts\": [...]}); default: the embedded set")
    g.add_argument("--num-prompts", type=int, metavar="N", help="use the first N prompts")
    g.add_argument("--images-per-prompt", type=int, default=1, metavar="N",
                   help="images (seeds) per calibration prompt (default 1)")
    g.add_argument("--image-seed", type=int, default=0, help="seed of the first image (image k uses seed + k)")
    g = p.add_argument_group("search")
    g.add_argument("--out", metavar="DIR", help="run directory (default runs/<model>-...-seed<S>)")
    g.add_argument("--resume", action="store_true", help="continue the search in --out")
    g.add_argument("--population", type=int, default=72, metavar="N", help="NSGA-II population size (default 72)")
    g.add_argument("--generations", type=int, default=20, help="generations, the initial one included (default 20)")
    g.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    g.add_argument("--cost", choices=("macs", "latency"), default="macs",
                   help="cost objective: analytic MACs (default) or measured latency")
    g.add_argument("--strategy", choices=("ecad", "paper"), default="ecad",
                   help="operator defaults: ecad-hub's (structured init + mutation) or the ECAD paper's")
    g.add_argument("--crossover-points", type=int, default=4, metavar="N",
                   help="PointCrossover cut points (default 4)")
    g.add_argument("--crossover-prob", type=float, default=0.9, metavar="P",
                   help="PointCrossover probability (default 0.9)")
    g.add_argument("--mutation-prob", type=float, default=0.05, help="BitflipMutation prob (per offspring)")
    g.add_argument("--mutation-prob-var", type=float, help="BitflipMutation per-bit probability (default 1/bits)")
    g.add_argument("--structured-mutation", type=float, help="probability of a structured move per offspring "
                                                             "(default 0.5 ecad, 0 paper)")
    g.add_argument("--eliminate-duplicates", choices=("archive", "population", "off"),
                   help="against every evaluated schedule (ecad default), the population (paper), or off")
    g.add_argument("--initial-population", choices=("structured", "random"),
                   help="structured seeds + random masks (ecad default) or random masks only (paper)")
    g.add_argument("--init", action="append", default=[], metavar="FILE|DIR|REPO",
                   help="schedules to seed the initial population with: files, frontier folders, search "
                        "runs or Hub repo ids (repeatable)")
    g = p.add_argument_group("execution")
    g.add_argument("--ray", metavar="auto|local|ADDRESS", help="evaluate on a Ray cluster (one actor per GPU/CPU)")
    g.add_argument("--batch-size", type=int, help="images per pipeline call (default: all of a candidate)")
    g.add_argument("--threads", type=int, dest="num_threads", help="torch CPU threads")
    g.add_argument("--latency-runs", type=int, default=1, help="timed runs per candidate with --cost latency")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("-q", "--quiet", action="store_true", help="print only the final table")


def _add_quickstart_parser(sub) -> None:
    p = sub.add_parser(
        "quickstart", help="search, export, reload and compare schedules for the embedded model (offline, ~2 min on CPU)",
        description="The whole ecad-hub workflow on the embedded digits model, offline on a CPU: a short search, "
                    "the frontier exported as a Hub-ready folder, loaded back with ECADPipeline, images with and "
                    "without caching, a comparison grid and a table of MAC and wall-clock speedups.")
    p.set_defaults(handler=cmd_quickstart)
    p.add_argument("--out", default="quickstart-out", metavar="DIR", help="output folder (default ./quickstart-out)")
    p.add_argument("--generations", type=int, default=None, help="search generations (default 5)")
    p.add_argument("--population", type=int, default=None, help="search population (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    p.add_argument("--metric", default=None, help="quality metric (default embedded-reward, else fidelity)")
    p.add_argument("--threads", type=int, default=None, dest="num_threads", help="torch CPU threads (default 1)")
    p.add_argument("--model", default=None, help=argparse.SUPPRESS)  # another pipeline folder (development)


def add_parsers(sub) -> None:
    _add_search_parser(sub)
    _add_quickstart_parser(sub)


# --------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------

def _config_from_args(args):
    from ..search import SearchConfig

    dedup = {"archive": "archive", "population": True, "off": False, None: None}[args.eliminate_duplicates]
    return SearchConfig(
        base_model=args.model, revision=args.base_revision, height=args.height, width=args.width,
        num_inference_steps=args.num_inference_steps, guidance_scale=args.guidance_scale,
        max_sequence_length=args.max_sequence_length, dtype=args.dtype, device=args.device,
        metric=args.metric, metric_kwargs=dict(args.metric_arg), prompts=args.prompts, num_prompts=args.num_prompts,
        images_per_prompt=args.images_per_prompt, image_seed=args.image_seed,
        population=args.population, generations=args.generations, seed=args.seed, cost=args.cost,
        strategy=args.strategy, crossover_points=args.crossover_points, crossover_prob=args.crossover_prob,
        mutation_prob=args.mutation_prob, mutation_prob_var=args.mutation_prob_var,
        structured_mutation=args.structured_mutation, eliminate_duplicates=dedup,
        initial_population=args.initial_population, init_schedules=args.init,
        ray=args.ray, batch_size=args.batch_size, num_threads=args.num_threads, latency_runs=args.latency_runs,
    )


def front_table(schedules, metric: str | None = None) -> str:
    from ..utils.table import format_table

    rows = []
    for s in schedules:
        q = next((q for q in s.metrics.get("quality", []) if metric is None or q["metric"] == metric), {})
        rows.append((s.name, f"{s.mac_speedup:.2f}x" if s.mac_speedup else "-",
                     f"{q['value']:.4g}" if "value" in q else "-",
                     f"{q['all_compute_value']:.4g}" if "all_compute_value" in q else "-"))
    return format_table(rows, ("schedule", "MAC speedup", "quality", "all-compute"), align="lr")


def cmd_search(args) -> int:
    from ..search import default_run_dir, run_search

    quiet_libraries()
    config = _config_from_args(args)
    run_dir = Path(args.out) if args.out else default_run_dir(config)
    result = run_search(config, run_dir, plugins=args.plugin, resume=args.resume,
                        progress=not args.no_progress and not args.quiet, quiet=args.quiet)
    print(f"\nPareto front after generation {result.generation} ({result.num_evaluations} schedules evaluated, "
          f"hypervolume {result.hypervolume:.4g}):")
    print(front_table(result.front))
    print(f"\nrun directory: {run_dir}  (front/*.json, frontier.png, log.txt)")
    print(f"publish: ecad-hub export {run_dir} --out my-frontier && ecad-hub push my-frontier --repo you/name")
    return 0


# --------------------------------------------------------------------------------------------
# quickstart
# --------------------------------------------------------------------------------------------

def cmd_quickstart(args) -> int:
    from ..compare.quickstart import run_quickstart

    return run_quickstart(args)
