"""Recording a comparison in a frontier folder (``ecad-hub compare --into FRONTIER_DIR``).

The folder gets ``compare.png``, a "Compared with other caches" section in its model card
(rendered by :mod:`ecad_hub.frontier.card` from the frontier's ``comparison`` record) and the
numbers: in ``frontier.json`` (``comparison``, schema ``frontier-v1#/$defs/comparison``) where the
:class:`~ecad_hub.Frontier` in use carries a ``comparison`` (constructor keyword), else in
``comparison.json`` beside it. Where held-out quality was measured, the default schedule becomes
the best held-out schedule among those at least as fast as the current default.
"""

from __future__ import annotations

import inspect
from pathlib import Path

#: The plot's file name in the frontier folder.
PLOT_NAME = "compare.png"
#: Where the numbers go when the Frontier class does not carry a ``comparison`` yet.
SIDE_FILE = "comparison.json"


def comparison_record(result, plot: str | None = PLOT_NAME) -> dict:
    """The ``comparison`` document of a :class:`~ecad_hub.compare.CompareResult`."""
    doc = {"metric": result.metric, "rows": [r.to_dict() for r in result.rows]}
    if plot:
        doc["plot"] = plot
    for key in ("prompt_set", "calibration", "machine", "settings", "timing"):
        value = getattr(result, key)
        if value:
            doc[key] = {k: v for k, v in value.items() if v is not None}
    doc["summary"] = result.summary_lines()
    if result.skipped:
        doc["skipped"] = list(result.skipped)
    return doc


def heldout_default(frontier, result) -> str:
    """The default schedule chosen on held-out quality: the best held-out schedule among those
    with at least the current default's MAC speedup (the current default where none was measured)."""
    current = frontier.resolve(None)
    measured = {r.setting: r for r in result.ecad_rows}
    floor = current.mac_speedup or 0.0
    ok = [s for s in frontier.schedules if s.name in measured and (s.mac_speedup or 0.0) >= floor - 1e-9]
    from ..frontier.card import schedule_kind  # a heuristic is never the default while a learned schedule qualifies

    learned = [s for s in ok if schedule_kind(s, bool(frontier.search)) == "learned"]
    if learned or schedule_kind(current, bool(frontier.search)) == "learned":
        ok = learned
    if not ok:
        return current.name
    return max(ok, key=lambda s: (measured[s.name].quality, s.mac_speedup or 0.0)).name


def _rebuild(frontier, **changes):
    """The frontier with ``changes`` (``default=``, ``comparison=``) through its public constructor."""
    from ..frontier import Frontier

    kwargs = dict(base_model=frontier.base_model, base_model_revision=frontier.base_model_revision,
                  pipeline_class=frontier.pipeline_class, resolutions=frontier.resolutions,
                  guidance_scale=frontier.guidance_scale, metric=frontier.metric, default=frontier.default,
                  search=frontier.search, source=frontier.source, repo_id=frontier.repo_id, commit=frontier.commit,
                  pipeline_call=getattr(frontier, "pipeline_call", None), scheduler=getattr(frontier, "scheduler", None))
    params = inspect.signature(Frontier.__init__).parameters
    comparison = changes.pop("comparison", None)
    kwargs.update(changes)
    carried = "comparison" in params
    if carried:
        kwargs["comparison"] = comparison
    out = Frontier(frontier.schedules, **kwargs)
    out.license = getattr(frontier, "license", None)
    if not carried:
        out.comparison = comparison  # read by frontier.card when rendering
    return out, carried


def add_comparison(folder, result, *, choose_default: bool = True) -> Path:
    """Add ``result`` to the frontier saved in ``folder``; returns the folder."""
    from ..frontier import Frontier
    from ..frontier.layout import write_folder
    from ..utils.io import dumps_json

    folder = Path(folder)
    frontier = Frontier.load(folder)
    doc = comparison_record(result)
    default = heldout_default(frontier, result) if choose_default and result.ecad_rows else frontier.default
    if default != frontier.default:
        doc["default_schedule"] = {"chosen_on": "held-out quality", "was": frontier.default, "now": default}
    frontier, carried = _rebuild(frontier, default=default, comparison=doc)
    files = frontier.render(repo_id=frontier.repo_id)
    files[PLOT_NAME] = _plot_bytes(result, frontier)
    if not carried:
        files[SIDE_FILE] = dumps_json(doc).encode()
    write_folder(folder, files)
    return folder


def _plot_bytes(result, frontier) -> bytes:
    from ..plotting import png_bytes

    return png_bytes(result.figure(title=f"{frontier.base_model}: held-out prompts"))
