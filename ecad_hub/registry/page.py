"""The registry as one self-contained HTML page: the overlay plot (inline SVG) and the tables.

    >>> from ecad_hub import browse
    >>> from ecad_hub.registry.page import render_html
    >>> html_text = render_html(browse(limit=500, index=True), endpoint="https://huggingface.co")

``ecad-hub browse --html FILE`` writes it; ``registry/build_site.py`` wraps it. No external URL is
referenced except the repo links (``<a href>`` to ``{endpoint}/{repo}``): no scripts, no
stylesheets, no images from elsewhere; it needs no JavaScript. Rows, points and leaderboard come
from :mod:`ecad_hub.registry.model`, the same functions the Gradio app (``registry/app.py``) uses.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Iterable, Sequence

from . import model
from .index import EXAMPLE as _EXAMPLE
from .index import INDEXED, LIVE

_LINKED = (LIVE, INDEXED)  # rows whose repo was read on the Hub: linked there

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 76rem; color: #222; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .sub, .note { color: #666; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 2rem; font-size: .85rem; }
th, td { text-align: left; padding: .3rem .45rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f5f5f5; } code { font-size: .8rem; background: #f5f5f5; padding: 0 .2rem; }
svg { max-width: 48rem; width: 100%; height: auto; border: 1px solid #eee; }
.skipped { color: #8a4b00; }
.listing td:last-child { font-family: ui-monospace, monospace; font-size: .75rem; word-break: break-all; }
"""

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22")


def _e(text) -> str:
    return html.escape("-" if text is None or text == "" else str(text))


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) within ``[lo, hi]``."""
    import math

    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def overlay_svg(points: Sequence[model.Point], *, width: int = 760, title: str = "") -> str:
    """An SVG overlay of frontier points: x = MAC speedup, y = quality on the frontiers' metric.

    Each series (repo, or repo · baseline) is one colour, its points joined in speedup order.
    The y axis is labelled with the metric (several metrics: the legend gives each series'
    metric). Points without quality are drawn in a strip under the plot, on the same speedup
    axis, labelled "no quality scores" (one row per series), never dropped. Every marker has a
    ``<title>`` (the hover text: repo, schedule, speedup, quality).
    """
    if not points:
        return ""
    scored = [p for p in points if p.quality is not None]
    unscored = [p for p in points if p.quality is None]
    series = list(dict.fromkeys(p.series for p in points))
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    metrics = sorted({p.metric for p in scored})
    strip_rows = list(dict.fromkeys(p.series for p in unscored))
    left, right, top, bottom = 72, 24, 30 if title else 12, 48  # the legend goes under the axis label
    pw = width - left - right
    ph = 280 if scored else 0
    gap = 10 if scored and unscored else 0
    sh = 14 * len(strip_rows) + 12 if unscored else 0
    height = top + ph + gap + sh + bottom + 16 * len(series) + 6
    xs = [p.speedup for p in points]
    x0, x1 = min(1.0, min(xs)), max(xs) * 1.05 if max(xs) > 1.0 else 2.0

    def sx(x):
        return left + (x - x0) / (x1 - x0) * pw

    out = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title or "frontier overlay")}">']
    if title:
        out.append(f'<text x="{left + pw / 2:.1f}" y="18" text-anchor="middle" font-size="13">{_e(title)}</text>')
    axis_y = top + ph + gap + sh  # the speedup axis: under the strip (or the plot)
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{sx(t):.1f}" y1="{axis_y}" x2="{sx(t):.1f}" y2="{axis_y + 4}" stroke="#999"/>'
                   f'<text x="{sx(t):.1f}" y="{axis_y + 16}" text-anchor="middle" font-size="10">{t:.2f}x</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{axis_y + 34}" text-anchor="middle" font-size="11">'
               "MAC speedup (x)</text>")

    def marker(p, x, y, fill):
        c = colour[p.series]
        shape = (f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8"' if p.kind == "baseline"
                 else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4"')
        tip = (f"{p.repo_id} · {p.schedule}: {p.speedup:.2f}x, "
               + (f"{p.metric} {p.quality:.4g}" if p.quality is not None else "no quality recorded"))
        return (f'{shape} fill="{fill}" stroke="{c}" stroke-width="1.5" class="pt"><title>{_e(tip)}</title>'
                + ("</rect>" if p.kind == "baseline" else "</circle>"))

    if scored:
        ys = [p.quality for p in scored]
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.08
        y0, y1 = y0 - pad, y1 + pad

        def sy(y):
            return top + (1 - (y - y0) / (y1 - y0)) * ph

        out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>')
        for t in _ticks(y0, y1):
            out.append(f'<line x1="{left - 4}" y1="{sy(t):.1f}" x2="{left}" y2="{sy(t):.1f}" stroke="#999"/>'
                       f'<text x="{left - 6}" y="{sy(t) + 3:.1f}" text-anchor="end" font-size="10">{t:.3g}</text>')
        ylabel = metrics[0] if len(metrics) == 1 else "quality: " + " / ".join(metrics) + " (see legend)"
        out.append(f'<text transform="translate(16 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle" '
                   f'font-size="11" class="ylabel">{_e(ylabel)}</text>')
        for name in series:
            pts = sorted((p for p in scored if p.series == name), key=lambda p: p.speedup)
            if not pts:
                continue
            dash = ' stroke-dasharray="4 3"' if pts[0].kind == "baseline" else ""
            if len(pts) > 1:
                coords = " ".join(f"{sx(p.speedup):.1f},{sy(p.quality):.1f}" for p in pts)
                out.append(f'<polyline points="{coords}" fill="none" stroke="{colour[name]}" stroke-width="1.5"{dash}/>')
            out.extend(marker(p, sx(p.speedup), sy(p.quality), colour[name]) for p in pts)
    if unscored:
        st = top + ph + gap
        out.append(f'<rect x="{left}" y="{st}" width="{pw}" height="{sh}" fill="#fafafa" stroke="#999" class="strip"/>'
                   f'<text x="{left - 6}" y="{st + sh / 2 + 3:.1f}" text-anchor="end" font-size="10">no quality</text>'
                   f'<text x="{left - 6}" y="{st + sh / 2 + 14:.1f}" text-anchor="end" font-size="10">scores</text>')
        for row, name in enumerate(strip_rows):
            y = st + 10 + 14 * row
            out.extend(marker(p, sx(p.speedup), y, "#fff") for p in unscored if p.series == name)
    for i, name in enumerate(series):
        first = next(p for p in points if p.series == name)
        dash = ' stroke-dasharray="4 3"' if first.kind == "baseline" else ""
        label = name + (f" ({first.metric})" if len(metrics) > 1 and first.quality is not None else "")
        if all(p.quality is None for p in points if p.series == name):
            label += " (no quality scores)"
        ly = axis_y + bottom + 4 + i * 16
        out.append(f'<line x1="{left}" y1="{ly}" x2="{left + 16}" y2="{ly}" stroke="{colour[name]}" '
                   f'stroke-width="2"{dash}/><text x="{left + 20}" y="{ly + 4}" font-size="10">{_e(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "", link_col: int | None = None,
           endpoint: str = "", linked: Sequence[bool] | None = None) -> str:
    parts = [f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead><tbody>"]
    for n, row in enumerate(rows):
        cells = []
        for i, c in enumerate(row):
            if i == link_col and endpoint and (linked is None or linked[n]):
                cells.append(f'<td><a href="{_e(model.repo_url(endpoint, c))}">{_e(c)}</a></td>')
            else:
                cells.append(f"<td>{_e(c)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def render_html(summaries: Sequence, *, endpoint: str = "https://huggingface.co", skipped: Sequence[str] = (),
                extra_rows: Sequence[model.Row] = (), sort_speedup: float = model.DEFAULT_SORT_SPEEDUP,
                notes: dict[str, str] | None = None, generated: str | None = None,
                title: str = "ECAD frontier registry", offline: bool = False) -> str:
    """The registry page for ``summaries`` (``FrontierSummary`` objects, e.g. from ``ecad_hub.browse``).

    One section per base model: the overlay plot of its frontiers (and baselines, when a
    frontier carries a ``comparison``), then the listing table (the rows the app shows, sorted
    by best quality at ``sort_speedup``) with a copy-paste loading line per repo; then the
    leaderboard. ``skipped``: notes on repos that could not be read (shown, not hidden);
    ``extra_rows``: more rows without summaries. Summaries of curated-index entries the Hub did
    not resolve (``status`` other than live) are listed with their status and note, without a
    repo link. ``offline``: the listing is the curated index alone (said on the page).
    """
    generated = generated or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(title)}</title>", f"<style>{_STYLE}</style></head><body>",
             f"<h1>{_e(title)}</h1>",
             (f'<p class="sub">From the curated ecad-hub index only (offline: the Hub was not asked), '
              if offline else
              f'<p class="sub">Learned caching schedules published on {_e(endpoint)} (repos tagged '
              f"<code>ecad</code>) and in the curated index, ")
             + f"generated {_e(generated)}. Sorted by best quality at {float(sort_speedup):g}x MAC speedup; "
             "frontiers without quality scores are drawn in the strip under each plot.</p>"]
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
        live = [r.status in _LINKED for r in group]
        table_rows = [r.cells() + [f'ECADPipeline.from_pretrained("{r.repo_id}")' if ok or r.status == _EXAMPLE
                                   else "-"] for r, ok in zip(group, live)]
        parts.append(_table(headers, table_rows, cls="listing", link_col=0, endpoint=endpoint, linked=live))
    if summaries:
        parts.append("<h2>Leaderboard</h2><p class=\"note\">Best quality reaching each MAC speedup, across repos "
                     "(per base model and metric).</p>")
        parts.append(_table(model.leaderboard_headers(), model.leaderboard(summaries), cls="leaderboard"))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
