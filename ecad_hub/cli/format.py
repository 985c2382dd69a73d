"""Format commands of the ``ecad-hub`` CLI: import, validate, show, macs.

    ecad-hub import legacy/*.json --out schedules/          # ECAD-reference / SmoothCache -> v1
    ecad-hub validate schedules/ pixart-ecad/ runs/pixart/  # schedules, frontier folders, runs; exit 1 if any is bad
    ecad-hub show schedules/ours_fast.json                  # summary + ASCII heatmap
    ecad-hub macs schedules/ours_fast.json --transformer-config config.json
    ecad-hub macs schedules/ours_fast.json --transformer-config PixArt-alpha/PixArt-XL-2-256x256

``--transformer-config`` takes a config.json, a model folder or a Hub model id (:mod:`.common`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EcadError, ScheduleError
from ..legacy import load_any_schedule
from .common import TRANSFORMER_CONFIG_HELP, add_base_revision
from .inspect import resolve_transformer_config
from .validate import add_validate_parser, cmd_validate


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="convert ECAD-reference / SmoothCache schedules to v1 files")
    p.set_defaults(handler=cmd_import)
    p.add_argument("files", nargs="+", metavar="FILE", help="legacy schedule files (ECAD reference or SmoothCache)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the v1 files to")
    p.add_argument("--transformer-config", metavar="CONFIG",
                   help="architecture (required for SmoothCache files): " + TRANSFORMER_CONFIG_HELP)
    add_base_revision(p, "import", "revision of a --transformer-config given as a Hub model id")
    p.add_argument("--base-model", help="record the base model id the schedule is for")
    p.add_argument("--height", type=int, help="record the image height the schedule is for")
    p.add_argument("--width", type=int, help="record the image width the schedule is for")

    add_validate_parser(sub, cmd_validate)

    p = sub.add_parser("show", help="summary and ASCII heatmap of a schedule")
    p.set_defaults(handler=cmd_show)
    p.add_argument("path", metavar="PATH", help="a schedule file (v1 or legacy)")
    _add_profile_args(p, required=False, command="show")

    p = sub.add_parser("macs", help="MACs per step and speedup of a schedule")
    p.set_defaults(handler=cmd_macs)
    p.add_argument("schedule", metavar="SCHEDULE", help="a schedule file (v1 or legacy)")
    _add_profile_args(p, required=True, command="macs")
    p.add_argument("--json", action="store_true", help="print JSON (step_macs, total_macs, all_compute_macs, speedup)")
    p.add_argument("--memory", action="store_true",
                   help="also size the schedule's cache after every step at this size (on the meta device, no weights)")
    p.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16",
                   help="with --memory: dtype of the cached outputs and weights (default bfloat16)")


def ascii_heatmap(schedule, *, max_width: int = 120, macs_per_step: list[int] | None = None) -> str:
    """Per-step ASCII heatmap of each component: rows = steps, columns = blocks, '#' compute, '.' reuse.

    It shows what runs, as the PNG heatmap does (:meth:`~ecad_hub.CacheSchedule.effective_masks`):
    step 0 (and a second expert's first step) computes everything, whatever the mask stores there.
    Components of a group are shown side by side when they fit in ``max_width`` columns.
    """
    lines = []
    effective = schedule.effective_masks()
    restart = ", ".join(str(s) for s in schedule.restart_steps())
    plural = "s" if len(schedule.restart_steps()) > 1 else ""
    for g in schedule.architecture.groups:
        arr = effective[g.name]
        present = g.present()
        lines.append(f"{g.name}: {g.num_blocks} blocks ('#' recompute, '.' reuse, ' ' absent; as run: "
                     f"step{plural} {restart} always compute{'' if plural else 's'}, nothing is cached yet)")
        cells = [
            [
                "".join(" " if not present[b, c] else ("#" if arr[s, b, c] else ".") for b in range(g.num_blocks))
                for c in range(len(g.components))
            ]
            for s in range(arr.shape[0])
        ]
        prefix = 9
        side_by_side = prefix + len(g.components) * (g.num_blocks + 2) <= max_width
        chunks = [list(range(len(g.components)))] if side_by_side else [[c] for c in range(len(g.components))]
        for chunk in chunks:
            header = " " * prefix + "  ".join(g.components[c].ljust(g.num_blocks) for c in chunk)
            lines.append(header.rstrip())
            for s in range(arr.shape[0]):
                row = f"step {s:>3} " + "  ".join(cells[s][c] for c in chunk)
                if macs_per_step is not None and chunk == chunks[-1] and g is schedule.architecture.groups[-1]:
                    row += f"  {macs_per_step[s] / 1e9:>10.2f} GMACs"
                lines.append(row)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def summary_line(schedule) -> str:
    parts = [schedule.name, schedule.architecture.transformer_class, f"{schedule.num_inference_steps} steps",
             f"{100 * schedule.fraction_computed():.1f}% of sub-module evaluations computed"]
    if schedule.mac_speedup:
        parts.append(f"MAC speedup {schedule.mac_speedup:.2f}x (recorded)")
    return "  ".join(parts)


def _add_profile_args(p: argparse.ArgumentParser, required: bool, command: str) -> None:
    p.add_argument("--transformer-config", required=required, metavar="CONFIG",
                   help="count MACs with this transformer: " + TRANSFORMER_CONFIG_HELP)
    add_base_revision(p, command, "revision of a --transformer-config given as a Hub model id")
    p.add_argument("--height", type=int, help="image height in pixels (default: the schedule's, else 256)")
    p.add_argument("--width", type=int, help="image width in pixels (default: the schedule's, else 256)")
    p.add_argument("--batch-size", type=int, default=2, help="images per transformer forward (default 2: a CFG pair)")
    p.add_argument("--text-len", type=int, default=None, help="text tokens (default: the architecture's usual count, e.g. 120 for PixArt)")
    p.add_argument("--vae-scale-factor", type=int, default=8, help="pixels per latent (default 8)")
    p.add_argument("--frames", type=int, default=None, metavar="F",
                   help="video models: frames per video (default: the schedule's, else the family's)")
    p.add_argument("--attention-scores", action="store_true",
                   help="also count attention score/value products (the ECAD figures do not)")


def check_positive(args, *names: str) -> None:
    """Refuse (:class:`EcadError`, exit 1) an integer option that is given but not positive (``--height 0``)."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise EcadError(f"{flag} must be a positive integer, got {value}")


def _profile_for(args, schedule, config):
    check_positive(args, "height", "width", "batch_size", "text_len", "vae_scale_factor", "frames")  # before importing torch
    from ..macs import profile_macs

    gen = schedule.generation
    height = args.height if args.height is not None else gen.get("height") or 256
    width = args.width if args.width is not None else gen.get("width") or 256
    frames = getattr(args, "frames", None) or gen.get("num_frames")
    try:
        return profile_macs(config, height, width, batch_size=args.batch_size,
                            text_len=args.text_len, vae_scale_factor=args.vae_scale_factor,
                            attention_scores=args.attention_scores,
                            **({"num_frames": frames} if frames is not None else {}))
    except EcadError:
        raise
    except (ValueError, TypeError, KeyError, RuntimeError, ZeroDivisionError, AttributeError) as e:
        raise EcadError(f"cannot profile {args.transformer_config} at {height}x{width}: {_first_line(e)}") from None


def _first_line(e: Exception) -> str:
    """``Type: first non-empty line of the message`` (at most 200 characters of it), for one-line errors."""
    reason = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    return f"{type(e).__name__}: {reason[:200]}"


def cmd_import(args) -> int:
    """Convert legacy schedules to v1 files in --out (all converted before any is written)."""
    from ..legacy import from_legacy

    check_positive(args, "height", "width")
    generation = {k: v for k, v in (("base_model", args.base_model), ("height", args.height), ("width", args.width)) if v}
    config = resolve_transformer_config(args)
    converted = []
    for path in args.files:
        schedule = from_legacy(path, architecture=config, generation=generation or None)
        converted.append((path, schedule))
    names = [s.name for _, s in converted]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ScheduleError(f"several inputs would be written as {sorted(dupes)[0]}.json; rename the files")
    out = Path(args.out)
    for path, schedule in converted:
        target = schedule.save(out / f"{schedule.name}.json")
        print(f"{path} -> {target}  ({target.stat().st_size:,} bytes, {100 * schedule.fraction_computed():.1f}% computed)")
    return 0


def cmd_show(args) -> int:
    """Summary and per-step ASCII heatmap of a schedule (v1 or legacy)."""
    config = resolve_transformer_config(args)
    schedule = load_any_schedule(args.path, architecture=config)
    print(summary_line(schedule))
    per_step = None
    if config is not None:
        profile = _profile_for(args, schedule, config)
        per_step = profile.step_macs(schedule)
        print(f"MACs: {sum(per_step):,} of {profile.all_compute_macs(schedule.num_inference_steps):,} "
              f"(ratio {profile.ratio(schedule):.4f}, speedup {profile.speedup(schedule):.2f}x) "
              f"at {profile.height}x{profile.width}, batch {profile.batch_size}, {profile.text_len} text tokens")
    print()
    print(ascii_heatmap(schedule, macs_per_step=per_step), end="")
    return 0


def cmd_macs(args) -> int:
    """Per-step and total MACs of a schedule for a transformer config."""
    config = resolve_transformer_config(args)
    schedule = load_any_schedule(args.schedule, architecture=config)
    profile = _profile_for(args, schedule, config)
    step = profile.step_macs(schedule)
    result = {
        "schedule": schedule.name,
        "step_macs": step,
        "total_macs": sum(step),
        "all_compute_macs": profile.all_compute_macs(schedule.num_inference_steps),
        "ratio": sum(step) / profile.all_compute_macs(schedule.num_inference_steps),
        "speedup": profile.speedup(schedule),
        "profile": profile.profile_settings(),
    }
    memory = None
    if args.memory:
        from ..memory import cache_memory

        try:
            memory = cache_memory(config, schedule, profile.height, profile.width, batch_size=profile.batch_size,
                                  text_len=profile.text_len, dtype=args.dtype, vae_scale_factor=args.vae_scale_factor,
                                  num_frames=profile.num_frames)
        except EcadError:
            raise
        except (ValueError, TypeError, KeyError, RuntimeError, AttributeError) as e:
            raise EcadError(f"cannot size the cache of {schedule.name} with {args.transformer_config}: "
                            f"{_first_line(e)}") from None
        result["cache_memory"] = memory.to_dict()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{schedule.name}: {result['total_macs']:,} MACs of {result['all_compute_macs']:,} "
              f"(ratio {result['ratio']:.4f}, speedup {result['speedup']:.3f}x)")
        if memory is not None:
            print(memory.summary())
        for s, m in enumerate(step):
            line = f"  step {s:>3}: {m:>20,}"
            if memory is not None:
                line += f"  cache after: {memory.per_step_bytes[s]:>16,} B ({memory.outputs_held[s]} outputs)"
            print(line)
    return 0
