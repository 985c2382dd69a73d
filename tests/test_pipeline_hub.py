"""ECADPipeline end to end against the Hub double: a tiny PixArt base model and its ECAD frontier are
pushed, then loaded by repo id, run, switched, disabled, pulled and reloaded offline.

Images are compared bit for bit with what plain ``apply_schedule`` (or the unpatched base) produces.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, constants

from ecad_hub import ArchitectureMismatchError, CacheSchedule, ECADPipeline, Frontier, StepMismatchError
from ecad_hub.adapters import architecture_of
from ecad_hub.cli import main
from ecad_hub.hooks import apply_schedule
from ecad_hub.hub import pull
from ecad_hub.macs import profile_macs
from support import STEPS, toy_schedules
from tiny_models import (
    load_tiny_pipeline,
    pipeline_call_kwargs,
    save_tiny_pipeline,
    tiny_flux_config,
    tiny_pixart_pipeline,
)

BASE = "test-user/tiny-pixart"
REPO = "test-user/tiny-pixart-ecad"
PROMPT = "a photo of a cat"
CALL = {k: v for k, v in pipeline_call_kwargs("pixart").items() if k != "num_inference_steps"}


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    """The tiny PixArt pipeline saved with safetensors (what gets uploaded as the base model)."""
    pipe = tiny_pixart_pipeline(seed=0)
    return save_tiny_pipeline(pipe, tmp_path_factory.mktemp("tiny-pixart"))


@pytest.fixture(scope="module")
def reference(base_folder):
    """``images(schedule)``: what the base pipeline makes (unpatched for None, else under apply_schedule)."""
    pipe = load_tiny_pipeline(base_folder)
    pipe.set_progress_bar_config(disable=True)
    done: dict = {}

    def images(schedule: CacheSchedule | None) -> torch.Tensor:
        key = None if schedule is None else schedule.content_hash
        if key not in done:
            handle = apply_schedule(pipe, schedule) if schedule is not None else None
            try:
                done[key] = pipe(PROMPT, generator=torch.Generator().manual_seed(0), num_inference_steps=STEPS,
                                 **CALL).images
            finally:
                if handle is not None:
                    handle.remove()
        return done[key]

    images(None)  # the plain base first, before any hook was ever installed
    return images


@pytest.fixture(scope="module")
def frontier(base_folder) -> Frontier:
    """All-compute + three masks for the tiny transformer, MACs counted on the real module."""
    pipe = load_tiny_pipeline(base_folder)
    return Frontier.from_schedules(toy_schedules(architecture_of(pipe.transformer)), base_model=BASE,
                                   pipeline_class=type(pipe).__name__,
                                   profile=profile_macs(pipe.transformer, 64, 64))


def publish(hub, base_folder, frontier: Frontier | None = None, repo: str = REPO) -> str:
    """Upload the base model to BASE and push ``frontier`` to ``repo``; returns the base commit sha."""
    api = HfApi()
    api.create_repo(BASE, exist_ok=True)
    sha = api.upload_folder(repo_id=BASE, folder_path=base_folder, commit_message="tiny base").oid
    if frontier is not None:
        frontier.push_to_hub(repo)
    return sha


def run(pipe, **kwargs) -> torch.Tensor:
    pipe.set_progress_bar_config(disable=True)
    return pipe(PROMPT, generator=torch.Generator().manual_seed(0), **CALL, **kwargs).images


def test_from_pretrained_by_repo_id_generates_switches_and_disables(hub, base_folder, frontier, reference, tmp_path):
    publish(hub, base_folder, frontier)
    hub.clear_requests()
    pipe = ECADPipeline.from_pretrained(REPO, cache_dir=tmp_path / "cache")
    assert set(hub.downloaded(REPO)) == {"ecad_config.json", "frontier.json"} | {
        f"schedules/{n}.json" for n in frontier.names}  # no README, no PNG from the ECAD repo
    assert pipe.commit == hub.refs(REPO)["main"] and pipe.frontier == frontier
    assert pipe.schedule.name == frontier.default and type(pipe.pipeline).__name__ == "PixArtAlphaPipeline"
    assert pipe.to("cpu") is pipe and "transformer" in pipe.components and pipe.scheduler is pipe.pipeline.scheduler
    assert repr(pipe).startswith(f"ECADPipeline(PixArtAlphaPipeline, schedule='{frontier.default}'")

    default = run(pipe)  # num_inference_steps defaults to the schedule's
    assert torch.equal(default, reference(frontier[frontier.default]))
    assert pipe.handle.computed_counts()["transformer_blocks"].sum() < 2 * STEPS * 2 * 3  # it did skip work

    fastest = frontier.names[-1]
    assert pipe.set_schedule(fastest).name == fastest and pipe.schedule.name == fastest
    fast = run(pipe)
    assert torch.equal(fast, reference(frontier[fastest])) and not torch.equal(fast, default)
    assert pipe.set_schedule(1.0).name == frontier.names[0]  # best quality at >= 1x: all-compute
    assert torch.equal(run(pipe, num_inference_steps=STEPS), reference(None))

    pipe.set_schedule(fastest)
    pipe.disable_cache()
    assert pipe.handle is None and not pipe.cache_enabled
    assert torch.equal(run(pipe), reference(None))  # the unpatched base, bit for bit
    pipe.enable_cache()
    assert torch.equal(run(pipe), fast)
    with pytest.raises(StepMismatchError, match=f"has {STEPS}"):
        run(pipe, num_inference_steps=STEPS + 1)

    pipe.enable_model_cpu_offload(device="cpu")  # re-wraps the transformer; the block hooks stay
    assert torch.equal(run(pipe), fast)


def test_base_revision_is_pinned_and_an_override_warns(hub, base_folder, frontier, reference, tmp_path):
    sha = publish(hub, base_folder)
    pinned = Frontier.from_schedules(frontier.schedules, base_model=BASE, revision=sha, profile=None)
    pinned.push_to_hub(REPO)
    # the base model moves on: main now has other transformer weights
    changed = load_tiny_pipeline(base_folder)
    with torch.no_grad():
        for p in changed.transformer.parameters():
            p.add_(0.5)
    changed.transformer.save_pretrained(tmp_path / "transformer")
    HfApi().upload_folder(repo_id=BASE, folder_path=tmp_path / "transformer", path_in_repo="transformer")

    pipe = ECADPipeline.from_pretrained(REPO, schedule=pinned.names[0], cache_dir=tmp_path / "cache")
    assert torch.equal(run(pipe), reference(None))  # loaded at the recorded revision, not main

    HfApi().create_repo("test-user/tiny-pixart-ft")
    HfApi().upload_folder(repo_id="test-user/tiny-pixart-ft", folder_path=base_folder)
    with pytest.warns(UserWarning, match="loading test-user/tiny-pixart-ft instead of test-user/tiny-pixart"):
        ft = ECADPipeline.from_pretrained(REPO, base_model="test-user/tiny-pixart-ft", cache_dir=tmp_path / "cache")
    assert ft.pipeline.name_or_path == "test-user/tiny-pixart-ft" and ft.schedule.name == pinned.default


def test_pull_then_load_from_the_folder_offline(hub, base_folder, frontier, tmp_path, monkeypatch):
    publish(hub, base_folder, frontier)
    cache = tmp_path / "cache"
    online = run(ECADPipeline.from_pretrained(REPO, schedule=frontier.names[-1], cache_dir=cache))
    folder = pull(REPO, out=tmp_path / "pulled", cache_dir=cache)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import time
    hub.clear_requests()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warnings either
        pipe = ECADPipeline.from_pretrained(folder, schedule=frontier.names[-1], cache_dir=cache,
                                            local_files_only=True)
    assert hub.requests == []  # nothing asked of the Hub: frontier from the folder, base from the cache
    assert pipe.commit is None and pipe.frontier.source == str(folder)
    assert torch.equal(run(pipe), online)


def test_a_flux_frontier_is_refused_on_a_pixart_base_before_its_weights_download(hub, base_folder, tmp_path):
    publish(hub, base_folder)
    flux = architecture_of({"_class_name": "FluxTransformer2DModel", **tiny_flux_config()})
    flux_frontier = Frontier.from_schedules([CacheSchedule.all_compute(flux, STEPS)], base_model="test-user/tiny-flux")
    flux_frontier.push_to_hub("test-user/tiny-flux-ecad")
    hub.clear_requests()
    with pytest.warns(UserWarning, match="instead of test-user/tiny-flux"), \
            pytest.raises(ArchitectureMismatchError) as err:
        ECADPipeline.from_pretrained("test-user/tiny-flux-ecad", base_model=BASE, cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert "FluxTransformer2DModel(transformer_blocks[2]" in message and "PixArtTransformer2DModel(" in message
    assert message.startswith("test-user/tiny-flux-ecad@") and "\n" not in message
    assert hub.downloaded(BASE) == ["transformer/config.json"]  # refused before any weights were fetched

    pixart = load_tiny_pipeline(base_folder)
    with pytest.raises(ArchitectureMismatchError, match=r"has schedules for FluxTransformer2DModel.*but .*"
                                                        r"PixArtTransformer2DModel"):
        ECADPipeline.from_pipe(pixart, flux_frontier)
    assert not hasattr(pixart.transformer, "_ecad_handle")  # nothing was patched


def test_from_pipe_patches_a_loaded_pipeline(hub, base_folder, frontier, reference):
    publish(hub, base_folder, frontier)
    base = load_tiny_pipeline(base_folder)
    pipe = ECADPipeline.from_pipe(base, REPO, schedule="1.5x")
    assert pipe.pipeline is base and pipe.schedule.mac_speedup >= 1.5 and pipe.commit == hub.refs(REPO)["main"]
    assert torch.equal(run(pipe), reference(pipe.schedule))
    again = ECADPipeline.from_pipe(pipe, frontier, schedule=frontier.names[0])  # re-wrapping replaces the schedule
    assert again.pipeline is base and base.transformer._ecad_handle.schedule.name == frontier.names[0]


def test_cli_generate(hub, base_folder, frontier, tmp_path, capsys):
    publish(hub, base_folder, frontier)
    args = ["generate", "--repo", REPO, "--prompt", PROMPT, "--schedule", "1.3x", "--seed", "0",
            "--arg", "use_resolution_binning=false", "--arg", "max_sequence_length=16",
            "--arg", "clean_caption=false", "-o", str(tmp_path / "out.png")]
    assert main(args) == 0
    out = capsys.readouterr().out.strip()
    chosen = frontier.pick(speedup=1.3)
    assert out.startswith(f"schedule {chosen.name} ({chosen.mac_speedup:.2f}x MACs), {STEPS} steps, ")
    assert out.endswith(f"s on cpu -> {tmp_path / 'out.png'}")
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(args[:-2] + ["--steps", str(STEPS + 2), "-o", str(tmp_path / "bad.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the pipeline is set up for") and err.count("\n") == 1
    assert not (tmp_path / "bad.png").exists()


# --------------------------------------------------------------------------------------------
# base models that cannot be loaded: one line each
# --------------------------------------------------------------------------------------------

def _variant(base_folder, tmp_path, name, edit):
    import shutil

    folder = tmp_path / name
    shutil.copytree(base_folder, folder)
    edit(folder)
    return str(folder)


@pytest.mark.parametrize("config, expected", [
    ({"_class_name": "PixArtTransformer2DModel"}, "its transformer config is malformed (KeyError: 'num_layers')"),
    ({"_class_name": "PixArtTransformer2DModel", "num_layers": "two"}, "its transformer config is malformed ("),
    ({"_class_name": "PixArtTransformer2DModel", "num_layers": None}, "its transformer config is malformed (TypeError"),
    ("{not json", "transformer/config.json: not valid JSON"),
    ([1, 2], "transformer/config.json is not a JSON object"),
])
def test_a_malformed_base_transformer_config_is_one_line(hub, base_folder, frontier, tmp_path, config, expected):
    import json

    from ecad_hub.errors import ModelLoadError

    frontier.push_to_hub(REPO)
    text = config if isinstance(config, str) else json.dumps(config)
    index = (Path(base_folder) / "model_index.json").read_text()
    hub.seed(BASE, {"model_index.json": index, "transformer/config.json": text})
    with pytest.raises(ModelLoadError) as err:
        ECADPipeline.from_pretrained(REPO, cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert message.startswith(f"{BASE}: ") and expected in message and "\n" not in message, message


def test_diffusers_load_errors_are_one_line(hub, base_folder, frontier, tmp_path, monkeypatch):
    from ecad_hub import pipeline as pipeline_module
    from ecad_hub.errors import ModelLoadError

    frontier.push_to_hub(REPO)

    def no_vae(folder):
        (folder / "vae" / "config.json").unlink()

    def no_safetensors(folder):
        for weights in (folder / "transformer").glob("*.safetensors"):
            weights.rename(weights.with_suffix(".bin"))

    def custom_scheduler(folder):
        import json

        index = json.loads((folder / "model_index.json").read_text())
        index["scheduler"] = ["my_scheduler", "MyScheduler"]
        (folder / "model_index.json").write_text(json.dumps(index))
        (folder / "scheduler" / "my_scheduler.py").write_text("raise SystemExit('executed')\n")

    cases = [(no_vae, "no file named config.json"), (no_safetensors, "diffusion_pytorch_model.safetensors"),
             (custom_scheduler, "custom code")]
    for edit, expected in cases:
        base = _variant(base_folder, tmp_path, edit.__name__, edit)
        with pytest.warns(UserWarning, match="instead of"), pytest.raises(ModelLoadError) as err:
            ECADPipeline.from_pretrained(REPO, base_model=base, cache_dir=tmp_path / "cache")
        message = str(err.value)
        assert message.startswith(f"{base}: ") and expected in message and "\n" not in message, message
    # diffusers' own refusal of custom code (here when ecad-hub's check is out of the way) is mapped too
    monkeypatch.setattr(pipeline_module, "_custom_code", lambda index: None)
    with pytest.warns(UserWarning, match="instead of"), pytest.raises(ModelLoadError) as err:
        ECADPipeline.from_pretrained(REPO, base_model=str(tmp_path / "custom_scheduler"), cache_dir=tmp_path / "cache")
    assert "cannot load the base model (ValueError: " in str(err.value) and "custom code" in str(err.value)
    assert "\n" not in str(err.value)


def test_ecad_pipeline_pickles_and_deep_copies_with_its_state(base_folder, frontier, reference):
    import copy
    import pickle

    fastest = frontier.names[-1]
    pipe = ECADPipeline.from_pipe(load_tiny_pipeline(base_folder), frontier, schedule=fastest)
    fast = run(pipe)
    for clone in (pickle.loads(pickle.dumps(pipe)), copy.deepcopy(pipe)):
        assert type(clone) is ECADPipeline and clone.pipeline is not pipe.pipeline
        assert clone.schedule == pipe.schedule and clone.cache_enabled and clone.frontier == frontier
        assert torch.equal(run(clone), fast)
        clone.disable_cache()
        assert torch.equal(run(clone), reference(None))
    assert pipe.cache_enabled and pipe.handle.active  # the original keeps its schedule (re-applied)
    assert torch.equal(run(pipe), fast)
    pipe.disable_cache()
    clone = pickle.loads(pickle.dumps(pipe))
    assert not clone.cache_enabled and torch.equal(run(clone), reference(None))
    clone.enable_cache()
    assert torch.equal(run(clone), fast)
