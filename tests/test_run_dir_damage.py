"""A damaged run directory never crashes a resume nor silently changes its results.

One small finished search (module scope) is copied per test and one file of the copy damaged.
Each damage is either refused -- one :class:`~ecad_hub.errors.EcadError` line naming the damaged
file; ``ecad-hub search --resume`` exits 1 with one ``error:`` line -- or recovered: the copy
(with its last generation file removed, so that the resume computes a generation) resumes into
exactly the generation files of the uninterrupted run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ecad_hub.errors import EcadError
from ecad_hub.search import SearchConfig, run_search

GENERATIONS = 3


def config(tiny_dir: Path, **kw) -> SearchConfig:
    base = dict(base_model=str(tiny_dir), num_inference_steps=4, metric="fidelity",
                metric_kwargs={"max_psnr": 200.0}, prompts=str(tiny_dir.parent / "prompts.txt"),
                max_sequence_length=16, population=6, generations=GENERATIONS, num_threads=1, seed=0)
    base.update(kw)
    return SearchConfig(**base)


@pytest.fixture(scope="module")
def finished(tiny_dir, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("damage") / "run"
    run_search(config(tiny_dir), run, progress=False, quiet=True)
    return run


@pytest.fixture(scope="module")
def pipe(tiny_dir):
    """The pipeline the resumes share (loaded as the search loads it: same images)."""
    from ecad_hub.search.model import load_pipeline

    return load_pipeline(str(tiny_dir), None, dtype="float32", device="cpu")


def _copy(finished: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


def _load(path: Path):
    return json.loads(path.read_text())


def _save(path: Path, doc) -> None:
    path.write_text(json.dumps(doc, indent=2))


def _edit(path: Path, change) -> None:
    doc = _load(path)
    change(doc)
    _save(path, doc)


def _gen(run: Path, k: int) -> Path:
    return run / "generations" / f"gen_{k:04d}.json"


def _resume(tiny_dir: Path, run: Path, pipe, **kw):
    return run_search(config(tiny_dir, **kw), run, pipe=pipe, resume=True, progress=False, quiet=True)


# --------------------------------------------------------------------------------------------
# damage that is refused: (what is done to the run directory, the file the message must name)
# --------------------------------------------------------------------------------------------

def _other_hash(run: Path, k: int) -> str:
    """A content hash of the archive that is not in generation ``k``'s population."""
    pop = {p["hash"] for p in _load(_gen(run, k))["population"]}
    for j in range(k + 1):
        for o in _load(_gen(run, j))["offspring"]:
            if o["hash"] not in pop:
                return o
    raise AssertionError("every offspring survived")


def _swap_population_member(run: Path) -> None:
    path = _gen(run, 2)
    o = _other_hash(run, 2)
    _edit(path, lambda d: d["population"].__setitem__(
        -1, {"hash": o["hash"], "genome": o["genome"], "mac_ratio": o["mac_ratio"], "quality": o["quality"]}))


def _set_quality_everywhere(run: Path) -> None:
    """Edit one candidate's quality consistently in every generation record (not in evaluations.json)."""
    h = _load(_gen(run, 1))["offspring"][1]["hash"]
    for k in range(GENERATIONS):
        def change(d):
            for key in ("offspring", "population"):
                for o in d[key]:
                    if o["hash"] == h:
                        o["quality"] += 1.0
        _edit(_gen(run, k), change)


def _evaluation_of_unrecorded(run: Path, change) -> None:
    """Remove gen_0002.json (an interrupted generation) and damage one of its cached evaluations."""
    offspring = _load(_gen(run, 2))["offspring"]
    _gen(run, 2).unlink()
    path = run / "evaluations.json"
    _edit(path, lambda d: change(d["evaluations"][offspring[0]["hash"]]))


def _zeros(run: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    images = load_file(str(run / "reference_images.safetensors"))["images"]
    save_file({"images": torch.zeros_like(images)}, str(run / "reference_images.safetensors"))


REFUSED = {
    # generation records
    "record-empty-object": (lambda r: _save(_gen(r, 1), {}), "gen_0001.json"),
    "record-empty-list": (lambda r: _save(_gen(r, 1), []), "gen_0001.json"),
    "record-a-number": (lambda r: _save(_gen(r, 0), 3), "gen_0000.json"),
    "record-missing-population": (lambda r: _edit(_gen(r, 1), lambda d: d.pop("population")), "gen_0001.json"),
    # found by scripts/fuzz.py --target run-dirs: the origin labels of generation 0 were read back unchecked
    "record-init-label-edited": (lambda r: _edit(_gen(r, 0), lambda d: d["offspring"][0].__setitem__(
        "init", "random" if d["offspring"][0]["init"] != "random" else "all-compute")), "gen_0000.json"),
    "record-missing-front": (lambda r: _edit(_gen(r, 2), lambda d: d.pop("front")), "gen_0002.json"),
    "offspring-missing-genome": (lambda r: _edit(_gen(r, 1), lambda d: d["offspring"][2].pop("genome")),
                                 "gen_0001.json"),
    "offspring-not-an-object": (lambda r: _edit(_gen(r, 1), lambda d: d["offspring"].__setitem__(0, [])),
                                "gen_0001.json"),
    "genome-bad-hex": (lambda r: _edit(_gen(r, 1), lambda d: d["offspring"][0].__setitem__(
        "genome", "zz" + d["offspring"][0]["genome"][2:])), "gen_0001.json"),
    "genome-too-long": (lambda r: _edit(_gen(r, 1), lambda d: d["offspring"][0].__setitem__(
        "genome", d["offspring"][0]["genome"] + "00")), "gen_0001.json"),
    "genome-of-another-schedule": (lambda r: _edit(_gen(r, 1), lambda d: d["offspring"][0].__setitem__(
        "genome", d["offspring"][1]["genome"])), "gen_0001.json"),
    "hash-edited": (lambda r: _edit(_gen(r, 1), lambda d: d["offspring"][0].__setitem__("hash", "0" * 64)),
                    "gen_0001.json"),
    "population-empty": (lambda r: _edit(_gen(r, 2), lambda d: d.__setitem__("population", [])), "gen_0002.json"),
    "offspring-empty": (lambda r: _edit(_gen(r, 1), lambda d: d.__setitem__("offspring", [])), "gen_0001.json"),
    "population-member-swapped": (_swap_population_member, "gen_0002.json"),
    "population-reordered": (lambda r: _edit(_gen(r, 0), lambda d: d["population"].reverse()), "gen_0000.json"),
    "population-truncated": (lambda r: _edit(_gen(r, 1), lambda d: d["population"].pop()), "gen_0001.json"),
    "population-member-unknown": (lambda r: _edit(_gen(r, 1), lambda d: d["population"][0].__setitem__(
        "hash", "ab" * 32)), "gen_0001.json"),
    "wrong-version": (lambda r: _edit(_gen(r, 1), lambda d: d.__setitem__("ecad_search_version", 99)),
                      "gen_0001.json"),
    "wrong-seed": (lambda r: _edit(_gen(r, 2), lambda d: d.__setitem__("seed", 1)), "gen_0002.json"),
    "wrong-generation-number": (lambda r: shutil.copy(_gen(r, 0), _gen(r, 1)), "gen_0001.json"),
    "hv-reference-edited": (lambda r: _edit(_gen(r, 2), lambda d: d["hv_reference"].__setitem__("quality", 0.0)),
                            "gen_0002.json"),
    "hv-reference-edited-everywhere": (lambda r: [_edit(_gen(r, k), lambda d: d["hv_reference"].__setitem__(
        "quality", d["hv_reference"]["quality"] - 1.0)) for k in range(GENERATIONS)], "gen_0000.json"),
    "hypervolume-edited": (lambda r: _edit(_gen(r, 1), lambda d: d.__setitem__("hypervolume", 1.0)),
                           "gen_0001.json"),
    "front-edited": (lambda r: _edit(_gen(r, 1), lambda d: d["front"].pop()), "gen_0001.json"),
    "num-evaluations-edited": (lambda r: _edit(_gen(r, 0), lambda d: d.__setitem__("num_evaluations", 5)),
                               "gen_0000.json"),
    "mac-ratio-edited": (lambda r: _edit(_gen(r, 1), lambda d: d["offspring"][3].__setitem__(
        "mac_ratio", d["offspring"][3]["mac_ratio"] / 2)), "gen_0001.json"),
    "quality-edited-in-every-record": (_set_quality_everywhere, "evaluations.json"),
    "record-not-json": (lambda r: _gen(r, 1).write_bytes(b"\x00\xffnot json"), "gen_0001.json"),
    "record-truncated": (lambda r: _gen(r, 1).write_text(_gen(r, 1).read_text()[:200]), "gen_0001.json"),
    "record-is-a-folder": (lambda r: (_gen(r, 1).unlink(), _gen(r, 1).mkdir()), "gen_0001.json"),
    "generations-is-a-file": (lambda r: (shutil.rmtree(r / "generations"), (r / "generations").write_text("x")),
                              "generations"),
    # evaluations.json
    "evaluations-a-list": (lambda r: _save(r / "evaluations.json", []), "evaluations.json"),
    "evaluations-wrong-version": (lambda r: _edit(r / "evaluations.json", lambda d: d.__setitem__(
        "ecad_search_version", 0)), "evaluations.json"),
    "evaluations-not-json": (lambda r: (r / "evaluations.json").write_text("{"), "evaluations.json"),
    "evaluations-is-a-folder": (lambda r: ((r / "evaluations.json").unlink(), (r / "evaluations.json").mkdir()),
                                "evaluations.json"),
    "evaluation-quality-edited": (lambda r: _edit(r / "evaluations.json", lambda d: next(iter(
        d["evaluations"].values())).__setitem__("quality", 1.5)), "evaluations.json"),
    "evaluation-provenance-edited": (lambda r: _edit(r / "evaluations.json", lambda d: list(
        d["evaluations"].values())[3].__setitem__("generation", 2)), "evaluations.json"),
    "cached-evaluation-bad-genome": (lambda r: _evaluation_of_unrecorded(r, lambda e: e.__setitem__("genome", "x")),
                                     "evaluations.json"),
    "cached-evaluation-mac-ratio-edited": (lambda r: _evaluation_of_unrecorded(r, lambda e: e.__setitem__(
        "mac_ratio", 0.01)), "evaluations.json"),
    "cached-evaluation-quality-not-a-number": (lambda r: _evaluation_of_unrecorded(r, lambda e: e.__setitem__(
        "quality", "high")), "evaluations.json"),
    # reference images
    "reference-sha256-edited": (lambda r: _edit(r / "reference.json", lambda d: d.__setitem__(
        "images_sha256", "0" * 64)), "reference_images.safetensors"),
    "reference-json-gone-images-zeros": (lambda r: ((r / "reference.json").unlink(), _zeros(r)), "reference.json"),
    "reference-sha256-removed-images-zeros": (lambda r: (_edit(r / "reference.json", lambda d: d.pop("images_sha256")),
                                                       _zeros(r)), "reference.json"),
    "reference-both-deleted": (lambda r: ((r / "reference.json").unlink(),
                                          (r / "reference_images.safetensors").unlink()),
                               "reference_images.safetensors"),
    # other files
    "search-json-a-list": (lambda r: _save(r / "search.json", []), "search.json"),
    "mac-profile-is-a-folder": (lambda r: ((r / "mac_profile.json").unlink(), (r / "mac_profile.json").mkdir()),
                                "mac_profile.json"),
    "front-is-a-file": (lambda r: (shutil.rmtree(r / "front"), (r / "front").write_text("x")), "front"),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_damage_is_refused_in_one_line_naming_the_file(kind, finished, tiny_dir, pipe, tmp_path):
    damage, name = REFUSED[kind]
    run = _copy(finished, tmp_path)
    damage(run)
    state = _state(run)
    with pytest.raises(EcadError) as info:
        _resume(tiny_dir, run, pipe)
    message = str(info.value)
    assert "\n" not in message and name in message, message
    assert _state(run) == state  # a refused resume writes none of the search's state


def _state(run: Path) -> dict:
    """The bytes of the files a resume must not touch when it refuses."""
    files = [run / "evaluations.json", run / "reference.json", run / "reference_images.safetensors"]
    if (run / "generations").is_dir():
        files += sorted((run / "generations").iterdir())
    return {p.name: p.read_bytes() for p in files if p.is_file()}


@pytest.mark.parametrize("kind", ["record-empty-list", "genome-bad-hex", "evaluations-a-list",
                                  "reference-sha256-edited", "generations-is-a-file", "front-is-a-file"])
def test_the_cli_exits_1_with_one_error_line(kind, finished, tiny_dir, tmp_path, capsys):
    from ecad_hub import cli

    damage, name = REFUSED[kind]
    run = _copy(finished, tmp_path)
    damage(run)
    capsys.readouterr()
    rc = cli.main(["search", "--model", str(tiny_dir), "--out", str(run), "--steps", "4", "--max-sequence-length",
                   "16", "--population", "6", "--generations", str(GENERATIONS), "--metric", "fidelity",
                   "--metric-arg", "max_psnr=200", "--prompts", str(tiny_dir.parent / "prompts.txt"), "--threads",
                   "1", "--no-progress", "--resume", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("error: ") and name in err[0], err


# --------------------------------------------------------------------------------------------
# damage that is recovered: the resumed run equals the uninterrupted one
# --------------------------------------------------------------------------------------------

def _edit_unrecorded(run: Path, change) -> None:
    """Damage the cached evaluation of a candidate of the interrupted (unrecorded) last generation."""
    def edit(doc):
        entry = next(e for e in doc["evaluations"].values() if e["generation"] == GENERATIONS - 1)
        change(entry)
    _edit(run / "evaluations.json", edit)


RECOVERED = {
    # a cached evaluation no record confirms is used only if its checksum holds, else evaluated again
    "cached-evaluation-quality-negated": lambda r: _edit_unrecorded(r, lambda e: e.__setitem__(
        "quality", -e["quality"])),  # found by scripts/fuzz.py --target run-dirs: it used to resume silently
    "cached-evaluation-provenance-edited": lambda r: _edit_unrecorded(r, lambda e: e.__setitem__(
        "candidate", e["candidate"] + 1)),
    "cached-evaluation-checksum-removed": lambda r: _edit_unrecorded(r, lambda e: e.pop("sha256")),
    "evaluations-deleted": lambda r: (r / "evaluations.json").unlink(),
    "evaluations-emptied": lambda r: _edit(r / "evaluations.json", lambda d: d.__setitem__("evaluations", {})),
    "evaluations-of-recorded-candidates-deleted": lambda r: _edit(r / "evaluations.json", lambda d: [
        d["evaluations"].pop(o["hash"]) for o in _load(_gen(r, 1))["offspring"]]),
    "reference-images-truncated": lambda r: (r / "reference_images.safetensors").write_bytes(
        (r / "reference_images.safetensors").read_bytes()[:1000]),
    "reference-images-zeros": _zeros,
    "reference-images-deleted": lambda r: (r / "reference_images.safetensors").unlink(),
    "reference-json-deleted": lambda r: (r / "reference.json").unlink(),
    "reference-json-not-json": lambda r: (r / "reference.json").write_text("[1,"),
    "reference-json-without-sha256": lambda r: _edit(r / "reference.json", lambda d: d.pop("images_sha256")),
    "frontier-png-garbage": lambda r: (r / "frontier.png").write_bytes(b"garbage"),
    "front-file-edited": lambda r: [p.write_text("{}") for p in (r / "front").glob("*.json")],
    "temp-file-left-behind": lambda r: (r / "generations" / ".gen_0002.json.abc.tmp").write_text("{"),
}


@pytest.mark.parametrize("kind", sorted(RECOVERED))
def test_recoverable_damage_resumes_into_the_uninterrupted_run(kind, finished, tiny_dir, pipe, tmp_path):
    run = _copy(finished, tmp_path)
    _gen(run, GENERATIONS - 1).unlink()  # interrupted before the last generation was written
    RECOVERED[kind](run)
    result = _resume(tiny_dir, run, pipe)
    assert result.generation == GENERATIONS - 1
    for k in range(GENERATIONS):
        assert _gen(run, k).read_bytes() == _gen(finished, k).read_bytes(), k
    assert sorted(p.name for p in (run / "front").glob("*.json")) == \
        sorted(p.name for p in (finished / "front").glob("*.json"))
    for p in (finished / "front").glob("*.json"):
        assert (run / "front" / p.name).read_bytes() == p.read_bytes()
    assert _load(run / "evaluations.json") == _load(finished / "evaluations.json") or kind.startswith("evaluations")
    assert _load(run / "reference.json")["images_sha256"] == _load(finished / "reference.json")["images_sha256"]
    # and the recovered directory now resumes without anything to redo
    assert _resume(tiny_dir, run, pipe).metric_calls == 0


def test_a_deleted_cache_is_evaluated_again(finished, tiny_dir, pipe, tmp_path):
    """``evaluations.json`` is a cache: recorded candidates come back from the generation records,
    the rest (here: the unrecorded last generation) is evaluated again."""
    run = _copy(finished, tmp_path)
    _gen(run, GENERATIONS - 1).unlink()
    (run / "evaluations.json").unlink()
    result = _resume(tiny_dir, run, pipe)
    assert result.metric_calls == len(_load(_gen(finished, GENERATIONS - 1))["offspring"])
    assert _load(run / "evaluations.json")["evaluations"].keys() == _load(finished / "evaluations.json")[
        "evaluations"].keys()
    log = (run / "log.txt").read_text()
    assert "rebuilt" in log and "from the generation records" in log


def test_a_finished_run_resumes_untouched(finished, tiny_dir, pipe, tmp_path):
    run = _copy(finished, tmp_path)
    result = _resume(tiny_dir, run, pipe)
    assert result.metric_calls == 0 and result.generation == GENERATIONS - 1
    for k in range(GENERATIONS):
        assert _gen(run, k).read_bytes() == _gen(finished, k).read_bytes()
