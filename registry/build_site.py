#!/usr/bin/env python
"""The ECAD frontier registry as a static site: a thin wrapper of ``ecad-hub browse --html``
(:func:`ecad_hub.registry.page.render_html`).

    python registry/build_site.py --out site/                 # all repos tagged `ecad` + the curated index
    python registry/build_site.py --out site/ --base-model PixArt-alpha/PixArt-XL-2-256x256
    python registry/build_site.py --out site/ --offline       # the curated index alone, no network
    python -m http.server -d site/                            # then open http://localhost:8000

It lists frontiers with :func:`ecad_hub.browse` (which reads only each repo's ``frontier.json``,
merged with the curated index: live data wins, index entries the Hub does not resolve are
shown, marked) and writes

* ``index.html``: the page ``ecad-hub browse --html`` writes (inline SVG overlay per base model,
  the listing the Gradio app shows, the leaderboard, skipped repos noted);
* ``plots/<base-model>.png``: the overlay plots as PNGs (``ecad-hub browse --plot``'s figure);
* ``registry.json``: the same data, machine-readable.

The output folder is replaced in one rename, so a web server never serves half a site.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import warnings
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE.parent / "ecad_hub").is_dir():  # a checkout: use its ecad_hub
    sys.path.insert(0, str(HERE.parent))

from ecad_hub.errors import EcadError  # noqa: E402
from ecad_hub.hub import FrontierSummary, browse  # noqa: E402
from ecad_hub.plotting import plot_overlay  # noqa: E402
from ecad_hub.registry import model  # noqa: E402
from ecad_hub.registry.index import INDEXED, LIVE  # noqa: E402
from ecad_hub.registry.page import render_html  # noqa: E402
from ecad_hub.utils.io import dumps_json, new_folder_beside, replace_folder  # noqa: E402

INDEX_PATH = HERE / "index.json"  # the Space's copy of ecad_hub/registry/index.json


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", text).strip("-") or "model"


def summary_record(s: FrontierSummary, endpoint: str) -> dict:
    return {
        "repo_id": s.repo_id, "url": model.repo_url(endpoint, s.repo_id), "base_model": s.base_model,
        "transformer_class": s.transformer_class, "family": model.family_of(s),
        "resolution": list(s.resolution) if s.resolution else None, "steps": s.steps,
        "schedules": [{"name": n, "mac_speedup": sp, "quality": q} for n, sp, q in zip(s.names, s.speedups, s.qualities)],
        "metric": s.metric, "default": s.default, "likes": s.likes, "downloads": s.downloads,
        "last_modified": s.last_modified.isoformat() if s.last_modified else None, "commit": s.sha,
        "status": s.status, "note": s.note,
    }


def build_site(out: str | Path, *, base_model: str | None = None, author: str | None = None,
               limit: int | None = 500, token=None, index=INDEX_PATH, offline: bool = False) -> Path:
    """Build the registry site into ``out`` (replaced atomically). Returns the folder.

    ``index``: the curated index (a file or document; ``None``: live search only).
    """
    from huggingface_hub import constants

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summaries = browse(base_model=base_model, author=author, limit=limit, token=token, index=index,
                           offline=offline)
    skipped = []
    for w in caught:  # re-emitted: callers (and the tests) still see browse's warnings
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if "skipping" in str(w.message):
            skipped.append(re.sub(r"\S*/snapshots/[0-9a-f]{40}/", "", str(w.message).removeprefix("browse: skipping ")))
    endpoint = constants.ENDPOINT
    live = [s for s in summaries if s.status in (LIVE, INDEXED)]
    groups: dict[str, list[dict]] = defaultdict(list)
    for s in live:
        groups[s.base_model].append(summary_record(s, endpoint))
    out = Path(out)
    tmp = new_folder_beside(out)
    try:
        for base in sorted({s.base_model for s in summaries}):
            frontiers = [(s.repo_id, s.metric, [(x, q) for x, q in zip(s.speedups, s.qualities) if x is not None])
                         for s in summaries if s.base_model == base]
            frontiers = [f for f in frontiers if f[2]]
            if frontiers:
                (tmp / "plots").mkdir(exist_ok=True)
                plot_overlay(frontiers, tmp / f"plots/{slug(base)}.png", title=f"ECAD frontiers for {base}")
        generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        page = render_html(summaries, endpoint=endpoint, skipped=skipped, generated=generated, offline=offline)
        (tmp / "index.html").write_text(page, encoding="utf-8")
        (tmp / "registry.json").write_text(dumps_json({
            "generated": generated, "endpoint": endpoint,
            "base_models": {b: groups[b] for b in sorted(groups)},
            "unresolved": [summary_record(s, endpoint) for s in summaries if s.status not in (LIVE, INDEXED)],
            "skipped": skipped}))
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build the static ECAD frontier registry page.")
    ap.add_argument("--out", required=True, help="output folder (replaced)")
    ap.add_argument("--base-model", help="only frontiers for this base model")
    ap.add_argument("--author", help="only repos of this user or organisation")
    ap.add_argument("--limit", type=int, default=500, help="at most this many repos per Hub listing")
    ap.add_argument("--index", default=str(INDEX_PATH), help="the curated index (\"none\": live search only)")
    ap.add_argument("--offline", action="store_true", help="the curated index alone, without asking the Hub")
    args = ap.parse_args(argv)
    try:
        index = None if args.index.lower() == "none" else args.index
        out = build_site(args.out, base_model=args.base_model, author=args.author, limit=args.limit, index=index,
                         offline=args.offline)
    except (EcadError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    data = json.loads((out / "registry.json").read_text())
    n = sum(len(v) for v in data["base_models"].values())
    k = len(data["unresolved"])
    print(f"{out / 'index.html'}: {n} frontier(s) from the Hub for {len(data['base_models'])} base model(s), "
          f"{k} from the curated index only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
