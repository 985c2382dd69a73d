"""The quickstart's closing comparison: the frontier beside FirstBlockCache and FORA on held-out prompts.

:func:`quickstart_comparison` is what :func:`ecad_hub.search.quickstart.quickstart` calls (its
``comparison=`` argument) after exporting the frontier; :func:`run_quickstart` is the
``ecad-hub quickstart`` handler with it wired in. It adds the held-out quality of every frontier
schedule (printed beside its calibration quality), a short table, and the "Compared with other
caches" section of the exported frontier's card. The default schedule is not changed here: the
quickstart chooses it afterwards on calibration *and* held-out quality
(:func:`ecad_hub.search.quickstart.choose_default_on_heldout`), not on held-out quality alone
among schedules faster than the current default (``compare --into``'s rule), which made a
schedule with a visible quality drop the default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

#: held-out (prompt, seed) pairs of the quickstart comparison
QUICKSTART_HELDOUT = 12
QUICKSTART_METHODS = ("ecad", "fora", "fbc")


def quickstart_comparison(*, pipe, base_model: str, frontier_dir: Path, settings: dict, out: Path,
                          echo: Callable[[str], None] = print, num_heldout: int = QUICKSTART_HELDOUT) -> dict:
    """Compare the exported frontier with FirstBlockCache and FORA on held-out prompts, write
    ``compare.json`` / ``compare.png`` into ``out`` and the section into the frontier's card.

    Returns ``{"heldout": {schedule name: held-out quality}, "result": CompareResult, "lines": [...]}``.
    """
    from . import compare
    from .card import add_comparison

    result = compare(pipe, base_model=base_model, frontier=str(frontier_dir), settings=settings,
                     num_heldout=num_heldout, methods=QUICKSTART_METHODS, preset="quick",
                     sweeps={"fora": [2, 3, 4, 6], "fbc": [0.05, 0.1, 0.2, 0.4]}, timing_rounds=1, timing_batch=4)
    result.save_json(Path(out) / "compare.json")
    result.plot(Path(out) / "compare.png", title="quickstart: held-out prompts")
    add_comparison(frontier_dir, result, choose_default=False)
    heldout = {r.setting: r.quality for r in result.ecad_rows}
    heldout["all-compute"] = result.reference.quality
    return {"heldout": heldout, "result": result, "lines": result.table().splitlines() + [""] + result.summary_lines()}


def run_quickstart(args) -> int:
    """``ecad-hub quickstart`` with the closing comparison."""
    from ..search.config import EMBEDDED
    from ..search.quickstart import quickstart
    from ..utils.logging import quiet_libraries

    quiet_libraries()
    quickstart(args.out, generations=args.generations, population=args.population, seed=args.seed,
               metric=args.metric, num_threads=args.num_threads, base_model=getattr(args, "model", None) or EMBEDDED,
               comparison=quickstart_comparison)
    return 0
