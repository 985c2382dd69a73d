"""The curated registry index and its merge with a live Hub search.

    >>> from ecad_hub.registry import load_index, merge_index
    >>> index = load_index()                       # the index shipped with ecad-hub, validated
    >>> merged = merge_index(index, live)          # live wins; index entries not found live follow
    >>> offline = merge_index(index, None)         # ``browse --offline``: the index alone

The index (``ecad_hub/registry/index.json``, schema ``schemas/registry-index-v1.schema.json``;
``registry/index.json`` is the Space's copy of it) lists known ECAD frontier repos with what a
listing shows without asking the Hub: base model, resolution, steps, a note and, optionally, the
schedules' names, MAC speedups and qualities. An entry marked ``"example": true`` has an example
repo id: it describes the frontier its note names, and no such repo is claimed to exist.

:func:`merge_index` is pure (it asks nothing of the Hub); :func:`ecad_hub.hub.browse` calls it
and resolves the entries the live search did not return.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import FrontierError
from ..schemas import schema_problems
from ..utils.io import read_json

__all__ = ["DEFAULT_INDEX", "SCHEMA", "LIVE", "INDEXED", "UNRESOLVED", "EXAMPLE", "OFFLINE", "Merged",
           "index_problems", "load_index", "resolve_index", "merge_index", "entry_matches"]

#: The index shipped with ecad-hub (package data).
DEFAULT_INDEX = Path(__file__).resolve().parent / "index.json"
SCHEMA = "registry-index-v1"
_MAX_INDEX_BYTES = 4 * 1024 * 1024

#: Listing statuses (``FrontierSummary.status``).
LIVE = "live"                        # found by the live search, not in the index
INDEXED = "live, indexed"            # found on the Hub and listed in the index (live data shown, index note kept)
UNRESOLVED = "unresolved"            # in the index, not found on the Hub (or its frontier.json is unreadable)
EXAMPLE = "example, not published"   # an index entry with an example repo id, not found on the Hub
OFFLINE = "offline (index)"          # no Hub search was made: the index's own data


@dataclass(frozen=True)
class Merged:
    """One frontier of the merged listing: ``summary`` is the live one (``None`` for an index entry
    the live search did not return, or offline); ``entry`` the index entry, if any."""

    repo_id: str
    status: str
    summary: Any = None
    entry: Mapping | None = None

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


def index_problems(doc: Any) -> list[str]:
    """Problems of an index document (empty: valid): the schema's, then repo ids listed twice and
    schedule lists whose names repeat."""
    problems = list(schema_problems(doc, SCHEMA))
    if not problems:
        seen: set[str] = set()
        for e in doc["frontiers"]:
            if e["repo_id"] in seen:
                problems.append(f"frontiers: {e['repo_id']} is listed twice")
            seen.add(e["repo_id"])
            names = [s["name"] for s in e.get("schedules", [])]
            if len(set(names)) != len(names):
                problems.append(f"frontiers: {e['repo_id']}: a schedule name is listed twice")
    return problems


def load_index(path: str | os.PathLike | None = None) -> dict:
    """Read and validate an index file (default: :data:`DEFAULT_INDEX`).

    Raises :class:`~ecad_hub.errors.FrontierError` (one line: the file and its first problem).
    """
    path = Path(DEFAULT_INDEX if path is None else path)
    if path.is_dir():
        raise FrontierError(f"{path}: is a folder, not a registry index file", path=str(path))
    doc = read_json(path, error_cls=FrontierError, max_bytes=_MAX_INDEX_BYTES)
    problems = index_problems(doc)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FrontierError(f"{path}: not a registry index ({problems[0]}{more})", path=str(path))
    return doc


def resolve_index(index: bool | str | os.PathLike | Mapping | None) -> dict | None:
    """``index`` as a document: ``None``/``False`` -> none; ``True`` -> the default index; a path ->
    that file (validated); a mapping -> itself, validated."""
    if index is None or index is False:
        return None
    if index is True:
        return load_index()
    if isinstance(index, Mapping):
        problems = index_problems(index)
        if problems:
            raise FrontierError(f"registry index: {problems[0]}")
        return dict(index)
    return load_index(index)


def entry_matches(entry: Mapping, *, base_model: str | None = None, author: str | None = None,
                  search: str | None = None, transformer_class: str | None = None) -> bool:
    """Whether an index entry passes :func:`~ecad_hub.hub.browse`'s filters (as the Hub would filter
    the repo: ``author`` is the namespace, ``search`` a case-insensitive substring of the repo id)."""
    repo = entry["repo_id"]
    return ((not base_model or entry["base_model"] == base_model)
            and (not author or repo.split("/", 1)[0].lower() == author.lower())
            and (not search or search.lower() in repo.lower())
            and (not transformer_class or entry.get("transformer_class") == transformer_class))


def merge_index(index: Mapping | None, live: Sequence | None, **filters) -> list[Merged]:
    """Merge the curated index with live search results (``FrontierSummary``-like objects).

    * a repo found live is shown with its live data (live wins), with the index note if listed;
    * an index entry the live search did not return is kept, marked :data:`UNRESOLVED`
      (:data:`EXAMPLE` for an example repo id); ``browse`` first tries to resolve it directly;
    * ``live=None`` (offline): every index entry, marked :data:`OFFLINE`.

    ``filters`` (``base_model``, ``author``, ``search``, ``transformer_class``) restrict the index
    entries as :func:`entry_matches` does (live results are already filtered by the search).
    Order: live results in their order, then index-only entries by repo id.
    """
    entries = [e for e in (index or {}).get("frontiers", []) if entry_matches(e, **filters)]
    by_repo = {e["repo_id"]: e for e in entries}
    ordered = sorted(entries, key=lambda e: e["repo_id"])
    if live is None:
        return [Merged(e["repo_id"], OFFLINE, None, e) for e in ordered]
    out, seen = [], set()
    for s in live:
        if s.repo_id in seen:
            continue
        seen.add(s.repo_id)
        e = by_repo.get(s.repo_id)
        out.append(Merged(s.repo_id, INDEXED if e else LIVE, s, e))
    for e in ordered:
        if e["repo_id"] not in seen:
            out.append(Merged(e["repo_id"], EXAMPLE if e.get("example") else UNRESOLVED, None, e))
    return out
