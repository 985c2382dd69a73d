"""The curated registry index (``registry/index.json``) and its merge with a live Hub search.

    >>> index = load_index()                                  # validated against registry-index-v1
    >>> merged = merge_index(index, ecad_hub.browse())        # live wins; unresolved entries marked
    >>> offline = merge_index(index, None)                    # ``browse --offline``: the index alone

Pure: :func:`merge_index` takes the index document and a list of
:class:`ecad_hub.hub.FrontierSummary` (or ``None`` when offline) and asks nothing of the Hub.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

INDEX_PATH = Path(__file__).resolve().parent / "index.json"
SCHEMA = "registry-index-v1"

#: :attr:`Merged.status` values.
LIVE = "live"                  # found by the live search, not in the index
INDEXED = "live, indexed"      # found live and listed in the index (live data shown, index note kept)
UNRESOLVED = "not found on the Hub"   # in the index, the live search did not return it
OFFLINE = "offline (index)"    # no live search was made: the index's own data


@dataclass(frozen=True)
class Merged:
    """One frontier of the merged listing.

    ``summary`` is the live :class:`~ecad_hub.hub.FrontierSummary` (``None`` for an index entry
    the live search did not return, or offline); ``entry`` the index entry, if any.
    """

    repo_id: str
    status: str
    summary: object | None = None
    entry: dict | None = None

    @property
    def note(self) -> str:
        return (self.entry or {}).get("note", "")

    @property
    def base_model(self) -> str:
        return self.summary.base_model if self.summary is not None else self.entry["base_model"]

    @property
    def resolution(self) -> tuple[int, int] | None:
        if self.summary is not None:
            return self.summary.resolution
        r = self.entry.get("resolution")
        return (r["height"], r["width"]) if r else None

    @property
    def steps(self) -> int | None:
        return self.summary.steps if self.summary is not None else self.entry.get("steps")


def index_problems(doc) -> list[str]:
    """Schema problems of an index document (empty list: valid), plus duplicate repo ids."""
    from ecad_hub.schemas import schema_problems

    problems = list(schema_problems(doc, SCHEMA))
    if not problems:
        seen = set()
        for e in doc["frontiers"]:
            if e["repo_id"] in seen:
                problems.append(f"frontiers: {e['repo_id']} is listed twice")
            seen.add(e["repo_id"])
    return problems


def load_index(path: str | Path = INDEX_PATH) -> dict:
    """Read and validate the curated index; raises ``ValueError`` listing every problem."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    problems = index_problems(doc)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return doc


def merge_index(index: dict | None, live: Sequence | None, *, base_model: str | None = None) -> list[Merged]:
    """Merge the curated index with live search results.

    * a repo found live is shown with its live data (live wins), with the index note if listed;
    * an index entry the live search did not return is kept, marked :data:`UNRESOLVED`;
    * ``live=None`` (offline): every index entry, marked :data:`OFFLINE`.

    ``base_model`` restricts the index entries to that model (live results are assumed already
    filtered by the search). Order: live results in their order, then index-only entries by repo id.
    """
    entries = list((index or {}).get("frontiers", []))
    if base_model:
        entries = [e for e in entries if e["base_model"] == base_model]
    by_repo = {e["repo_id"]: e for e in entries}
    if live is None:
        return [Merged(e["repo_id"], OFFLINE, None, e) for e in sorted(entries, key=lambda e: e["repo_id"])]
    out, seen = [], set()
    for s in live:
        if s.repo_id in seen:
            continue
        seen.add(s.repo_id)
        e = by_repo.get(s.repo_id)
        out.append(Merged(s.repo_id, INDEXED if e else LIVE, s, e))
    for e in sorted(entries, key=lambda e: e["repo_id"]):
        if e["repo_id"] not in seen:
            out.append(Merged(e["repo_id"], UNRESOLVED, None, e))
    return out


def index_rows(merged: Iterable[Merged]):
    """Listing rows (:class:`registry.model.Row`) for the merged entries that have no live summary."""
    from model import Row  # registry/ is on sys.path for the app, the page and the tests

    rows = []
    for m in merged:
        if m.summary is not None:
            continue
        e = m.entry
        res = e.get("resolution")
        rows.append(Row(repo_id=m.repo_id, base_model=e["base_model"], family=e.get("family", "-"),
                        resolution=f"{res['height']}x{res['width']}" if res else "-", steps=e.get("steps"),
                        metric=e.get("metric", "(none)"), schedules=0, max_speedup=None, best=None, default="",
                        status=m.status, note=e.get("note", "")))
    return rows
