"""The registry's data layer, shared by the Gradio app (``registry/app.py``), the static page
(:mod:`ecad_hub.registry.page`, ``ecad-hub browse --html``) so both show the same rows, points
and leaderboard.

Pure functions over :class:`ecad_hub.hub.FrontierSummary`-like objects (anything with the
summary's attributes; the optional ``family``, ``comparison``, ``status`` and ``note`` are read
with ``getattr``, so a summary without them works). No network access, no gradio, no pandas here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

#: Speedups of the leaderboard columns and the default "sort by quality at" speedup.
LEADERBOARD_SPEEDUPS = (1.5, 2.0, 3.0)
DEFAULT_SORT_SPEEDUP = 2.0

#: Columns of the listing table, in order (the app's Dataframe headers and the static page's <th>s).
TABLE_COLUMNS = ("repo", "base model", "family", "resolution", "steps", "metric", "schedules",
                 "max speedup", "best quality at {x}x", "default", "status", "note")

def family_of(summary) -> str:
    """The architecture family: the summary's ``family`` if it has one, else the family tag of the
    adapter registered for its transformer class, else a name derived from the class."""
    fam = getattr(summary, "family", None)
    if fam:
        return str(fam)
    from ..adapters import find_adapter

    cls = getattr(summary, "transformer_class", "") or ""
    adapter = find_adapter(cls) if cls else None
    if adapter is not None and adapter.family:
        return adapter.family
    stem = re.sub(r"(Transformer.*|Model)$", "", cls)
    return stem.lower() or "unknown"


def resolution_label(summary) -> str:
    res = getattr(summary, "resolution", None)
    return f"{res[0]}x{res[1]}" if res else "-"


def fmt(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def fmt_speedup(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


# --------------------------------------------------------------------------------------------
# filters and quality-at-speedup
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    """What the listing is narrowed to; ``None`` (or ``""``/"all") means any."""

    base_model: str | None = None
    family: str | None = None
    resolution: str | None = None   # "256x256"
    steps: int | None = None
    metric: str | None = None

    def normalized(self) -> "Filters":
        def clean(v):
            return None if v in (None, "", "all", "(all)") else v
        steps = clean(self.steps)
        return Filters(clean(self.base_model), clean(self.family), clean(self.resolution),
                       None if steps is None else int(steps), clean(self.metric))


def metric_label(summary) -> str:
    return summary.metric or "(none)"


def apply_filters(summaries: Iterable, filters: Filters) -> list:
    f = filters.normalized()
    out = []
    for s in summaries:
        if f.base_model and s.base_model != f.base_model:
            continue
        if f.family and family_of(s) != f.family:
            continue
        if f.resolution and resolution_label(s) != f.resolution:
            continue
        if f.steps is not None and s.steps != f.steps:
            continue
        if f.metric and metric_label(s) != f.metric:
            continue
        out.append(s)
    return out


def choices(summaries: Sequence) -> dict[str, list]:
    """The values each filter can take (sorted), for dropdowns."""
    return {
        "base_model": sorted({s.base_model for s in summaries}),
        "family": sorted({family_of(s) for s in summaries}),
        "resolution": sorted({resolution_label(s) for s in summaries}),
        "steps": sorted({s.steps for s in summaries}),
        "metric": sorted({metric_label(s) for s in summaries}),
    }


def best_at(summary, speedup: float) -> tuple[str, float, float] | None:
    """``(schedule, speedup, quality)`` of the best-quality schedule reaching ``speedup`` (MACs), or ``None``.

    As :meth:`ecad_hub.Frontier.pick` chooses: among the schedules with MAC speedup >= ``speedup``,
    the highest quality (ties: the faster one). Schedules without a recorded quality never count.
    """
    best = None
    for name, sp, q in zip(summary.names, summary.speedups, summary.qualities):
        if sp is None or q is None or sp < float(speedup) - 1e-9:
            continue
        key = (q, sp)
        if best is None or key > (best[2], best[1]):
            best = (name, sp, q)
    return best


# --------------------------------------------------------------------------------------------
# rows (the listing table)
# --------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the listing: a frontier (live on the Hub, or only in the curated index)."""

    repo_id: str
    base_model: str
    family: str
    resolution: str
    steps: int | None
    metric: str
    schedules: int
    max_speedup: float | None
    best: tuple[str, float, float] | None
    default: str
    status: str = "live"
    note: str = ""
    summary: Any = field(default=None, repr=False)

    def cells(self) -> list[str]:
        best = "-" if self.best is None else f"{self.best[2]:.4g} ({self.best[0]})"
        return [self.repo_id, self.base_model, self.family, self.resolution,
                "-" if self.steps is None else str(self.steps), self.metric, str(self.schedules),
                fmt_speedup(self.max_speedup), best, self.default or "-", self.status, self.note or "-"]


def table_headers(sort_speedup: float = DEFAULT_SORT_SPEEDUP) -> list[str]:
    return [c.format(x=f"{float(sort_speedup):g}") for c in TABLE_COLUMNS]


def row_of(summary, sort_speedup: float = DEFAULT_SORT_SPEEDUP, *, status: str | None = None,
           note: str | None = None) -> Row:
    """The listing row of a summary; ``status``/``note`` default to the summary's own."""
    status = status or getattr(summary, "status", None) or "live"
    note = note if note is not None else getattr(summary, "note", "") or ""
    return Row(repo_id=summary.repo_id, base_model=summary.base_model, family=family_of(summary),
               resolution=resolution_label(summary), steps=summary.steps, metric=metric_label(summary),
               schedules=len(summary.names), max_speedup=summary.max_speedup,
               best=best_at(summary, sort_speedup), default=summary.default, status=status, note=note,
               summary=summary)


def sort_rows(rows: list[Row]) -> list[Row]:
    """Best quality at the chosen speedup first (rows without one last), then repo id."""
    return sorted(rows, key=lambda r: (r.best is None, -(r.best[2] if r.best else 0.0), r.repo_id))


def table_rows(summaries: Iterable, sort_speedup: float = DEFAULT_SORT_SPEEDUP,
               notes: dict[str, str] | None = None, extra: Iterable[Row] = ()) -> list[Row]:
    """The listing: one :class:`Row` per summary (plus ``extra`` rows, e.g. unresolved index
    entries, kept after the live ones), sorted by :func:`sort_rows`."""
    notes = notes or {}
    rows = [row_of(s, sort_speedup, note=notes.get(s.repo_id)) for s in summaries]
    return sort_rows(rows) + sorted(extra, key=lambda r: r.repo_id)


# --------------------------------------------------------------------------------------------
# points (the overlay plot) and comparisons
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    """One plotted point: a schedule of a frontier (``kind="frontier"``) or a baseline (``"baseline"``)."""

    series: str          # legend entry: the repo id, or "<repo> · <baseline method>"
    repo_id: str
    schedule: str
    speedup: float
    quality: float | None
    metric: str
    kind: str = "frontier"

    @property
    def label(self) -> str:
        return f"{self.repo_id} · {self.schedule}"


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def comparison_points(summary) -> list[Point]:
    """Baseline points from the summary's ``comparison`` (if ecad-hub provides one), tolerantly read.

    Accepted shapes (the field is optional; anything unreadable is ignored, never an error):
    ``{"baselines": [...]}`` or a list of baselines, each ``{"method"|"name": str, "points": [...]}``
    or a single point; a point is ``{"name"?, "mac_speedup"|"speedup": x, "quality": y}`` where
    ``quality`` is a number or a list of ``{"metric", "value"}``.
    """
    comp = getattr(summary, "comparison", None)
    if not comp:
        return []
    if isinstance(comp, dict) and isinstance(comp.get("rows"), list):
        return _comparison_rows(summary, comp)
    if isinstance(comp, dict):
        comp = comp.get("baselines", comp.get("methods", []))
    if not isinstance(comp, list):
        return []
    out = []
    for b in comp:
        if not isinstance(b, dict):
            continue
        method = str(b.get("method") or b.get("name") or "baseline")
        pts = b.get("points") if isinstance(b.get("points"), list) else [b]
        for i, p in enumerate(pts):
            if not isinstance(p, dict):
                continue
            x = _number(p.get("mac_speedup", p.get("speedup")))
            q = p.get("quality")
            if isinstance(q, list):
                q = next((e.get("value") for e in q if isinstance(e, dict)
                          and (summary.metric is None or e.get("metric") == summary.metric)), None)
            q = _number(q)
            if x is None:
                continue
            out.append(Point(f"{summary.repo_id} · {method}", summary.repo_id,
                             str(p.get("name") or (method if len(pts) == 1 else f"{method}-{i}")), x, q,
                             metric_label(summary), kind="baseline"))
    return out


def _comparison_rows(summary, comp: dict) -> list[Point]:
    """Baseline points of ``ecad-hub compare``'s ``comparison`` (frontier-v1): its rows other than
    the all-compute reference and the frontier's own schedules, one series per method."""
    out = []
    for r in comp["rows"]:
        if not isinstance(r, dict) or r.get("kind") in ("ecad", "reference"):
            continue
        x, q = _number(r.get("mac_speedup")), _number(r.get("quality"))
        if x is None:
            continue
        method = str(r.get("method") or "baseline")
        metric = str(r.get("metric") or comp.get("metric") or metric_label(summary))
        out.append(Point(f"{summary.repo_id} · {method}", summary.repo_id,
                         f"{method} {r.get('setting') or ''}".strip(), x, q, metric, kind="baseline"))
    return out


def plot_points(summaries: Iterable, *, comparisons: bool = True) -> list[Point]:
    """Every schedule with a MAC speedup, per frontier (quality ``None`` where not recorded: such
    points are drawn on the speedup axis), plus baselines from ``comparison`` fields."""
    out = []
    for s in summaries:
        for name, sp, q in zip(s.names, s.speedups, s.qualities):
            if sp is not None:
                out.append(Point(s.repo_id, s.repo_id, name, float(sp), q, metric_label(s)))
        if comparisons:
            out.extend(comparison_points(s))
    return out


def axis_floor(points: Sequence[Point]) -> float:
    """The y value at which points without quality are drawn: the bottom of the quality axis."""
    known = [p.quality for p in points if p.quality is not None]
    if not known:
        return 0.0
    lo, hi = min(known), max(known)
    pad = (hi - lo) * 0.15 or abs(lo) * 0.05 or 0.05
    return lo - pad


# --------------------------------------------------------------------------------------------
# leaderboard
# --------------------------------------------------------------------------------------------

def leaderboard(summaries: Iterable, speedups: Sequence[float] = LEADERBOARD_SPEEDUPS) -> list[list[str]]:
    """Per base model (and metric: qualities of different metrics are not compared), the best
    quality reaching each speedup across repos: ``[base model, metric, "<q> (<repo> · <schedule>)", ...]``."""
    groups: dict[tuple[str, str], list] = {}
    for s in summaries:
        groups.setdefault((s.base_model, metric_label(s)), []).append(s)
    rows = []
    for (base, metric), group in sorted(groups.items()):
        row = [base, metric]
        for x in speedups:
            found = [(b, s.repo_id) for s in group if (b := best_at(s, x)) is not None]
            if not found:
                row.append("-")
                continue
            (name, _sp, q), repo = max(found, key=lambda t: (t[0][2], t[0][1]))
            row.append(f"{q:.4g} ({repo} · {name})")
        rows.append(row)
    return rows


def leaderboard_headers(speedups: Sequence[float] = LEADERBOARD_SPEEDUPS) -> list[str]:
    return ["base model", "metric"] + [f"best at {x:g}x" for x in speedups]


# --------------------------------------------------------------------------------------------
# a selected schedule
# --------------------------------------------------------------------------------------------

def loading_lines(repo_id: str, schedule: str) -> str:
    """The copy-paste lines that load ``schedule`` of ``repo_id``: in place onto a pipeline the user
    already has (``load_schedule``, like ``load_lora_weights``), or as the ``ECADPipeline`` wrapper."""
    return (f'from ecad_hub import ECADPipeline, load_schedule\n\n'
            f'# on a diffusers pipeline you already have, in place:\n'
            f'handle = load_schedule(pipe, "{repo_id}", schedule="{schedule}")\n'
            f'# or the base model and the schedule in one go:\n'
            f'pipe = ECADPipeline.from_pretrained("{repo_id}", schedule="{schedule}")\n')


def repo_url(endpoint: str, repo_id: str) -> str:
    return f"{endpoint.rstrip('/')}/{repo_id}"
