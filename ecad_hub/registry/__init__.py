"""The ECAD frontier registry: the curated index, its merge with live Hub search, and the listing
views shared by ``ecad-hub browse`` (table, ``--plot``, ``--html``) and the Space (``registry/app.py``).

* :mod:`.index`: the curated index (``index.json``, package data; schema ``registry-index-v1``),
  :func:`load_index`, :func:`merge_index` (live wins; entries that do not resolve are marked);
* :mod:`.model`: rows, plot points, leaderboard (pure functions over ``FrontierSummary``-like objects);
* :mod:`.page`: :func:`render_html`, the self-contained static page (inline SVG, no JavaScript).

:func:`ecad_hub.browse` (``index=``, ``offline=``) does the merging; nothing here talks to the Hub.
"""

from .index import DEFAULT_INDEX, EXAMPLE, INDEXED, LIVE, OFFLINE, UNRESOLVED, load_index, merge_index

__all__ = ["DEFAULT_INDEX", "EXAMPLE", "INDEXED", "LIVE", "OFFLINE", "UNRESOLVED", "load_index", "merge_index",
           "render_html"]


def render_html(*args, **kwargs) -> str:
    """:func:`ecad_hub.registry.page.render_html` (imported on first use)."""
    from .page import render_html as render

    return render(*args, **kwargs)
