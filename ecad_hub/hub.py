"""Community operations on published frontiers: browse the ECAD repos on the Hub, pull one.

Built on :mod:`ecad_hub.frontier`'s public API: loading, saving and pushing one frontier is
:class:`~ecad_hub.Frontier`'s (:meth:`~ecad_hub.Frontier.load`, :meth:`~ecad_hub.Frontier.push_to_hub`),
the file transfer and the Hub error messages are :mod:`ecad_hub.frontier.remote`'s, and the
model card is :mod:`ecad_hub.frontier.card`'s. This module adds listing (``HfApi.list_models``
plus one ``frontier.json`` per repo, merged with the curated index of :mod:`ecad_hub.registry`),
:class:`FrontierSummary` and pulling a repo's files.

    >>> from ecad_hub import browse
    >>> for s in browse(base_model="PixArt-alpha/PixArt-XL-2-256x256"):
    ...     print(s.repo_id, s.speedups, s.qualities)
    user/pixart-ecad (1.0, 1.52, 2.68) (0.93, 0.92, 0.88)
    >>> [(s.repo_id, s.status) for s in browse(index=True)]     # merged with the curated index
    [('user/pixart-ecad', 'live'), ('your-username/pixart-alpha-256-ecad-paper', 'example, not published')]

    >>> from ecad_hub.hub import pull
    >>> pull("user/pixart-ecad", out="pixart-ecad")     # JSON + README + PNGs, nothing else
    PosixPath('pixart-ecad')
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from .errors import EcadError, FrontierError, HubError, escape_control
from .frontier import INDEX_FILE, Frontier, check_document, is_repo_id, write_folder
from .frontier.card import ECAD_TAG
from .frontier.remote import MAX_FILE_BYTES, endpoint, hub_errors, hub_exceptions, server_message
from .registry.index import EXAMPLE, INDEXED, LIVE, OFFLINE, merge_index, resolve_index
from .utils.io import read_bytes_bounded, read_json
from .utils.table import format_table


# --------------------------------------------------------------------------------------------
# pull
# --------------------------------------------------------------------------------------------

def pull(
    repo_id: str,
    *,
    revision: str | None = None,
    out: str | os.PathLike | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> Path:
    """Download an ECAD repo's frontier files, model card and PNGs (nothing else) and validate them.

    Exactly the files the frontier layout names are downloaded (``ecad_config.json``,
    ``frontier.json``, the schedules and heatmaps it lists, ``README.md``, ``frontier.png``), each
    size-checked against the repo listing first (see :meth:`Frontier.fetch`). With ``out``, those
    files and nothing else are copied into that folder (atomically, as
    :meth:`Frontier.save_pretrained` writes), even if the cache holds more of that commit;
    otherwise the cache snapshot folder is returned. ``Frontier.load(folder)`` then works offline.

    A frontier whose ``base_model`` is not a Hub repo id (a local path) is refused: a published
    frontier must name its base model on the Hub.
    """
    frontier, snapshot = Frontier.fetch(repo_id, revision=revision, token=token, cache_dir=cache_dir,
                                        local_files_only=local_files_only, card=True)
    if not is_repo_id(frontier.base_model):
        raise FrontierError(f"{snapshot.label}: its base_model {frontier.base_model!r} is not a Hub repo id; "
                            f"a frontier from the Hub may only name a Hub model", path=repo_id)
    folder = snapshot.folder
    if out is None:
        return folder
    files = {rel: read_bytes_bounded(folder / rel, MAX_FILE_BYTES, error_cls=FrontierError)
             for rel in snapshot.files}
    write_folder(Path(out), files)
    return Path(out)


# --------------------------------------------------------------------------------------------
# browse
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrontierSummary:
    """One ECAD repo as :func:`browse` lists it, read from its ``frontier.json`` and Hub info.

    Attributes:
        repo_id: the ECAD repo.
        base_model: the model its schedules are for.
        resolution: ``(height, width)`` searched, if recorded.
        steps: denoising steps of the schedules.
        names, speedups, qualities: per schedule (most to least compute); a speedup or
            quality is ``None`` when not recorded.
        metric: the quality metric, if any.
        default: the default schedule.
        transformer_class: the transformer the schedules are written for.
        likes, downloads, last_modified, sha: Hub info of the repo (``sha``: the commit read).
        status: ``"live"`` (read from the Hub), ``"live, indexed"`` (read from the Hub and listed in
            the curated index), ``"unresolved"`` / ``"example, not published"`` (an index entry
            the Hub does not resolve: the index's data) or ``"offline (index)"`` (``offline=True``).
        note: the curated index's note on the repo (and, when unresolved, why).
        family: the model family tag ``frontier.json`` records, if any.
        comparison: ``frontier.json``'s ``comparison`` (``ecad-hub compare`` results), if any.
    """

    repo_id: str
    base_model: str
    resolution: tuple[int, int] | None
    steps: int
    names: tuple[str, ...]
    speedups: tuple[float | None, ...]
    qualities: tuple[float | None, ...]
    metric: str | None
    default: str
    transformer_class: str
    likes: int = 0
    downloads: int = 0
    last_modified: _dt.datetime | None = None
    sha: str | None = None
    status: str = "live"
    note: str = ""
    family: str | None = None
    comparison: dict | None = field(default=None, compare=False, repr=False)

    @property
    def is_live(self) -> bool:
        """Whether this was read from the repo's ``frontier.json`` on the Hub (not from the curated index)."""
        return self.status in (LIVE, INDEXED)

    @property
    def max_speedup(self) -> float | None:
        known = [s for s in self.speedups if s is not None]
        return max(known) if known else None

    def points(self) -> list[tuple[float, float]]:
        """``(speedup, quality)`` of every schedule recording both (for plots)."""
        return [(s, q) for s, q in zip(self.speedups, self.qualities) if s is not None and q is not None]


def _summary(model, token) -> FrontierSummary:
    from huggingface_hub import hf_hub_download

    siblings = getattr(model, "siblings", None)
    if siblings is not None and INDEX_FILE not in {s.rfilename for s in siblings}:
        raise FrontierError(f"no {INDEX_FILE}")
    revision = getattr(model, "sha", None) or None
    size = next((s.size for s in siblings or [] if s.rfilename == INDEX_FILE and s.size is not None), None)
    with hub_errors(model.id, f"download of {INDEX_FILE}"):
        if size is None:  # listings carry no sizes: ask for this one file's before downloading it
            from huggingface_hub import HfApi

            found = HfApi(token=token).get_paths_info(model.id, [INDEX_FILE], revision=revision)
            size = next((getattr(f, "size", None) for f in found if f.path == INDEX_FILE), None)
        if size is not None and size > MAX_FILE_BYTES:
            raise FrontierError(f"its {INDEX_FILE} is {size:,} bytes, larger than the {MAX_FILE_BYTES:,}-byte limit")
        path = hf_hub_download(model.id, INDEX_FILE, revision=revision, token=token)
    index = read_json(path, error_cls=FrontierError, max_bytes=MAX_FILE_BYTES)
    check_document(index, "frontier-v1", INDEX_FILE)
    metric = index.get("metric")
    entries = index["schedules"]

    def quality(entry) -> float | None:
        return next((q["value"] for q in entry["quality"] if metric is None or q["metric"] == metric), None)

    if index["default_schedule"] not in {e["name"] for e in entries}:
        raise FrontierError(f"{INDEX_FILE}: default schedule {index['default_schedule']!r} is not listed")
    res = index.get("resolutions")
    return FrontierSummary(
        repo_id=model.id,
        base_model=index["base_model"],
        resolution=(res[0]["height"], res[0]["width"]) if res else None,
        steps=index["num_inference_steps"],
        names=tuple(e["name"] for e in entries),
        speedups=tuple(e["mac_speedup"] for e in entries),
        qualities=tuple(quality(e) for e in entries),
        metric=metric,
        default=index["default_schedule"],
        transformer_class=index["transformer_class"],
        likes=getattr(model, "likes", 0) or 0,
        downloads=getattr(model, "downloads", 0) or 0,
        last_modified=getattr(model, "last_modified", None),
        sha=getattr(model, "sha", None),
        family=index.get("family"),
        comparison=index.get("comparison"),
    )


def _index_summary(entry, status: str, note: str | None = None) -> FrontierSummary:
    """A curated index entry as a :class:`FrontierSummary` (the index's data, no Hub info)."""
    res = entry.get("resolution")
    schedules = entry.get("schedules", [])
    return FrontierSummary(
        repo_id=entry["repo_id"], base_model=entry["base_model"],
        resolution=(res["height"], res["width"]) if res else None, steps=entry["steps"],
        names=tuple(s["name"] for s in schedules), speedups=tuple(s["mac_speedup"] for s in schedules),
        qualities=tuple(s.get("quality") for s in schedules), metric=entry.get("metric"),
        default=entry.get("default_schedule", ""), transformer_class=entry.get("transformer_class", ""),
        status=status, note=entry.get("note", "") if note is None else note, family=entry.get("family"))


def browse(
    base_model: str | None = None,
    author: str | None = None,
    search: str | None = None,
    limit: int | None = 50,
    token: str | bool | None = None,
    *,
    transformer_class: str | None = None,
    index=None,
    offline: bool = False,
) -> list[FrontierSummary]:
    """List ECAD repos on the Hub (tag ``ecad``), reading only each repo's ``frontier.json``,
    merged with the curated registry index if one is given.

    Args:
        base_model: only frontiers for this base model: repos whose card declares it
            (``base_model:<id>`` tag) and repos whose tags name no base model but whose
            ``frontier.json`` does.
        author: only repos of this user or organisation.
        search: a substring of the repo id.
        limit: at most this many repos per Hub listing (Hub listing order).
        token: for private repos.
        transformer_class: only frontiers written for this diffusers transformer class
            (``frontier.json``'s ``transformer_class``).
        index: the curated index to merge (:mod:`ecad_hub.registry`): ``True`` for the one
            shipped with ecad-hub, a path to an index file, or an index document; ``None``
            (default): the live search only. Live data wins; an index entry the search did not
            return is looked up directly and, if the Hub does not resolve it, listed with the
            index's data, marked ``status="unresolved"`` (``"example, not published"`` for an
            example repo id), never dropped.
        offline: list the index alone (the default index if ``index`` is ``None``), asking the
            Hub nothing; every entry has ``status="offline (index)"``.

    Repos whose ``frontier.json`` is missing, invalid or unreadable are skipped with a
    ``UserWarning`` naming the repo and the reason; the listing itself never fails because
    of one repo. Raises :class:`~ecad_hub.errors.HubError` if the listing cannot be fetched,
    :class:`~ecad_hub.errors.FrontierError` if the index file is invalid.

    Example::

        >>> [s.repo_id for s in browse(base_model="black-forest-labs/FLUX.1-dev")]
        ['user/flux-ecad']
        >>> [(s.repo_id, s.status) for s in browse(offline=True)]
        [('your-username/pixart-alpha-256-ecad-paper', 'offline (index)')]
    """
    doc = resolve_index(True if offline and index is None else index)
    filters = dict(base_model=base_model, author=author, search=search, transformer_class=transformer_class)
    if offline:
        return [_index_summary(m.entry, OFFLINE) for m in merge_index(doc, None, **filters)]

    from huggingface_hub import HfApi

    api = HfApi(token=token)

    def listing(tags):
        try:
            return list(api.list_models(filter=tags, author=author, search=search, limit=limit, full=True,
                                        token=token))
        except hub_exceptions() as e:
            raise HubError(f"cannot list ECAD repos on {endpoint()} ({server_message(e)})") from None

    if base_model:
        models = listing([ECAD_TAG, f"base_model:{base_model}"])
        tagged = {m.id for m in models}
        # repos whose card names no base model: their frontier.json says which model they are for
        untagged = [m for m in listing([ECAD_TAG]) if m.id not in tagged
                    and not any(str(t).startswith("base_model:") for t in (getattr(m, "tags", None) or []))]
        models += untagged
    else:
        models, tagged = listing([ECAD_TAG]), set()

    def one(model):
        try:
            return _summary(model, token), None
        except EcadError as e:
            return None, str(e)
        except Exception as e:  # noqa: BLE001 - one odd repo never breaks the listing
            return None, f"{type(e).__name__}: {e}"

    def wanted(summary, claimed_by: str | None) -> bool:
        """Whether a summary passes the filters; a base model its card (or the index) claimed wrongly is warned about."""
        if base_model and summary.base_model != base_model:
            if claimed_by:
                warnings.warn(escape_control(f"browse: skipping {summary.repo_id}: its frontier.json is for "
                                             f"{summary.base_model}, {claimed_by} says {base_model}"), stacklevel=3)
            return False
        return not transformer_class or summary.transformer_class == transformer_class

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(models)))) as pool:
        outcomes = list(pool.map(one, models))
    summaries = []
    for model, (summary, problem) in zip(models, outcomes):
        if summary is None:
            warnings.warn(escape_control(f"browse: skipping {model.id}: {problem}"), stacklevel=2)
        elif wanted(summary, "its card" if model.id in tagged else None):
            summaries.append(summary)
    if doc is None:
        return summaries

    merged = merge_index(doc, summaries, **filters)
    missing = [m for m in merged if m.summary is None]
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(missing)))) as pool:
        looked_up = dict(zip((m.repo_id for m in missing), pool.map(lambda m: _lookup(api, m.repo_id, token), missing)))
    out = []
    for m in merged:
        if m.summary is not None:
            out.append(replace(m.summary, status=m.status, note=m.note))
            continue
        summary, problem = looked_up[m.repo_id]
        if summary is not None and wanted(summary, "the curated index"):
            out.append(replace(summary, status=INDEXED, note=m.note))
        elif summary is None:
            note = m.note if m.status == EXAMPLE else escape_control(f"{m.note} [{problem}]" if m.note else problem)
            out.append(_index_summary(m.entry, m.status, note))
    return out


def _lookup(api, repo_id: str, token):
    """``(summary, None)`` for an index entry's repo read from the Hub, else ``(None, why not)``."""
    try:
        try:
            info = api.model_info(repo_id, files_metadata=True, token=token)
        except hub_exceptions() as e:
            status = getattr(getattr(e, "response", None), "status_code", None)
            if status in (401, 404):
                return None, f"not found on {endpoint()}"
            return None, f"cannot read it on {endpoint()} ({server_message(e)})"
        return _summary(info, token), None
    except EcadError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - an odd repo never breaks the listing
        return None, f"{type(e).__name__}: {e}"


def summaries_table(summaries: Iterable[FrontierSummary]) -> str:
    """A text table of :func:`browse` results: repo, base model, resolution, steps, speedups, quality, status."""
    rows = []
    for s in summaries:
        speedups = ", ".join("-" if v is None else f"{v:.2f}x" for v in s.speedups)
        known = [q for q in s.qualities if q is not None]
        quality = f"{s.metric or 'quality'} {min(known):.4g}..{max(known):.4g}" if known else "-"
        rows.append([escape_control(s.repo_id), escape_control(s.base_model),
                     f"{s.resolution[0]}x{s.resolution[1]}" if s.resolution else "-",
                     str(s.steps), speedups or "-", escape_control(quality), escape_control(s.status)])
    return format_table(rows, ["repo", "base model", "resolution", "steps", "MAC speedups", "quality", "status"])
