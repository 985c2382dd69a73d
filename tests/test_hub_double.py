"""The Hub double works with the real huggingface_hub client over real HTTP (no mocks)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    ModelCardData,
    constants,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hub_double import FAKE_TOKEN, git_blob_sha


def tiny_png() -> bytes:
    """A valid 1x1 black RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00"))
            + chunk(b"IEND", b""))


PNG = tiny_png()
SCHEDULE = json.dumps({"version": 1, "cache": [[0, 1], [1, 0]]}).encode()


@pytest.fixture
def api(hub) -> HfApi:
    return HfApi(endpoint=hub.endpoint)


@pytest.fixture
def repo(api, tmp_path) -> tuple[str, str]:
    """``test-user/sched`` holding a schedule JSON, a PNG and a nested file; returns (repo_id, sha)."""
    folder = tmp_path / "upload"
    (folder / "plots").mkdir(parents=True)
    (folder / "schedule.json").write_bytes(SCHEDULE)
    (folder / "plots" / "pareto.png").write_bytes(PNG)
    (folder / "plots" / "notes.txt").write_text("hello\n")
    api.create_repo("test-user/sched")
    info = api.upload_folder(repo_id="test-user/sched", folder_path=folder, commit_message="Add schedule")
    return "test-user/sched", info.oid


def push_card(repo_id: str, **metadata) -> None:
    card = ModelCard(f"---\n{ModelCardData(**metadata).to_yaml()}\n---\n\n# {repo_id}\n")
    card.push_to_hub(repo_id)


def test_create_repo_exist_ok_and_whoami(hub, api):
    assert api.whoami()["name"] == "test-user"
    url = api.create_repo("test-user/new")
    assert url.repo_id == "test-user/new" and url.startswith(hub.endpoint)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("test-user/new")
    assert err.value.response.status_code == 409
    assert api.create_repo("test-user/new", exist_ok=True).repo_id == "test-user/new"
    assert api.repo_exists("test-user/new") and not api.repo_exists("test-user/missing")
    # Like the real Hub, a new repo has one "initial commit" with .gitattributes.
    assert [c.title for c in hub.commits("test-user/new")] == ["initial commit"]
    assert list(hub.repo_files("test-user/new")) == [".gitattributes"]


def test_upload_folder_then_model_info_and_listings(hub, api, repo):
    repo_id, sha = repo
    files = hub.repo_files(repo_id)
    assert files["schedule.json"] == SCHEDULE and files["plots/pareto.png"] == PNG
    assert hub.commits(repo_id)[0].sha == sha and hub.commits(repo_id)[0].title == "Add schedule"

    info = api.model_info(repo_id, files_metadata=True)
    assert info.sha == sha and info.id == repo_id and info.author == "test-user" and info.private is False
    sizes = {s.rfilename: (s.size, s.blob_id) for s in info.siblings}
    assert sizes["plots/pareto.png"] == (len(PNG), git_blob_sha(PNG))
    assert info.card_data is None and info.tags == []

    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "plots/notes.txt", "plots/pareto.png",
                                                     "schedule.json"]
    top = {e.path: type(e).__name__ for e in api.list_repo_tree(repo_id)}
    assert top == {".gitattributes": "RepoFile", "plots": "RepoFolder", "schedule.json": "RepoFile"}
    nested = list(api.list_repo_tree(repo_id, path_in_repo="plots", expand=True))
    assert [e.path for e in nested] == ["plots/notes.txt", "plots/pareto.png"]
    assert nested[0].last_commit.oid == sha
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(repo_id, path_in_repo="nope"))

    # Pagination: the client follows the Link header until every entry is listed.
    hub.page_size = 1  # restored by the next hub.reset()
    hub.clear_requests()
    assert len(api.list_repo_files(repo_id)) == 4
    assert sum("/tree/" in r.path for r in hub.requests) == 5  # 4 files + the "plots" folder


def test_create_commit_with_create_pr_leaves_main_alone(hub, api, repo):
    repo_id, sha = repo
    ops = [CommitOperationAdd("schedule.json", b'{"version": 2}'), CommitOperationDelete("plots/notes.txt")]
    info = api.create_commit(repo_id, ops, commit_message="Propose v2", create_pr=True)
    assert info.pr_revision == "refs/pr/1" and info.pr_num == 1
    assert info.pr_url == f"{hub.endpoint}/{repo_id}/discussions/1"
    assert hub.refs(repo_id)["main"] == sha and hub.refs(repo_id)["refs/pr/1"] == info.oid
    assert hub.repo_files(repo_id)["schedule.json"] == SCHEDULE
    pr_files = hub.repo_files(repo_id, revision="refs/pr/1")
    assert pr_files["schedule.json"] == b'{"version": 2}' and "plots/notes.txt" not in pr_files
    assert hub.commits(repo_id, revision="refs/pr/1")[1].sha == sha  # PR branches off main

    path = hf_hub_download(repo_id, "schedule.json", revision="refs/pr/1")
    assert Path(path).read_bytes() == b'{"version": 2}'
    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", info.oid)]
    assert [b.name for b in refs.branches] == ["main"]

    # parent_commit guards against concurrent writers; deleting a missing file is an EntryNotFoundError.
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(repo_id, [CommitOperationAdd("x", b"x")], commit_message="m", parent_commit="0" * 40)
    assert err.value.response.status_code == 412
    with pytest.raises(EntryNotFoundError):
        api.create_commit(repo_id, [CommitOperationDelete("missing.txt")], commit_message="m")
    assert hub.refs(repo_id)["main"] == sha


def test_snapshot_download_allow_patterns_never_requests_excluded_files(hub, repo, tmp_path):
    repo_id, sha = repo
    hub.clear_requests()
    folder = snapshot_download(repo_id, allow_patterns=["*.json"], cache_dir=tmp_path)
    assert folder.endswith(sha)
    assert sorted(p.name for p in (tmp_path / "models--test-user--sched" / "snapshots" / sha).rglob("*")) == [
        "schedule.json"]
    assert hub.downloaded(repo_id) == ["schedule.json"]
    assert not [r for r in hub.requests if r.path.endswith((".png", ".txt", ".gitattributes"))]


def test_revision_pinning_by_sha(hub, api, repo, tmp_path):
    repo_id, old_sha = repo
    new = api.upload_file(path_or_fileobj=b'{"version": 2}', path_in_repo="schedule.json", repo_id=repo_id)
    assert new.oid != old_sha and hub.commits(repo_id)[1].sha == old_sha

    assert Path(hf_hub_download(repo_id, "schedule.json", cache_dir=tmp_path)).read_bytes() == b'{"version": 2}'
    pinned = hf_hub_download(repo_id, "schedule.json", revision=old_sha, cache_dir=tmp_path)
    assert Path(pinned).read_bytes() == SCHEDULE
    assert api.model_info(repo_id, revision=old_sha[:10]).sha == old_sha  # unique prefixes resolve too
    old_folder = snapshot_download(repo_id, revision=old_sha, cache_dir=tmp_path, allow_patterns="*.json")
    assert old_folder.endswith(old_sha)
    assert api.list_repo_commits(repo_id)[0].commit_id == new.oid


def test_not_found_errors_map_to_client_exceptions(hub, api, repo, tmp_path):
    repo_id, _ = repo
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("test-user/missing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "missing.json", cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("test-user/missing", "x.json", cache_dir=tmp_path)
    assert api.file_exists(repo_id, "schedule.json") and not api.file_exists(repo_id, "missing.json")


def test_private_repos_need_the_token(hub, api):
    api.create_repo("test-user/secret", private=True)
    assert api.model_info("test-user/secret").private is True
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("test-user/secret", token=False)
    assert [m.id for m in api.list_models(author="test-user", token=False)] == []
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=hub.endpoint, token="hf_wrong").model_info("test-user/secret")
    assert err.value.response.status_code == 401


def test_model_card_push_sets_tags_and_card_data(hub, api):
    api.create_repo("test-user/carded")
    push_card("test-user/carded", library_name="diffusers", pipeline_tag="text-to-image", license="apache-2.0",
              base_model="black-forest-labs/FLUX.1-dev", tags=["ecad", "caching-schedule"])
    info = api.model_info("test-user/carded")
    assert info.card_data.base_model == "black-forest-labs/FLUX.1-dev"
    assert info.card_data.tags == ["ecad", "caching-schedule"]
    assert info.library_name == "diffusers" and info.pipeline_tag == "text-to-image"
    assert set(info.tags) == {"ecad", "caching-schedule", "diffusers", "text-to-image", "license:apache-2.0",
                              "base_model:black-forest-labs/FLUX.1-dev",
                              "base_model:finetune:black-forest-labs/FLUX.1-dev"}
    assert ModelCard.load("test-user/carded").data.library_name == "diffusers"
    with pytest.raises(ValueError):  # validate-yaml rejects front matter that is not a mapping
        ModelCard("---\n- just\n- a list\n---\n").push_to_hub("test-user/carded")


def test_list_models_filters(hub, api):
    for name, card in {
        "test-user/flux-a": dict(tags=["ecad"], base_model="org/flux", library_name="diffusers"),
        "test-user/flux-b": dict(tags=["ecad", "fast"], base_model="org/flux"),
        "test-org/pixart": dict(tags=["ecad"], base_model="org/pixart"),
        "test-org/other": dict(tags=["unrelated"]),
    }.items():
        api.create_repo(name)
        push_card(name, **card)

    def ids(**kwargs) -> list[str]:
        return sorted(m.id for m in api.list_models(**kwargs))

    assert ids(filter="ecad") == ["test-org/pixart", "test-user/flux-a", "test-user/flux-b"]
    assert ids(filter=["ecad", "fast"]) == ["test-user/flux-b"]
    assert ids(filter="base_model:org/flux") == ["test-user/flux-a", "test-user/flux-b"]
    assert ids(search="FLUX") == ["test-user/flux-a", "test-user/flux-b"]
    assert ids(author="test-org") == ["test-org/other", "test-org/pixart"]
    assert ids(author="test-org", filter="ecad", search="pix") == ["test-org/pixart"]
    assert len(list(api.list_models(limit=2))) == 2

    listed = next(iter(api.list_models(search="flux-a", cardData=True)))
    assert listed.card_data.base_model == "org/flux" and listed.library_name == "diffusers"
    assert next(iter(api.list_models(search="flux-a"))).card_data is None  # only sent on request
    full = next(iter(api.list_models(search="flux-a", full=True)))
    assert full.sha == hub.refs("test-user/flux-a")["main"] and full.siblings
    hf_hub_download("test-org/other", "README.md")
    assert next(iter(api.list_models(sort="downloads"))).id == "test-org/other"


def test_injected_commit_failure_leaves_repo_unchanged(hub, api, repo):
    repo_id, sha = repo
    before_files, before_commits = hub.repo_files(repo_id), hub.commits(repo_id)
    hub.fail_next("POST", r"/commit/", status=500)
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"new", path_in_repo="schedule.json", repo_id=repo_id)
    assert err.value.response.status_code == 500
    assert hub.repo_files(repo_id) == before_files and hub.commits(repo_id) == before_commits
    assert hub.refs(repo_id)["main"] == sha
    # The rule was used up: the retry goes through.
    api.upload_file(path_or_fileobj=b"new", path_in_repo="schedule.json", repo_id=repo_id)
    assert hub.repo_files(repo_id)["schedule.json"] == b"new"


def test_offline_reload_from_cache(hub, repo, tmp_path, monkeypatch):
    repo_id, sha = repo
    online = snapshot_download(repo_id, cache_dir=tmp_path)
    single = hf_hub_download(repo_id, "plots/pareto.png", cache_dir=tmp_path)
    hub.clear_requests()

    assert snapshot_download(repo_id, cache_dir=tmp_path, local_files_only=True) == online
    assert hf_hub_download(repo_id, "plots/pareto.png", cache_dir=tmp_path, local_files_only=True) == single
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import time
    assert snapshot_download(repo_id, cache_dir=tmp_path) == online
    assert Path(single).read_bytes() == PNG
    assert hub.requests == []
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(repo_id, "never-downloaded.bin", cache_dir=tmp_path, local_files_only=True)


def test_resolve_headers_and_ranges(hub, repo):
    repo_id, sha = repo
    url = f"{hub.endpoint}/{repo_id}/resolve/main/schedule.json"
    auth = {"authorization": f"Bearer {FAKE_TOKEN}"}
    head = httpx2.head(url, headers=auth)
    assert head.headers["X-Repo-Commit"] == sha
    assert head.headers["ETag"] == f'"{git_blob_sha(SCHEDULE)}"'
    assert int(head.headers["Content-Length"]) == len(SCHEDULE)
    part = httpx2.get(url, headers={**auth, "Range": "bytes=2-5"})
    assert part.status_code == 206 and part.content == SCHEDULE[2:6]
    assert part.headers["Content-Range"] == f"bytes 2-5/{len(SCHEDULE)}"
    assert not any(h.lower().startswith("x-xet") for h in head.headers)  # the client must stay on plain HTTP


def test_seed_helper_branches_and_dataset_repos(hub, api, tmp_path):
    sha = hub.seed("test-org/base", {"model_index.json": "{}"})
    dev = hub.seed("test-org/base", {"extra.txt": b"x"}, revision="dev")
    assert hub.commits("test-org/base", revision="dev")[1].sha == sha  # new branches start from main
    assert api.model_info("test-org/base", revision="dev").sha == dev
    assert sorted(api.list_repo_files("test-org/base", revision="dev")) == [
        ".gitattributes", "extra.txt", "model_index.json"]

    hub.seed("test-user/data", {"rows.json": "[]"}, repo_type="dataset")
    hf_hub_download("test-user/data", "rows.json", repo_type="dataset", cache_dir=tmp_path)
    assert hub.downloaded("test-user/data", repo_type="dataset") == ["rows.json"]
    assert hub.downloaded() == []  # model repos only by default
    hub.fail_next("GET", r"/api/datasets/", status=404, error_code="RepoNotFound")
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info("test-user/data")
    assert api.dataset_info("test-user/data").id == "test-user/data"


def test_upload_folder_xet_pipeline_path_also_works(hub, api, tmp_path, monkeypatch):
    """With hf_xet enabled, upload_folder takes its pipelined path (explicit PR + commit to refs/pr/N).
    Every file is "regular", so it still only speaks plain HTTP to the double."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    api.create_repo("test-user/piped")
    (tmp_path / "schedule.json").write_bytes(SCHEDULE)
    info = api.upload_folder(repo_id="test-user/piped", folder_path=tmp_path, create_pr=True)
    assert info.pr_revision == "refs/pr/1"
    assert hub.repo_files("test-user/piped", revision="refs/pr/1")["schedule.json"] == SCHEDULE
    assert list(hub.repo_files("test-user/piped")) == [".gitattributes"]
    assert ("POST", "/api/models/test-user/piped/discussions") in [(r.method, r.path) for r in hub.requests]
