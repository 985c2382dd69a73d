"""``ecad-hub quickstart`` end to end (a shorter search than the default, same steps)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecad_hub import embedded


def _model_args(tmp_path: Path) -> list[str]:
    """The embedded model when its weights are present; otherwise a tiny random PixArt folder."""
    if (Path(embedded.EMBEDDED_PIPELINE_PATH) / "model_index.json").is_file():
        return []
    from tiny_models import save_tiny_pipeline, tiny_pixart_pipeline

    folder = tmp_path / "tiny-pixart"
    save_tiny_pipeline(tiny_pixart_pipeline(0), folder)
    return ["--model", str(folder)]


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, capsys):
    from ecad_hub import ECADPipeline, Frontier, cli

    out = tmp_path / "qs"
    rc = cli.main(["quickstart", "--out", str(out), "--generations", "2", "--population", "8",
                   *_model_args(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    # the table: all-compute and every frontier schedule with MAC and wall-clock speedups
    assert "MAC speedup" in text and "wall-clock" in text and "all-compute" in text
    assert "(calibration)" in text and "(held-out)" in text  # the final front's held-out quality beside it
    assert "quickstart finished in" in text

    run = out / "search"
    assert (run / "search.json").is_file() and (run / "generations" / "gen_0001.json").is_file()
    frontier_dir = out / "frontier"
    for name in ("ecad_config.json", "frontier.json", "README.md", "frontier.png"):
        assert (frontier_dir / name).is_file(), name
    frontier = Frontier.load(frontier_dir)
    assert len(frontier) == len(list((run / "front").glob("*.json")))
    for name in ("grid.png", "all-compute.png", f"fastest-{frontier.names[-1]}.png"):
        assert (out / name).stat().st_size > 100, name
    for s in frontier.schedules:
        assert s.name in text
    # the exported folder is what ECADPipeline loads (quickstart did it; check the config it read)
    config = json.loads((frontier_dir / "ecad_config.json").read_text())
    assert config["num_inference_steps"] == frontier.num_inference_steps
    assert ECADPipeline is not None
    assert f"default schedule: {frontier.default} (the fastest whose" in text
    if not _model_args(tmp_path):  # the embedded model: its card says what it is
        readme = (frontier_dir / "README.md").read_text()
        assert "\nbase_model:" not in readme.split("\n---\n", 1)[0] and "the embedded digits model" in readme
        assert "red fox" not in readme


@pytest.mark.slow
@pytest.mark.skipif(not (Path(embedded.EMBEDDED_PIPELINE_PATH) / "model_index.json").is_file(),
                    reason="the embedded model's weights are not in this checkout")
def test_quickstart_ends_with_a_comparison(tmp_path, capsys):
    """With the compare step (ecad_hub.compare.quickstart): held-out quality of the front, FirstBlockCache
    and FORA beside the frontier in the printed table, compare.json / compare.png, and the card section."""
    from ecad_hub.compare.quickstart import quickstart_comparison
    from ecad_hub.search.quickstart import quickstart

    out = tmp_path / "qs"
    res = quickstart(out, generations=2, population=8, comparison=quickstart_comparison)
    text = capsys.readouterr().out
    assert "compared on held-out prompts" in text and "FirstBlockCache" in text and "FORA" in text
    assert set(res["heldout"]) >= {s.name for s in res["front"]} - {"all-compute"} or res["heldout"]
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert {r["method"] for r in rows} >= {"all-compute", "ECAD", "FORA", "FirstBlockCache"}
    assert (out / "compare.png").stat().st_size > 100
    assert "## Compared with other caches" in (out / "frontier" / "README.md").read_text()
    _check_honest_quickstart_card(out, res)


def _check_honest_quickstart_card(out: Path, res: dict) -> None:
    """The quickstart card: no Hub base_model claim, a digits prompt, and a default without a visible
    quality drop (within the embedded reward's tolerance, or 5%, of all-compute on calibration and
    held-out prompts; else the mildest schedule)."""
    import re

    from huggingface_hub import ModelCard

    from ecad_hub import Frontier

    frontier = Frontier.load(out / "frontier")
    assert res["default"] == frontier.default
    card = ModelCard((out / "frontier" / "README.md").read_text())
    meta = card.data.to_dict()
    assert "base_model" not in meta and meta["license"] == "apache-2.0"
    assert "the embedded digits model" in card.text and "red fox" not in card.text
    prompt = re.search(r'image = pipe\("([^"]+)"', card.text).group(1)
    assert embedded.parse_caption(prompt).as_dict()["digit"] is not None
    default = frontier[frontier.default]
    record = next(q for q in default.metrics["quality"] if q["metric"] == frontier.metric)
    held, ref = res["heldout"].get(frontier.default), res["heldout"]["all-compute"]

    def allowed(q):
        return embedded.REWARD_TOLERANCE if frontier.metric == embedded.REWARD_METRIC else 0.05 * abs(q)

    calibration_ref = record["all_compute_value"]
    within = (record["value"] >= calibration_ref - allowed(calibration_ref)
              and held is not None and held >= ref - allowed(ref))
    assert within or frontier.default == frontier.names[0], (frontier.default, record, held, ref)
    assert f"| `{frontier.default}` (default) |" in card.text
