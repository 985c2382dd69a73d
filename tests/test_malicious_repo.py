"""Malicious ECAD repos and base models, against the Hub double: path traversal and control characters in names,
code and pickle files in the repo, custom pipeline classes in the base model, local-path base models,
oversized files.

Each is refused with one line (an EcadError), nothing outside the frontier layout is downloaded or copied,
and nothing from the repo is executed or unpickled (a marker file proves it).
"""

from __future__ import annotations

import json
import pickle

import pytest
from huggingface_hub import snapshot_download

from ecad_hub import ECADPipeline, Frontier, FrontierError
from ecad_hub.errors import ModelLoadError
from ecad_hub.frontier.remote import MAX_FILE_BYTES, MAX_TOTAL_BYTES
from ecad_hub.hub import FrontierSummary, browse, pull, summaries_table
from support import PIXART_CONFIG, folder_bytes, toy_frontier

REPO = "test-user/evil-ecad"
BASE = "test-user/tiny-pixart"
LAYOUT = ("ecad_config.json", "frontier.json", "README.md", "frontier.png", "schedules/", "heatmaps/")


class _Marker:
    """Unpickling this creates a file: proof that a pickle was (or was not) loaded."""

    path = ""

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def frontier() -> Frontier:
    return toy_frontier(base_model=BASE)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "executed"
    _Marker.path = str(path)
    return path


def _files(frontier: Frontier) -> dict[str, bytes]:
    return frontier.render(repo_id=REPO)


def _edit_json(files: dict, path: str, edit) -> dict:
    doc = json.loads(files[path])
    edit(doc)
    return {**files, path: json.dumps(doc).encode()}


def _one_line(err: BaseException) -> str:
    message = str(err)
    assert message and "\n" not in message and "\r" not in message and "\x1b" not in message, repr(message)
    return message


def _only_layout(paths) -> bool:
    return all(p.startswith(LAYOUT) and p.endswith((".json", ".png", ".md")) for p in paths)


# --------------------------------------------------------------------------------------------
# names: traversal and control characters
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["schedules"][0].update(file="schedules/../../../etc/passwd.json"), "does not match"),
    (lambda d: d["schedules"][0].update(file="/etc/passwd"), "does not match"),
    (lambda d: d["schedules"][0].update(name="../../x", file="schedules/../../x.json"), "does not match"),
    (lambda d: d["schedules"][0].update(name="evil\n"), "does not match"),
    (lambda d: d["schedules"][0].update(file="schedules/evil\n.json"), "does not match"),
    (lambda d: d.update(default_schedule="x\x1b[2J"), "does not match"),
    (lambda d: d.update(base_model="test-user/\x1b]0;pwned\x07"), "does not match"),
])
def test_traversal_and_control_characters_in_the_index_are_refused(hub, frontier, tmp_path, edit, expected):
    hub.seed(REPO, _edit_json(_files(frontier), "frontier.json", edit))
    hub.clear_requests()
    with pytest.raises(FrontierError) as err:
        Frontier.load(REPO, cache_dir=tmp_path / "cache")
    assert expected in _one_line(err.value)
    assert sorted(hub.downloaded(REPO)) == ["ecad_config.json", "frontier.json"]
    with pytest.raises(FrontierError):
        pull(REPO, out=tmp_path / "out", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name in ("passwd", "passwd.json", "x.json")]


def test_control_characters_in_a_schedule_and_its_keys_give_one_line_errors(hub, frontier, tmp_path):
    name = frontier.names[1]

    def edit(doc):
        doc["mask"]["transformer_blocks"]["evil\nkey\x1b[31m"] = doc["mask"]["transformer_blocks"].pop("ff")

    hub.seed(REPO, _edit_json(_files(frontier), f"schedules/{name}.json", edit))
    with pytest.raises(FrontierError) as err:
        Frontier.load(REPO, cache_dir=tmp_path / "cache")
    message = _one_line(err.value)
    assert "evil\\nkey\\x1b[31m" in message


def test_browse_never_prints_raw_control_characters(hub, frontier):
    evil = FrontierSummary(repo_id="test-user/x", base_model="a/b\x1b[31m\nfake row", resolution=None, steps=4,
                           names=("n",), speedups=(1.0,), qualities=(None,), metric="m\x1b[0m", default="n",
                           transformer_class="T")
    table = summaries_table([evil])
    assert "\x1b" not in table and len(table.splitlines()) == 2 and "a/b\\x1b[31m\\nfake row" in table

    hub.seed("test-user/evil-card", {"README.md": "---\ntags:\n- ecad\n---\n",
                                    "frontier.json": json.dumps({"base_model": "x\x1b[2J"})})
    with pytest.warns(UserWarning) as caught:
        assert browse() == []
    assert all("\x1b" not in str(w.message) and "\n" not in str(w.message) for w in caught)


# --------------------------------------------------------------------------------------------
# code and pickles in the repo
# --------------------------------------------------------------------------------------------

def test_code_and_pickles_in_the_repo_are_never_downloaded_copied_or_run(hub, frontier, tmp_path, marker):
    payload = pickle.dumps(_Marker())
    code = f"open({str(marker)!r}, 'w')\n"
    extra = {"pipeline.py": code, "model.bin": payload, "schedules/evil.pkl": payload, "schedules/hook.py": code,
             "heatmaps/x.py": code, "__init__.py": code, "ecad_hub.py": code, "notes/readme.json": "{}"}
    hub.seed(REPO, {**_files(frontier), **extra})
    cache = tmp_path / "cache"
    # the commit was fully downloaded once, by something else, into the same cache
    snapshot_download(REPO, cache_dir=cache)
    hub.clear_requests()
    out = pull(REPO, out=tmp_path / "pulled", cache_dir=cache)
    assert folder_bytes(out) == frontier.render(repo_id=REPO)  # exactly the layout, nothing of the rest
    assert _only_layout(hub.downloaded(REPO))
    assert Frontier.load(out) == frontier and Frontier.load(REPO, cache_dir=tmp_path / "c2") == frontier
    assert _only_layout(hub.downloaded(REPO))
    assert not marker.exists()


def test_a_custom_pipeline_class_in_the_base_model_is_refused_before_anything_runs(hub, frontier, tmp_path, marker):
    frontier.push_to_hub(REPO)
    code = (f"open({str(marker)!r}, 'w')\n"
            "from diffusers import PixArtAlphaPipeline\nclass EvilPipeline(PixArtAlphaPipeline):\n    pass\n")
    index = {"_class_name": "EvilPipeline", "_diffusers_version": "0.35.0", "transformer": ["diffusers",
             "PixArtTransformer2DModel"], "scheduler": ["diffusers", "DPMSolverMultistepScheduler"]}
    hub.seed(BASE, {"model_index.json": json.dumps(index), "pipeline.py": code,
                    "transformer/config.json": json.dumps(PIXART_CONFIG)})
    hub.clear_requests()
    with pytest.raises(ModelLoadError) as err:
        ECADPipeline.from_pretrained(REPO, cache_dir=tmp_path / "cache")
    message = _one_line(err.value)
    assert "EvilPipeline" in message and "custom code" in message and "trust_remote_code" in message
    assert sorted(hub.downloaded(BASE)) == ["model_index.json", "transformer/config.json"]

    index.update(_class_name="PixArtAlphaPipeline", scheduler=["evil_scheduler", "EvilScheduler"])
    hub.seed(BASE, {"model_index.json": json.dumps(index), "scheduler/evil_scheduler.py": code})
    with pytest.raises(ModelLoadError, match=r"component 'scheduler' is 'evil_scheduler'\.'EvilScheduler'"):
        ECADPipeline.from_pretrained(REPO, cache_dir=tmp_path / "cache")
    assert not [p for p in hub.downloaded(BASE) if p.endswith(".py")]
    assert not marker.exists()


def test_pickled_weights_are_never_loaded(hub, frontier, tmp_path, marker):
    frontier.push_to_hub(REPO)
    index = {"_class_name": "PixArtAlphaPipeline", "_diffusers_version": "0.35.0",
             "transformer": ["diffusers", "PixArtTransformer2DModel"]}
    hub.seed(BASE, {"model_index.json": json.dumps(index), "transformer/config.json": json.dumps(PIXART_CONFIG),
                    "transformer/diffusion_pytorch_model.bin": pickle.dumps(_Marker())})
    with pytest.raises(ModelLoadError) as err:
        ECADPipeline.from_pretrained(REPO, cache_dir=tmp_path / "cache")
    assert _one_line(err.value).startswith(f"{BASE}: cannot load the base model (")
    assert not [p for p in hub.downloaded(BASE) if p.endswith(".bin")]
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# local-path base models
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["/etc", "../../..", "~/models/x", "C:\\models\\x", "."])
def test_a_frontier_from_the_hub_may_not_name_a_local_base_model(hub, tmp_path, monkeypatch, base):
    toy_frontier(base_model=base).push_to_hub(REPO)
    loaded = []
    import diffusers

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loaded.append(a) or pytest.fail("loaded")))
    with pytest.raises(FrontierError) as err:
        ECADPipeline.from_pretrained(REPO, cache_dir=tmp_path / "cache")
    message = _one_line(err.value)
    assert "is not a Hub repo id" in message and "base_model=" in message
    with pytest.raises(FrontierError, match="is not a Hub repo id"):
        pull(REPO, out=tmp_path / "out", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists() and loaded == []


def test_an_explicit_local_base_model_is_the_callers_choice(hub, tmp_path, monkeypatch):
    toy_frontier(base_model="../../..").push_to_hub(REPO)
    import diffusers

    seen = []

    def fake(cls, name, **kwargs):
        seen.append(name)
        raise OSError("stop here")

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", classmethod(fake))
    with pytest.warns(UserWarning, match="instead of"), pytest.raises(ModelLoadError, match="stop here"):
        ECADPipeline.from_pretrained(REPO, base_model=str(tmp_path), cache_dir=tmp_path / "cache")
    assert seen == [str(tmp_path)]


# --------------------------------------------------------------------------------------------
# oversized files
# --------------------------------------------------------------------------------------------

def _padded(data: bytes, size: int) -> bytes:
    """The same JSON document, padded with whitespace to ``size`` bytes."""
    return data.rstrip() + b" " * (size - len(data.rstrip()) - 1) + b"\n"


@pytest.mark.parametrize("path", ["ecad_config.json", "frontier.json", "schedules/{}.json"])
def test_an_oversized_file_is_refused_before_it_is_downloaded(hub, frontier, tmp_path, path):
    path = path.format(frontier.names[0])
    files = _files(frontier)
    hub.seed(REPO, {**files, path: _padded(files[path], MAX_FILE_BYTES + 1)})
    hub.clear_requests()
    with pytest.raises(FrontierError) as err:
        Frontier.load(REPO, cache_dir=tmp_path / "cache")
    message = _one_line(err.value)
    assert path in message and "larger than the 1.0 MB limit" in message and "nothing was downloaded" in message
    assert path not in hub.downloaded(REPO)


def test_an_unlisted_huge_file_is_neither_downloaded_nor_kept(hub, frontier, tmp_path):
    hub.seed(REPO, {**_files(frontier), "schedules/huge.json": b"[" + b" " * (8 * MAX_FILE_BYTES) + b"]",
                    "heatmaps/huge.png": b"\0" * (2 * MAX_FILE_BYTES)})
    hub.clear_requests()
    with pytest.warns(UserWarning, match=r"ignoring schedules/huge\.json \(not listed in frontier\.json\)"):
        assert Frontier.load(REPO, cache_dir=tmp_path / "cache") == frontier
    out = pull(REPO, out=tmp_path / "pulled", cache_dir=tmp_path / "cache")
    assert "schedules/huge.json" not in folder_bytes(out) and "heatmaps/huge.png" not in folder_bytes(out)
    assert not [p for p in hub.downloaded(REPO) if "huge" in p]
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.stat().st_size > MAX_FILE_BYTES]


def test_a_frontier_larger_than_the_total_limit_is_refused_before_its_schedules_download(hub, frontier, tmp_path):
    files = _files(frontier)
    index = json.loads(files["frontier.json"])
    count = MAX_TOTAL_BYTES // (MAX_FILE_BYTES - 1024) + 1
    entry = index["schedules"][0]
    index["schedules"] = [{**entry, "name": f"s{i}", "file": f"schedules/s{i}.json"} for i in range(count)]
    big = {f"schedules/s{i}.json": _padded(files[entry["file"]], MAX_FILE_BYTES - 1024) for i in range(count)}
    hub.seed(REPO, {**files, "frontier.json": json.dumps(index), **big})
    hub.clear_requests()
    with pytest.raises(FrontierError) as err:
        Frontier.load(REPO, cache_dir=tmp_path / "cache")
    assert "exceed the 16.0 MB limit in all" in _one_line(err.value)
    assert not [p for p in hub.downloaded(REPO) if p.startswith("schedules/")]


def test_an_oversized_base_model_config_is_refused(hub, frontier, tmp_path):
    frontier.push_to_hub(REPO)
    hub.seed(BASE, {"model_index.json": "{}", "transformer/config.json": b"{" + b" " * MAX_FILE_BYTES + b"}"})
    with pytest.raises(ModelLoadError, match=r"transformer/config\.json is [\d,]+ bytes, larger than"):
        ECADPipeline.from_pretrained(REPO, cache_dir=tmp_path / "cache")
    assert hub.downloaded(BASE) == []
