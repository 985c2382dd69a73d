"""Frontier assembly, naming, picking, local export/load, schemas, plots and the `export` command.

No Hub and no pipelines here (see test_hub.py and test_pipeline_hub.py); MACs come from a small
hand-made MacProfile so the numbers are exact and the tests fast. The toy frontier and the file
checks are in tests/support.py (shared with the Hub, pipeline and registry tests).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import ecad_hub.frontier.frontier as frontier_module
import ecad_hub.frontier.layout as layout_module
from ecad_hub import CacheSchedule, Frontier, FrontierError
from ecad_hub.adapters import architecture_of
from ecad_hub.errors import ArchitectureMismatchError, ScheduleNotFoundError
from ecad_hub.frontier import document_problems
from ecad_hub.plotting import plot_frontier, plot_mask_heatmap
from ecad_hub.utils.table import format_table
from support import (
    METRIC, PIXART_CONFIG, SEARCH, STEPS, assert_valid_png, folder_bytes, pixart_arch, toy_frontier, toy_mask,
    toy_profile, toy_schedules,
)

# --------------------------------------------------------------------------------------------
# assembly and naming
# --------------------------------------------------------------------------------------------

def test_from_schedules_counts_macs_sorts_and_names_deterministically():
    frontier = toy_frontier()
    assert frontier.names == ["ecad-1.00x", "ecad-1.38x", "ecad-2.06x", "ecad-3.17x"]
    speedups = [s.mac_speedup for s in frontier]
    assert speedups == sorted(speedups) and speedups[0] == 1.0
    full = 30 + 2 * 350
    assert frontier["ecad-1.38x"].metrics["macs"]["total"] == full * 2 + (full - 400) * 2
    assert [frontier.quality(s) for s in frontier] == [0.90, 0.88, 0.84, 0.70]
    assert frontier.metric == METRIC and frontier.default == "ecad-2.06x"  # the middle one
    assert frontier.architecture == pixart_arch() and frontier.num_inference_steps == STEPS
    assert frontier.resolutions == ((64, 64),) and frontier.family == "pixart"
    gen = frontier["ecad-3.17x"].generation
    assert gen["base_model"] == "test-user/tiny-pixart" and (gen["height"], gen["width"]) == (64, 64)
    # any input order gives the same frontier, byte for byte
    shuffled = toy_schedules()
    random.Random(1).shuffle(shuffled)
    assert toy_frontier(schedules=shuffled).index_dict() == frontier.index_dict()
    assert len(frontier) == 4 and [s.name for s in frontier] == frontier.names and "ecad-1.00x" in frontier


def test_colliding_names_are_disambiguated_deterministically():
    arch = pixart_arch()
    a = CacheSchedule("a", STEPS, arch, {"transformer_blocks": toy_mask({1: [2]})})
    b = a.replace(name="b", masks={"transformer_blocks": toy_mask({3: [2]})})  # same MACs, other step
    c = a.replace(name="c", masks={"transformer_blocks": toy_mask({1: [1]})})  # 1.04x; a and b 1.159x
    frontier = Frontier.from_schedules([a, b, c], base_model="m", profile=toy_profile())
    assert frontier.names[0] == "ecad-1.04x" and set(frontier.names[1:]) == {"ecad-1.159x", "ecad-1.159x-2"}
    again = Frontier.from_schedules([c, b, a], base_model="m", profile=toy_profile())
    assert again.names == frontier.names and again.schedules == frontier.schedules


def test_schedules_without_macs_keep_their_names_and_sort_by_computed_fraction():
    frontier = Frontier.from_schedules(toy_schedules()[::-1], base_model="m", default="mild")
    assert frontier.names == ["all", "mild", "medium", "aggressive"]
    assert frontier.default == "mild" and frontier.index_dict()["schedules"][0]["mac_speedup"] is None
    with pytest.raises(FrontierError, match="no schedule has recorded MACs"):
        frontier.pick(speedup=1.5)


def test_default_may_name_an_input_schedule_or_a_speedup():
    assert toy_frontier(default="mild").default == "ecad-1.38x"
    assert toy_frontier(default="ecad-3.17x").default == "ecad-3.17x"
    assert toy_frontier(default=1.5).default == "ecad-2.06x"
    with pytest.raises(ScheduleNotFoundError, match="no schedule named 'nope'"):
        toy_frontier(default="nope")


@pytest.mark.parametrize("problem", ["architecture", "steps", "duplicate", "empty"])
def test_inconsistent_inputs_are_refused(problem):
    schedules = toy_schedules()
    if problem == "architecture":
        other = architecture_of({**PIXART_CONFIG, "num_layers": 3})
        schedules.append(CacheSchedule.all_compute(other, STEPS, name="three-blocks"))
        match = "different architectures"
    elif problem == "steps":
        schedules.append(CacheSchedule.all_compute(pixart_arch(), 6, name="six"))
        match = "different step counts"
    elif problem == "duplicate":
        schedules.append(schedules[1].replace(name="copy"))
        match = "'mild' and 'copy' have the same mask"
    else:
        schedules, match = [], "at least one schedule"
    with pytest.raises(FrontierError, match=match):
        Frontier.from_schedules(schedules, base_model="m")


def test_profile_of_another_architecture_is_refused():
    flux = architecture_of({"_class_name": "FluxTransformer2DModel", "num_layers": 1, "num_single_layers": 1})
    with pytest.raises(ArchitectureMismatchError, match="FluxTransformer2DModel"):
        toy_frontier(profile=toy_profile(flux))


# --------------------------------------------------------------------------------------------
# picking
# --------------------------------------------------------------------------------------------

def test_pick_by_speedup_and_by_quality():
    f = toy_frontier()
    assert f.pick(speedup=1.0).name == "ecad-1.00x"  # best quality at >= 1x
    assert f.pick(speedup=1.3).name == "ecad-1.38x"
    assert f.pick(speedup=1.5).name == "ecad-2.06x"
    assert f.pick(speedup=3.17).name == "ecad-3.17x"
    assert f.pick(min_quality=0.85).name == "ecad-1.38x"  # fastest with quality >= 0.85
    assert f.pick(min_quality=0.5).name == "ecad-3.17x"
    with pytest.raises(ScheduleNotFoundError, match=r"no schedule reaches a 4\.00x MAC speedup; the fastest is "
                                                    r"ecad-3\.17x \(3\.17x\)"):
        f.pick(speedup=4)
    with pytest.raises(ScheduleNotFoundError, match=r"image_reward >= 0\.95; the best is ecad-1\.00x"):
        f.pick(min_quality=0.95)
    with pytest.raises(TypeError):
        f.pick()


def test_resolve_by_name_speedup_string_or_default():
    f = toy_frontier()
    assert f.resolve(None).name == f.default
    assert f.resolve("ecad-1.38x").name == "ecad-1.38x"
    assert f.resolve("2x").name == f.resolve(2.0).name == f.resolve("2").name == "ecad-2.06x"
    with pytest.raises(ScheduleNotFoundError) as err:
        f["ecad-9.00x"]
    assert "available: ecad-1.00x, ecad-1.38x, ecad-2.06x, ecad-3.17x" in str(err.value)
    assert isinstance(err.value, KeyError) and "\n" not in str(err.value)


def test_to_table_lists_every_schedule_and_marks_the_default():
    table = toy_frontier().to_table()
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["schedule", "MAC", "speedup"] and METRIC in lines[0]
    assert len(lines) == 5 and lines[3].startswith("* ecad-2.06x") and "2.06x" in lines[3] and "0.84" in lines[3]


def test_format_table_pads_columns_and_aligns_left_or_right():
    rows = [["ecad-1.00x", "1.00x", "-"], ["ecad-12.50x", "12.50x", "0.9"]]
    assert format_table(rows, ["schedule", "speedup", "q"]) == (
        "schedule     speedup  q\n"
        "ecad-1.00x   1.00x    -\n"
        "ecad-12.50x  12.50x   0.9")  # left-aligned, no trailing spaces
    assert format_table(rows, ["schedule", "speedup", "q"], align="lr") == (
        "schedule     speedup    q\n"
        "ecad-1.00x     1.00x    -\n"
        "ecad-12.50x   12.50x  0.9")
    assert format_table([], ["a", "bb"]) == "a  bb"
    with pytest.raises(ValueError, match="2 cells, the header 3"):
        format_table([["a", "b"]], ["x", "y", "z"])


# --------------------------------------------------------------------------------------------
# local export and load
# --------------------------------------------------------------------------------------------

def test_save_pretrained_writes_the_whole_artifact_and_round_trips_byte_for_byte(tmp_path):
    frontier = toy_frontier()
    out = frontier.save_pretrained(tmp_path / "export", repo_id="test-user/tiny-pixart-ecad")
    files = folder_bytes(out)
    assert sorted(files) == sorted(["README.md", "ecad_config.json", "frontier.json", "frontier.png"]
                                   + [f"schedules/{n}.json" for n in frontier.names]
                                   + [f"heatmaps/{n}.png" for n in frontier.names])
    for name, data in files.items():
        if name.endswith(".png"):
            assert_valid_png(data)
    config = json.loads(files["ecad_config.json"])
    assert not document_problems(config, "ecad-config-v1")
    assert config["search"] == SEARCH and config["default_schedule"] == "ecad-2.06x"
    index = json.loads(files["frontier.json"])
    assert not document_problems(index, "frontier-v1")
    assert [e["name"] for e in index["schedules"]] == frontier.names
    entry = index["schedules"][1]
    assert entry["file"] == "schedules/ecad-1.38x.json" and entry["mac_speedup"] == 1.3774
    assert entry["quality"] == [{"metric": METRIC, "value": 0.88}]
    assert entry["content_hash"] == frontier["ecad-1.38x"].content_hash
    assert "test-user/tiny-pixart-ecad" in files["README.md"].decode()

    loaded = Frontier.load(out)
    assert loaded == frontier and loaded.source == str(out) and loaded.commit is None
    frontier_module._PNG_CACHE.clear()  # render the figures again: same bytes
    again = loaded.save_pretrained(tmp_path / "again", repo_id="test-user/tiny-pixart-ecad")
    assert folder_bytes(again) == files  # deterministic, PNGs included


def test_save_pretrained_replaces_an_export_atomically_and_keeps_foreign_files(tmp_path, monkeypatch):
    out = tmp_path / "export"
    toy_frontier().save_pretrained(out)
    (out / "notes.txt").write_text("mine\n")
    before = folder_bytes(out)

    smaller = toy_frontier(schedules=toy_schedules()[:2])

    def crash(tmp, target):
        raise OSError("disk full")

    monkeypatch.setattr(layout_module, "replace_folder", crash)
    with pytest.raises(OSError, match="disk full"):
        smaller.save_pretrained(out)
    assert folder_bytes(out) == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temp folder left behind

    monkeypatch.undo()
    smaller.save_pretrained(out)
    after = folder_bytes(out)
    assert after["notes.txt"] == b"mine\n"
    assert sorted(p for p in after if p.startswith("schedules/")) == ["schedules/ecad-1.00x.json",
                                                                      "schedules/ecad-1.38x.json"]
    assert Frontier.load(out) == smaller


def test_save_pretrained_refuses_a_folder_that_is_not_an_export(tmp_path):
    (tmp_path / "precious.txt").write_text("x")
    with pytest.raises(FrontierError, match="not an ECAD export"):
        toy_frontier().save_pretrained(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


@pytest.mark.parametrize("problem", ["schedule", "config", "default"])
def test_save_pretrained_validates_every_document_before_writing_anything(tmp_path, problem):
    """ecad-hub never writes a folder it would then refuse to load (nor replaces a good export with one)."""
    if problem == "schedule":  # CacheSchedule's constructor does cheap checks only; its metadata is not checked
        schedules = toy_schedules()
        schedules[1] = schedules[1].replace(description="x" * 5000)
        frontier = toy_frontier(schedules=schedules)
        match = r"^invalid schedule: test-user/tiny-pixart: schedules/ecad-1\.38x\.json: description: "
    elif problem == "config":
        frontier = toy_frontier()
        frontier.search = {**SEARCH, "population": "many"}
        match = r"^test-user/tiny-pixart: ecad_config\.json: search/population: 'many' is not type 'integer'$"
    else:
        frontier = toy_frontier()
        frontier.default = "ecad-9.99x"
        match = r"default schedule 'ecad-9\.99x' is not one of"
    with pytest.raises(FrontierError, match=match) as err:
        frontier.validate()
    assert "\n" not in str(err.value)
    with pytest.raises(FrontierError, match=match):
        frontier.save_pretrained(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp folder left behind

    good = toy_frontier().save_pretrained(tmp_path / "export")
    before = folder_bytes(good)
    with pytest.raises(FrontierError, match=match):
        frontier.save_pretrained(good)
    assert folder_bytes(good) == before and sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert toy_frontier().validate().names == toy_frontier().names  # a valid frontier passes (returns itself)


def test_model_card_template_renders_cleanly(tmp_path):
    """The Jinja template (ecad_hub/frontier/templates/card.md) leaves no markup and no stray blank lines."""
    from ecad_hub.frontier.card import TEMPLATE_PATH, model_card

    assert TEMPLATE_PATH.is_file()
    no_search = toy_frontier(search=None, revision="b" * 40, schedules=toy_schedules()[:2])
    for frontier in (toy_frontier(), no_search):
        text = str(model_card(frontier, "test-user/tiny-pixart-ecad"))
        assert not any(mark in text for mark in ("{{", "}}", "{%", "%}", "{#", "#}")), text
        assert "\n\n\n" not in text and text.endswith("}\n```\n") and not text.startswith("\n")
        body = text.split("\n---\n", 1)[1]
        # "Learned" only for the searched frontier: the other's schedules record no origin
        assert body.startswith("\n# ECAD caching schedules for test-user/tiny-pixart\n\n"
                               + ("Caching schedules" if frontier is no_search else "Learned caching schedules"))
        table = [line for line in body.splitlines() if line.startswith("| `")]
        assert len(table) == len(frontier) and sum("(default)" in line for line in table) == 1
        provenance = body.split("## Provenance\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert provenance[0] == "- Base model: `test-user/tiny-pixart`" + (
            f" @ `{'b' * 40}`" if frontier is no_search else "")
        assert all(line.startswith("- ") for line in provenance)
        for name in frontier.names:
            assert f"### {name}\n\n![{name}](heatmaps/{name}.png)\n\n" in body
    text = str(model_card(no_search))
    assert f"loaded from its own repo at revision `{'b' * 40}`." in text
    assert "- Search: assembled from schedule files (no search provenance recorded)\n\nSchedules:\n\n- `ecad-1.00x`: " in text
    assert "\n\nFiles: " in text
    assert 'from_pretrained("your-username/your-ecad-repo"' in text and "is a placeholder" in text


def _corrupt(folder: Path, problem: str) -> str:
    """Break an exported folder; returns a regex the FrontierError must match."""
    if problem == "no-config":
        (folder / "ecad_config.json").unlink()
        return "neither an exported ECAD folder"
    if problem == "config-schema":
        config = json.loads((folder / "ecad_config.json").read_text())
        config["architecture"]["groups"][0]["num_blocks"] = "two"
        (folder / "ecad_config.json").write_text(json.dumps(config))
        return r"ecad_config\.json: architecture/groups/0/num_blocks: 'two' is not type 'integer'"
    if problem == "schedule-schema":
        path = folder / "schedules" / "ecad-1.38x.json"
        doc = json.loads(path.read_text())
        doc["mask"]["transformer_blocks"]["ff"][1] = "0x"
        path.write_text(json.dumps(doc))
        return r"invalid schedule: .*schedules/ecad-1\.38x\.json: mask/transformer_blocks/ff/1"
    if problem == "schedule-edited":
        path = folder / "schedules" / "ecad-1.38x.json"
        doc = json.loads(path.read_text())
        doc["mask"]["transformer_blocks"]["ff"][1] = "11"
        path.write_text(json.dumps(doc))
        return "content hash does not match frontier.json"
    if problem == "missing-schedule":
        (folder / "schedules" / "ecad-3.17x.json").unlink()
        return r"schedules/ecad-3\.17x\.json: listed in frontier\.json but missing"
    if problem == "path-traversal":
        index = json.loads((folder / "frontier.json").read_text())
        index["schedules"][0]["file"] = "../../etc/passwd.json"
        (folder / "frontier.json").write_text(json.dumps(index))
        return r"frontier\.json: schedules/0/file"
    if problem == "stale-index":
        index = json.loads((folder / "frontier.json").read_text())
        index["schedules"][0]["mac_speedup"] = 9.0
        (folder / "frontier.json").write_text(json.dumps(index))
        return "does not match"
    if problem == "not-json":
        (folder / "frontier.json").write_text("{")
        return r"frontier\.json: not valid JSON"
    raise AssertionError(problem)


@pytest.mark.parametrize("problem", ["no-config", "config-schema", "schedule-schema", "schedule-edited",
                                     "missing-schedule", "path-traversal", "stale-index", "not-json"])
def test_broken_exports_are_refused_with_one_line(tmp_path, problem):
    out = toy_frontier().save_pretrained(tmp_path / "export")
    match = _corrupt(out, problem)
    with pytest.raises(FrontierError, match=match) as err:
        Frontier.load(out)
    assert "\n" not in str(err.value)


def test_unlisted_schedule_files_are_ignored_with_a_warning(tmp_path):
    out = toy_frontier().save_pretrained(tmp_path / "export")
    (out / "schedules" / "extra.json").write_text("{}")
    with pytest.warns(UserWarning, match=r"ignoring schedules/extra\.json \(not listed"):
        assert len(Frontier.load(out)) == 4


def test_load_refuses_what_is_neither_folder_nor_repo_id(tmp_path):
    with pytest.raises(FrontierError, match="no such folder, and not a Hub repo id"):
        Frontier.load(str(tmp_path / "missing" / "deep" / "x"))
    with pytest.raises(FrontierError, match="expected a folder"):
        Frontier.load(toy_frontier().save_pretrained(tmp_path / "e") / "frontier.json")


# --------------------------------------------------------------------------------------------
# search run directories
# --------------------------------------------------------------------------------------------

def make_run_dir(path: Path, schedules=None, **overrides) -> Path:
    """A finished search run as the search writes it: search.json + front/*.json (MACs, quality)."""
    profile = toy_profile()
    (path / "front").mkdir(parents=True)
    for i, s in enumerate(schedules or toy_schedules()):
        profile.annotate(s).replace(name=f"g3-c{i}").save(path / "front" / f"g3-c{i}.json")
    meta = {"base_model": "test-user/tiny-pixart", "revision": "a" * 40, "pipeline_class": "PixArtAlphaPipeline",
            "architecture": pixart_arch().to_dict(), "height": 64, "width": 64, "num_inference_steps": STEPS,
            "guidance_scale": 4.5, "metric": {"name": METRIC, "higher_is_better": True},
            "prompt_set": {**SEARCH["prompt_set"], "prompts": ["a photo of a cat"]},
            "population": 8, "generations": 3, "seed": 0, "ecad_hub_version": "0.1.0", **overrides}
    (path / "search.json").write_text(json.dumps(meta))
    return path


def test_load_search_run_directory(tmp_path):
    run = make_run_dir(tmp_path / "run")
    frontier = Frontier.load(run)
    assert frontier.names == toy_frontier().names and frontier.source == str(run)
    assert frontier.base_model_revision == "a" * 40 and frontier.pipeline_class == "PixArtAlphaPipeline"
    assert frontier.guidance_scale == 4.5 and frontier.metric == METRIC
    assert frontier.search == SEARCH  # the prompts themselves are not copied, only name + sha256 + counts
    out = frontier.save_pretrained(tmp_path / "export")
    assert Frontier.load(out) == frontier


def test_search_run_with_other_steps_or_architecture_is_refused(tmp_path):
    with pytest.raises(FrontierError, match="search.json says 20 steps"):
        Frontier.load(make_run_dir(tmp_path / "a", num_inference_steps=20))
    flux = {"transformer_class": "FluxTransformer2DModel",
            "groups": [{"name": "transformer_blocks", "num_blocks": 1, "components": ["attn", "ff", "ff_context"]}]}
    with pytest.raises(FrontierError, match="do not match search.json's architecture"):
        Frontier.load(make_run_dir(tmp_path / "b", architecture=flux))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "search.json").write_text(json.dumps({"base_model": "m"}))
    with pytest.raises(FrontierError, match="no front/"):
        Frontier.load(tmp_path / "c")


# --------------------------------------------------------------------------------------------
# schemas and plots
# --------------------------------------------------------------------------------------------

def test_config_schema_reuses_the_schedule_architecture_definition():
    config = toy_frontier().config_dict()
    assert document_problems(config, "ecad-config-v1") == []
    bad = json.loads(json.dumps(config))
    bad["architecture"]["groups"][0]["components"] = ["attn1", "attn1"]  # uniqueItems from the schedule schema
    bad["default_schedule"] = "../evil"
    problems = document_problems(bad, "ecad-config-v1")
    assert any(p.startswith("architecture/groups/0/components") for p in problems)
    assert any(p.startswith("default_schedule") for p in problems)
    del bad["architecture"]
    assert "(top level): 'architecture' is a required property" in document_problems(bad, "ecad-config-v1")


def test_plots_are_valid_deterministic_pngs(tmp_path):
    series = {"run": [(2.0, 0.8), (1.0, 0.9)]}
    a = plot_frontier(series, tmp_path / "a.png", faded={"gen 1": [(1.5, 0.7)]}, highlight=[(2.0, 0.8)],
                      xlabel="MAC speedup", ylabel=METRIC, title="t")
    b = plot_frontier(series, tmp_path / "b.png", faded={"gen 1": [(1.5, 0.7)]}, highlight=[(2.0, 0.8)],
                      xlabel="MAC speedup", ylabel=METRIC, title="t")
    assert a.read_bytes() == b.read_bytes()
    assert_valid_png(a.read_bytes())
    assert_valid_png(plot_frontier(series, tmp_path / "c.png", highlight="run").read_bytes())
    sd3 = architecture_of({"_class_name": "SD3Transformer2DModel", "num_layers": 3, "dual_attention_layers": [0]})
    h = plot_mask_heatmap(CacheSchedule.all_compute(sd3, 3, name="sd3"), tmp_path / "sd3.png")  # absent cells
    width, height = assert_valid_png(h.read_bytes())
    assert width > height > 100


# --------------------------------------------------------------------------------------------
# `ecad-hub export`
# --------------------------------------------------------------------------------------------

def test_cli_export_from_schedule_files_counts_macs_with_a_transformer_config(tmp_path, capsys):
    from ecad_hub.cli import main

    for s in toy_schedules():
        s.save(tmp_path / "in" / f"{s.name}.json")
    (tmp_path / "config.json").write_text(json.dumps(PIXART_CONFIG))
    rc = main(["export", str(tmp_path / "in"), "--base-model", "test-user/tiny-pixart", "--transformer-config",
               str(tmp_path / "config.json"), "--height", "64", "--width", "64", "--out", str(tmp_path / "out"),
               "--default", "medium"])
    out = capsys.readouterr().out
    assert rc == 0 and "wrote 4 schedules" in out
    frontier = Frontier.load(tmp_path / "out")
    assert frontier.names[0] == "ecad-1.00x" and all(s.mac_speedup for s in frontier)
    assert frontier["ecad-1.00x"].metrics["macs"]["profile"]["height"] == 64
    assert frontier.default == frontier.names[2] and frontier.search is None

    assert main(["export", str(tmp_path / "in"), "--out", str(tmp_path / "x")]) == 1
    assert "--base-model is required" in capsys.readouterr().err


def test_cli_export_from_a_run_directory(tmp_path, capsys):
    from ecad_hub.cli import main

    run = make_run_dir(tmp_path / "run")
    assert main(["export", str(run), "--out", str(tmp_path / "out")]) == 0
    assert Frontier.load(tmp_path / "out") == Frontier.load(run)
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "out2"), "--default", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no schedule named 'nope'" in err and err.count("\n") == 1
    assert not (tmp_path / "out2").exists()


# --------------------------------------------------------------------------------------------
# hardening: what a folder holds cannot crash the loader, and what loads can be saved again
# --------------------------------------------------------------------------------------------

def _edit(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("where", ["schedule", "config"])
def test_an_unknown_absent_component_is_refused_with_one_line(tmp_path, where):
    out = toy_frontier().save_pretrained(tmp_path / "export")
    target = out / ("schedules/ecad-1.38x.json" if where == "schedule" else "ecad_config.json")
    _edit(target, lambda d: d["architecture"]["groups"][0].update(absent={"zz": [0]}))
    with pytest.raises(FrontierError) as err:
        Frontier.load(out)
    assert "architecture/transformer_blocks/absent: unknown component 'zz'" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ['"guidance_scale": 1e400', '"guidance_scale": -1E999', '"num_inference_steps": 4.0'])
def test_numbers_that_cannot_be_written_back_are_refused_in_the_config(tmp_path, text):
    out = toy_frontier(guidance_scale=4.5).save_pretrained(tmp_path / "export")
    config = out / "ecad_config.json"
    key = text.split(":")[0]
    original = config.read_text()
    lines = [line for line in original.splitlines() if line.strip().startswith(key)]
    config.write_text(original.replace(lines[0].strip().rstrip(","), text))
    assert config.read_text() != original
    with pytest.raises(FrontierError, match="too large|is not type 'integer'") as err:
        Frontier.load(out)
    assert "\n" not in str(err.value)
    frontier = toy_frontier(guidance_scale=4.5)
    frontier.guidance_scale = float("inf")
    with pytest.raises(FrontierError, match="guidance_scale: Infinity is not a finite number"):
        frontier.save_pretrained(tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_save_pretrained_respects_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = toy_frontier().save_pretrained(tmp_path / "export")
        assert stat.S_IMODE(out.stat().st_mode) == 0o755
        assert stat.S_IMODE((out / "schedules").stat().st_mode) == 0o755
        assert {stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()} == {0o644}
    finally:
        os.umask(old)


@pytest.mark.parametrize("name", ["../evil.json", "/tmp/evil.json", "schedules/evil\n.json", "a/b/c.json", ".hidden",
                                  "schedules/../../x.json", ""])
def test_write_folder_never_writes_outside_the_layout(tmp_path, name):
    with pytest.raises(FrontierError, match="not a file name of the frontier layout"):
        layout_module.write_folder(tmp_path / "out", {"ecad_config.json": b"{}", name: b"x"})
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.json").exists()


def test_save_pretrained_into_a_file_or_under_one_is_one_line(tmp_path):
    from ecad_hub.errors import EcadError

    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(EcadError) as err:
            toy_frontier().save_pretrained(target)
        assert "is not a folder" in str(err.value) or "is a file, not a folder" in str(err.value)
