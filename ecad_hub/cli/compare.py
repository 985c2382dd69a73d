"""CLI command ``ecad-hub compare`` (added by :func:`add_parsers`)."""

from __future__ import annotations

import argparse
import sys

#: per preset: held-out pairs, timing rounds, prompts per timed call
PRESET_DEFAULTS = {"quick": (24, 2, 4), "full": (96, 3, 8)}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..compare.baselines import METHOD_KEYS

    p = sub.add_parser("compare", help="compare ECAD schedules with other caches on held-out prompts",
                       description="Measure ECAD schedules against FORA, Delta-DiT, attention-every-N, diffusers' "
                                   "FirstBlockCache / PyramidAttentionBroadcast / FasterCache / TaylorSeer / MagCache "
                                   "and cache-dit's DBCache on held-out prompts: executed-MAC and wall-clock speedups, "
                                   "quality and PSNR against all-compute.")
    p.set_defaults(handler=cmd_compare)
    p.add_argument("frontier", nargs="?", metavar="FRONTIER", help="repo id, frontier folder or search run directory")
    p.add_argument("--repo", metavar="ID|DIR", help="the ECAD repo (or folder, run directory): the same as FRONTIER")
    p.add_argument("--schedules", nargs="+", default=[], metavar="FILE", help="more ECAD schedule files")
    p.add_argument("--model", default=None, metavar="ID|PATH",
                   help="diffusers pipeline (default: the frontier's base model, else the embedded model)")
    p.add_argument("--heldout", default=None, metavar="FILE", help="held-out prompts (.txt / .json)")
    p.add_argument("--num-heldout", type=int, default=None, metavar="N", help="held-out (prompt, seed) pairs")
    p.add_argument("--calibration-prompts", default=None, metavar="FILE",
                   help="the prompts the schedules were searched on (excluded from the held-out set; MagCache calibration)")
    p.add_argument("--metric", default=None, help="quality metric (default: embedded-reward / fidelity)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="import a metric plugin")
    p.add_argument("--methods", default=",".join(METHOD_KEYS), metavar="LIST",
                   help=f"comma-separated, from: {', '.join(METHOD_KEYS)}")
    p.add_argument("--preset", choices=sorted(PRESET_DEFAULTS), default="full",
                   help="sweep sizes and defaults (quick: 24 held-out pairs, 2 timing rounds)")
    p.add_argument("--timing-rounds", type=int, default=None, metavar="R",
                   help="interleaved timing rounds per method (default: the preset's, 3 full, 2 quick)")
    p.add_argument("--timing-batch", type=int, default=None, metavar="N",
                   help="prompts per timed pipeline call (default: the preset's, 8 full, 4 quick)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N", help="images per pipeline call")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads")
    p.add_argument("--json", default=None, metavar="FILE", help="write the rows (and the rest) as JSON")
    p.add_argument("--plot", default=None, metavar="FILE", help="write the plot (PNG)")
    p.add_argument("--into", default=None, metavar="FRONTIER_DIR",
                   help="add the comparison to this frontier folder (model card section, numbers, plot)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def cmd_compare(args) -> int:
    from ..compare import compare
    from ..errors import EcadError
    from ..utils.logging import quiet_libraries

    quiet_libraries()
    n, rounds, batch = PRESET_DEFAULTS[args.preset]
    if args.repo and args.frontier and args.repo != args.frontier:
        raise EcadError(f"two frontiers given ({args.frontier} and --repo {args.repo}); give one")
    frontier = args.repo or args.frontier
    if frontier is None and args.into:
        frontier = args.into
    if frontier is None and not args.schedules:
        raise EcadError("give a FRONTIER (repo id, folder or run directory), --schedules FILE... or --into FRONTIER_DIR")
    if args.plugin:
        from ..metrics import import_plugins

        import_plugins(args.plugin)
    fr = None
    if frontier is not None:
        from ..frontier import Frontier

        fr = Frontier.load(frontier)
    if args.into:  # checked before the comparison runs, not after minutes of it
        from ..frontier import Frontier

        Frontier.load_folder(args.into)
    base_model = args.model or (fr.base_model if fr is not None else "embedded")
    calibration = None
    if args.calibration_prompts:
        from ..search.prompts import PromptSet

        calibration = list(PromptSet.from_file(args.calibration_prompts).prompts)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    result = compare(base_model=base_model, frontier=fr, schedules=args.schedules, metric=args.metric,
                     heldout_file=args.heldout, num_heldout=args.num_heldout or n, calibration_prompts=calibration,
                     methods=[m.strip() for m in args.methods.split(",") if m.strip()], preset=args.preset,
                     timing_rounds=args.timing_rounds or rounds, timing_batch=args.timing_batch or batch,
                     batch_size=args.batch_size, num_threads=args.threads, log=log)
    print(result.table())
    print()
    for line in result.skipped:
        print(f"skipped: {line}")
    for line in result.summary_lines():
        print(line)
    print(f"held-out: {result.prompt_set.get('num_pairs')} pairs ({result.prompt_set.get('name')}), "
          f"{result.rows[0].num_images} images per method; machine: {result.describe_machine()}; {result.seconds:.0f} s")
    if args.json:
        result.save_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        result.plot(args.plot)
        print(f"wrote {args.plot}")
    if args.into:
        from ..compare.card import add_comparison

        add_comparison(args.into, result)
        print(f"added the comparison to {args.into} (README.md, compare.png, numbers)")
    return 0
