"""The registry as one self-contained HTML page: the app's overlay plot (inline SVG) and tables.

    >>> from ecad_hub import browse
    >>> html_text = render_html(browse(limit=500), endpoint="https://huggingface.co")

No external URL is referenced except the repo links (``<a href>`` to ``{endpoint}/{repo}``): no
scripts, no stylesheets, no images from elsewhere. Rows, points and leaderboard come from
:mod:`model`, the same functions the Gradio app (``app.py``) uses.
"""

from __future__ import annotations

import datetime as dt
import html
import sys
from pathlib import Path
from typing import Iterable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import model  # noqa: E402

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 76rem; color: #222; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .sub, .note { color: #666; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 2rem; font-size: .85rem; }
th, td { text-align: left; padding: .3rem .45rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f5f5f5; } code { font-size: .8rem; background: #f5f5f5; padding: 0 .2rem; }
svg { max-width: 48rem; width: 100%; height: auto; border: 1px solid #eee; }
.skipped { color: #8a4b00; }
"""

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")


def _e(text) -> str:
    return html.escape("-" if text is None or text == "" else str(text))


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = (hi - lo) / (n - 1)
    return [lo + i * step for i in range(n)]


def overlay_svg(points: Sequence[model.Point], *, width: int = 720, height: int = 420, title: str = "") -> str:
    """An SVG scatter/line overlay of frontier points: x = MAC speedup, y = quality.

    Each series (repo, or repo · baseline) is one colour, its points joined in speedup order;
    points without quality are drawn as hollow markers on the speedup axis. Every marker has a
    ``<title>`` (the hover text: repo, schedule, speedup, quality).
    """
    if not points:
        return ""
    left, right, top, bottom = 64, 200, 30, 48
    pw, ph = width - left - right, height - top - bottom
    xs = [p.speedup for p in points]
    floor = model.axis_floor(points)
    ys = [p.quality for p in points if p.quality is not None] or [0.0, 1.0]
    x0, x1 = min(1.0, min(xs)), max(xs) * 1.05 if max(xs) > 1.0 else 2.0
    y0, y1 = min(floor, min(ys)), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    y1 += (y1 - y0) * 0.05

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{_e(title or "frontier overlay")}">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
    if title:
        out.append(f'<text x="{left + pw / 2:.1f}" y="18" text-anchor="middle" font-size="13">{_e(title)}</text>')
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{sx(t):.1f}" y1="{top + ph}" x2="{sx(t):.1f}" y2="{top + ph + 4}" stroke="#999"/>'
                   f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle" font-size="10">{t:.2f}x</text>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{left - 4}" y1="{sy(t):.1f}" x2="{left}" y2="{sy(t):.1f}" stroke="#999"/>'
                   f'<text x="{left - 6}" y="{sy(t) + 3:.1f}" text-anchor="end" font-size="10">{t:.3g}</text>')
    metrics = sorted({p.metric for p in points if p.quality is not None})
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 8}" text-anchor="middle" font-size="11">MAC speedup (x)</text>')
    out.append(f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle" font-size="11">'
               f'quality ({_e(", ".join(metrics) or "none recorded")}; no quality: on the axis)</text>')
    series = list(dict.fromkeys(p.series for p in points))
    for i, name in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        pts = sorted((p for p in points if p.series == name), key=lambda p: p.speedup)
        dash = ' stroke-dasharray="4 3"' if pts[0].kind == "baseline" else ""
        coords = " ".join(f"{sx(p.speedup):.1f},{sy(p.quality if p.quality is not None else floor):.1f}" for p in pts)
        if len(pts) > 1:
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>')
        for p in pts:
            y = p.quality if p.quality is not None else floor
            fill = colour if p.quality is not None else "#fff"
            shape = (f'<rect x="{sx(p.speedup) - 4:.1f}" y="{sy(y) - 4:.1f}" width="8" height="8"' if p.kind == "baseline"
                     else f'<circle cx="{sx(p.speedup):.1f}" cy="{sy(y):.1f}" r="4"')
            tip = (f"{p.repo_id} · {p.schedule}: {p.speedup:.2f}x, "
                   + (f"{p.metric} {p.quality:.4g}" if p.quality is not None else "no quality recorded"))
            out.append(f'{shape} fill="{fill}" stroke="{colour}" stroke-width="1.5" class="pt"><title>{_e(tip)}</title>'
                       + ("</rect>" if p.kind == "baseline" else "</circle>"))
        ly = top + 12 + i * 16
        out.append(f'<line x1="{left + pw + 12}" y1="{ly}" x2="{left + pw + 28}" y2="{ly}" stroke="{colour}" '
                   f'stroke-width="2"{dash}/><text x="{left + pw + 32}" y="{ly + 4}" font-size="10">{_e(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "", link_col: int | None = None,
           endpoint: str = "") -> str:
    parts = [f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            if i == link_col and endpoint:
                cells.append(f'<td><a href="{_e(model.repo_url(endpoint, c))}">{_e(c)}</a></td>')
            else:
                cells.append(f"<td>{_e(c)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def render_html(summaries: Sequence, *, endpoint: str = "https://huggingface.co", skipped: Sequence[str] = (),
                extra_rows: Sequence[model.Row] = (), sort_speedup: float = model.DEFAULT_SORT_SPEEDUP,
                notes: dict[str, str] | None = None, generated: str | None = None,
                title: str = "ECAD frontier registry") -> str:
    """The registry page for ``summaries`` (``FrontierSummary`` objects, e.g. from ``ecad_hub.browse``).

    One section per base model: the overlay plot of its frontiers (and baselines, when a
    frontier carries a ``comparison``), then the listing table (the rows the app shows, sorted
    by best quality at ``sort_speedup``) with a copy-paste loading line per repo; then the
    leaderboard. ``skipped``: notes on repos that could not be read (shown, not hidden);
    ``extra_rows``: rows without live data (e.g. unresolved curated-index entries).
    """
    generated = generated or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(title)}</title>", f"<style>{_STYLE}</style></head><body>",
             f"<h1>{_e(title)}</h1>",
             f'<p class="sub">Learned caching schedules published on {_e(endpoint)} (repos tagged '
             f"<code>ecad</code>), generated {_e(generated)}. Sorted by best quality at "
             f"{float(sort_speedup):g}x MAC speedup.</p>"]
    if skipped:
        parts.append('<div class="skipped"><p>Skipped (unreadable frontier.json):</p><ul>'
                     + "".join(f"<li>{_e(s)}</li>" for s in skipped) + "</ul></div>")
    rows = model.table_rows(summaries, sort_speedup, notes=notes, extra=extra_rows)
    if not rows:
        parts.append("<p>No ECAD frontiers found.</p>")
    headers = model.table_headers(sort_speedup) + ["load it"]
    for base in sorted({r.base_model for r in rows}):
        group = [r for r in rows if r.base_model == base]
        parts.append(f"<h2>{_e(base)}</h2>")
        svg = overlay_svg(model.plot_points([r.summary for r in group if r.summary is not None]),
                          title=f"ECAD frontiers for {base}")
        if svg:
            parts.append(svg)
        table_rows = [r.cells() + [f'ECADPipeline.from_pretrained("{r.repo_id}")'] for r in group]
        parts.append(_table(headers, table_rows, cls="listing", link_col=0, endpoint=endpoint))
    if summaries:
        parts.append("<h2>Leaderboard</h2><p class=\"note\">Best quality reaching each MAC speedup, across repos "
                     "(per base model and metric).</p>")
        parts.append(_table(model.leaderboard_headers(), model.leaderboard(summaries), cls="leaderboard"))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
