"""Moving a frontier's files to and from a Hub repo, and what Hub failures become (:class:`HubError`).

Talks to :mod:`huggingface_hub` directly (imported lazily); the endpoint is whatever
``HF_ENDPOINT`` says. Knows files and repos, not frontiers: :meth:`Frontier.load` and
:meth:`Frontier.push_to_hub` (and :mod:`ecad_hub.hub`) build on it.

* :class:`RemoteRepo`: one commit of a repo, its file listing (with sizes) and bounded
  downloads of exactly the files asked for (:data:`MAX_FILE_BYTES` per file,
  :data:`MAX_TOTAL_BYTES` in all, checked against the listing *before* anything is downloaded);
* :func:`push_files`: everything that changed, in ONE ``HfApi.create_commit``; after a failure
  the repo's head is compared with what was pushed before anything is said or deleted, so the
  message tells truthfully whether the repo holds the old or the new files;
* :func:`hub_errors` / :func:`map_hub_error`: the one place huggingface_hub errors become
  one-line :class:`~ecad_hub.errors.HubError` messages.
"""

from __future__ import annotations

import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping

from ..errors import FrontierError, HubError, escape_control
from .layout import CONFIG_FILE, MANAGED_DIRS, is_safe_path

#: Largest file of a frontier repo ecad-hub downloads (JSON, model card, PNG); checked against the
#: repo listing before downloading. A 50-step FLUX schedule is about 0.3 MB.
MAX_FILE_BYTES = 1024 * 1024
#: Largest total a frontier load or pull downloads.
MAX_TOTAL_BYTES = 16 * 1024 * 1024

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

    # RuntimeError: a failed LFS upload ("Error while uploading 'x' to the Hub", the cause chained)
    return (HTTPError, EntryNotFoundError, OSError, ValueError, RuntimeError)


def server_message(err: BaseException) -> str:
    """The one-line reason of a huggingface_hub error (HTTP status and the server's message; the cause
    of a wrapped error, e.g. the HTTP error behind a failed LFS upload)."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    message = getattr(err, "server_message", None) or ""
    if not message:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    message = " ".join(escape_control(message).split())
    if len(message) > 200:
        message = message[:197] + "..."
    text = f"HTTP {status}: {message}" if status else message
    cause = err.__cause__
    if status is None and cause is not None and cause is not err and isinstance(err, RuntimeError):
        text = f"{text.rstrip('.')}: {server_message(cause)}"
    return text


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

def _commit_of(folder: Path) -> str | None:
    # hf_hub_download returns <cache>/models--ns--name/snapshots/<commit sha>/<path>
    name = folder.name
    return name if len(name) == 40 and all(c in "0123456789abcdef" for c in name) else None


@dataclass
class Snapshot:
    """Downloaded files of an ECAD repo: ``folder`` (the HF cache snapshot of ``commit``), the
    ``files`` fetched into it (paths relative to it) and a ``label`` for messages."""

    repo_id: str
    folder: Path
    commit: str | None
    files: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``repo_id@<short sha>`` (``repo_id`` when the commit is unknown)."""
        return f"{self.repo_id}@{self.commit[:7]}" if self.commit else self.repo_id


class RemoteRepo:
    """One commit of a Hub model repo: its file listing (with sizes) and bounded downloads.

    Online, the commit is resolved once (``revision``: branch, tag, sha or sha prefix) with the
    file listing (``HfApi.model_info(files_metadata=True)``), and every download is of that commit.
    :meth:`download` fetches exactly the files named (into the HF cache), each checked against the
    listing first: a file over :data:`MAX_FILE_BYTES`, or a total over :data:`MAX_TOTAL_BYTES`, is
    refused with :class:`~ecad_hub.errors.FrontierError` before anything is downloaded. Offline
    (``local_files_only`` or ``HF_HUB_OFFLINE``) the files come from the cache, same limits.
    """

    def __init__(self, repo_id: str, *, revision: str | None = None, token: str | bool | None = None,
                 cache_dir: str | os.PathLike | None = None, local_files_only: bool = False):
        from huggingface_hub import HfApi, constants

        self.repo_id = repo_id
        self.revision = revision
        self._token = token
        self._cache_dir = cache_dir
        self.offline = bool(local_files_only or constants.HF_HUB_OFFLINE)
        self.commit: str | None = None
        #: ``{path: size}`` of every file at the commit (``None`` offline).
        self.sizes: dict[str, int] | None = None
        self.snapshot = Snapshot(repo_id, Path(), None)
        self._total = 0
        if not self.offline:
            with hub_errors(repo_id, "download", revision):
                info = HfApi(token=token).model_info(repo_id, revision=revision, files_metadata=True)
            self.commit = info.sha
            self.sizes = {s.rfilename: int(s.size or 0) for s in info.siblings or []}
            self.snapshot.commit = info.sha

    @property
    def label(self) -> str:
        return self.snapshot.label

    def has(self, path: str) -> bool:
        """Whether the commit holds ``path`` (offline: whether the cache does)."""
        if self.sizes is not None:
            return path in self.sizes
        return self._cached(path) is not None

    def _cached(self, path: str) -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        try:
            found = try_to_load_from_cache(self.repo_id, path, cache_dir=self._cache_dir,
                                           revision=self.commit or self.revision)
        except (ValueError, OSError):
            return None
        return Path(found) if isinstance(found, str) else None

    def download(self, paths: Iterable[str], *, optional: bool = False) -> Path:
        """Fetch ``paths`` (relative paths in the repo) into the cache snapshot; returns its folder.

        Every size is checked before the first download. A path the commit lacks raises
        :class:`~ecad_hub.errors.FrontierError`, or is skipped with ``optional``.
        """
        from huggingface_hub import hf_hub_download

        wanted = []
        total = self._total
        for path in dict.fromkeys(paths):
            if not is_safe_path(path):
                raise FrontierError(f"{self.label}: refusing to download {path!r}: not a file of the frontier layout",
                                    path=self.repo_id)
            if path in self.snapshot.files:
                continue
            if self.sizes is not None:
                if path not in self.sizes:
                    if optional:
                        continue
                    raise FrontierError(f"{self.label}: {path} is missing", path=self.repo_id)
                size = self.sizes[path]
                if size > MAX_FILE_BYTES:
                    raise FrontierError(f"{self.label}/{path}: {_mb(size)}, larger than the {_mb(MAX_FILE_BYTES)} limit "
                                        f"for a frontier file; nothing was downloaded", path=self.repo_id)
                total += size
                if total > MAX_TOTAL_BYTES:
                    raise FrontierError(f"{self.label}: its frontier files exceed the {_mb(MAX_TOTAL_BYTES)} limit "
                                        f"in all (at {path}); nothing more was downloaded", path=self.repo_id)
            wanted.append(path)
        self._total = total
        for path in wanted:
            if self.offline and optional and self._cached(path) is None:
                continue
            with hub_errors(self.repo_id, "download", self.revision):
                local = Path(hf_hub_download(self.repo_id, path, revision=self.commit or self.revision,
                                             token=self._token, cache_dir=self._cache_dir,
                                             local_files_only=self.offline))
            folder = local
            for _ in PurePosixPath(path).parts:
                folder = folder.parent
            if self.offline:
                size = local.stat().st_size
                self._total += size
                if size > MAX_FILE_BYTES or self._total > MAX_TOTAL_BYTES:
                    raise FrontierError(f"{self.label}/{path}: larger than the frontier size limits "
                                        f"({_mb(MAX_FILE_BYTES)} a file, {_mb(MAX_TOTAL_BYTES)} in all)",
                                        path=self.repo_id)
            if not self.snapshot.files and not self.offline:
                self._remember_ref(folder)
            self.snapshot.folder = folder
            if self.snapshot.commit is None:
                self.snapshot.commit = self.commit = _commit_of(folder)
            self.snapshot.files.append(path)
        return self.snapshot.folder

    def _remember_ref(self, folder: Path) -> None:
        """Record in the cache which commit the branch (or tag) named by ``revision`` resolved to, as
        ``snapshot_download`` does, so that a later offline load of that revision finds these files."""
        rev = self.revision or "main"
        if self.commit is None or rev == self.commit or self.commit.startswith(rev) or ".." in rev.split("/"):
            return
        ref = folder.parent.parent / "refs" / rev
        try:
            if not ref.is_file() or ref.read_text().strip() != self.commit:
                ref.parent.mkdir(parents=True, exist_ok=True)
                ref.write_text(self.commit)
        except OSError:  # only an optimisation for offline use
            pass


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


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


def _identity(sibling) -> tuple:
    lfs = getattr(sibling, "lfs", None)
    return ("lfs", getattr(lfs, "sha256", None)) if lfs is not None else ("git", sibling.blob_id)


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
    an ECAD frontier.

    A failure leaves the repo exactly as it was or exactly as asked, and the
    :class:`~ecad_hub.errors.HubError` says which: after a failed (or dropped) request the repo's
    head is compared with what was being pushed. A commit the Hub applied before the connection
    dropped is a success (logged as a warning); a repo this push created is deleted again only
    when it is certain that it holds nothing, and the message says whether that worked.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    api = HfApi(token=token)
    branch = revision or "main"

    def failed(err: BaseException, outcome: str) -> HubError:
        return HubError(f"{map_hub_error(err, repo_id, 'push', branch)}; {outcome}", path=repo_id)

    try:
        existed = api.repo_exists(repo_id)
    except hub_exceptions() as e:
        raise failed(e, "nothing was changed") from None
    created = False
    if not existed:
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
        except hub_exceptions() as e:
            raise failed(e, "nothing was committed, " + _remove_created_repo(api, repo_id)) from None
        created = True
    try:
        info = api.model_info(repo_id, revision=branch, files_metadata=True)
    except hub_exceptions() as e:
        state = _remove_created_repo(api, repo_id) if created else "the repo is unchanged"
        raise failed(e, f"nothing was committed, {state}") from None
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
        error = e
    # The commit failed, or its answer was lost: look at the repo before saying anything.
    kept = {p: remote[p] for p in remote if p not in files and p not in stale}
    state, detail, pr_ref = _state_after_failure(api, repo_id, branch, info.sha, files, kept, create_pr)
    if state == "new":
        from huggingface_hub import CommitInfo

        logger.warning("%s: the Hub applied the commit %s although the push reported a failure (%s); the repo "
                       "holds this frontier", repo_id, detail[:7], server_message(error))
        base = f"{endpoint()}/{repo_id}"
        pr_url = f"{base}/discussions/{pr_ref.rsplit('/', 1)[-1]}" if pr_ref else None
        return CommitInfo(commit_url=f"{base}/commit/{detail}", commit_message=commit_message,
                          commit_description=description, oid=detail, _endpoint=endpoint(), pr_url=pr_url)
    if state == "old":
        outcome = "nothing was committed, " + (_remove_created_repo(api, repo_id) if created else
                                               "the repo is unchanged")
    elif state == "other":
        outcome = (f"nothing was committed by this push, but {branch} moved to {detail[:7]} meanwhile "
                   f"(another commit); push again")
    else:
        where = f"{endpoint()}/{repo_id}/commits/{branch}"
        kept_note = " (the repo this push created was kept)" if created else ""
        outcome = (f"could not check whether the Hub applied the commit ({detail}): {repo_id} holds either "
                   f"the old or the new files{kept_note}; see {where}")
    raise failed(error, outcome) from None


def _pr_number(ref: str) -> int:
    tail = ref.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _tree_is(siblings, files: Mapping[str, bytes], kept: Mapping) -> bool:
    """Whether a listing (``RepoSibling`` s with metadata) is exactly ``files`` plus the unchanged ``kept`` files."""
    found = {s.rfilename: s for s in siblings or []}
    if set(found) != set(files) | set(kept):
        return False
    return (all(_same_file(found[p], data) for p, data in files.items())
            and all(_identity(found[p]) == _identity(s) for p, s in kept.items()))


def _state_after_failure(api, repo_id: str, branch: str, parent: str, files: Mapping[str, bytes], kept: Mapping,
                         create_pr: bool) -> tuple[str, str, str | None]:
    """After a failed commit: ``(state, sha or reason, pull request ref)``.

    ``state`` is ``"old"`` (the head is still the parent), ``"new"`` (the head, or with
    ``create_pr`` one of the newest pull requests, holds exactly the pushed files), ``"other"``
    (the head moved to another commit) or ``"unknown"`` (the repo could not be read).
    """
    try:
        head = api.model_info(repo_id, revision=branch, files_metadata=True)
        if create_pr:
            refs = api.list_repo_refs(repo_id, include_pull_requests=True)
            for ref in sorted(refs.pull_requests or [], key=lambda r: _pr_number(r.ref), reverse=True)[:5]:
                pr = api.model_info(repo_id, revision=ref.ref, files_metadata=True)
                if _tree_is(pr.siblings, files, kept):
                    return "new", pr.sha, ref.ref
    except hub_exceptions() as e:
        return "unknown", server_message(e), None
    if head.sha == parent:
        return "old", head.sha, None
    if not create_pr and _tree_is(head.siblings, files, kept):
        return "new", head.sha, None
    return "other", head.sha, None


def _remove_created_repo(api, repo_id: str) -> str:
    """Delete the repo this push created (it holds nothing of ours); says truthfully what happened."""
    try:
        api.delete_repo(repo_id, missing_ok=True)
        return "the repo this push created was deleted again"
    except hub_exceptions() as e:
        reason = server_message(e)
    try:
        still_there = api.repo_exists(repo_id)
    except hub_exceptions():
        return (f"and the repo this push created may still exist (deleting it failed: {reason}); "
                f"delete it on the Hub or push again")
    if not still_there:
        return "the repo this push created was deleted again"
    return f"but the repo this push created (empty) could not be deleted ({reason}); delete it on the Hub or push again"
