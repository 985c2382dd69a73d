"""Settings travel: a search records the pipeline call settings and the scheduler it ran with
(``search.json`` -> ``ecad_config.json`` ``pipeline_call`` / ``scheduler``), and ECADPipeline,
``load_schedule`` (``handle.call_kwargs``) and the recorded scheduler use them by default."""

from __future__ import annotations

import json
import logging
import warnings

import pytest
import torch
from diffusers import DiffusionPipeline

from ecad_hub import ECADPipeline, Frontier, load_schedule
from ecad_hub.errors import FrontierError, ModelLoadError
from ecad_hub.frontier import document_problems
from ecad_hub.search import SearchConfig, run_search

PROMPT = "a photo of a cat"


@pytest.fixture(scope="module")
def searched(tiny_dir, tmp_path_factory):
    """A one-generation search on the tiny PixArt (which needs use_resolution_binning=False and
    max_sequence_length=16 to run), exported to a folder."""
    root = tmp_path_factory.mktemp("travel")
    config = SearchConfig(base_model=str(tiny_dir), num_inference_steps=4, metric="fidelity",
                          metric_kwargs={"max_psnr": 200.0}, prompts=str(tiny_dir.parent / "prompts.txt"),
                          max_sequence_length=16, population=4, generations=1, num_threads=1, seed=0)
    run = root / "run"
    run_search(config, run, progress=False, quiet=True)
    folder = Frontier.load(run).save_pretrained(root / "export")
    return config, run, folder


def test_the_search_records_its_call_settings_and_scheduler(searched, tiny_dir):
    _, run, folder = searched
    doc = json.loads((run / "search.json").read_text())
    call = doc["pipeline_call"]
    assert call["use_resolution_binning"] is False and call["max_sequence_length"] == 16
    assert (call["height"], call["width"], call["guidance_scale"]) == (doc["height"], doc["width"],
                                                                       doc["guidance_scale"])
    assert "num_inference_steps" not in call and "prompt_embeds" not in call and "negative_prompt" not in call
    base = DiffusionPipeline.from_pretrained(str(tiny_dir), local_files_only=True)
    assert doc["scheduler"]["class"] == type(base.scheduler).__name__
    assert doc["scheduler"]["config"]["num_train_timesteps"] == base.scheduler.config.num_train_timesteps
    config = json.loads((folder / "ecad_config.json").read_text())
    assert config["pipeline_call"] == call and config["scheduler"] == doc["scheduler"]
    assert document_problems(config, "ecad-config-v1") == []
    loaded = Frontier.load(folder)
    assert loaded.pipeline_call == call and loaded.scheduler == doc["scheduler"] and loaded == Frontier.load(run)


def test_from_pretrained_then_call_with_no_extra_arguments(searched, tiny_dir):
    _, _, folder = searched
    plain = DiffusionPipeline.from_pretrained(str(tiny_dir), local_files_only=True)
    plain.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError):  # without the recorded settings the tiny model cannot run (the failure)
        plain(PROMPT, num_inference_steps=4, output_type="pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # torch_dtype is passed on as dtype=, without diffusers' warning
        pipe = ECADPipeline.from_pretrained(folder, torch_dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.call_kwargs["use_resolution_binning"] is False and pipe.call_kwargs["num_inference_steps"] == 4
    out = pipe(PROMPT, generator=torch.Generator().manual_seed(0), output_type="pt").images
    h, w = pipe.frontier.height, pipe.frontier.width
    assert out.shape[-2:] == (h, w)
    # the caller's arguments win over the recorded ones
    explicit = pipe(PROMPT, generator=torch.Generator().manual_seed(0), output_type="pt", guidance_scale=1.0).images
    assert not torch.equal(explicit, out)
    again = pipe(PROMPT, generator=torch.Generator().manual_seed(0), output_type="pt",
                 **{k: v for k, v in pipe.call_kwargs.items()}).images
    assert torch.equal(again, out)

    # in place: the same settings as handle.call_kwargs
    handle = load_schedule(plain, folder, schedule=pipe.schedule.name)
    try:
        assert handle.call_kwargs == pipe.call_kwargs and handle.scheduler == pipe.frontier.scheduler
        assert torch.equal(plain(PROMPT, generator=torch.Generator().manual_seed(0), output_type="pt",
                                 **handle.call_kwargs).images, out)
    finally:
        handle.remove()


def test_the_recorded_scheduler_is_installed_or_warned_about(searched, tiny_dir, tmp_path, caplog):
    import shutil

    _, _, folder = searched
    edited = tmp_path / "euler"
    shutil.copytree(folder, edited)
    config = json.loads((edited / "ecad_config.json").read_text())
    config["scheduler"] = {"class": "EulerDiscreteScheduler", "config": {"num_train_timesteps": 1000}}
    (edited / "ecad_config.json").write_text(json.dumps(config))
    pipe = ECADPipeline.from_pretrained(edited, local_files_only=True)
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"  # what the frontier was searched with
    pipe.set_progress_bar_config(disable=True)
    assert pipe(PROMPT, output_type="pt").images.shape[-2:] == (pipe.frontier.height, pipe.frontier.width)

    base = DiffusionPipeline.from_pretrained(str(tiny_dir), local_files_only=True)
    with caplog.at_level(logging.WARNING, logger="ecad_hub.pipeline"):
        handle = load_schedule(base, edited)
    try:
        assert any("searched with the scheduler EulerDiscreteScheduler" in r.getMessage() for r in caplog.records)
        assert type(base.scheduler).__name__ != "EulerDiscreteScheduler"  # a user's pipeline is not changed
        assert type(handle.make_scheduler()).__name__ == "EulerDiscreteScheduler"
    finally:
        handle.remove()

    config["scheduler"] = {"class": "DiffusionPipeline", "config": {}}  # not a scheduler: never imported or built
    (edited / "ecad_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="'DiffusionPipeline', which is not a diffusers scheduler class"):
        ECADPipeline.from_pretrained(edited, local_files_only=True)
    config["scheduler"] = {"class": "os.system", "config": {}}
    (edited / "ecad_config.json").write_text(json.dumps(config))
    with pytest.raises(FrontierError, match="scheduler"):
        Frontier.load(edited)


def test_recorded_call_settings_are_scalars_and_never_per_call_arguments():
    from support import toy_frontier

    base = toy_frontier().config_dict()
    assert document_problems({**base, "pipeline_call": {"height": 64, "use_resolution_binning": False}},
                             "ecad-config-v1") == []
    for bad in ({"prompt_embeds": None}, {"output_type": "latent"}, {"num_inference_steps": 4},
                {"callback_on_step_end": "x"}, {"height": [1, 2]}, {"bad key": 1}, {"x": {"nested": 1}}):
        assert document_problems({**base, "pipeline_call": bad}, "ecad-config-v1"), bad


def test_resuming_a_run_recorded_before_the_settings_travelled_adds_them(searched, tmp_path):
    import shutil

    config, run, _ = searched
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    doc = json.loads((old / "search.json").read_text())
    recorded = {k: doc.pop(k) for k in ("pipeline_call", "scheduler")}
    (old / "search.json").write_text(json.dumps(doc))
    run_search(config, old, resume=True, progress=False, quiet=True)  # not "a different search"
    again = json.loads((old / "search.json").read_text())
    assert {k: again[k] for k in recorded} == recorded


def test_cli_generate_needs_no_extra_flags(searched, tmp_path):
    """``ecad-hub generate`` (the real console script) on the exported folder: no --arg needed."""
    import subprocess
    import sys
    from pathlib import Path

    _, _, folder = searched
    exe = Path(sys.executable).parent / "ecad-hub"
    out = tmp_path / "out.png"
    result = subprocess.run([str(exe), "generate", "--repo", str(folder), "--prompt", PROMPT, "--seed", "0",
                             "--local-files-only", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Invalid sample size" not in result.stderr
