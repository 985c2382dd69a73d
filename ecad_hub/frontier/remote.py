"""Moving a frontier's files to and from a Hub repo, and what Hub failures become (:class:`HubError`).

Talks to :mod:`huggingface_hub` directly (imported lazily); the endpoint is whatever
``HF_ENDPOINT`` says. Knows files and repos, not frontiers: :meth:`Frontier.load` and
:meth:`Frontier.push_to_hub` (and :mod:`ecad_hub.hub`) build on it.

* :func:`download_files` / :func:`fetch`: a bounded ``snapshot_download`` (only the files
  matching the frontier layout's allow patterns are ever requested);
* :func:`push_files`: everything that changed, in ONE ``HfApi.create_commit``;
* :func:`hub_errors` / :func:`map_hub_error`: the one place huggingface_hub errors become
  one-line :class:`~ecad_hub.errors.HubError` messages.
"""

from __future__ import annotations

import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

from ..errors import FrontierError, HubError
from .layout import CONFIG_FILE, MANAGED_DIRS

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import CommitInfo

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------

def endpoint() -> str:
    """The Hub endpoint huggingface_hub talks to (``HF_ENDPOINT``, read at its import)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_exceptions() -> tuple[type[BaseException], ...]:
    """The exceptions a huggingface_hub call raises when the Hub (or the network, or the cache) fails."""
    from huggingface_hub.errors import EntryNotFoundError, HTTPError

    return (HTTPError, EntryNotFoundError, OSError, ValueError)


def server_message(err: BaseException) -> str:
    """The one-line reason of a huggingface_hub HTTP error (status and the server's message)."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    message = getattr(err, "server_message", None) or ""
    if not message:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    message = " ".join(message.split())
    if len(message) > 200:
        message = message[:197] + "..."
    return f"HTTP {status}: {message}" if status else message


def map_hub_error(err: BaseException, repo_id: str, what: str, revision: str | None = None) -> HubError:
    """The :class:`HubError` for a failed huggingface_hub call on ``repo_id`` (``what``: "download", "push"...)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(err, GatedRepoError):
        return HubError(f"{repo_id}: {what} failed: the repo is gated; accept its terms on the Hub and pass a token",
                        path=repo_id)
    if isinstance(err, RepositoryNotFoundError):
        return HubError(f"{repo_id}: no such model repo on {endpoint()} (or it is private and no valid token "
                        f"was given)", path=repo_id)
    if isinstance(err, RevisionNotFoundError):
        return HubError(f"{repo_id}: no revision {revision!r} (branch, tag or commit sha)", path=repo_id)
    if isinstance(err, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return HubError(f"{repo_id}: {what} failed: not in the local cache and the Hub cannot be reached "
                        f"(offline mode or no network); run once online first", path=repo_id)
    return HubError(f"{repo_id}: {what} failed ({server_message(err)})", path=repo_id)


@contextmanager
def hub_errors(repo_id: str, what: str, revision: str | None = None) -> Iterator[None]:
    """Turn a huggingface_hub failure inside the block into :func:`map_hub_error`'s :class:`HubError`.

    Wrap only the huggingface_hub calls: ``ValueError`` and ``OSError`` are among what is mapped.
    Example::

        >>> with hub_errors("user/pixart-ecad", "download"):
        ...     hf_hub_download("user/pixart-ecad", "frontier.json")
    """
    try:
        yield
    except hub_exceptions() as e:
        raise map_hub_error(e, repo_id, what, revision) from None


# --------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------

def download_files(
    repo_id: str,
    allow_patterns: Sequence[str],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
) -> tuple[Path, str | None]:
    """``snapshot_download`` only the files matching ``allow_patterns``; returns ``(folder, commit sha)``.

    Files outside the patterns (weights, pickles, code) are never requested.
    """
    from huggingface_hub import snapshot_download

    with hub_errors(repo_id, "download", revision):
        folder = Path(snapshot_download(
            repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
            allow_patterns=list(allow_patterns),
        ))
    # snapshot_download returns <cache>/models--ns--name/snapshots/<commit sha>
    commit = folder.name if len(folder.name) == 40 and all(c in "0123456789abcdef" for c in folder.name) else None
    return folder, commit


@dataclass(frozen=True)
class Snapshot:
    """The downloaded files of an ECAD repo: ``folder``, the resolved ``commit`` and a ``label`` for messages."""

    repo_id: str
    folder: Path
    commit: str | None

    @property
    def label(self) -> str:
        """``repo_id@<short sha>`` (``repo_id`` when the commit is unknown)."""
        return f"{self.repo_id}@{self.commit[:7]}" if self.commit else self.repo_id


def fetch(repo_id: str, allow_patterns: Sequence[str], **download_kwargs) -> Snapshot:
    """:func:`download_files`, then refuse (:class:`FrontierError`) a repo with no ``ecad_config.json``."""
    folder, commit = download_files(repo_id, allow_patterns, **download_kwargs)
    snapshot = Snapshot(repo_id, folder, commit)
    if not (folder / CONFIG_FILE).is_file():
        raise FrontierError(f"{snapshot.label} is not an ECAD repo: it has no {CONFIG_FILE}", path=repo_id)
    return snapshot


# --------------------------------------------------------------------------------------------
# push
# --------------------------------------------------------------------------------------------

def git_blob_sha(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's ``blob_id``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _same_file(sibling, data: bytes) -> bool:
    lfs = getattr(sibling, "lfs", None)
    if lfs is not None:
        return getattr(lfs, "sha256", None) == hashlib.sha256(data).hexdigest()
    return sibling.blob_id == git_blob_sha(data)


def push_files(
    repo_id: str,
    files: Mapping[str, bytes],
    *,
    commit_message: str,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
) -> "CommitInfo | None":
    """Make the repo hold ``files`` (``{path in repo: bytes}``) in ONE commit; ``None`` if it already does.

    See :meth:`Frontier.push_to_hub`: creates the repo if needed, commits only the changed files
    plus deletions of stale files under the managed folders (``schedules/``, ``heatmaps/``),
    with the head it compared against as parent; refuses a repo holding something other than
    an ECAD frontier; a failed commit changes nothing (and removes a repo this push created).
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi(token=token)
    branch = revision or "main"
    with hub_errors(repo_id, "push", branch):
        created = not api.repo_exists(repo_id)
        if created:
            api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.model_info(repo_id, revision=branch, files_metadata=True)
    remote = {s.rfilename: s for s in info.siblings or []}
    foreign = sorted(p for p in remote if p != ".gitattributes")
    if foreign and CONFIG_FILE not in remote:
        raise HubError(f"{repo_id} already holds files ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}) "
                       f"and is not an ECAD repo (no {CONFIG_FILE}); push to a new repo", path=repo_id)
    ops: list = [CommitOperationAdd(path, data) for path, data in files.items()
                 if path not in remote or not _same_file(remote[path], data)]
    stale = sorted(p for p in remote if p.startswith(tuple(f"{d}/" for d in MANAGED_DIRS)) and p not in files)
    ops += [CommitOperationDelete(p) for p in stale]
    if not ops:
        logger.info("%s@%s already holds this frontier; nothing to commit", repo_id, branch)
        return None
    added = sorted(op.path_in_repo for op in ops if isinstance(op, CommitOperationAdd))
    description = "\n".join([f"- update {p}" for p in added] + [f"- delete {p}" for p in stale])
    try:
        return api.create_commit(repo_id, ops, commit_message=commit_message, commit_description=description,
                                 revision=branch, create_pr=create_pr, parent_commit=info.sha)
    except hub_exceptions() as e:
        if created:  # leave no empty repo behind: it did not exist before this push
            try:
                api.delete_repo(repo_id)
            except hub_exceptions():
                pass
        state = "the repo was not created" if created else "the repo is unchanged"
        raise HubError(f"{repo_id}: push failed ({server_message(e)}); nothing was committed, {state}",
                       path=repo_id) from None
