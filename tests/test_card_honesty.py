"""Honest model cards (issue #14, "cards that mislead"): imported schedules keep their names and
provenance, heuristics and unscored schedules are labelled and never the default, latency carries its
conditions, the license is stated, the repo id is filled in at push, the embedded model is described as
what it is, snippets load in place with ``dtype=``, and the card is valid Hub metadata that renders.

CLI checks run the real console script (``ecad-hub``) in a subprocess against this process's Hub double
(the subprocess inherits ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_TOKEN`` from conftest).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from ecad_hub import CacheSchedule, Frontier
from ecad_hub.frontier.card import PLACEHOLDER_REPO_ID, model_card, schedule_kind
from ecad_hub.frontier.frontier import default_schedule, quality_default
from support import METRIC, PIXART_CONFIG, REFERENCE, SEARCH, STEPS, needs_reference, pixart_arch, toy_frontier, \
    toy_mask, toy_profile, toy_schedules

ECAD_HUB = shutil.which("ecad-hub", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).parent / "ecad-hub")
PAPER = REFERENCE / "pixart_alpha_256"
PAPER_BASE = "PixArt-alpha/PixArt-XL-2-256x256"
#: most to least compute, as the paper's MAC counts order them
PAPER_ORDER = ["default", "ours_fast", "recompute_all_every_003", "ours_faster", "ours_fastest"]


def run(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ECAD_HUB, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def split_card(text: str) -> tuple[dict, str]:
    """(metadata, body) of a card, the YAML read by huggingface_hub's own parser."""
    from huggingface_hub import ModelCard

    card = ModelCard(text)
    return card.data.to_dict(), card.text


def fora(every: int = 2, name: str = "fora-2", quality: float | None = None) -> CacheSchedule:
    """A FORA-style heuristic made in code: recompute everything every ``every`` steps."""
    arch = pixart_arch()
    reuse = {s: [0, 1, 2] for s in range(STEPS) if s % every}
    metrics = {"quality": [{"metric": METRIC, "value": quality}]} if quality is not None else {}
    return CacheSchedule(name, STEPS, arch, {arch.groups[0].name: toy_mask(reuse, arch)}, metrics=metrics)


@pytest.fixture(scope="module")
def paper_export(tmp_path_factory) -> Path:
    """The ECAD authors' PixArt files exported with `ecad-hub export`, without --repo or --license."""
    if not PAPER.is_dir():
        pytest.skip(f"ECAD reference data not found at {REFERENCE}")
    root = tmp_path_factory.mktemp("paper")
    ok(run("export", *sorted(PAPER.glob("*.json")), "--base-model", PAPER_BASE, "--transformer-config",
           REFERENCE / "configs" / "pixart_xl_2_256_transformer.json", "--height", "256", "--width", "256",
           "--out", root / "out", cwd=root))
    return root / "out"


# --------------------------------------------------------------------------------------------
# 1. imported schedules keep their names and provenance; a search's get ecad-<speedup>x
# --------------------------------------------------------------------------------------------

@needs_reference
def test_exported_paper_schedules_keep_their_names_and_provenance(paper_export):
    frontier = Frontier.load(paper_export)
    assert frontier.names == PAPER_ORDER
    assert sorted(p.name for p in (paper_export / "schedules").iterdir()) == sorted(f"{n}.json" for n in PAPER_ORDER)
    for s in frontier:
        imported = s.provenance["imported_from"]  # survived export, save and load
        assert imported["format"] == "ecad-legacy" and imported["file"] == f"{s.name}.json"
        assert imported["sha256"] == hashlib.sha256((PAPER / f"{s.name}.json").read_bytes()).hexdigest()
    assert frontier["ours_fast"].provenance["imported_from"]["name"] == "handcrafted-nsga2-pw-bf_gen_358_cand_014"
    _, body = split_card((paper_export / "README.md").read_text())
    provenance = body.split("## Provenance", 1)[1]
    assert "- `ours_fast`: imported from `ours_fast.json` in the ECAD reference format" in provenance
    assert "original name `handcrafted-nsga2-pw-bf_gen_358_cand_014`" in provenance
    assert "generation 358, candidate 14 of the ECAD authors' NSGA-II search" in provenance
    assert "ecad-2.68x" not in body and "ecad-2.83x" not in body


def test_only_schedules_not_imported_get_generated_names():
    assert toy_frontier().names == ["ecad-1.00x", "ecad-1.38x", "ecad-2.06x", "ecad-3.17x"]  # a search's
    imported = [s.replace(provenance={"imported_from": {"format": "ecad-legacy", "file": f"{s.name}.json"}})
                for s in toy_schedules()]
    kept = Frontier.from_schedules(imported, base_model="m", profile=toy_profile())
    assert kept.names == ["all", "mild", "medium", "aggressive"]
    assert Frontier.from_schedules(imported, base_model="m", profile=toy_profile(), rename=True).names == \
        toy_frontier().names
    clash = imported[:2] + [imported[2].replace(name="mild")]  # two imported files with one name
    assert Frontier.from_schedules(clash, base_model="m", profile=toy_profile()).names == ["all", "mild", "mild-2"]


# --------------------------------------------------------------------------------------------
# 2. heuristics and unscored schedules: labelled, never the default; wording only when true
# --------------------------------------------------------------------------------------------

@needs_reference
def test_paper_card_labels_the_heuristic_and_claims_no_quality_frontier(paper_export):
    frontier = Frontier.load(paper_export)
    kinds = {s.name: schedule_kind(s) for s in frontier}
    assert kinds == {"default": "all-compute", "ours_fast": "learned", "recompute_all_every_003": "heuristic",
                     "ours_faster": "learned", "ours_fastest": "learned"}
    assert frontier.default in {"ours_fast", "ours_faster", "ours_fastest"}
    meta, body = split_card((paper_export / "README.md").read_text())
    row = next(line for line in body.splitlines() if line.startswith("| `recompute_all_every_003`"))
    assert "(default)" not in row and "| not scored |" in row and row.endswith("| heuristic (not learned) |")
    assert f"| `{frontier.default}` (default) |" in body
    assert "not a quality/compute Pareto frontier" in body and "ordered by MAC count only" in body
    assert "Learned caching" not in body and "along the Pareto frontier" not in body
    assert "1 static heuristic (not learned)" in body and "3 learned by a search" in body
    table = frontier.to_table()
    assert re.search(r"recompute_all_every_003 .* not scored .* heuristic \(not learned\)", table)


def test_a_heuristic_or_unscored_schedule_is_never_the_default():
    # FORA-2 made in code, scored *better* than every learned schedule, sits in the middle of the frontier
    schedules = toy_schedules() + [fora(quality=0.895)]
    frontier = toy_frontier(schedules=schedules)
    assert frontier.names[2] == "fora-2"  # what the old rule (the middle one) made the default
    assert frontier.default == "ecad-2.06x" and "fora-2" in frontier.names  # a heuristic keeps its own name
    # scored learned schedules win over unscored ones, whatever their position
    unscored = [s if s.name in ("all", "aggressive") else s.replace(metrics={}) for s in toy_schedules()]
    assert toy_frontier(schedules=unscored).default == "ecad-3.17x"
    # only heuristics and the reference: a heuristic, said to be one
    only = toy_frontier(schedules=[toy_schedules()[0], fora(quality=0.8)], search=None)
    assert only.default == "fora-2" and schedule_kind(only["fora-2"]) == "heuristic"
    assert "a heuristic: the frontier has no learned schedule" in str(model_card(only))
    # default_schedule directly: every learned candidate is preferred to the heuristic
    named = toy_frontier(schedules=schedules).schedules
    assert schedule_kind(next(s for s in named if s.name == default_schedule(named, METRIC, searched=True)),
                         searched=True) == "learned"


def test_a_scored_searched_frontier_is_called_learned_and_pareto():
    _, body = split_card(str(model_card(toy_frontier(), "test-user/x")))
    assert body.startswith("\n# ECAD caching schedules for test-user/tiny-pixart\n\nLearned caching schedules")
    assert f"along the Pareto frontier of an ecad-hub search" in body
    partly = toy_frontier(schedules=[s if s.name != "mild" else s.replace(metrics={}) for s in toy_schedules()])
    _, body = split_card(str(model_card(partly, "test-user/x")))
    assert "2 of the 3 caching schedules are scored" in body and "Pareto" not in body


# --------------------------------------------------------------------------------------------
# 3. latency carries device, dtype and batch size
# --------------------------------------------------------------------------------------------

@needs_reference
def test_paper_latency_names_the_gpu_and_batch(paper_export):
    _, body = split_card((paper_export / "README.md").read_text())
    assert "NVIDIA RTX A6000, dtype not recorded, batch 100" in body and "not measured on your hardware" in body
    assert "| 84.1 ms/image |" in body  # ours_fast's recorded mean, conditions in the note under the table
    assert "RTX A6000" in Frontier.load(paper_export).to_table()


def test_latency_without_conditions_is_marked_unlabelled():
    s = toy_schedules()
    with_lat = [x.replace(metrics={**x.metrics, "latency": {"ms_per_image": 10.0 + i}}) for i, x in enumerate(s)]
    with_lat[1] = with_lat[1].replace(metrics={**with_lat[1].metrics, "latency": {
        "ms_per_image": 9.0, "device": "cuda:0", "dtype": "float16", "batch_size": 4, "speedup": 1.1}})
    frontier = toy_frontier(schedules=with_lat)
    _, body = split_card(str(model_card(frontier, "test-user/x")))
    assert "| 9.0 ms/image (1.10x) (cuda:0, float16, batch 4) |" in body  # conditions differ: in each cell
    assert "| 10.0 ms/image (device not recorded, dtype not recorded, batch size not recorded) |" in body
    assert "device not recorded" in frontier.to_table()


# --------------------------------------------------------------------------------------------
# 4. license
# --------------------------------------------------------------------------------------------

@needs_reference
def test_paper_card_without_a_license_says_so(paper_export):
    meta, body = split_card((paper_export / "README.md").read_text())
    assert meta["license"] == "other"
    assert "No license was recorded for these schedules" in body.split("## License", 1)[1]


def test_cli_license_flag_is_recorded_and_a_bad_one_is_one_error_line(tmp_path):
    for s in toy_schedules():
        s.save(tmp_path / "in" / f"{s.name}.json")
    (tmp_path / "cfg.json").write_text(json.dumps(PIXART_CONFIG))
    common = ["export", tmp_path / "in", "--base-model", "test-user/tiny-pixart", "--transformer-config",
              tmp_path / "cfg.json", "--height", "64", "--width", "64"]
    ok(run(*common, "--license", "Apache-2.0", "--out", tmp_path / "out", cwd=tmp_path))
    assert json.loads((tmp_path / "out" / "ecad_config.json").read_text())["license"] == "apache-2.0"
    meta, body = split_card((tmp_path / "out" / "README.md").read_text())
    assert meta["license"] == "apache-2.0" and "`apache-2.0`" in body.split("## License", 1)[1]
    assert Frontier.load(tmp_path / "out").license == "apache-2.0"
    bad = run(*common, "--license", "not a license!", "--out", tmp_path / "bad", cwd=tmp_path)
    lines = bad.stderr.splitlines()
    assert bad.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and "license" in lines[0]
    assert not (tmp_path / "bad").exists()


def test_push_takes_the_base_models_license_or_the_given_one(hub):
    from huggingface_hub import ModelCard

    hub.seed("test-user/licensed-base", {"README.md": "---\nlicense: openrail++\n---\n# base\n",
                                         "model_index.json": "{}"})
    frontier = toy_frontier(base_model="test-user/licensed-base")
    frontier.push_to_hub("test-user/licensed-ecad")
    assert ModelCard.load("test-user/licensed-ecad").data.license == "openrail++"
    assert "license" not in json.loads(hub.repo_files("test-user/licensed-ecad")["ecad_config.json"])
    toy_frontier(base_model="test-user/licensed-base").push_to_hub("test-user/licensed-ecad", license="mit")
    assert ModelCard.load("test-user/licensed-ecad").data.license == "mit"
    assert json.loads(hub.repo_files("test-user/licensed-ecad")["ecad_config.json"])["license"] == "mit"
    toy_frontier(base_model="test-user/unseeded-base").push_to_hub("test-user/unknown-ecad")  # no such base repo
    assert ModelCard.load("test-user/unknown-ecad").data.license == "other"


# --------------------------------------------------------------------------------------------
# 5. the repo id is filled in at push; a local card says it has none
# --------------------------------------------------------------------------------------------

def test_a_folder_exported_without_repo_gets_the_repo_id_when_pushed(hub, tmp_path):
    toy_frontier().save_pretrained(tmp_path / "out")
    local = (tmp_path / "out" / "README.md").read_text()
    assert "has not been pushed to the Hub: `your-username/your-ecad-repo` below is a placeholder" in local
    ok(run("push", tmp_path / "out", "--repo", "test-user/honest-card", cwd=tmp_path))
    pushed = hub.repo_files("test-user/honest-card")["README.md"].decode()
    meta, body = split_card(pushed)
    assert 'load_schedule(pipe, "test-user/honest-card", schedule="ecad-2.06x")' in body
    assert 'ECADPipeline.from_pretrained("test-user/honest-card"' in body
    assert "generate --repo test-user/honest-card " in body
    assert PLACEHOLDER_REPO_ID not in pushed and "has not been pushed" not in pushed
    assert meta["model-index"][0]["name"] == "honest-card"


# --------------------------------------------------------------------------------------------
# 6. the embedded model's card
# --------------------------------------------------------------------------------------------

def test_embedded_card_says_what_the_model_is_and_prompts_a_digit():
    from ecad_hub import embedded

    frontier = toy_frontier(base_model=embedded.MODEL_ID)
    text = str(model_card(frontier, "test-user/digits-ecad"))
    meta, body = split_card(text)
    assert "base_model" not in meta and "base_model_relation" not in meta and meta["license"] == "apache-2.0"
    assert body.startswith("\n# ECAD caching schedules for the embedded digits model\n")
    assert "shipped inside the ecad-hub package as `ecad_hub.embedded` (not a Hub model)." in body
    assert "red fox" not in text and "huggingface.co/embedded" not in text
    prompt = re.search(r'image = pipe\("([^"]+)", \*\*embedded\.DEFAULT_CALL_KWARGS\)', body).group(1)
    parsed = embedded.parse_caption(prompt).as_dict()
    assert parsed["digit"] is not None and all(v is not None for v in parsed.values()), parsed
    assert "pipe = embedded.load_pipeline()" in body and 'load_schedule(pipe, "test-user/digits-ecad"' in body


def _scored(name: str, reuse: dict, value: float, ref: float | None = None) -> CacheSchedule:
    arch = pixart_arch()
    q = {"metric": METRIC, "value": value, **({"all_compute_value": ref} if ref is not None else {})}
    return CacheSchedule(name, STEPS, arch, {arch.groups[0].name: toy_mask(reuse, arch)}, metrics={"quality": [q]})


def test_quality_default_is_the_fastest_schedule_within_tolerance_of_all_compute():
    schedules = [_scored("mild", {1: [2], 3: [2]}, 0.89, 0.90),
                 _scored("medium", {1: [2], 2: [0, 1, 2], 3: [2]}, 0.87, 0.90),
                 _scored("aggressive", {1: [0, 1, 2], 2: [0, 2], 3: [0, 1, 2]}, 0.70, 0.90)]
    frontier = toy_frontier(schedules=schedules)
    assert frontier.names == ["ecad-1.38x", "ecad-2.06x", "ecad-3.17x"]
    assert quality_default(frontier) == "ecad-2.06x"  # 0.87 >= 0.90 - 5% of 0.90; 0.70 is not
    assert quality_default(frontier, relative=0.01) == "ecad-1.38x"
    assert quality_default(frontier, tolerance=0.015) == "ecad-1.38x" and \
        quality_default(frontier, tolerance=0.05) == "ecad-2.06x"  # in the metric's units
    heldout = {"all-compute": -0.20, "ecad-1.38x": -0.205, "ecad-2.06x": -0.30, "ecad-3.17x": -0.19}
    assert quality_default(frontier, heldout=heldout) == "ecad-1.38x"  # medium drops on held-out pairs
    assert quality_default(frontier, heldout={"all-compute": -0.2}) == "ecad-1.38x"  # none measured: the mildest


# --------------------------------------------------------------------------------------------
# 7. snippets: load_schedule first, dtype=, no torch_dtype
# --------------------------------------------------------------------------------------------

def test_usage_snippet_loads_in_place_first_with_dtype():
    _, body = split_card(str(model_card(toy_frontier(revision="c" * 40), "test-user/x")))
    usage = body.split("## Usage", 1)[1].split("## Schedules", 1)[0]
    assert "torch_dtype" not in body
    assert ('DiffusionPipeline.from_pretrained("test-user/tiny-pixart", revision="' + "c" * 40
            + '", dtype=torch.float16)') in usage
    first, second = usage.index('load_schedule(pipe, "test-user/x", schedule="ecad-2.06x")'), \
        usage.index('ECADPipeline.from_pretrained("test-user/x", schedule="ecad-2.06x", dtype=torch.float16)')
    assert first < second
    assert "handle.set_schedule(\"ecad-3.17x\")" in usage and "handle.disable()" in usage
    assert 'pipe("a photo of a red fox in the snow", **handle.call_kwargs)' in usage  # the recorded settings travel


# --------------------------------------------------------------------------------------------
# 8. valid Hub metadata, and the card renders
# --------------------------------------------------------------------------------------------

class _Outline(HTMLParser):
    """Headings, images, table rows and code blocks of rendered HTML."""

    def __init__(self):
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.images: list[str] = []
        self.rows = 0
        self.code: list[str] = []
        self._tag: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3", "code"):
            self._tag, self._text = tag, ""
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "tr":
            self.rows += 1

    def handle_data(self, data):
        if self._tag:
            self._text += data

    def handle_endtag(self, tag):
        if tag == self._tag:
            (self.code.append(self._text) if tag == "code" else self.headings.append((tag, self._text.strip())))
            self._tag = None


@pytest.mark.parametrize("which", ["searched", "paper", "embedded"])
def test_card_metadata_is_valid_and_the_markdown_renders_every_section(which, tmp_path, request):
    from huggingface_hub import ModelCardData, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results
    from markdown_it import MarkdownIt

    if which == "paper":
        if not PAPER.is_dir():
            pytest.skip("no ECAD reference data")
        text = (request.getfixturevalue("paper_export") / "README.md").read_text()
        frontier = Frontier.load(request.getfixturevalue("paper_export"))
    else:
        frontier = toy_frontier(base_model="embedded" if which == "embedded" else "test-user/tiny-pixart")
        text = str(model_card(frontier, "test-user/x"))
    # metadata: YAML between the first two '---' lines, read as the Hub reads it
    assert text.startswith("---\n") and "\n---\n" in text[4:]
    (tmp_path / "README.md").write_text(text)
    meta = metadata_load(tmp_path / "README.md")
    assert isinstance(meta, dict) and meta["library_name"] == "ecad-hub" and meta["pipeline_tag"] == "text-to-image"
    assert re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", meta["license"])
    assert "ecad" in meta["tags"] and all(isinstance(t, str) for t in meta["tags"])
    if "base_model" in meta:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", meta["base_model"]) and meta["base_model_relation"] == "adapter"
    data = ModelCardData(**meta)
    assert data.to_dict() == meta  # nothing unknown or lost
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == meta["model-index"][0]["name"] and {r.dataset_config for r in results} == set(frontier.names)
    # rendered
    body = text.split("\n---\n", 1)[1]
    html = MarkdownIt("commonmark").enable("table").render(body)
    outline = _Outline()
    outline.feed(html)
    h1 = [t for tag, t in outline.headings if tag == "h1"]
    h2 = [t for tag, t in outline.headings if tag == "h2"]
    assert len(h1) == 1 and h1[0].startswith("ECAD caching schedules for ")
    assert h2 == ["Usage", "Schedules", "Plot", "Caching masks", "Provenance", "License", "Citation"]
    assert outline.rows == len(frontier) + 1  # header + one row per schedule
    assert outline.images[0] == "frontier.png" and outline.images[1:] == [f"heatmaps/{n}.png" for n in frontier.names]
    assert any("load_schedule(pipe," in block for block in outline.code)
    assert "{{" not in html and "{%" not in html and "<table>" in html
