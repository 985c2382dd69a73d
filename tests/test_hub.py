"""Frontiers on the Hub: push (one commit, no-op when unchanged, nothing on failure), load by repo id
(JSON only, validated, never executed), revision pinning, pull, browse, model card, CLI.

Everything runs against the Hub double (tests/hub_double.py) through the real huggingface_hub client.
"""

from __future__ import annotations

import json
import pickle

import pytest
from huggingface_hub import HfApi, ModelCard, constants

from ecad_hub import Frontier, FrontierError, HubError, browse
from ecad_hub.cli import main
from ecad_hub.hub import FrontierSummary, pull
from support import METRIC, assert_valid_png, folder_bytes, toy_frontier, toy_schedules

REPO = "test-user/tiny-pixart-ecad"
BASE = "test-user/tiny-pixart"
JSON_FILES = ["ecad_config.json", "frontier.json", "schedules/ecad-1.00x.json", "schedules/ecad-1.38x.json",
              "schedules/ecad-2.06x.json", "schedules/ecad-3.17x.json"]
PNG_FILES = ["frontier.png", "heatmaps/ecad-1.00x.png", "heatmaps/ecad-1.38x.png", "heatmaps/ecad-2.06x.png",
             "heatmaps/ecad-3.17x.png"]


@pytest.fixture
def api(hub) -> HfApi:
    return HfApi()


@pytest.fixture(scope="module")
def frontier() -> Frontier:
    return toy_frontier()


@pytest.fixture(scope="module")
def smaller() -> Frontier:
    """A later version of the frontier: its first two schedules only, and another default."""
    return toy_frontier(schedules=toy_schedules()[:2], default="all")


class _Marker:
    """Unpickling this creates a file: proof that a pickle was (or was not) loaded."""

    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


def _card(tags: list[str]) -> str:
    return "---\ntags:\n" + "".join(f"- {t}\n" for t in tags) + "---\n\n# repo\n"


# --------------------------------------------------------------------------------------------
# push
# --------------------------------------------------------------------------------------------

def test_push_creates_the_repo_in_one_commit_with_a_model_card(hub, api, frontier):
    info = frontier.push_to_hub(REPO)
    commits = hub.commits(REPO)
    assert [c.title for c in commits] == ["ECAD frontier: 4 schedules for test-user/tiny-pixart", "initial commit"]
    assert info.oid == commits[0].sha == hub.refs(REPO)["main"]
    files = hub.repo_files(REPO)
    assert sorted(files) == sorted([".gitattributes", "README.md", *JSON_FILES, *PNG_FILES])
    rendered = frontier.render(repo_id=REPO)
    assert {p: d for p, d in files.items() if p != ".gitattributes"} == rendered
    for png in PNG_FILES:
        assert_valid_png(files[png])

    model = api.model_info(REPO)
    data = model.card_data
    assert data.base_model == BASE and data.library_name == "ecad-hub" and data.pipeline_tag == "text-to-image"
    assert data.tags == ["ecad", "diffusion-caching", "diffusers", "pixart"]
    assert {"ecad", "base_model:test-user/tiny-pixart", "text-to-image", "ecad-hub"} <= set(model.tags)
    card = ModelCard.load(REPO)
    results = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert card.data.model_name == "tiny-pixart-ecad"
    assert results[("ecad-1.38x", METRIC)] == 0.88 and results[("ecad-1.38x", "mac_speedup")] == 1.3774
    assert len(results) == 8 and {r.task_type for r in card.data.eval_results} == {"text-to-image"}
    assert {r.dataset_name for r in card.data.eval_results} == {"tiny-prompts"}
    text = card.text
    assert f'ECADPipeline.from_pretrained("{REPO}", schedule="ecad-2.06x"' in text
    assert "| `ecad-2.06x` (default) | 2.06x | 0.84 |" in text
    assert f"![{METRIC} against MAC speedup (x)](frontier.png)" in text and "(heatmaps/ecad-3.17x.png)" in text
    assert data.license == "other" and "No license was recorded" in text  # the base model's card states none
    assert "@inproceedings{ecad2026," in text and "Evolutionary Caching to Accelerate Your Off-the-Shelf" in text
    assert "Population: 8" in text and "`tiny-prompts` (sha256 `" in text
    assert "TODO" not in text and "doi" not in text.lower() and "arxiv" not in text.lower()


def test_unchanged_push_makes_no_commit_and_a_change_makes_exactly_one(hub, frontier, smaller):
    frontier.push_to_hub(REPO)
    before = hub.commits(REPO)
    assert frontier.push_to_hub(REPO) is None
    assert Frontier.load(REPO).push_to_hub(REPO) is None  # a loaded frontier re-renders the same bytes
    assert hub.commits(REPO) == before

    info = smaller.push_to_hub(REPO, commit_message="Keep two schedules")
    after = hub.commits(REPO)
    assert len(after) == len(before) + 1 and after[0].title == "Keep two schedules" and info.oid == after[0].sha
    files = hub.repo_files(REPO)
    assert sorted(p for p in files if p.startswith(("schedules/", "heatmaps/"))) == [
        "heatmaps/ecad-1.00x.png", "heatmaps/ecad-1.38x.png", "schedules/ecad-1.00x.json", "schedules/ecad-1.38x.json"]
    # only what changed was uploaded: the kept schedules and heatmaps are byte-identical
    assert files["schedules/ecad-1.00x.json"] == before[0].files["schedules/ecad-1.00x.json"]
    assert "update schedules/ecad-1.00x.json" not in after[0].message
    assert "delete schedules/ecad-3.17x.json" in after[0].message
    assert Frontier.load(REPO) == smaller


def test_a_failed_push_leaves_no_repo_or_an_unchanged_repo(hub, frontier, smaller):
    hub.fail_next("POST", r"/commit/", status=500)
    with pytest.raises(HubError) as err:
        frontier.push_to_hub(REPO)
    message = str(err.value)
    assert message.startswith(f"{REPO}: push failed (HTTP 500") and "nothing was committed" in message
    assert "\n" not in message
    assert not hub.repo_exists(REPO)  # the repo this push created is gone again

    frontier.push_to_hub(REPO)
    files, commits = hub.repo_files(REPO), hub.commits(REPO)
    hub.fail_next("POST", r"/commit/", status=503)
    with pytest.raises(HubError, match="the repo is unchanged"):
        smaller.push_to_hub(REPO)
    assert hub.repo_files(REPO) == files and hub.commits(REPO) == commits
    assert Frontier.load(REPO) == frontier


def test_create_pr_leaves_main_alone(hub, frontier, smaller):
    frontier.push_to_hub(REPO)
    main_sha = hub.refs(REPO)["main"]
    info = smaller.push_to_hub(REPO, create_pr=True)
    assert info.pr_revision == "refs/pr/1" and hub.refs(REPO)["main"] == main_sha
    assert Frontier.load(REPO, revision="refs/pr/1") == smaller and Frontier.load(REPO) == frontier
    assert frontier.push_to_hub(REPO, create_pr=True) is None  # no PR for no change


def test_push_refuses_a_repo_holding_something_else(hub):
    hub.seed("test-user/a-model", {"model_index.json": "{}", "README.md": "# mine\n"})
    before = hub.repo_files("test-user/a-model")
    with pytest.raises(HubError, match=r"already holds files \(README.md, model_index.json\) and is not an ECAD repo"):
        toy_frontier().push_to_hub("test-user/a-model")
    assert hub.repo_files("test-user/a-model") == before


def test_push_validates_the_frontier_before_touching_the_hub(hub):
    schedules = toy_schedules()
    schedules[2] = schedules[2].replace(metrics={"quality": [{"metric": METRIC, "value": 0.84}],
                                                 "latency": {"ms_per_image": "fast"}})
    broken = toy_frontier(schedules=schedules)
    hub.clear_requests()
    with pytest.raises(FrontierError, match=r"^invalid schedule: .*schedules/ecad-2\.06x\.json: "
                                            r"metrics/latency/ms_per_image: 'fast' is not type 'number'$"):
        broken.push_to_hub(REPO)
    assert hub.requests == [] and not hub.repo_exists(REPO)


# --------------------------------------------------------------------------------------------
# load by repo id
# --------------------------------------------------------------------------------------------

def test_load_downloads_only_the_json_files_and_never_runs_repo_code(hub, frontier, tmp_path):
    frontier.push_to_hub(REPO)
    marker = tmp_path / "executed"
    _Marker.path = str(marker)
    payload = pickle.dumps(_Marker())
    hub.seed(REPO, {
        "schedule.pkl": payload, "schedules/evil.pkl": payload, "pytorch_model.bin": payload,
        "ecad_hooks.py": f"open({str(marker)!r}, 'w')\n", "schedules/custom.py": f"open({str(marker)!r}, 'w')\n",
    })
    hub.clear_requests()
    loaded = Frontier.load(REPO, cache_dir=tmp_path / "cache")
    assert loaded == frontier and loaded.repo_id == REPO and loaded.commit == hub.refs(REPO)["main"]
    assert sorted(hub.downloaded(REPO)) == sorted(JSON_FILES)
    assert not [r for r in hub.requests if r.path.endswith((".pkl", ".bin", ".py", ".png", "README.md"))]
    cached = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert not [n for n in cached if n.endswith((".pkl", ".bin", ".py", ".png"))]
    assert not marker.exists()


def test_repos_that_are_not_valid_frontiers_are_refused(hub, frontier, tmp_path):
    hub.seed("test-user/not-ecad", {"frontier.json": "{}", "model.safetensors": b"\0" * 8})
    with pytest.raises(FrontierError, match=r"^test-user/not-ecad@[0-9a-f]{7} is not an ECAD repo: it has no "
                                            r"ecad_config\.json$"):
        Frontier.load("test-user/not-ecad")

    frontier.push_to_hub(REPO)
    doc = json.loads(frontier["ecad-1.38x"].to_json())
    doc["num_inference_steps"] = "four"
    sha = hub.seed(REPO, {"schedules/ecad-1.38x.json": json.dumps(doc)})
    with pytest.raises(FrontierError) as err:
        Frontier.load(REPO)
    assert str(err.value).startswith(f"invalid schedule: {REPO}@{sha[:7]}/schedules/ecad-1.38x.json: "
                                     f"num_inference_steps: 'four' is not type 'integer'")

    config = frontier.config_dict()
    config["ecad_config_version"] = 2
    hub.seed(REPO, {"ecad_config.json": json.dumps(config)})
    with pytest.raises(FrontierError, match=r"ecad_config\.json: ecad_config_version: 2 is not const 1"):
        Frontier.load(REPO)

    with pytest.raises(HubError, match=r"^test-user/missing: no such model repo on http://127\.0\.0\.1:\d+ "):
        Frontier.load("test-user/missing")
    with pytest.raises(HubError, match="no revision 'v9'"):
        Frontier.load(REPO, revision="v9")


def test_revision_pinning_by_sha_loads_the_old_frontier(hub, frontier, smaller):
    old = frontier.push_to_hub(REPO).oid
    new = smaller.push_to_hub(REPO).oid
    assert Frontier.load(REPO) == smaller and Frontier.load(REPO).commit == new
    pinned = Frontier.load(REPO, revision=old)
    assert pinned == frontier and pinned.commit == old
    assert Frontier.load(REPO, revision=old[:10]).commit == old


# --------------------------------------------------------------------------------------------
# pull
# --------------------------------------------------------------------------------------------

def test_pull_copies_json_card_and_pngs_then_loads_offline(hub, frontier, tmp_path, monkeypatch):
    frontier.push_to_hub(REPO)
    hub.seed(REPO, {"pytorch_model.bin": b"\0" * 64, "notes/extra.txt": "x"})
    out = pull(REPO, out=tmp_path / "pulled", cache_dir=tmp_path / "cache")
    files = folder_bytes(out)
    assert sorted(files) == sorted(["README.md", *JSON_FILES, *PNG_FILES])
    assert files == frontier.render(repo_id=REPO)
    assert not [p for p in hub.downloaded(REPO) if p.endswith((".bin", ".txt"))]
    assert Frontier.load(out) == frontier

    snapshot = pull(REPO, cache_dir=tmp_path / "cache")
    assert snapshot.name == hub.refs(REPO)["main"] and (snapshot / "README.md").is_file()

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import time
    hub.clear_requests()
    offline = Frontier.load(REPO, cache_dir=tmp_path / "cache")
    assert offline == frontier and offline.commit == hub.refs(REPO)["main"]
    assert hub.requests == []
    with pytest.raises(HubError, match="not in the local cache"):
        Frontier.load("test-user/never-seen", cache_dir=tmp_path / "cache")


def test_pull_refuses_a_repo_that_is_not_an_ecad_repo(hub, tmp_path):
    hub.seed("test-user/plain", {"README.md": "# plain\n"})
    with pytest.raises(FrontierError, match="is not an ECAD repo"):
        pull("test-user/plain", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# browse
# --------------------------------------------------------------------------------------------

def test_browse_reads_frontier_json_and_skips_bad_repos_with_a_warning(hub, frontier):
    frontier.push_to_hub(REPO)
    other = toy_frontier(base_model="test-org/other-base", schedules=toy_schedules()[:3])
    other.push_to_hub("test-org/other-ecad")
    hub.seed("test-user/no-index", {"README.md": _card(["ecad"])})
    hub.seed("test-user/broken-index", {"README.md": _card(["ecad"]), "frontier.json": "{not json"})
    hub.seed("test-user/wrong-schema", {"README.md": _card(["ecad"]), "frontier.json": '{"schedules": []}'})
    hub.seed("test-user/unrelated", {"README.md": _card(["diffusers"]), "frontier.json": "{}"})

    with pytest.warns(UserWarning) as record:
        found = browse()
    assert sorted(s.repo_id for s in found) == ["test-org/other-ecad", REPO]
    warned = sorted(str(w.message) for w in record)
    assert len(warned) == 3
    assert warned[0].startswith("browse: skipping test-user/broken-index: ") and "not valid JSON" in warned[0]
    assert warned[1] == "browse: skipping test-user/no-index: no frontier.json"
    assert warned[2].startswith("browse: skipping test-user/wrong-schema: frontier.json: (top level): ")
    assert set(hub.downloaded()) == {"frontier.json"}  # one small file per repo, nothing else

    hub.clear_requests()
    (mine,) = browse(base_model=BASE)
    assert isinstance(mine, FrontierSummary)
    assert (mine.repo_id, mine.base_model, mine.resolution, mine.steps) == (REPO, BASE, (64, 64), 4)
    assert mine.names == tuple(frontier.names) and mine.default == "ecad-2.06x" and mine.metric == METRIC
    assert mine.speedups == (1.0, 1.3774, 2.0563, 3.1739) and mine.qualities == (0.9, 0.88, 0.84, 0.7)
    assert mine.transformer_class == "PixArtTransformer2DModel" and mine.sha == hub.refs(REPO)["main"]
    assert mine.max_speedup == 3.1739 and mine.last_modified is not None and mine.downloads >= 0
    assert hub.downloaded() == []  # pinned to the listed sha: served from the cache
    assert [s.repo_id for s in browse(author="test-org")] == ["test-org/other-ecad"]
    assert [s.repo_id for s in browse(search="tiny")] == [REPO]


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def test_cli_push_pull_browse(hub, frontier, tmp_path, capsys):
    export = frontier.save_pretrained(tmp_path / "export")
    assert main(["push", str(export), "--repo", REPO]) == 0
    assert capsys.readouterr().out.startswith(f"pushed 4 schedules: {hub.endpoint}/{REPO}/commit/")
    assert main(["push", str(export), "--repo", REPO]) == 0
    assert "nothing to commit" in capsys.readouterr().out

    assert main(["pull", REPO, "--out", str(tmp_path / "pulled")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "pulled")
    assert Frontier.load(tmp_path / "pulled") == frontier

    hub.seed("test-user/no-index", {"README.md": _card(["ecad"])})
    assert main(["browse", "--plot", str(tmp_path / "frontiers.png")]) == 0
    out, err = capsys.readouterr()
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["repo", "base", "model"]
    assert row.split()[:4] == [REPO, BASE, "64x64", "4"] and "1.00x, 1.38x, 2.06x, 3.17x" in row
    assert "image_reward 0.7..0.9" in row and row.split()[-1] == "live"
    # the curated index shipped with ecad-hub is merged: its example entry is listed, marked, not claimed live
    (paper,) = [line for line in out.splitlines() if line.startswith("your-username/pixart-alpha-256-ecad-paper ")]
    assert paper.endswith("example, not published") and "2.68x" in paper
    assert err == "warning: browse: skipping test-user/no-index: no frontier.json\n"
    assert_valid_png((tmp_path / "frontiers.png").read_bytes())

    hub.fail_next("POST", r"/commit/")
    assert main(["push", str(export), "--repo", "test-user/fresh"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: test-user/fresh: push failed") and err.count("\n") == 1
    assert main(["push", str(tmp_path / "nowhere"), "--repo", REPO]) == 1
    assert "no such folder" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# hardening (see also test_hub_faults.py and test_malicious_repo.py)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("file", ["ecad_config.json", "schedules/ecad-1.38x.json"])
def test_a_repo_with_an_unknown_absent_component_is_refused_by_load_and_pull(hub, frontier, tmp_path, file):
    frontier.push_to_hub(REPO)
    doc = json.loads(hub.repo_files(REPO)[file])
    doc["architecture"]["groups"][0]["absent"] = {"zz": [0]}
    hub.seed(REPO, {file: json.dumps(doc)})
    for load in (lambda: Frontier.load(REPO, cache_dir=tmp_path / "c"),
                 lambda: pull(REPO, out=tmp_path / "out", cache_dir=tmp_path / "c")):
        with pytest.raises(FrontierError) as err:
            load()
        assert "absent: unknown component 'zz'" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_failed_lfs_upload_is_a_one_line_hub_error_and_leaves_no_repo(hub, frontier):
    hub.binary_as_lfs = True  # the PNGs go through the LFS batch API, as on the real Hub
    hub.fail_next("PUT", r"^/lfs-objects/", status=403, times=100)
    with pytest.raises(HubError) as err:
        frontier.push_to_hub(REPO)
    message = str(err.value)
    assert message.startswith(f"{REPO}: push failed (Error while uploading '") and "HTTP 403" in message
    assert message.endswith("nothing was committed, the repo this push created was deleted again")
    assert not hub.repo_exists(REPO)
    hub.reset()
    hub.binary_as_lfs = True
    frontier.push_to_hub(REPO)
    assert Frontier.load(REPO) == frontier and hub.commits(REPO)[0].lfs  # PNGs stored with LFS
    assert frontier.push_to_hub(REPO) is None  # LFS files compare by sha256: nothing changed


def test_pull_copies_only_the_layout_even_from_a_fully_cached_commit(hub, frontier, tmp_path):
    from huggingface_hub import snapshot_download

    frontier.push_to_hub(REPO)
    hub.seed(REPO, {"pipeline.py": "raise SystemExit\n", "model.bin": b"\0" * 64})
    snapshot_download(REPO, cache_dir=tmp_path / "cache")  # the whole commit is in the cache now
    out = pull(REPO, out=tmp_path / "pulled", cache_dir=tmp_path / "cache")
    assert sorted(folder_bytes(out)) == sorted(["README.md", *JSON_FILES, *PNG_FILES])
