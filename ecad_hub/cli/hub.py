"""Hub commands of the ``ecad-hub`` CLI: export, push, pull, browse, generate.

    ecad-hub export runs/pixart --out pixart-ecad                  # a search run -> a folder
    ecad-hub export a.json b.json --base-model ID --transformer-config CONFIG --height 256 --width 256 --out DIR
    ecad-hub push pixart-ecad --repo user/pixart-ecad               # one commit, none if unchanged
    ecad-hub pull --repo user/pixart-ecad --out pixart-ecad         # JSON + README + PNGs only (or: pull ID)
    ecad-hub browse --base-model PixArt-alpha/PixArt-XL-2-256x256 --plot frontiers.png
    ecad-hub generate --repo user/pixart-ecad --schedule 2.5x --prompt "a red fox" -o fox.png

Added by :func:`add_parsers` (see :mod:`ecad_hub.cli`); every handler raises
:class:`~ecad_hub.errors.EcadError` on bad input (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from ..errors import EcadError, FrontierError, escape_control
from ..legacy import load_any_schedule
from ..utils.compat import dtype_kwargs
from .common import TRANSFORMER_CONFIG_HELP, add_base_revision, add_deprecated_alias
from .format import check_positive
from .inspect import resolve_transformer_config


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="assemble a frontier (search run or schedule files) into a folder")
    p.set_defaults(handler=cmd_export)
    p.add_argument("inputs", nargs="+", metavar="RUN_DIR|SCHEDULE",
                   help="a search run directory, or schedule files / folders of them (v1 or legacy)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (replaced atomically)")
    p.add_argument("--base-model", metavar="ID", help="the base model's Hub id (required for schedule files)")
    add_base_revision(p, "export", "the base model's commit to record (and to read a --transformer-config Hub id at)",
                      old_revision=True)
    p.add_argument("--pipeline-class", metavar="CLASS", help="the diffusers pipeline class to record")
    p.add_argument("--transformer-config", metavar="CONFIG", help="count MACs with this transformer: "
                   + TRANSFORMER_CONFIG_HELP)
    p.add_argument("--height", type=int, help="image height searched (pixels)")
    p.add_argument("--width", type=int, help="image width searched (pixels)")
    p.add_argument("--metric", help="quality metric to rank by (default: the recorded one)")
    p.add_argument("--default", metavar="NAME|SPEEDUP", help="default schedule (default: the middle learned one, "
                   "scored if any; never a heuristic while a learned one exists)")
    p.add_argument("--repo", metavar="ID", help="the ECAD repo it will be pushed to (shown in the model card's usage "
                   "snippet)")
    p.add_argument("--license", metavar="ID", help="license id for the model card and ecad_config.json, e.g. "
                   "apache-2.0 (default: none recorded; push then uses the base model's, else other)")

    p = sub.add_parser("push", help="publish a frontier folder or search run to a Hub repo (one commit)")
    p.set_defaults(handler=cmd_push)
    p.add_argument("path", metavar="RUN_DIR|DIR", help="an exported frontier folder or a search run directory")
    p.add_argument("--repo", required=True, metavar="ID", help="the ECAD repo to push to, e.g. user/pixart-ecad")
    p.add_argument("--private", action="store_true", help="create the repo private (if it does not exist)")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to the branch")
    p.add_argument("--message", metavar="TEXT", help="commit message")
    p.add_argument("--branch", metavar="BRANCH", help="branch of the ECAD repo to commit to (default main)")
    add_deprecated_alias(p, "push", "--revision", "--branch", dest="branch", metavar="BRANCH")
    p.add_argument("--token", metavar="TOKEN", help="Hub token (default: the logged-in one)")
    p.add_argument("--license", metavar="ID", help="license id for the pushed card and ecad_config.json (default: "
                   "the folder's, else the base model's, else other)")

    p = sub.add_parser("pull", help="download an ECAD repo's schedules, card and plots (no weights)")
    p.set_defaults(handler=cmd_pull)
    p.add_argument("repo_arg", nargs="?", metavar="ID", help="the ECAD repo id (the same as --repo ID)")
    p.add_argument("--repo", metavar="ID", help="the ECAD repo to download, e.g. user/pixart-ecad")
    p.add_argument("--revision", metavar="REV", help="the ECAD repo's branch, tag or commit sha")
    p.add_argument("--out", metavar="DIR", help="copy into this folder (default: print the cache folder)")
    p.add_argument("--token", metavar="TOKEN", help="Hub token (for private repos)")

    p = sub.add_parser("browse", help="list ECAD frontiers on the Hub and in the curated index")
    p.set_defaults(handler=cmd_browse)
    p.add_argument("--base-model", metavar="ID", help="only frontiers for this base model (its Hub id)")
    p.add_argument("--transformer-class", metavar="CLASS",
                   help="only frontiers for this diffusers transformer class")
    p.add_argument("--author", metavar="NAME", help="only repos of this user or organisation")
    p.add_argument("--search", metavar="TEXT", help="only repos whose id contains TEXT")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N repos per Hub listing (default 50)")
    p.add_argument("--offline", action="store_true",
                   help="list the curated index alone, without asking the Hub")
    p.add_argument("--index", metavar="FILE",
                   help="the curated index to merge with the Hub listing (default: the one shipped with ecad-hub)")
    p.add_argument("--no-index", action="store_true", help="list the Hub only, without the curated index")
    p.add_argument("--plot", metavar="FILE",
                   help="save a PNG overlaying the frontiers (one panel per metric; unscored ones in a strip)")
    p.add_argument("--html", metavar="FILE",
                   help="write the overlay plots and the table as one self-contained HTML page")
    p.add_argument("--token", metavar="TOKEN", help="Hub token (for private repos; default: the logged-in one)")

    p = sub.add_parser("generate", help="generate an image with an ECAD schedule")
    p.set_defaults(handler=cmd_generate)
    p.add_argument("--repo", required=True, metavar="ID|DIR", help="ECAD repo id, exported folder or search run")
    p.add_argument("--schedule", metavar="NAME|SPEEDUP",
                   help="schedule name or MAC speedup, e.g. 2.5x (default: the repo's default)")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the text prompt")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="image file to write (e.g. out.png)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the schedule's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--base-model", metavar="ID", help="load this base model instead of the frontier's")
    p.add_argument("--revision", metavar="REV", help="the ECAD repo's branch, tag or commit sha")
    p.add_argument("--base-revision", metavar="REV",
                   help="the base model's commit (default: the one the frontier records)")
    p.add_argument("--height", type=int, help="image height (default: the size the schedules were searched at)")
    p.add_argument("--width", type=int, help="image width (default: the size the schedules were searched at)")
    p.add_argument("--guidance-scale", type=float, help="guidance scale (default: the one the frontier records, "
                   "else the pipeline's)")
    p.add_argument("--device", metavar="DEVICE", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="weights dtype (default: float16 on "
                   "cuda, float32 on cpu)")
    p.add_argument("--no-cache", action="store_true", help="run the base model without the schedule (reference)")
    p.add_argument("--local-files-only", action="store_true", help="use only files already in the HF cache")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra pipeline call argument, VALUE parsed as JSON if possible (repeatable)")




# --------------------------------------------------------------------------------------------
# handlers
# --------------------------------------------------------------------------------------------

def cmd_export(args) -> int:
    """Build a frontier from a search run or schedule files and write it to --out."""
    from ..frontier import Frontier
    from ..schedule import iter_schedule_files

    check_positive(args, "height", "width")
    first = Path(args.inputs[0])
    config = resolve_transformer_config(args)
    overrides = {k: v for k, v in dict(
        base_model=args.base_model, revision=args.base_revision, pipeline_class=args.pipeline_class,
        height=args.height, width=args.width, metric=args.metric, license=args.license).items() if v is not None}
    if len(args.inputs) == 1 and first.is_dir() and (first / "search.json").is_file():
        run = Frontier.load(first)
        settings = dict(base_model=run.base_model, revision=run.base_model_revision, pipeline_class=run.pipeline_class,
                        height=run.height, width=run.width, metric=run.metric, search=run.search,
                        guidance_scale=run.guidance_scale)
        settings.update(overrides)
        frontier = Frontier.from_schedules(run.schedules, transformer_config=config,
                                           default=args.default, **settings)
    else:
        if not args.base_model:
            raise FrontierError("--base-model is required when exporting schedule files (which model are they for?)")
        files = iter_schedule_files(args.inputs)
        if not files:
            raise FrontierError("no schedule files found")
        schedules = [load_any_schedule(f, architecture=config) for f in files]
        frontier = Frontier.from_schedules(schedules, transformer_config=config,
                                           default=args.default, **overrides)
    out = frontier.save_pretrained(args.out, repo_id=args.repo)
    print(frontier.to_table())
    print(f"wrote {len(frontier)} schedules to {out}")
    return 0


def cmd_push(args) -> int:
    """Publish a frontier folder or search run to --repo in one commit."""
    from ..frontier import Frontier

    frontier = Frontier.load(args.path)
    info = frontier.push_to_hub(args.repo, private=args.private or None, token=args.token,
                                revision=args.branch, create_pr=args.create_pr, commit_message=args.message,
                                license=args.license)
    if info is None:
        print(f"{args.repo} already holds this frontier; nothing to commit")
    elif args.create_pr:
        print(f"opened {info.pr_url}")
    else:
        print(f"pushed {len(frontier)} schedules: {info.commit_url}")
    return 0


def cmd_pull(args) -> int:
    """Download an ECAD repo's JSON, README and PNG files; print the folder."""
    from ..hub import pull

    if args.repo and args.repo_arg and args.repo != args.repo_arg:
        raise EcadError(f"two ECAD repos given ({args.repo_arg} and --repo {args.repo}); give one")
    repo = args.repo or args.repo_arg
    if not repo:
        raise EcadError("which ECAD repo? give --repo ID (e.g. ecad-hub pull --repo user/pixart-ecad)")
    print(pull(repo, revision=args.revision, out=args.out, token=args.token))
    return 0


def cmd_browse(args) -> int:
    """List ECAD frontiers (the Hub merged with the curated index); --plot and --html draw them."""
    from ..hub import browse, summaries_table

    check_positive(args, "limit")
    if args.no_index and (args.offline or args.index):
        raise EcadError("--no-index cannot be combined with --offline or --index (what would be listed?)")
    index = None if args.no_index else (args.index or True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summaries = browse(base_model=args.base_model, author=args.author, search=args.search, limit=args.limit,
                           token=args.token, transformer_class=args.transformer_class, index=index,
                           offline=args.offline)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if not summaries:
        print("no ECAD frontiers found", file=sys.stderr)
    else:
        print(summaries_table(summaries))
        for s in summaries:
            if s.note:
                print(f"note: {escape_control(s.repo_id)}: {escape_control(s.note)}")
    if args.plot:
        from ..plotting import plot_overlay

        bases = sorted({s.base_model for s in summaries})
        frontiers = [(s.repo_id if len(bases) == 1 else f"{s.repo_id} ({s.base_model})", s.metric,
                      [(x, q) for x, q in zip(s.speedups, s.qualities) if x is not None]) for s in summaries]
        frontiers = [f for f in frontiers if f[2]]
        if not frontiers:
            raise EcadError("--plot: no frontier listed records MAC speedups, nothing to plot")
        title = f"ECAD frontiers: {bases[0]}" if len(bases) == 1 else "ECAD frontiers"
        plot_overlay(frontiers, args.plot, title=escape_control(title))
        print(f"wrote {args.plot}")
    if args.html:
        import re

        from huggingface_hub import constants

        from ..errors import FileWriteError
        from ..registry.page import render_html
        from ..utils.io import atomic_write_text

        skipped = [re.sub(r"\S*/snapshots/[0-9a-f]{40}/", "", str(w.message).removeprefix("browse: skipping "))
                   for w in caught if "skipping" in str(w.message)]  # no local cache paths on a page
        page = render_html(summaries, endpoint=constants.ENDPOINT, skipped=skipped, offline=args.offline)
        atomic_write_text(args.html, page, error_cls=FileWriteError)
        print(f"wrote {args.html}")
    return 0


def _call_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_generate(args) -> int:
    """Generate one image with an ECAD schedule; print the time and the schedule used."""
    from ..frontier import Frontier
    from ..pipeline import ECADPipeline

    check_positive(args, "steps", "height", "width")
    if not 0 <= args.seed < 2**63:
        raise EcadError(f"--seed must be in 0..2**63-1, got {args.seed}")
    extra = {}
    for item in args.arg:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise EcadError(f"--arg {item!r}: expected KEY=VALUE")
        extra[key] = _call_value(value)
    # the frontier first: a bad repo is refused before torch and diffusers are even imported
    frontier = Frontier.load(args.repo, revision=args.revision, local_files_only=args.local_files_only)
    import torch

    from ..utils.logging import quiet_libraries

    quiet_libraries()  # a CLI run: keep stderr for errors (no loading bars, no "will try the cache" chatter)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    default_dtype = torch.float16 if device.startswith("cuda") else torch.float32
    dtype = getattr(torch, args.dtype) if args.dtype else default_dtype
    pipe = ECADPipeline.from_pretrained(frontier, args.schedule, base_model=args.base_model,
                                        base_revision=args.base_revision, local_files_only=args.local_files_only,
                                        **dtype_kwargs(dtype))
    pipe.to(device)
    if hasattr(pipe.pipeline, "set_progress_bar_config"):
        pipe.pipeline.set_progress_bar_config(disable=True)
    if args.no_cache:
        pipe.disable_cache()
    call = dict(generator=torch.Generator(device="cpu").manual_seed(args.seed))
    if args.steps is not None:
        call["num_inference_steps"] = args.steps
    # only what the user gave: the frontier's recorded call settings (resolution, binning, text
    # length, guidance, ...) are ECADPipeline's defaults
    for key in ("height", "width"):
        if getattr(args, key) is not None:
            call[key] = getattr(args, key)
    if args.guidance_scale is not None:
        call["guidance_scale"] = args.guidance_scale
    call.update(extra)
    call["output_type"] = "pil"
    start = time.perf_counter()
    try:
        result = pipe(args.prompt, **call)
    except EcadError:
        raise
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError) as e:  # bad --arg / --height ...
        reason = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
        raise EcadError(f"generation failed ({type(e).__name__}: {reason[:300]})") from None
    elapsed = time.perf_counter() - start
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        result.images[0].save(out)
    except (ValueError, KeyError) as e:  # PIL: unknown file extension
        raise EcadError(f"{out}: cannot save the image ({e})") from None
    s = pipe.schedule
    used = "no schedule (cache disabled)" if args.no_cache else (
        f"schedule {s.name}" + (f" ({s.mac_speedup:.2f}x MACs)" if s.mac_speedup else ""))
    steps = call.get("num_inference_steps", s.num_inference_steps)
    print(f"{used}, {steps} steps, {elapsed:.2f} s on {device} -> {out}")
    return 0
