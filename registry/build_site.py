#!/usr/bin/env python
"""The ECAD frontier registry: a static web page of every frontier published on the Hub.

    python registry/build_site.py --out site/                 # all repos tagged `ecad`
    python registry/build_site.py --out site/ --base-model PixArt-alpha/PixArt-XL-2-256x256
    python -m http.server -d site/                            # then open http://localhost:8000

It lists repos with :func:`ecad_hub.browse` (which reads only each repo's ``frontier.json``),
groups them by base model, and writes

* ``index.html``: one section per base model with an overlay plot of its frontiers and a table
  (repo, resolution, steps, MAC speedups, quality, likes, downloads, last update, a copy-paste
  ``ECADPipeline.from_pretrained`` line);
* ``plots/<base-model>.png``: the overlay plots;
* ``registry.json``: the same data, machine-readable.

The output folder is replaced in one rename, so a web server never serves half a site. Repos
with a missing or broken ``frontier.json`` are skipped with a warning, as ``browse`` does.
Run it on a schedule (e.g. hourly in CI) to keep a registry page current.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecad_hub.utils.io import dumps_json, new_folder_beside, replace_folder  # noqa: E402
from ecad_hub.errors import EcadError  # noqa: E402
from ecad_hub.hub import FrontierSummary, browse  # noqa: E402
from ecad_hub.plotting import plot_frontier  # noqa: E402

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { margin-bottom: .2rem; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 2rem; font-size: .9rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f5f5f5; } code { font-size: .85rem; background: #f5f5f5; padding: 0 .2rem; }
img { max-width: 36rem; width: 100%; border: 1px solid #eee; }
"""


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", text).strip("-") or "model"


def summary_record(s: FrontierSummary, endpoint: str) -> dict:
    return {
        "repo_id": s.repo_id,
        "url": f"{endpoint.rstrip('/')}/{s.repo_id}",
        "base_model": s.base_model,
        "transformer_class": s.transformer_class,
        "resolution": list(s.resolution) if s.resolution else None,
        "steps": s.steps,
        "schedules": [{"name": n, "mac_speedup": sp, "quality": q} for n, sp, q in zip(s.names, s.speedups, s.qualities)],
        "metric": s.metric,
        "default": s.default,
        "likes": s.likes,
        "downloads": s.downloads,
        "last_modified": s.last_modified.isoformat() if s.last_modified else None,
        "commit": s.sha,
    }


def _cell(value) -> str:
    return html.escape("-" if value is None or value == "" else str(value))


def render_index(groups: dict[str, list[dict]], plots: dict[str, str], generated: str, endpoint: str) -> str:
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>ECAD frontier registry</title>", f"<style>{_STYLE}</style></head><body>",
        "<h1>ECAD frontier registry</h1>",
        f'<p class="sub">Learned caching schedules published on {html.escape(endpoint)} '
        f"(repos tagged <code>ecad</code>), generated {html.escape(generated)}.</p>",
    ]
    if not groups:
        parts.append("<p>No ECAD frontiers found.</p>")
    for base in sorted(groups):
        records = groups[base]
        parts.append(f'<h2 id="{html.escape(slug(base))}">{html.escape(base)}</h2>')
        if base in plots:
            parts.append(f'<img src="{html.escape(plots[base])}" alt="frontiers of {html.escape(base)}">')
        parts.append("<table><tr><th>repo</th><th>resolution</th><th>steps</th><th>MAC speedups</th>"
                     "<th>quality</th><th>likes</th><th>downloads</th><th>updated</th><th>load it</th></tr>")
        for r in sorted(records, key=lambda r: (-(r["likes"] or 0), r["repo_id"])):
            speedups = ", ".join("-" if s["mac_speedup"] is None else f"{s['mac_speedup']:.2f}x" for s in r["schedules"])
            qualities = [s["quality"] for s in r["schedules"] if s["quality"] is not None]
            quality = f"{r['metric'] or 'quality'} {min(qualities):.4g}..{max(qualities):.4g}" if qualities else None
            resolution = "x".join(map(str, r["resolution"])) if r["resolution"] else None
            snippet = f'ECADPipeline.from_pretrained("{r["repo_id"]}")'
            parts.append(
                f'<tr><td><a href="{html.escape(r["url"])}">{html.escape(r["repo_id"])}</a></td>'
                f"<td>{_cell(resolution)}</td><td>{_cell(r['steps'])}</td><td>{_cell(speedups)}</td>"
                f"<td>{_cell(quality)}</td><td>{_cell(r['likes'])}</td><td>{_cell(r['downloads'])}</td>"
                f"<td>{_cell((r['last_modified'] or '')[:10])}</td><td><code>{html.escape(snippet)}</code></td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build_site(out: str | Path, *, base_model: str | None = None, author: str | None = None,
               limit: int | None = 500, token=None) -> Path:
    """Build the registry site into ``out`` (replaced atomically). Returns the folder."""
    from huggingface_hub import constants

    summaries = browse(base_model=base_model, author=author, limit=limit, token=token)
    endpoint = constants.ENDPOINT
    groups: dict[str, list[dict]] = defaultdict(list)
    points: dict[str, dict[str, list]] = defaultdict(dict)
    for s in summaries:
        groups[s.base_model].append(summary_record(s, endpoint))
        if s.points():
            points[s.base_model][s.repo_id] = s.points()
    out = Path(out)
    tmp = new_folder_beside(out)
    try:
        plots = {}
        for base, series in points.items():
            rel = f"plots/{slug(base)}.png"
            (tmp / "plots").mkdir(exist_ok=True)
            plot_frontier(series, tmp / rel, title=f"ECAD frontiers for {base}", xlabel="MAC speedup (x)",
                          ylabel="quality")
            plots[base] = rel
        generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        (tmp / "index.html").write_text(render_index(groups, plots, generated, endpoint), encoding="utf-8")
        (tmp / "registry.json").write_text(dumps_json({"generated": generated, "endpoint": endpoint,
                                                       "base_models": {b: groups[b] for b in sorted(groups)}}))
        replace_folder(tmp, out)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build the static ECAD frontier registry page.")
    ap.add_argument("--out", required=True, help="output folder (replaced)")
    ap.add_argument("--base-model", help="only frontiers for this base model")
    ap.add_argument("--author", help="only repos of this user or organisation")
    ap.add_argument("--limit", type=int, default=500)
    args = ap.parse_args(argv)
    try:
        out = build_site(args.out, base_model=args.base_model, author=args.author, limit=args.limit)
    except EcadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    data = json.loads((out / "registry.json").read_text())
    n = sum(len(v) for v in data["base_models"].values())
    print(f"{out / 'index.html'}: {n} frontier(s) for {len(data['base_models'])} base model(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
