#!/usr/bin/env python
"""The ECAD frontier registry as a static site: a thin wrapper of :func:`static_page.render_html`.

    python registry/build_site.py --out site/                 # all repos tagged `ecad`
    python registry/build_site.py --out site/ --base-model PixArt-alpha/PixArt-XL-2-256x256
    python -m http.server -d site/                            # then open http://localhost:8000

It lists repos with :func:`ecad_hub.browse` (which reads only each repo's ``frontier.json``),
merges them with the curated ``registry/index.json`` (live data wins; index entries the Hub no
longer has are shown, marked) and writes

* ``index.html``: one self-contained page (inline SVG overlay per base model, the listing the
  Gradio app shows, the leaderboard, skipped repos noted), see ``static_page.py``;
* ``plots/<base-model>.png``: the overlay plots as PNGs (for embedding elsewhere);
* ``registry.json``: the same data, machine-readable.

The output folder is replaced in one rename, so a web server never serves half a site. Repos
with a missing or broken ``frontier.json`` are skipped with a warning, as ``browse`` does, and
named on the page. Run it on a schedule (e.g. hourly in CI) to keep a registry page current.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import warnings
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from ecad_hub.utils.io import dumps_json, new_folder_beside, replace_folder  # noqa: E402
from ecad_hub.errors import EcadError  # noqa: E402
from ecad_hub.hub import FrontierSummary, browse  # noqa: E402
from ecad_hub.plotting import plot_frontier  # noqa: E402

import model  # noqa: E402
from index import INDEX_PATH, index_rows, load_index, merge_index  # noqa: E402
from static_page import render_html  # noqa: E402


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", text).strip("-") or "model"


def summary_record(s: FrontierSummary, endpoint: str) -> dict:
    return {
        "repo_id": s.repo_id,
        "url": model.repo_url(endpoint, s.repo_id),
        "base_model": s.base_model,
        "transformer_class": s.transformer_class,
        "family": model.family_of(s),
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


def build_site(out: str | Path, *, base_model: str | None = None, author: str | None = None,
               limit: int | None = 500, token=None, index: dict | None | str = "default") -> Path:
    """Build the registry site into ``out`` (replaced atomically). Returns the folder.

    ``index``: the curated index document (default: ``registry/index.json``; ``None``: live only).
    """
    from huggingface_hub import constants

    if index == "default":
        index = load_index(INDEX_PATH)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summaries = browse(base_model=base_model, author=author, limit=limit, token=token)
    skipped = []
    for w in caught:  # re-emitted: callers (and the tests) still see browse's warnings
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if "skipping" in str(w.message):
            skipped.append(re.sub(r"\S*/snapshots/[0-9a-f]{40}/", "", str(w.message).removeprefix("browse: skipping ")))
    merged = merge_index(index, summaries, base_model=base_model) if index else None
    extra = index_rows(merged) if merged else []
    notes = {m.repo_id: m.note for m in merged or [] if m.note}
    endpoint = constants.ENDPOINT
    groups: dict[str, list[dict]] = defaultdict(list)
    for s in summaries:
        groups[s.base_model].append(summary_record(s, endpoint))
    out = Path(out)
    tmp = new_folder_beside(out)
    try:
        for s_base in sorted(groups):
            series = {s.repo_id: s.points() for s in summaries if s.base_model == s_base and s.points()}
            if series:
                (tmp / "plots").mkdir(exist_ok=True)
                plot_frontier(series, tmp / f"plots/{slug(s_base)}.png", title=f"ECAD frontiers for {s_base}",
                              xlabel="MAC speedup (x)", ylabel="quality")
        generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        page = render_html(summaries, endpoint=endpoint, skipped=skipped, extra_rows=extra, notes=notes,
                           generated=generated)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        (tmp / "registry.json").write_text(dumps_json({
            "generated": generated, "endpoint": endpoint,
            "base_models": {b: groups[b] for b in sorted(groups)},
            "unresolved": [{"repo_id": r.repo_id, "base_model": r.base_model, "status": r.status, "note": r.note}
                           for r in extra],
            "skipped": skipped}))
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
    ap.add_argument("--index", default=str(INDEX_PATH), help="the curated index (\"none\": live search only)")
    args = ap.parse_args(argv)
    try:
        index = None if args.index.lower() == "none" else load_index(args.index)
        out = build_site(args.out, base_model=args.base_model, author=args.author, limit=args.limit, index=index)
    except (EcadError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    data = json.loads((out / "registry.json").read_text())
    n = sum(len(v) for v in data["base_models"].values())
    print(f"{out / 'index.html'}: {n} frontier(s) for {len(data['base_models'])} base model(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
