"""An in-memory Hugging Face Hub API double, served over real HTTP on 127.0.0.1.

The real ``huggingface_hub`` client (``HfApi``, ``hf_hub_download``, ``snapshot_download``,
``ModelCard.push_to_hub``, ...) talks to it unchanged once ``HF_ENDPOINT`` points here; see
``tests/conftest.py``. The wire formats below were checked against huggingface_hub 2.4
(``hf_api.py``, ``_commit_api.py``, ``file_download.py``, ``_snapshot_download.py``,
``utils/_http.py``, ``utils/_pagination.py``).

Endpoints served (``{type}`` is ``models``, ``datasets`` or ``spaces``; repo ids are ``ns/name``)::

    GET    /api/whoami-v2
    GET    /api/agent-harnesses                       empty registry (user-agent agent detection)
    POST   /api/repos/create                          409 + {"url"} if it exists (exist_ok reads it)
    DELETE /api/repos/delete
    POST   /api/validate-yaml                         README front matter must be a YAML mapping
    GET    /api/{type}                                filter (tags, AND), search, author, sort,
                                                      limit, full, cardData, expand; Link paging
    GET    /api/{type}/{repo}                         repo info (sha, siblings, tags, cardData, ...)
    GET    /api/{type}/{repo}/revision/{rev}          same, at a revision; ``blobs=1`` adds sizes
    GET    /api/{type}/{repo}/tree/{rev}[/{path}]     recursive, expand (lastCommit); Link paging
    POST   /api/{type}/{repo}/paths-info/{rev}
    GET    /api/{type}/{repo}/refs                    include_prs
    GET    /api/{type}/{repo}/commits/{rev}           Link paging
    POST   /api/{type}/{repo}/preupload/{rev}         uploadMode "lfs" for .gitattributes LFS
                                                      patterns, files >= 10 MB and, with
                                                      ``binary_as_lfs``, binary samples (a NUL
                                                      byte); else "regular"
    POST   /[{type}/]{repo}.git/info/lfs/objects/batch  LFS batch API (basic transfer): upload +
                                                      verify actions, none for stored objects
    PUT    /lfs-objects/{type}/{repo}/{oid}           LFS upload (sha256 and size checked)
    POST   /lfs-verify/{type}/{repo}                  LFS verify
    POST   /api/{type}/{repo}/commit/{rev}            NDJSON header/file/lfsFile/deletedFile/
                                                      deletedFolder; create_pr=1 -> refs/pr/N;
                                                      parentCommit
    POST   /api/{type}/{repo}/discussions             pull requests only open a refs/pr/N ref
    GET    /api/{type}/{repo}/discussions/{num}
    HEAD   /[{type}/]{repo}/resolve/{rev}/{path}      X-Repo-Commit, ETag (git blob sha1),
    GET    /[{type}/]{repo}/resolve/{rev}/{path}      Content-Length, Range requests

Revisions may be branch names (only ``main`` exists unless seeded), ``refs/pr/N`` (URL-encoded or
not), full commit shas or unique sha prefixes of 7+ characters. Errors carry the ``X-Error-Code``
header the client maps to ``RepositoryNotFoundError`` / ``RevisionNotFoundError`` /
``RemoteEntryNotFoundError`` (``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``).

Commits are atomic: the whole NDJSON payload is parsed and validated, then the new tree is built
and the ref moved under one lock. Commit shas are sha1 digests of (per-repo salt, parent, tree,
message), so every commit keeps its full file tree and ``revision=<sha>`` works forever. A new
repo starts with an "initial commit" holding ``.gitattributes``, as on the real Hub.

Model tags are derived like the Hub does from the README.md front matter: ``tags``,
``library_name``, ``pipeline_tag``, ``license:<x>``, ``dataset:<x>``, languages, and
``base_model:<id>`` plus ``base_model:<relation>:<id>`` (relation from ``base_model_relation``,
else ``adapter`` if ``adapter_config.json`` exists, ``merge`` for several base models, else
``finetune``).

Deliberately NOT implemented:

* Xet uploads/downloads: resolve never sends ``X-Xet-Hash`` / ``Link: xet-auth`` and the LFS batch
  API only offers the ``basic`` transfer, so the client stays on plain HTTP (``HF_HUB_DISABLE_XET=1``
  is also set by conftest). LFS files are served directly by resolve (``X-Linked-Etag`` /
  ``X-Linked-Size`` set), without the CDN redirect; multipart LFS uploads are not offered.
* Auth beyond a bearer-token check: any accepted token is user ``test-user`` (member of org
  ``test-org``) and may write to any namespace; a wrong token gets 401 everywhere; private repos
  are invisible (401 + RepoNotFound) without a valid token. No gated repos, scopes or rate limits.
* Tags (git tags), branch creation, merges, PR comments/status changes, super-squash,
  ``.gitignore`` evaluation (``shouldIgnore`` is always false), LFS copy, Spaces runtime,
  datasets-server, inference, telemetry, and repo settings. Unknown routes answer 404.
* ``downloads`` counts GET ``/resolve`` requests for the repo; ``likes``/``trendingScore`` stay 0.

Fault injection (:meth:`HubDouble.fail_next`): the next matching requests are answered with an
error status without touching any state (``mode="respond"``), or the connection is closed without
an answer (``"drop"``), or the request is carried out (e.g. the commit applied) and *then* answered
with an error status (``"after"``) or dropped (``"after-drop"``): the ambiguous failures a client
must check before it says what happened.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode

import yaml  # a hard dependency of huggingface_hub

#: Token the double accepts by default (conftest exports it as ``HF_TOKEN``).
FAKE_TOKEN = "hf_hubdouble_FAKE_test_token_0123456789"
USER = "test-user"
ORG = "test-org"

INITIAL_GITATTRIBUTES = (
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.h5 filter=lfs diff=lfs merge=lfs -text\n"
    b"*.onnx filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pth filter=lfs diff=lfs merge=lfs -text\n"
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
)

_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_SHA_PREFIX = re.compile(r"[0-9a-f]{7,40}")
_YAML_BLOCK = re.compile(r"\A\s*---[\r\n]+([\S\s]*?)[\r\n]+---(?:\r\n|\n|$)")
_LIST_DEFAULT = ("_id", "id", "modelId", "likes", "trendingScore", "private", "downloads", "tags",
                 "pipeline_tag", "library_name", "createdAt")
_LIST_FULL = _LIST_DEFAULT + ("author", "sha", "lastModified", "siblings", "gated", "disabled")
_SORT_KEYS = {"downloads", "likes", "lastModified", "createdAt", "trendingScore", "id"}


def git_blob_sha(data: bytes) -> str:
    """The git object id of a blob: what the Hub reports as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HubError(Exception):
    """Turned into an error response; ``code`` becomes the ``X-Error-Code`` header."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}  # more fields for the JSON error body


def _repo_not_found(repo_id: str, status: int = 404) -> HubError:
    return HubError(status, f"Repository not found: {repo_id}", "RepoNotFound")


@dataclass(frozen=True)
class Commit:
    """One commit and the complete file tree it points to (path -> bytes, read-only)."""

    sha: str
    parent: str | None
    title: str
    message: str
    date: str
    files: Mapping[str, bytes]
    lfs: frozenset = frozenset()  # paths stored as LFS objects (their bytes are in ``files`` too)


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str = field(default_factory=_now)
    salt: str = field(default_factory=lambda: uuid.uuid4().hex)
    refs: dict[str, str] = field(default_factory=dict)  # "main", "refs/pr/1", ... -> sha
    commits: dict[str, Commit] = field(default_factory=dict)
    discussions: dict[int, dict] = field(default_factory=dict)
    downloads: int = 0
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes (uploaded, maybe uncommitted)

    def resolve(self, revision: str) -> str:
        """Branch / PR ref / full sha / unique sha prefix -> sha, else RevisionNotFound."""
        if revision in self.refs:
            return self.refs[revision]
        if _SHA_PREFIX.fullmatch(revision):
            hits = [sha for sha in self.commits if sha.startswith(revision)]
            if len(hits) == 1:
                return hits[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def history(self, sha: str) -> list[Commit]:
        """Commits reachable from ``sha``, newest first."""
        out = []
        while sha is not None:
            commit = self.commits[sha]
            out.append(commit)
            sha = commit.parent
        return out

    def new_commit(self, parent: str | None, files: dict[str, bytes], title: str, message: str,
                   lfs: Iterable[str] = ()) -> Commit:
        lfs = frozenset(p for p in lfs if p in files)
        tree = "".join(f"{p}\0{git_blob_sha(files[p])}{' lfs' if p in lfs else ''}\n" for p in sorted(files))
        seed = f"{self.salt}\n{parent}\n{tree}\n{title}\n{message}".encode()
        commit = Commit(hashlib.sha1(seed).hexdigest(), parent, title, message, _now(),
                        MappingProxyType(dict(files)), lfs)
        self.commits.setdefault(commit.sha, commit)
        return self.commits[commit.sha]

    def open_pull_request(self, title: str, description: str, base: str, head_sha: str) -> int:
        num = max(self.discussions, default=0) + 1
        self.discussions[num] = {"num": num, "title": title, "description": description,
                                 "base": base, "createdAt": _now()}
        self.refs[f"refs/pr/{num}"] = head_sha
        return num


class RequestRecord(NamedTuple):
    """One logged request. ``path`` is percent-decoded; ``query`` is ``parse_qs`` output."""

    method: str
    path: str
    query: dict[str, list[str]]


@dataclass
class _FailureRule:
    method: str
    pattern: re.Pattern
    status: int
    remaining: int
    code: str | None
    message: str
    mode: str = "respond"


class _DropConnection(Exception):
    """Close the connection without sending a response (a network failure, as the client sees it)."""


FAILURE_MODES = ("respond", "drop", "after", "after-drop")
#: Files the real Hub stores with LFS whatever .gitattributes says (it refuses them as regular files).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024


@dataclass
class _Request:
    method: str
    raw_path: str
    segs: list[str]
    query: dict[str, list[str]]
    headers: Any
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def flag(self, name: str) -> bool:
        return (self.arg(name) or "").lower() in ("1", "true")

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as e:
            raise HubError(400, f"Invalid JSON body: {e}") from e


# --------------------------------------------------------------------------- card metadata


def card_metadata(files: Mapping[str, bytes]) -> dict | None:
    """The YAML front matter of README.md as a dict, or None (no README / no or invalid YAML)."""
    readme = files.get("README.md")
    if readme is None:
        return None
    match = _YAML_BLOCK.match(readme.decode("utf-8", "replace"))
    if match is None:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, (str, int, float)) else list(value)


def derive_tags(card: dict | None, files: Mapping[str, bytes]) -> list[str]:
    """Repo tags as the Hub derives them from card metadata (see module docstring)."""
    card = card or {}
    tags = [str(t) for t in _as_list(card.get("tags"))]
    for key in ("library_name", "pipeline_tag"):
        if card.get(key):
            tags.append(str(card[key]))
    tags += [str(lang) for lang in _as_list(card.get("language"))]
    tags += [f"dataset:{d}" for d in _as_list(card.get("datasets"))]
    tags += [f"license:{lic}" for lic in _as_list(card.get("license"))]
    base_models = [str(b) for b in _as_list(card.get("base_model"))]
    relation = card.get("base_model_relation") or (
        "adapter" if "adapter_config.json" in files else "merge" if len(base_models) > 1 else "finetune")
    for base in base_models:
        tags += [f"base_model:{base}", f"base_model:{relation}:{base}"]
    return list(dict.fromkeys(tags))


# --------------------------------------------------------------------------- the double


class HubDouble:
    """In-memory Hub with an HTTP front end. All state lives behind one lock."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, tokens: Iterable[str] = (FAKE_TOKEN,),
                 page_size: int = 1000):
        self.tokens = set(tokens)
        #: Items per page for paginated listings (models, tree, commits); lower it to test paging.
        self.page_size = self._default_page_size = page_size
        #: Store binary files (a NUL byte in the first 512) with LFS, as the real Hub does; off by default
        #: (then only .gitattributes patterns and files >= 10 MB go to LFS). ``reset()`` turns it off.
        self.binary_as_lfs = False
        #: Every request received, in order. ``hub.requests.clear()`` (or ``clear_requests()``) empties it.
        self.requests: list[RequestRecord] = []
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._failures: list[_FailureRule] = []
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """Base URL to use as ``HF_ENDPOINT``, e.g. ``http://127.0.0.1:40123``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubDouble:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="hub-double", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> HubDouble:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- test API ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all repos, pending injected failures and the request log; restore ``page_size``."""
        with self._lock:
            self.page_size = self._default_page_size
            self.binary_as_lfs = False
            self._repos.clear()
            self._failures.clear()
            self.requests.clear()

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def fail_next(self, method: str, path_regex: str, status: int = 500, times: int = 1, *,
                  error_code: str | None = None, message: str = "Injected failure", mode: str = "respond") -> None:
        """Fail the next ``times`` requests matching ``method`` ("*" = any) and ``re.search(path_regex,
        decoded_path)``. Rules are used in the order added.

        ``mode``: ``"respond"`` answers ``status`` without touching any state; ``"drop"`` closes the
        connection without an answer (nothing done); ``"after"`` carries the request out (state
        changed, e.g. the commit applied) and then answers ``status``; ``"after-drop"`` carries it
        out and then closes the connection without an answer.
        """
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {FAILURE_MODES}, got {mode!r}")
        with self._lock:
            self._failures.append(_FailureRule(method.upper(), re.compile(path_regex), status, times,
                                               error_code, message, mode))

    def pending_failures(self) -> int:
        """How many injected failures have not been used yet."""
        with self._lock:
            return sum(r.remaining for r in self._failures)

    def downloaded(self, repo_id: str | None = None, repo_type: str = "model") -> list[str]:
        """File paths fetched with GET ``/resolve`` (in request order), optionally for one repo only."""
        prefix = _URL_PREFIX[repo_type]
        out = []
        for rec in list(self.requests):
            parts = rec.path.lstrip("/").split("/")
            if prefix and parts[:1] == [prefix.rstrip("/")]:
                parts = parts[1:]
            elif not prefix and parts[:1] and parts[0] in ("datasets", "spaces"):
                continue
            if rec.method != "GET" or len(parts) < 5 or parts[2] != "resolve":
                continue
            if repo_id is not None and "/".join(parts[:2]) != repo_id:
                continue
            rest = parts[3:]
            rest = rest[3:] if rest[:2] == ["refs", "pr"] else rest[1:]
            out.append("/".join(rest))
        return out

    def repo_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The file tree at ``revision`` (branch, ``refs/pr/N`` or sha) as ``{path: bytes}``."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return dict(repo.commits[repo.resolve(revision)].files)

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[Commit]:
        """History reachable from ``revision``, newest first (the initial commit is last)."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return repo.history(repo.resolve(revision))

    def refs(self, repo_id: str, repo_type: str = "model") -> dict[str, str]:
        """``{"main": sha, "refs/pr/1": sha, ...}``."""
        with self._lock:
            return dict(self._repo(repo_type, repo_id).refs)

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def seed(self, repo_id: str, files: Mapping[str, bytes | str], *, message: str = "Seed files",
             revision: str = "main", private: bool = False, repo_type: str = "model") -> str:
        """Create the repo if needed and commit ``files`` on branch ``revision`` (a new branch starts
        from ``main``) without HTTP. Returns the new commit sha. Handy to stage "existing" Hub content."""
        ops = [("add", path, data.encode() if isinstance(data, str) else bytes(data))
               for path, data in files.items()]
        with self._lock:
            if (repo_type, repo_id) not in self._repos:
                self._create_repo(repo_type, repo_id, private)
            repo = self._repo(repo_type, repo_id)
            parent = repo.refs.get(revision, repo.refs["main"])
            base = repo.commits[parent]
            files = _apply_ops(base.files, ops)
            lfs = {p for p in base.lfs if p in files and p not in files_added(ops)}
            lfs |= {op[1] for op in ops if _stored_as_lfs(op[1], op[2], files, self.binary_as_lfs)}
            commit = repo.new_commit(parent, files, message, "", lfs)
            repo.refs[revision] = commit.sha
            return commit.sha

    # -- state helpers (call with the lock held) ------------------------------------------

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        try:
            return self._repos[(repo_type, repo_id)]
        except KeyError:
            raise _repo_not_found(repo_id) from None

    def _create_repo(self, repo_type: str, repo_id: str, private: bool) -> _Repo:
        repo = _Repo(repo_type, repo_id, private)
        initial = repo.new_commit(None, {".gitattributes": INITIAL_GITATTRIBUTES}, "initial commit", "")
        repo.refs["main"] = initial.sha
        self._repos[(repo_type, repo_id)] = repo
        return repo

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.endpoint}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    # -- HTTP plumbing --------------------------------------------------------------------

    def _handle(self, req: _Request) -> tuple[int, dict, Any]:
        """Log, apply failure injection, route. Returns (status, headers, body)."""
        path = "/" + "/".join(req.segs)
        fired = None
        with self._lock:
            self.requests.append(RequestRecord(req.method, path, req.query))
            for rule in self._failures:
                if rule.remaining > 0 and rule.method in ("*", req.method) and rule.pattern.search(path):
                    rule.remaining -= 1
                    fired = rule
                    break
            self._failures = [r for r in self._failures if r.remaining > 0]
        if fired is not None and fired.mode == "respond":
            raise HubError(fired.status, fired.message, fired.code)
        if fired is not None and fired.mode == "drop":
            raise _DropConnection()
        result = self._route(req)
        if fired is not None and fired.mode == "after":
            raise HubError(fired.status, fired.message, fired.code)
        if fired is not None and fired.mode == "after-drop":
            raise _DropConnection()
        return result

    def _authenticated(self, req: _Request) -> bool:
        """True with a valid bearer token, False with none; 401 for a wrong one."""
        auth = req.headers.get("Authorization") or ""
        if not auth:
            return False
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return True

    def _require_auth(self, req: _Request) -> None:
        if not self._authenticated(req):
            raise HubError(401, "You must be authenticated to access this resource (Authorization header).")

    def _readable_repo(self, req: _Request, repo_type: str, repo_id: str) -> _Repo:
        authed = self._authenticated(req)
        repo = self._repo(repo_type, repo_id)
        if repo.private and not authed:
            raise _repo_not_found(repo_id, status=401)
        return repo

    def _route(self, req: _Request) -> tuple[int, dict, Any]:
        s, m = req.segs, req.method
        if s[:1] == ["api"]:
            rest = s[1:]
            simple = {
                ("GET", "whoami-v2"): self._whoami,
                ("GET", "agent-harnesses"): lambda r: (200, {}, {"standardEnvVars": [], "harnesses": {}}),
                ("POST", "validate-yaml"): self._validate_yaml,
                ("POST", "repos/create"): self._create_repo_route,
                ("DELETE", "repos/delete"): self._delete_repo_route,
            }
            if (m, "/".join(rest)) in simple:
                return simple[(m, "/".join(rest))](req)
            if len(rest) == 1 and rest[0] in _TYPES and m == "GET":
                return self._list_repos(req, _TYPES[rest[0]])
            if len(rest) >= 3 and rest[0] in _TYPES:
                return self._repo_api(req, _TYPES[rest[0]], f"{rest[1]}/{rest[2]}", rest[3:])
        elif s[:1] == ["lfs-objects"] and len(s) == 5 and s[1] in _URL_PREFIX and m == "PUT":
            return self._lfs_upload(req, s[1], f"{s[2]}/{s[3]}", s[4])
        elif s[:1] == ["lfs-verify"] and len(s) == 4 and s[1] in _URL_PREFIX and m == "POST":
            return self._lfs_verify(req, s[1], f"{s[2]}/{s[3]}")
        else:
            typed = bool(s) and s[0] in ("datasets", "spaces")  # model URLs carry no type prefix
            repo_type, parts = (_TYPES[s[0]], s[1:]) if typed else ("model", s)
            if (len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]
                    and m == "POST"):
                return self._lfs_batch(req, repo_type, f"{parts[0]}/{parts[1][:-4]}")
            if len(parts) >= 5 and parts[2] == "resolve" and m in ("GET", "HEAD"):
                revision, path = _split_revision(parts[3:])
                return self._resolve(req, repo_type, f"{parts[0]}/{parts[1]}", revision, path)
        raise HubError(404, f"HubDouble does not implement {m} {req.raw_path}")

    def _repo_api(self, req: _Request, repo_type: str, repo_id: str, rest: list[str]) -> tuple[int, dict, Any]:
        m = req.method
        if not rest and m == "GET":
            return self._info(req, repo_type, repo_id, None)
        action, args = rest[0] if rest else "", rest[1:]
        if action == "refs" and not args and m == "GET":
            return self._list_refs(req, repo_type, repo_id)
        if action == "discussions" and not args and m == "POST":
            return self._create_discussion(req, repo_type, repo_id)
        if action == "discussions" and len(args) == 1 and args[0].isdigit() and m == "GET":
            return self._discussion(req, repo_type, repo_id, int(args[0]))
        if not args:
            raise HubError(404, f"HubDouble does not implement {m} {req.raw_path}")
        revision, path = _split_revision(args)
        handlers = {
            ("GET", "revision"): lambda: self._info(req, repo_type, repo_id, revision),
            ("GET", "tree"): lambda: self._tree(req, repo_type, repo_id, revision, path),
            ("POST", "paths-info"): lambda: self._paths_info(req, repo_type, repo_id, revision),
            ("GET", "commits"): lambda: self._list_commits(req, repo_type, repo_id, revision),
            ("POST", "preupload"): lambda: self._preupload(req, repo_type, repo_id, revision),
            ("POST", "commit"): lambda: self._commit(req, repo_type, repo_id, revision),
        }
        if (m, action) not in handlers or (path and action != "tree"):
            raise HubError(404, f"HubDouble does not implement {m} {req.raw_path}")
        return handlers[(m, action)]()

    # -- routes: account / misc -----------------------------------------------------------

    def _whoami(self, req: _Request) -> tuple[int, dict, Any]:
        self._require_auth(req)
        return 200, {}, {
            "type": "user", "id": "0" * 24, "name": USER, "fullname": "Test User",
            "email": f"{USER}@example.com", "emailVerified": True, "isPro": False, "canPay": False,
            "orgs": [{"type": "org", "name": ORG, "fullname": "Test Org", "roleInOrg": "admin"}],
            "auth": {"type": "access_token", "accessToken": {"displayName": "hub-double", "role": "write"}},
        }

    def _validate_yaml(self, req: _Request) -> tuple[int, dict, Any]:
        content = str(req.json().get("content", ""))
        errors = []
        match = _YAML_BLOCK.match(content)
        if match is not None:
            try:
                if not isinstance(yaml.safe_load(match.group(1)) or {}, dict):
                    errors.append({"message": "YAML front matter must be a mapping"})
            except yaml.YAMLError as e:
                errors.append({"message": f"Invalid YAML: {e}"})
        if "text/plain" in (req.headers.get("Accept") or ""):  # what ModelCard.validate() asks for
            return (400, {}, "\n".join(e["message"] for e in errors)) if errors else (200, {}, "")
        return (400 if errors else 200), {}, {"errors": errors, "warnings": []}

    # -- routes: repos --------------------------------------------------------------------

    def _create_repo_route(self, req: _Request) -> tuple[int, dict, Any]:
        self._require_auth(req)
        body = req.json()
        repo_type = body.get("type") or "model"
        if repo_type not in _URL_PREFIX or not body.get("name"):
            raise HubError(400, f"Invalid repo type or name: {body!r}")
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        private = body.get("visibility", "public") == "private" or bool(body.get("private"))
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                # The client reads `url` from this 409 body when create_repo(exist_ok=True).
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}",
                               extra={"url": self._repo_url(self._repos[(repo_type, repo_id)])})
            repo = self._create_repo(repo_type, repo_id, private)
            return 200, {}, {"url": self._repo_url(repo), "name": repo_id, "id": repo.salt[:24]}

    def _delete_repo_route(self, req: _Request) -> tuple[int, dict, Any]:
        self._require_auth(req)
        body = req.json()
        repo_id = f"{body.get('organization') or USER}/{body.get('name')}"
        with self._lock:
            self._repo(body.get("type") or "model", repo_id)
            del self._repos[(body.get("type") or "model", repo_id)]
        return 200, {}, {}

    def _info(self, req: _Request, repo_type: str, repo_id: str, revision: str | None) -> tuple[int, dict, Any]:
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            sha = repo.resolve(revision or "main")
            return 200, {}, self._describe(repo, sha, blobs=req.flag("blobs"))

    def _describe(self, repo: _Repo, sha: str, *, blobs: bool = False) -> dict:
        """The repo-info JSON the Hub returns (ModelInfo's camelCase keys)."""
        commit = repo.commits[sha]
        card = card_metadata(commit.files)
        siblings = [{"rfilename": p} for p in sorted(commit.files)]
        if blobs:
            for s in siblings:
                data = commit.files[s["rfilename"]]
                if s["rfilename"] in commit.lfs:
                    pointer = _lfs_pointer(data)
                    s.update(size=len(data), blobId=git_blob_sha(pointer),
                             lfs={"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                  "pointerSize": len(pointer)})
                else:
                    s.update(size=len(data), blobId=git_blob_sha(data))
        info: dict[str, Any] = {
            "_id": repo.salt[:24], "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": sha,
            "lastModified": commit.date, "createdAt": repo.created_at, "private": repo.private,
            "gated": False, "disabled": False, "downloads": repo.downloads, "likes": 0, "trendingScore": 0,
            "tags": derive_tags(card, commit.files), "siblings": siblings, "spaces": [],
            "usedStorage": sum(len(d) for d in commit.files.values()),
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        if card is not None:
            info["cardData"] = card
            for key in ("library_name", "pipeline_tag"):
                if card.get(key):
                    info[key] = card[key]
        return info

    def _list_repos(self, req: _Request, repo_type: str) -> tuple[int, dict, Any]:
        authed = self._authenticated(req)
        filters = req.query.get("filter", [])
        searches = [s.lower() for s in req.query.get("search", [])]
        author, sort = req.arg("author"), req.arg("sort")
        if sort is not None and sort not in _SORT_KEYS:
            raise HubError(400, f"Invalid sort key: {sort}")
        expand = req.query.get("expand", []) + req.query.get("expand[]", [])
        if expand and (req.flag("full") or req.flag("cardData")):
            raise HubError(400, "expand cannot be combined with full or cardData")
        keys = ("_id", "id", *expand) if expand else _LIST_FULL if req.flag("full") else _LIST_DEFAULT
        if req.flag("cardData"):
            keys = (*keys, "cardData")
        with self._lock:
            infos = [self._describe(repo, repo.refs["main"]) for repo in self._repos.values()
                     if repo.repo_type == repo_type and (authed or not repo.private)]
        infos = [info for info in infos
                 if (not author or info["author"] == author)
                 and all(s in info["id"].lower() for s in searches)
                 and all(f in info["tags"] for f in filters)]
        if sort is not None:  # the Hub sorts descending
            infos.sort(key=lambda info: info["id"], reverse=False)
            infos.sort(key=lambda info: info[sort] or 0, reverse=sort != "id")
        limit = req.arg("limit")
        if limit is not None:
            infos = infos[: int(limit)]
        return self._page(req, [{k: info[k] for k in keys if k in info} for info in infos])

    def _page(self, req: _Request, items: list) -> tuple[int, dict, Any]:
        """Cursor pagination with a GitHub-style ``Link: <...>; rel="next"`` header."""
        start = int(req.arg("cursor", "0"))
        end = start + self.page_size
        headers = {}
        if end < len(items):
            query = {k: v for k, v in req.query.items() if k != "cursor"}
            query["cursor"] = [str(end)]
            headers["Link"] = f'<{self.endpoint}{req.raw_path}?{urlencode(query, doseq=True)}>; rel="next"'
        return 200, headers, items[start:end]

    def _list_refs(self, req: _Request, repo_type: str, repo_id: str) -> tuple[int, dict, Any]:
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": sha}
                        for n, sha in repo.refs.items() if not n.startswith("refs/")]
            prs = [{"name": n, "ref": n, "targetCommit": sha} for n, sha in repo.refs.items()
                   if n.startswith("refs/pr/")]
        body = {"branches": branches, "converts": [], "tags": []}
        if req.flag("include_prs"):
            body["pullRequests"] = prs
        return 200, {}, body

    def _list_commits(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> tuple[int, dict, Any]:
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            history = repo.history(repo.resolve(revision))
        items = [{"id": c.sha, "title": c.title, "message": c.message, "date": c.date,
                  "authors": [{"user": USER, "avatar": ""}]} for c in history]
        return self._page(req, items)

    # -- routes: files --------------------------------------------------------------------

    def _tree_entries(self, repo: _Repo, sha: str, *, expand: bool) -> dict[str, dict]:
        """Every file and folder at ``sha`` as tree-API entries keyed by path."""
        files = repo.commits[sha].files
        entries: dict[str, dict] = {}
        for path, data in files.items():
            if path in repo.commits[sha].lfs:
                pointer = _lfs_pointer(data)
                entries[path] = {"type": "file", "oid": git_blob_sha(pointer), "size": len(data), "path": path,
                                 "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                         "pointerSize": len(pointer)}}
            else:
                entries[path] = {"type": "file", "oid": git_blob_sha(data), "size": len(data), "path": path}
            parts = path.split("/")
            for i in range(1, len(parts)):
                folder = "/".join(parts[:i])
                entries.setdefault(folder, {"type": "directory", "size": 0, "path": folder})
        for path, entry in entries.items():
            if entry["type"] == "directory":
                listing = "".join(f"{p}\0{git_blob_sha(files[p])}\n" for p in sorted(files)
                                  if p.startswith(path + "/"))
                entry["oid"] = hashlib.sha1(listing.encode()).hexdigest()
            if expand:
                last = _last_commit_touching(repo, sha, path)
                entry["lastCommit"] = {"id": last.sha, "title": last.title, "date": last.date}
        return entries

    def _tree(self, req: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> tuple[int, dict, Any]:
        path = path.strip("/")
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            sha = repo.resolve(revision)
            entries = self._tree_entries(repo, sha, expand=req.flag("expand"))
        if path and entries.get(path, {}).get("type") != "directory":
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        prefix = f"{path}/" if path else ""
        recursive = req.flag("recursive")
        items = [e for p, e in sorted(entries.items())
                 if p.startswith(prefix) and (recursive or "/" not in p[len(prefix):])]
        return self._page(req, items)

    def _paths_info(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> tuple[int, dict, Any]:
        form = parse_qs(req.body.decode(), keep_blank_values=True)
        if "application/json" in (req.headers.get("Content-Type") or ""):
            body = req.json()
            form = {"paths": _as_list(body.get("paths")), "expand": [str(body.get("expand", False))]}
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            sha = repo.resolve(revision)
            expand = (form.get("expand") or ["false"])[0].lower() in ("1", "true")
            entries = self._tree_entries(repo, sha, expand=expand)
        paths = form.get("paths", []) + form.get("paths[]", [])
        return 200, {}, [entries[p.strip("/")] for p in paths if p.strip("/") in entries]

    def _resolve(self, req: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> tuple[int, dict, Any]:
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            sha = repo.resolve(revision)
            data = repo.commits[sha].files.get(path)
            if data is None:
                raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
            is_lfs = path in repo.commits[sha].lfs
            if req.method == "GET":
                repo.downloads += 1
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha(_lfs_pointer(data) if is_lfs else data)}"',
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if is_lfs:
            headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))})
        status, body = 200, data
        byte_range = req.headers.get("Range")
        if byte_range:
            start, end = _parse_range(byte_range, len(data))
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return status, headers, body

    # -- routes: writes -------------------------------------------------------------------

    def _preupload(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> tuple[int, dict, Any]:
        self._require_auth(req)
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            current = repo.commits[repo.resolve(revision)]
        files = []
        for f in req.json().get("files", []):
            remote = current.files.get(f["path"])
            try:
                sample = base64.b64decode(f.get("sample") or "")
            except ValueError:
                sample = b""
            size = int(f.get("size") or 0)
            lfs = (_lfs_by_gitattributes(f["path"], current.files) or size >= LFS_SIZE_THRESHOLD
                   or (self.binary_as_lfs and b"\0" in sample))
            if remote is None:
                oid = None
            elif f["path"] in current.lfs:
                oid = hashlib.sha256(remote).hexdigest()
            else:
                oid = git_blob_sha(remote)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        return 200, {}, {"files": files, "commitOid": repo.refs.get(revision)}

    # -- routes: LFS --------------------------------------------------------------------

    def _lfs_batch(self, req: _Request, repo_type: str, repo_id: str) -> tuple[int, dict, Any]:
        self._require_auth(req)
        body = req.json()
        if body.get("operation") != "upload" or "basic" not in (body.get("transfers") or ["basic"]):
            raise HubError(400, "HubDouble's LFS batch API only supports basic uploads")
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            stored = set(repo.lfs_objects)
        prefix = f"{self.endpoint}/lfs-objects/{repo_type}/{repo_id}"
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid")), int(obj.get("size") or 0)
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in stored:
                entry["actions"] = {"upload": {"href": f"{prefix}/{oid}", "header": {}},
                                    "verify": {"href": f"{self.endpoint}/lfs-verify/{repo_type}/{repo_id}",
                                               "header": {}}}
            objects.append(entry)
        return 200, {}, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}

    def _lfs_upload(self, req: _Request, repo_type: str, repo_id: str, oid: str) -> tuple[int, dict, Any]:
        if hashlib.sha256(req.body).hexdigest() != oid:
            raise HubError(400, f"LFS upload: content does not match oid {oid}")
        with self._lock:
            self._repo(repo_type, repo_id).lfs_objects[oid] = bytes(req.body)
        return 200, {}, b""

    def _lfs_verify(self, req: _Request, repo_type: str, repo_id: str) -> tuple[int, dict, Any]:
        self._require_auth(req)
        body = req.json()
        with self._lock:
            data = self._repo(repo_type, repo_id).lfs_objects.get(str(body.get("oid")))
        if data is None or len(data) != int(body.get("size") or -1):
            raise HubError(404, f"LFS object {body.get('oid')} not found")
        return 200, {}, {"message": "ok"}

    def _commit(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> tuple[int, dict, Any]:
        self._require_auth(req)
        header, ops = _parse_ndjson_commit(req.body)
        create_pr = req.flag("create_pr")
        parent_commit = header.get("parentCommit")
        with self._lock:  # everything below is one atomic step
            repo = self._repo(repo_type, repo_id)
            lfs_added = set()
            for i, op in enumerate(ops):
                if op[0] == "add_lfs":
                    data = repo.lfs_objects.get(op[2])
                    if data is None:
                        raise HubError(400, f"LFS object {op[2]} for {op[1]} was never uploaded")
                    ops[i] = ("add", op[1], data)
                    lfs_added.add(op[1])
            is_ref = revision in repo.refs
            if create_pr:
                if not is_ref or revision.startswith("refs/pr/"):
                    raise HubError(404, f"Invalid rev id: {revision} (create_pr needs a branch)", "RevisionNotFound")
                base = repo.resolve(parent_commit) if parent_commit else repo.refs[revision]
            else:
                if not is_ref:
                    repo.resolve(revision)  # 404 RevisionNotFound if it is not even a commit
                    raise HubError(400, f"Cannot commit to a commit sha ({revision}); use a branch")
                base = repo.refs[revision]
                if parent_commit and not base.startswith(parent_commit.lower()):
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = _apply_ops(repo.commits[base].files, ops)
            lfs = {p for p in repo.commits[base].lfs if p in files and p not in files_added(ops)} | lfs_added
            commit = repo.new_commit(base, files, header["summary"], header.get("description") or "", lfs)
            pr_url = None
            if create_pr:
                num = repo.open_pull_request(header["summary"], header.get("description") or "", revision, commit.sha)
                pr_url = f"{self._repo_url(repo)}/discussions/{num}"
            else:
                repo.refs[revision] = commit.sha
            return 200, {}, {"success": True, "commitOid": commit.sha, "commitMessage": commit.title,
                             "commitUrl": f"{self._repo_url(repo)}/commit/{commit.sha}",
                             "pullRequestUrl": pr_url, "hookOutput": ""}

    def _create_discussion(self, req: _Request, repo_type: str, repo_id: str) -> tuple[int, dict, Any]:
        self._require_auth(req)
        body = req.json()
        if not body.get("pullRequest"):
            raise HubError(404, "HubDouble only supports discussions that are pull requests")
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            num = repo.open_pull_request(body.get("title", ""), body.get("description", ""), "main",
                                         repo.refs["main"])
            return 200, {}, {"num": num, "pullRequest": True, "url": f"{self._repo_url(repo)}/discussions/{num}"}

    def _discussion(self, req: _Request, repo_type: str, repo_id: str, num: int) -> tuple[int, dict, Any]:
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            pr = repo.discussions.get(num)
            if pr is None:
                raise HubError(404, f"Discussion {num} not found")
            return 200, {}, {
                "num": num, "title": pr["title"], "status": "open", "isPullRequest": True,
                "createdAt": pr["createdAt"], "author": {"name": USER},
                "repo": {"name": repo.repo_id, "type": repo.repo_type}, "events": [],
                "changes": {"base": f"refs/heads/{pr['base']}"}, "filesWithConflicts": [], "diff": "",
            }


# --------------------------------------------------------------------------- pure helpers


def _split_revision(parts: list[str]) -> tuple[str, str]:
    """Split path segments into (revision, path); accepts both ``refs%2Fpr%2F1`` and ``refs/pr/1``."""
    if parts[:2] == ["refs", "pr"] and len(parts) >= 3:
        return "/".join(parts[:3]), "/".join(parts[3:])
    return parts[0], "/".join(parts[1:])


def _parse_range(header: str, size: int) -> tuple[int, int]:
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or match.groups() == ("", ""):
        raise HubError(416, f"Unsupported range: {header}")
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    if start > end or start >= size:
        raise HubError(416, f"Unsatisfiable range: {header}", headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _clean_path(path: Any) -> str:
    path = str(path or "").lstrip("/")
    if not path or any(part in ("", ".", "..") for part in path.rstrip("/").split("/")):
        raise HubError(400, f"Invalid path in commit: {path!r}")
    return path


def _parse_ndjson_commit(body: bytes) -> tuple[dict, list[tuple]]:
    """Parse the NDJSON commit payload into (header, ops). Raises 400 on anything unexpected."""
    header: dict | None = None
    ops: list[tuple] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            key, value = item["key"], item["value"]
        except (ValueError, KeyError, TypeError) as e:
            raise HubError(400, f"Malformed NDJSON commit line: {line[:200]!r}") from e
        if key == "header":
            header = value
        elif key == "file":
            content = value.get("content", "")
            data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
            ops.append(("add", _clean_path(value.get("path")), data))
        elif key == "deletedFile":
            ops.append(("delete_file", _clean_path(value.get("path"))))
        elif key == "deletedFolder":
            ops.append(("delete_folder", _clean_path(value.get("path")).rstrip("/")))
        elif key == "lfsFile":
            if value.get("algo", "sha256") != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", str(value.get("oid"))):
                raise HubError(400, f"Malformed lfsFile line: {value!r}")
            ops.append(("add_lfs", _clean_path(value.get("path")), value["oid"]))
        else:
            raise HubError(400, f"Unknown commit operation key: {key!r}")
    if not header or not header.get("summary"):
        raise HubError(400, "Commit header with a non-empty 'summary' is required")
    return header, ops


def files_added(ops: list[tuple]) -> set[str]:
    """Paths an op list adds (or overwrites)."""
    return {op[1] for op in ops if op[0] in ("add", "add_lfs")}


def _lfs_pointer(data: bytes) -> bytes:
    """The git-lfs pointer file the repo's git tree holds for an LFS object."""
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\n"
            f"size {len(data)}\n").encode()


def _lfs_by_gitattributes(path: str, files: Mapping[str, bytes]) -> bool:
    """Whether ``.gitattributes`` (at the repo root) routes ``path`` to LFS (``<pattern> filter=lfs``)."""
    import fnmatch

    text = files.get(".gitattributes", b"").decode("utf-8", "replace")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and "filter=lfs" in parts[1:]:
            pattern = parts[0]
            target = path if "/" in pattern else path.rsplit("/", 1)[-1]
            if fnmatch.fnmatchcase(target, pattern.lstrip("/")):
                return True
    return False


def _stored_as_lfs(path: str, data: bytes, files: Mapping[str, bytes], binary_as_lfs: bool) -> bool:
    """How the Hub would store a seeded file: LFS when large, matched by .gitattributes or (optionally) binary."""
    return (_lfs_by_gitattributes(path, files) or len(data) >= LFS_SIZE_THRESHOLD
            or (binary_as_lfs and b"\0" in data[:512]))


def _apply_ops(base: Mapping[str, bytes], ops: list[tuple]) -> dict[str, bytes]:
    """New file tree after ``ops``; raises (404 EntryNotFound / 400) without side effects."""
    files = dict(base)
    for op in ops:
        if op[0] == "add":
            files[op[1]] = op[2]
        elif op[0] == "delete_file":
            if files.pop(op[1], None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {op[1]}", "EntryNotFound")
        else:
            doomed = [p for p in files if p.startswith(op[1] + "/")]
            if not doomed:
                raise HubError(404, f"A folder with this name doesn't exist: {op[1]}", "EntryNotFound")
            for p in doomed:
                del files[p]
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise HubError(400, f"'{path}' conflicts with the file '{'/'.join(parts[:i])}'")
    return files


def _last_commit_touching(repo: _Repo, sha: str, path: str) -> Commit:
    """Newest commit in ``sha``'s history that changed ``path`` (a file or a folder)."""

    def snapshot(files: Mapping[str, bytes]) -> dict:
        return {p: d for p, d in files.items() if p == path or p.startswith(path + "/")}

    history = repo.history(sha)
    for commit, older in zip(history, history[1:]):
        if snapshot(commit.files) != snapshot(older.files):
            return commit
    return history[-1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub; every response sets Content-Length
    server_version = "HubDouble/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        hub: HubDouble = self.server.hub  # type: ignore[attr-defined]
        raw_path, _, raw_query = self.path.partition("?")
        body = self._read_body()  # always drain the body so the keep-alive connection stays usable
        req = _Request(self.command, raw_path, [unquote(s) for s in raw_path.split("/")[1:] if s != ""],
                       parse_qs(raw_query, keep_blank_values=True), self.headers, body)
        try:
            status, headers, payload = hub._handle(req)
        except _DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(2)  # socket.SHUT_RDWR: the client sees the server disconnect
            except OSError:
                pass
            return
        except HubError as e:
            status, payload = e.status, {"error": e.message, **e.extra}
            headers = {"X-Error-Message": e.message, **e.headers}
            if e.code:
                headers["X-Error-Code"] = e.code
        except Exception as e:  # a bug in the double: surface it to the client as a 500
            status, headers, payload = 500, {"X-Error-Message": f"HubDouble crashed: {e!r}"}, {"error": repr(e)}
        if isinstance(payload, (bytes, bytearray)):
            data = bytes(payload)
        elif isinstance(payload, str):
            data, headers = payload.encode(), {"Content-Type": "text/plain; charset=utf-8", **headers}
        else:
            data = json.dumps(payload, default=str).encode()
            headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
