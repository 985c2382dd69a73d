"""``ecad-hub compare``: every baseline on the tiny PixArt / FLUX / SD3 pipelines and the embedded
model, executed MACs (probe vs a plain FlopCounterMode run), held-out/calibration disjointness,
the model-card section (Hub ModelCard round trip) and the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from ecad_hub import embedded
from ecad_hub.compare import CompareResult, compare
from ecad_hub.compare import baselines as B
from ecad_hub.compare.runner import _Runner, heldout_pairs
from tiny_models import pipeline_call_kwargs, single_threaded, tiny_pipeline

HAS_EMBEDDED = (Path(embedded.EMBEDDED_PIPELINE_PATH) / "model_index.json").is_file()
TINY_SWEEPS = {"fora": [2], "delta-dit": [2], "attention": [2], "fbc": [1e9], "pab": [3], "fastercache": [2],
               "taylorseer": [2], "magcache": [1e9]}
BASELINES = ("fora", "delta-dit", "attention", "fbc", "pab", "fastercache", "taylorseer", "magcache")


def _settings(kind: str) -> dict:
    kw = pipeline_call_kwargs(kind)
    return {k: kw[k] for k in ("height", "width", "num_inference_steps", "guidance_scale", "max_sequence_length")}


def _plain_transformer_macs(runner: _Runner, method: B.Method) -> int:
    """MACs of the transformer in one pipeline call under a plain ``FlopCounterMode`` (module-tracked)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ecad_hub.macs import counted_global

    name = type(runner.pipe.transformer).__name__
    with runner.active(method), torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            runner._call(method, 0, runner.n)
    counts = fc.get_flop_counts()
    return counted_global({"Global": counts[name]}, False)


@pytest.mark.parametrize("kind", ["pixart", "flux", "sd3"])
def test_every_baseline_on_tiny_pipelines(kind):
    with single_threaded():
        pipe = tiny_pipeline(kind)
        pipe.set_progress_bar_config(disable=True)
        settings = _settings(kind)
        pairs = [("a red fox in the snow", 11), ("a lighthouse at dusk", 12)]
        result = compare(pipe, base_model=f"tiny-{kind}", settings=settings, heldout=pairs,
                         calibration_prompts=["a bowl of soup"], methods=BASELINES + ("dbcache",),
                         sweeps=TINY_SWEEPS, timing_rounds=1, timing_batch=1)
    ref = result.reference
    assert ref.mac_speedup == 1.0 and ref.num_images == 2
    by = {}
    for r in result.rows:
        by.setdefault(r.method, []).append(r)
        assert r.macs_per_image <= ref.macs_per_image, r  # never more than all-compute
        assert r.metric == "fidelity" and r.num_images == 2
    expected = {"FORA", "Delta-DiT", "attention-every-N", "PyramidAttentionBroadcast", "TaylorSeer", "MagCache"}
    expected |= {"FasterCache"} if kind != "flux" else set()
    # diffusers' FBC cannot handle SD3's context_pre_only last block (it returns no text stream): one line
    expected |= {"FirstBlockCache"} if kind != "sd3" else set()
    if kind == "sd3":
        assert any(s.startswith("FirstBlockCache threshold=1e+09: failed on this pipeline") for s in result.skipped)
    assert expected <= set(by), (set(by), result.skipped)
    for method in expected:  # each of these settings skips work: fewer executed MACs than all-compute
        assert all(r.mac_speedup > 1.0 for r in by[method]), (method, by[method])
    if kind == "flux":  # packed tokens: the adapter says FasterCache does not apply; said in one line
        assert any(s.startswith("FasterCache:") for s in result.skipped)
    if not B.cachedit_available():
        assert any(s.startswith("cache-dit DBCache: cache-dit is not installed") for s in result.skipped)


@pytest.mark.parametrize("key", ["fbc", "taylorseer", "pab"])
def test_probe_macs_equal_a_plain_flop_counter_run(key):
    """The per-forward count (probe) equals a FlopCounterMode around the whole call, for dynamic caches too."""
    with single_threaded():
        pipe = tiny_pipeline("pixart")
        pipe.set_progress_bar_config(disable=True)
        settings = _settings("pixart")
        runner = _Runner(pipe, settings, [("a red fox", 1), ("a blue car", 2)], None, None)
        skipped: list[str] = []
        method = B.diffusers_methods(pipe, runner.adapter, dict(pipe.transformer.config), settings, [key],
                                     TINY_SWEEPS, skipped=skipped)[0]
        _, probe_macs, forwards = runner.images(method)
        plain = _plain_transformer_macs(runner, method)
        _, full_macs, _ = runner.images(B.all_compute_method())
        runner.probe.remove()
    assert forwards == settings["num_inference_steps"]
    assert probe_macs * runner.n == plain
    assert probe_macs < full_macs


def test_heldout_prompts_are_disjoint_from_calibration():
    cal = embedded.calibration_prompts(16)
    pairs, name = heldout_pairs(96, embedded_model=True, calibration=cal)
    assert len(pairs) == 96 and "heldout" in name
    assert not {p for p, _ in pairs} & set(cal)
    assert min(s for _, s in pairs) >= 1_000_000  # calibration images use seeds 0..N-1
    generic, _ = heldout_pairs(4, embedded_model=False, calibration=["a red fox in the snow"])
    assert "a red fox in the snow" not in {p for p, _ in generic}
    with pytest.raises(Exception, match="calibration prompt"):
        compare(tiny_pipeline("pixart"), base_model="tiny", settings=_settings("pixart"), heldout=[("a cat", 1)],
                calibration_prompts=["a cat"], methods=["fora"])


def test_cachedit_skipped_with_a_note_when_missing(monkeypatch):
    monkeypatch.setattr(B, "cachedit_available", lambda: False)
    skipped: list[str] = []
    assert B.cachedit_methods(None, {"num_inference_steps": 4}, B.SWEEPS["quick"], skipped) == []
    assert skipped == ["cache-dit DBCache: cache-dit is not installed (pip install 'ecad-hub[compare]')"]


def test_heuristic_schedules_reuse_and_sweep():
    from ecad_hub.adapters import architecture_of

    arch = architecture_of(tiny_pipeline("flux").transformer)
    methods = B.heuristic_methods(arch, 20, ["fora", "delta-dit", "attention"], B.SWEEPS["full"])
    keys = [m.key for m in methods]
    assert keys.count("fora") == 5 and keys.count("delta-dit") == 4 and keys.count("attention") == 4
    for m in methods:
        assert not all(bool(x.all()) for x in m.schedule.effective_masks().values())


def _embedded_frontier(folder: Path):
    from ecad_hub.adapters import architecture_of
    from ecad_hub.frontier import Frontier

    pipe = embedded.load_pipeline()
    arch = architecture_of(pipe.transformer)
    heur = B.heuristic_methods(arch, 20, ["fora"], {"fora": [2, 4]})
    from ecad_hub.macs import profile_macs

    profile = profile_macs(dict(pipe.transformer.config), 32, 32, batch_size=2, text_len=embedded.MAX_SEQUENCE_LENGTH,
                           vae_scale_factor=pipe.vae_scale_factor)
    frontier = Frontier.from_schedules([m.schedule for m in heur], base_model="embedded", profile=profile,
                                       height=32, width=32)
    frontier.save_pretrained(folder)
    return pipe, frontier


@pytest.mark.skipif(not HAS_EMBEDDED, reason="the embedded model's weights are not in this checkout")
def test_cli_on_the_embedded_model_into_the_card(tmp_path, capsys):
    from huggingface_hub import ModelCard

    from ecad_hub.cli import compare as cli_compare
    from ecad_hub.frontier import Frontier

    folder = tmp_path / "frontier"
    _, frontier = _embedded_frontier(folder)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli_compare.add_parsers(sub)
    out_json, out_png = tmp_path / "c.json", tmp_path / "c.png"
    args = parser.parse_args(["compare", str(folder), "--methods", "ecad,fora,fbc", "--num-heldout", "2",
                              "--preset", "quick", "--timing-rounds", "1", "--timing-batch", "1", "--threads", "1",
                              "--json", str(out_json), "--plot", str(out_png), "--into", str(folder), "-q"])
    with single_threaded():
        assert args.handler(args) == 0
    text = capsys.readouterr().out
    assert "FirstBlockCache" in text and "FORA" in text and "ECAD" in text
    assert "ECAD is at least as good" in text  # the plain per-baseline sentence

    doc = json.loads(out_json.read_text())
    rows = doc["rows"]
    for r in rows:
        for key in ("method", "setting", "mac_speedup", "wall_speedup", "quality", "metric", "fidelity_psnr",
                    "num_images"):
            assert key in r
        assert r["num_images"] == 2 and r["metric"] == "embedded-reward"
    ecad = [r for r in rows if r["kind"] == "ecad"]
    assert len(ecad) == 2 and all("calibration_quality" in r for r in ecad)
    for r in ecad:  # static schedules: executed MACs match the MAC profile's figure
        assert r["mac_speedup"] == pytest.approx(r["profile_mac_speedup"], rel=1e-3)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["prompt_set"]["disjoint_from_calibration"] is True
    assert CompareResult.from_dict(doc).table() == CompareResult.from_dict(doc).table()

    # the card: section with plot, table, prompt set, image counts and machine; a valid Hub model card
    readme = (folder / "README.md").read_text()
    assert "## Compared with other caches" in readme and "(compare.png)" in readme
    assert "held-out (prompt, seed) pairs" in readme and "Machine:" in readme and "| FirstBlockCache |" in readme
    card = ModelCard(readme)
    assert card.data.library_name == "ecad-hub"
    assert ModelCard(str(card)).content == card.content
    assert (folder / "compare.png").stat().st_size > 100
    numbers = json.loads((folder / "frontier.json").read_text()).get("comparison") \
        or json.loads((folder / "comparison.json").read_text())
    assert numbers["metric"] == "embedded-reward" and len(numbers["rows"]) == len(rows)
    from ecad_hub.schemas import schema_problems  # the record validates against the extended frontier schema

    index = json.loads((folder / "frontier.json").read_text())
    index["comparison"] = numbers
    assert schema_problems(index, "frontier-v1") == []
    reloaded = Frontier.load(folder)  # still a loadable frontier
    assert reloaded.names == frontier.names


@pytest.mark.skipif(not HAS_EMBEDDED, reason="the embedded model's weights are not in this checkout")
def test_cli_refuses_a_bad_into_folder_before_comparing(tmp_path):
    """``--into`` names the frontier folder the card section goes to; a wrong one is refused at once (not after
    the whole comparison ran), in one line, through the console script."""
    import subprocess
    import sys
    import time

    folder = tmp_path / "frontier"
    _embedded_frontier(folder)
    exe = Path(sys.executable).with_name("ecad-hub")
    start = time.monotonic()
    proc = subprocess.run([str(exe), "compare", str(folder), "--preset", "quick", "--into", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "held-out" not in proc.stdout
    assert time.monotonic() - start < 60  # no comparison ran (the quick preset takes minutes)


@pytest.mark.skipif(not HAS_EMBEDDED, reason="the embedded model's weights are not in this checkout")
def test_adding_a_comparison_keeps_the_recorded_call_settings_and_license(tmp_path):
    from ecad_hub.compare.card import _rebuild
    from ecad_hub.frontier import Frontier

    _, frontier = _embedded_frontier(tmp_path / "f")
    rich = Frontier(frontier.schedules, base_model=frontier.base_model, resolutions=frontier.resolutions,
                    pipeline_call={"use_resolution_binning": False, "max_sequence_length": 16},
                    scheduler={"class": "DPMSolverMultistepScheduler", "config": {"num_train_timesteps": 1000}})
    rich.license = "apache-2.0"
    out, _ = _rebuild(rich, default=rich.names[-1])
    assert out.pipeline_call == rich.pipeline_call and out.scheduler == rich.scheduler
    assert out.license == "apache-2.0" and out.default == rich.names[-1]
