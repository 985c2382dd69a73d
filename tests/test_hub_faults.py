"""Fault injection for push and pull against the Hub double: a 500 or a dropped connection at every request
of a push (repo lookup, create, model info, YAML check, preupload, LFS batch, LFS upload, LFS verify, commit,
and after the commit was applied), for a new and for an existing repo.

Afterwards the repo is exactly the old state or exactly the new one, and what ecad-hub says (a return value,
or a one-line HubError) tells truthfully which. The double stores binary files with LFS (``binary_as_lfs``),
as the real Hub does, so every push uploads its PNGs through the LFS batch API.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import huggingface_hub.file_download as hf_download
import huggingface_hub.utils._http as hf_http
import pytest

from ecad_hub import Frontier, HubError
from ecad_hub.hub import pull
from hub_double import INITIAL_GITATTRIBUTES, _DropConnection
from support import toy_frontier, toy_schedules

REPO = "test-user/faulty-ecad"

#: (name, method, path regex) of every request a push sends, in order.
STEPS = [
    ("repo-exists", "GET", r"^/api/models/test-user/faulty-ecad$"),
    ("create", "POST", r"^/api/repos/create$"),
    ("model-info", "GET", r"^/api/models/test-user/faulty-ecad/revision/main$"),
    ("validate-yaml", "POST", r"^/api/validate-yaml$"),
    ("preupload", "POST", r"/preupload/main$"),
    ("lfs-batch", "POST", r"\.git/info/lfs/objects/batch$"),
    ("lfs-upload", "PUT", r"^/lfs-objects/"),
    ("lfs-verify", "POST", r"^/lfs-verify/"),
    ("commit", "POST", r"/commit/main$"),
]
#: huggingface_hub retries these (http_backoff): a single failure is retried, a lasting one is not.
RETRIED = {"preupload", "lfs-batch", "lfs-upload", "lfs-verify"}
#: Requests whose effect ("after" modes) is visible in the repo.
EFFECTFUL = {"create", "commit", "lfs-upload"}


@pytest.fixture(scope="module")
def old() -> Frontier:
    return toy_frontier()


@pytest.fixture(scope="module")
def new() -> Frontier:
    return toy_frontier(schedules=toy_schedules()[:2], default="all")


@pytest.fixture
def hub_lfs(hub, monkeypatch):
    """The double storing binary files with LFS; huggingface_hub's retry back-off without the sleeping."""
    hub.binary_as_lfs = True
    no_sleep = SimpleNamespace(sleep=lambda seconds: None, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(hf_http, "time", no_sleep)
    monkeypatch.setattr(hf_download, "time", no_sleep)
    return hub


def _state(hub) -> dict | None:
    """The repo's files (None: no repo)."""
    return hub.repo_files(REPO) if hub.repo_exists(REPO) else None


def _expected(frontier: Frontier, hub_files_before: dict | None) -> dict:
    files = {".gitattributes": (hub_files_before or {}).get(".gitattributes", INITIAL_GITATTRIBUTES)}
    files.update(frontier.render(repo_id=REPO))
    return files


def _cases():
    for existing in (False, True):
        for name, method, pattern in STEPS:
            if existing and name == "create":
                continue
            modes = ["respond", "drop"] + (["after", "after-drop"] if name in EFFECTFUL else [])
            for mode in modes:
                lasting = [True, False] if name in RETRIED else [True]
                for persistent in lasting:
                    yield pytest.param(existing, name, method, pattern, mode, persistent,
                                       id=f"{'existing' if existing else 'new'}-{name}-{mode}"
                                          f"{'' if persistent else '-transient'}")


@pytest.mark.parametrize("existing, name, method, pattern, mode, persistent", list(_cases()))
def test_a_fault_anywhere_in_a_push_leaves_the_old_or_the_new_state_and_says_which(
        hub_lfs, old, new, caplog, existing, name, method, pattern, mode, persistent):
    hub = hub_lfs
    if existing:  # what a push of ``old`` leaves (files stored as the Hub stores them: PNGs with LFS)
        hub.seed(REPO, old.render(repo_id=REPO), message="ECAD frontier")
    before = _state(hub)
    commits_before = len(hub.commits(REPO)) if before is not None else 0
    pushed = new if existing else old
    target = _expected(pushed, before)
    hub.fail_next(method, pattern, status=500, times=100 if persistent else 1, mode=mode)
    hub.clear_requests()

    with caplog.at_level(logging.WARNING, logger="ecad_hub.frontier.remote"):
        try:
            info = pushed.push_to_hub(REPO)
            error = None
        except HubError as e:
            info, error = None, str(e)
    after = _state(hub)
    assert hub.pending_failures() < (100 if persistent else 1), "the injected fault was never hit"

    if error is None:  # success: the repo holds exactly the pushed frontier, in one new commit
        assert after == target
        assert info.oid == hub.refs(REPO)["main"]
        assert len(hub.commits(REPO)) == commits_before + (1 if existing else 2)
        if mode.startswith("after") and name == "commit":
            assert "the Hub applied the commit" in caplog.text
        return
    # failure: exactly the old state, and the message says so (one line)
    assert "\n" not in error and error.startswith(f"{REPO}: ")
    assert after == before, f"{error}"
    if existing:
        assert error.endswith("the repo is unchanged") or error.endswith("nothing was changed"), error
        assert len(hub.commits(REPO)) == commits_before
    else:
        assert not hub.repo_exists(REPO)
        assert error.endswith("nothing was changed") or "the repo this push created was deleted again" in error, error
    assert "nothing was" in error


def test_after_a_failed_push_the_next_one_completes_it(hub_lfs, old, new):
    hub = hub_lfs
    hub.fail_next("PUT", r"^/lfs-objects/", times=100)  # some LFS objects are stored, then the uploads fail
    with pytest.raises(HubError, match="Error while uploading"):
        old.push_to_hub(REPO)
    assert not hub.repo_exists(REPO)
    hub._failures.clear()
    old.push_to_hub(REPO)
    assert _state(hub) == _expected(old, None)
    hub.fail_next("POST", r"/commit/main$", mode="drop")
    with pytest.raises(HubError, match="the repo is unchanged"):
        new.push_to_hub(REPO)
    new.push_to_hub(REPO)
    assert _state(hub) == _expected(new, None) and Frontier.load(REPO) == new


def test_a_commit_applied_while_the_hub_then_stays_unreachable_is_reported_as_unknown_and_kept(
        hub_lfs, old, monkeypatch):
    hub = hub_lfs
    original = hub._handle
    info_requests = []

    def handle(req):  # the commit is applied, its answer lost; then the repo cannot be read any more
        path = "/" + "/".join(req.segs)
        if req.method == "GET" and path.endswith("/revision/main"):
            info_requests.append(path)
            if len(info_requests) > 1:
                raise _DropConnection()
        result = original(req)
        if req.method == "POST" and path.endswith("/commit/main"):
            raise _DropConnection()
        return result

    monkeypatch.setattr(hub, "_handle", handle)
    with pytest.raises(HubError) as err:
        old.push_to_hub(REPO)
    message = str(err.value)
    assert "could not check whether the Hub applied the commit" in message and "\n" not in message
    assert "holds either the old or the new files" in message and "was kept" in message
    assert not [r for r in hub.requests if r.method == "DELETE"]  # nothing deleted: it may hold the commit
    assert _state(hub) == _expected(old, None)  # (it does)


def test_a_failed_delete_of_the_new_repo_is_reported_not_hidden(hub_lfs, old):
    hub = hub_lfs
    hub.fail_next("POST", r"/commit/main$")
    hub.fail_next("DELETE", r"/api/repos/delete", times=5)
    with pytest.raises(HubError) as err:
        old.push_to_hub(REPO)
    message = str(err.value)
    assert "nothing was committed" in message and "could not be deleted" in message
    assert "was not created" not in message and "deleted again" not in message
    assert hub.repo_exists(REPO) and list(hub.repo_files(REPO)) == [".gitattributes"]

    hub.reset()
    hub.binary_as_lfs = True
    hub.fail_next("POST", r"/commit/main$")
    hub.fail_next("DELETE", r"/api/repos/delete", mode="after")  # deleted, but the answer says otherwise
    with pytest.raises(HubError, match="the repo this push created was deleted again"):
        old.push_to_hub(REPO)
    assert not hub.repo_exists(REPO)


def test_someone_elses_commit_in_between_is_named(hub_lfs, old, new):
    hub = hub_lfs
    old.push_to_hub(REPO)
    original = hub._handle

    def handle(req):
        if req.method == "POST" and "/".join(req.segs).endswith("commit/main"):
            hub.seed(REPO, {"notes.txt": "someone else"})  # lands first: the parent check refuses ours
        return original(req)

    hub._handle = handle
    try:
        with pytest.raises(HubError) as err:
            new.push_to_hub(REPO)
    finally:
        del hub._handle
    message = str(err.value)
    assert "HTTP 412" in message and "nothing was committed by this push" in message and "moved to" in message
    assert "notes.txt" in hub.repo_files(REPO)


def test_a_pull_request_opened_before_the_connection_dropped_is_found(hub_lfs, old, new):
    hub = hub_lfs
    old.push_to_hub(REPO)
    main = hub.refs(REPO)["main"]
    hub.fail_next("POST", r"/commit/main$", mode="after-drop")
    info = new.push_to_hub(REPO, create_pr=True)
    assert info.pr_url.endswith("/discussions/1") and hub.refs(REPO)["main"] == main
    assert hub.repo_files(REPO, revision="refs/pr/1") == _expected(new, hub.repo_files(REPO))


@pytest.mark.parametrize("mode", ["respond", "drop"])
@pytest.mark.parametrize("step", ["revision", "resolve"])
def test_a_failed_pull_writes_nothing(hub_lfs, old, tmp_path, mode, step):
    hub = hub_lfs
    old.push_to_hub(REPO)
    pattern = r"^/api/models/test-user/faulty-ecad(/revision/main)?$" if step == "revision" else r"/resolve/[0-9a-f]{40}/schedules/"
    hub.fail_next("GET", pattern, times=20, mode=mode)
    with pytest.raises(HubError) as err:
        pull(REPO, out=tmp_path / "out", cache_dir=tmp_path / "cache")
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{REPO}: download failed")
    assert not (tmp_path / "out").exists()
    hub._failures.clear()
    assert Frontier.load(pull(REPO, out=tmp_path / "out", cache_dir=tmp_path / "cache")) == old
