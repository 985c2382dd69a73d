"""The CLI is consistent: help on every argument, one meaning per flag, errors and warnings in CLI terms,
``--transformer-config`` as file / folder / Hub id, ``show``'s heatmap as run, ``generate`` passing only what
the user gave.

Everything a user sees is checked through the real console script (``.venv/bin/ecad-hub``) in a subprocess;
the subprocess inherits ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_TOKEN`` from conftest, so Hub commands talk to
the Hub double.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecad_hub import CacheSchedule, Frontier
from ecad_hub.adapters import architecture_of
from ecad_hub.cli import build_parser, main, subparser
from ecad_hub.cli.common import DEPRECATED_ALIASES
from support import PIXART_CONFIG, STEPS, toy_frontier, toy_profile, toy_schedules

ECAD_HUB = shutil.which("ecad-hub", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).parent / "ecad-hub")
REPO = "test-user/cli-consistency"
#: hidden on purpose, and not an old spelling: quickstart's development switch to another pipeline folder
HIDDEN = {("quickstart", "--model")}


def run(*args, cwd: Path, warnings_shown: bool = True) -> subprocess.CompletedProcess:
    """``ecad-hub ARGS`` as a user runs it (Python warnings shown as they would be, unless told otherwise)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    if not warnings_shown:
        env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run([ECAD_HUB, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a failed command (any other stderr line must be a one-line warning)."""
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and all(line.startswith(("error: ", "warning: ")) for line in lines), result.stderr
    return errors[0]


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# --------------------------------------------------------------------------------------------
# help text
# --------------------------------------------------------------------------------------------

def test_every_argument_of_every_command_has_help():
    missing, hidden = [], []
    for name, p in commands().items():
        for action in p._actions:
            flag = (action.option_strings or [action.dest])[0]
            if action.help is argparse.SUPPRESS:
                if (name, flag) not in DEPRECATED_ALIASES and (name, flag) not in HIDDEN:
                    hidden.append(f"{name} {flag}")
            elif not isinstance(action.help, str) or not action.help.strip():
                missing.append(f"{name} {flag}")
    assert not missing, f"arguments without help: {missing}"
    assert not hidden, f"hidden arguments that are not deprecated aliases: {hidden}"
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert all(c.help for c in action._choices_actions), "a command without a one-line help"


@pytest.mark.parametrize("command", sorted(commands()))
def test_help_of_every_command_through_the_console_script(command, tmp_path):
    result = run(command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith(f"usage: ecad-hub {command}")
    for action in commands()[command]._actions:
        if action.help is not argparse.SUPPRESS and action.option_strings:
            assert action.option_strings[-1] in result.stdout, action.option_strings
        if action.help is argparse.SUPPRESS:  # old spellings work but are not advertised
            assert all(f"{o} " not in result.stdout for o in action.option_strings), action.option_strings


# --------------------------------------------------------------------------------------------
# one meaning per flag
# --------------------------------------------------------------------------------------------

def test_revision_is_the_ecad_repo_and_base_revision_the_base_model_everywhere():
    seen = {"--revision": [], "--base-revision": [], "--repo": []}
    for name, p in commands().items():
        for action in p._actions:
            if action.help is argparse.SUPPRESS:
                continue
            for flag in seen:
                if flag in action.option_strings:
                    seen[flag].append(name)
                    text = action.help.lower()
                    if flag in ("--revision", "--repo"):
                        assert "ecad repo" in text, (name, flag, action.help)
                    else:
                        assert "base model" in text or "model's" in text or "--transformer-config" in text, \
                            (name, flag, action.help)
    assert {"generate", "pull"} <= set(seen["--revision"]) and not {"export", "search", "push"} & set(seen["--revision"])
    assert {"export", "search", "generate", "inspect", "macs", "show", "import"} <= set(seen["--base-revision"])
    assert {"push", "pull", "generate", "compare", "export"} <= set(seen["--repo"])
    assert "--branch" in subparser(build_parser(), "push")._option_string_actions


def test_old_spellings_still_work_and_say_what_to_use(tmp_path):
    toy_frontier().schedules[1].save(tmp_path / "s.json")
    result = run("export", "s.json", "--base-model", "a/b", "--revision", "abc1234", "--out", "x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["warning: --revision is deprecated for `ecad-hub export`; use --base-revision"]
    assert json.loads((tmp_path / "x" / "ecad_config.json").read_text())["base_model_revision"] == "abc1234"
    result = run("export", "s.json", "--base-model", "a/b", "--base-revision", "def5678", "--out", "y", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert json.loads((tmp_path / "y" / "ecad_config.json").read_text())["base_model_revision"] == "def5678"


def test_pull_takes_the_repo_as_repo_or_positionally(hub, tmp_path):
    toy_frontier().push_to_hub(REPO)
    a = run("pull", "--repo", REPO, "--out", "a", cwd=tmp_path)
    b = run("pull", REPO, "--out", "b", cwd=tmp_path)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    files = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert "ecad_config.json" in files and files == sorted(
        p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert "give --repo ID" in error_line(run("pull", "--out", "c", cwd=tmp_path))
    assert "two ECAD repos given" in error_line(run("pull", REPO, "--repo", "test-user/other", cwd=tmp_path))


def test_push_branch_commits_to_that_branch(hub, tmp_path):
    toy_frontier().push_to_hub(REPO)
    hub.seed(REPO, {"notes.txt": "a branch"}, revision="dev")
    main_sha = hub.refs(REPO)["main"]
    toy_frontier(guidance_scale=4.5).save_pretrained(tmp_path / "export")
    result = run("push", "export", "--repo", REPO, "--branch", "dev", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    refs = hub.refs(REPO)
    assert refs["main"] == main_sha and json.loads(hub.repo_files(REPO, "dev")["ecad_config.json"])["guidance_scale"] == 4.5
    toy_frontier(guidance_scale=5.5).save_pretrained(tmp_path / "export2")
    result = run("push", "export2", "--repo", REPO, "--revision", "dev", cwd=tmp_path)  # the old spelling
    assert result.returncode == 0 and "use --branch" in result.stderr
    assert hub.refs(REPO)["main"] == main_sha
    assert json.loads(hub.repo_files(REPO, "dev")["ecad_config.json"])["guidance_scale"] == 5.5


# --------------------------------------------------------------------------------------------
# --transformer-config: a file, a model folder, a Hub model id
# --------------------------------------------------------------------------------------------

def _total_macs(result: subprocess.CompletedProcess) -> int:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["total_macs"]


def test_transformer_config_is_a_file_a_folder_or_a_hub_model_id(hub, tmp_path):
    toy_frontier().schedules[2].save(tmp_path / "s.json")
    (tmp_path / "cfg.json").write_text(json.dumps(PIXART_CONFIG))
    (tmp_path / "transformer-folder").mkdir()
    (tmp_path / "transformer-folder" / "config.json").write_text(json.dumps(PIXART_CONFIG))
    (tmp_path / "model" / "transformer").mkdir(parents=True)
    (tmp_path / "model" / "model_index.json").write_text(json.dumps({"_class_name": "PixArtAlphaPipeline",
                                                                    "transformer": ["diffusers", "PixArtTransformer2DModel"]}))
    (tmp_path / "model" / "transformer" / "config.json").write_text(json.dumps(PIXART_CONFIG))
    good = hub.seed("test-user/tiny-base", {"transformer/config.json": json.dumps(PIXART_CONFIG)})
    hub.seed("test-user/tiny-base", {"transformer/config.json": "{not json"})  # main moves on, broken

    flags = ("--height", "64", "--width", "64", "--text-len", "16", "--json")
    expected = _total_macs(run("macs", "s.json", "--transformer-config", "cfg.json", *flags, cwd=tmp_path))
    for config in ("transformer-folder", "model"):
        assert _total_macs(run("macs", "s.json", "--transformer-config", config, *flags, cwd=tmp_path)) == expected
    assert _total_macs(run("macs", "s.json", "--transformer-config", "test-user/tiny-base", "--base-revision", good,
                           *flags, cwd=tmp_path)) == expected
    assert "not valid JSON" in error_line(run("macs", "s.json", "--transformer-config", "test-user/tiny-base", *flags,
                                              cwd=tmp_path))
    assert error_line(run("macs", "s.json", "--transformer-config", "missing.json", cwd=tmp_path)).startswith(
        "error: --transformer-config missing.json: no such file or folder")
    assert "test-user/nope" in error_line(run("macs", "s.json", "--transformer-config", "test-user/nope", cwd=tmp_path))
    assert error_line(run("macs", "s.json", "--transformer-config", "model/model_index.json", cwd=tmp_path)).startswith(
        "error: --transformer-config model/model_index.json: a pipeline's model_index.json")

    # the same in export (MACs counted into the frontier) and show
    result = run("export", "s.json", "--base-model", "test-user/tiny-base", "--transformer-config", "model",
                 "--height", "64", "--width", "64", "--out", "export", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = run("show", "s.json", "--transformer-config", "test-user/tiny-base", "--base-revision", good,
                "--height", "64", "--width", "64", cwd=tmp_path)
    assert shown.returncode == 0 and "MACs: " in shown.stdout, shown.stderr


# --------------------------------------------------------------------------------------------
# show: the ASCII heatmap is what runs, as the PNG
# --------------------------------------------------------------------------------------------

def test_show_heatmap_draws_step_0_as_computed_like_the_png(tmp_path):
    arch = architecture_of(PIXART_CONFIG)
    mask = np.zeros((STEPS, 2, 3), dtype=bool)
    mask[2, 1, 0] = True  # step 0 stored as all-reuse: nothing is cached there, so it all runs
    schedule = CacheSchedule("stored-reuse-at-0", STEPS, arch, {"transformer_blocks": mask})
    schedule.save(tmp_path / "s.json")
    result = run("show", "s.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    legend = next(line for line in out if line.startswith("transformer_blocks: "))
    assert "step 0 always computes" in legend
    effective = schedule.effective_masks()["transformer_blocks"]
    rows = {int(line[5:8]): line[9:].split("  ") for line in out if line.startswith("step ")}
    assert sorted(rows) == list(range(STEPS))
    for s, cells in rows.items():
        expected = ["".join("#" if effective[s, b, c] else "." for b in range(2)) for c in range(3)]
        assert cells == expected, (s, cells, expected)
    assert rows[0] == ["##", "##", "##"] and rows[1] == ["..", "..", ".."] and rows[2] == [".#", "..", ".."]
    assert f"{100 * schedule.fraction_computed():.1f}% of sub-module evaluations computed" in out[0]


# --------------------------------------------------------------------------------------------
# errors and warnings in CLI terms
# --------------------------------------------------------------------------------------------

def test_export_errors_name_the_flags(tmp_path):
    toy_schedules()[1].save(tmp_path / "s.json")  # records no image size
    (tmp_path / "cfg.json").write_text(json.dumps(PIXART_CONFIG))
    line = error_line(run("export", "s.json", "--base-model", "a/b", "--default", "nope", "--out", "x", cwd=tmp_path))
    assert line.startswith("error: --default nope: ") and "no schedule named 'nope'" in line
    line = error_line(run("export", "s.json", "--base-model", "a/b", "--transformer-config", "cfg.json", "--out", "x",
                          cwd=tmp_path))
    assert "pass --height and --width" in line and "height and width to" not in line


@pytest.fixture(scope="module")
def local_frontier(tiny_dir, tmp_path_factory) -> Path:
    """An exported frontier for the tiny PixArt in ``tiny_dir`` (hand-made MACs), naming another base model."""
    from tiny_models import load_tiny_pipeline

    arch = architecture_of(load_tiny_pipeline(tiny_dir).transformer)
    frontier = Frontier.from_schedules(toy_schedules(arch), base_model="test-user/tiny-pixart", profile=toy_profile(arch))
    return frontier.save_pretrained(tmp_path_factory.mktemp("frontier") / "tiny-ecad")


CALL_ARGS = ("--arg", "use_resolution_binning=false", "--arg", "max_sequence_length=16", "--arg", "clean_caption=false")


def test_generate_errors_and_warnings_speak_cli(local_frontier, tiny_dir, tmp_path):
    common = ("generate", "--repo", local_frontier, "--base-model", tiny_dir, "--prompt", "a cat", *CALL_ARGS)
    result = run(*common, "--steps", STEPS + 2, "-o", "bad.png", cwd=tmp_path)
    line = error_line(result)
    assert f"--steps {STEPS}" in line and "num_inference_steps" not in line, line
    assert not (tmp_path / "bad.png").exists()
    warnings_ = [w for w in result.stderr.splitlines() if w.startswith("warning: ")]
    # the base-model override warns: one line, no Python source line under it
    assert any(w.startswith(f"warning: loading {tiny_dir} instead of test-user/tiny-pixart") for w in warnings_), \
        result.stderr
    assert "warnings.warn" not in result.stderr and ".py:" not in result.stderr

    line = error_line(run(*common, "--schedule", "nope", "-o", "x.png", cwd=tmp_path))
    assert line.startswith("error: --schedule nope: ") and "no schedule named 'nope'" in line

    result = run(*common, "-o", "out.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(w.startswith("warning: ") for w in result.stderr.splitlines()), result.stderr
    assert "FutureWarning" not in result.stderr and "torch_dtype" not in result.stderr


def test_python_warnings_are_one_line(tmp_path):
    out = toy_frontier().save_pretrained(tmp_path / "export")
    toy_frontier().schedules[0].replace(name="extra").save(out / "schedules" / "extra.json")  # not listed
    result = run("validate", "export", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: export: ignoring schedules/extra.json (not listed in frontier.json)"], result.stderr


def test_generate_passes_dtype_and_only_the_call_settings_given(local_frontier, tiny_dir, tmp_path, monkeypatch):
    """What ``generate`` hands diffusers: ``dtype=`` (not the deprecated ``torch_dtype=``), and only the call
    arguments the user gave (the frontier's recorded settings are ECADPipeline's to apply)."""
    import diffusers

    from ecad_hub.pipeline import ECADPipeline

    loads, calls = [], []
    original_load = diffusers.DiffusionPipeline.from_pretrained.__func__
    original_call = ECADPipeline.__call__

    def load(cls, *args, **kwargs):
        loads.append(dict(kwargs))
        return original_load(cls, *args, **kwargs)

    def call(self, *args, **kwargs):
        calls.append(dict(kwargs))
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", classmethod(load))
    monkeypatch.setattr(ECADPipeline, "__call__", call)
    common = ["generate", "--repo", str(local_frontier), "--base-model", str(tiny_dir), "--prompt", "a cat", *CALL_ARGS]
    assert main([*common, "-o", str(tmp_path / "a.png")]) == 0
    assert main([*common, "--height", "64", "--width", "64", "--guidance-scale", "3", "--steps", str(STEPS),
                 "--dtype", "float32", "-o", str(tmp_path / "b.png")]) == 0
    import torch

    assert len(loads) == 2 and all("torch_dtype" not in k and k.get("dtype") is torch.float32 for k in loads), loads
    user = {"use_resolution_binning", "max_sequence_length", "clean_caption", "generator", "output_type"}
    assert set(calls[0]) == user, calls[0]
    assert set(calls[1]) == user | {"height", "width", "guidance_scale", "num_inference_steps"}
    assert (calls[1]["height"], calls[1]["width"], calls[1]["guidance_scale"]) == (64, 64, 3.0)


@pytest.mark.parametrize("command, message, expected", [
    ("generate", "the frontier was searched at 256x256; call it with height=256, width=256",
     "the frontier was searched at 256x256; run it with --height 256, --width 256"),
    ("generate", "call it with num_inference_steps=20 and use_resolution_binning=False",
     "run it with --steps 20 and --arg use_resolution_binning=false"),
    ("search", "call it with num_inference_steps=20", "run it with --steps 20"),
    ("generate", "not a Hub repo id (pass base_model= to load a local one)", "not a Hub repo id (pass --base-model to "
                                                                              "load a local one)"),
    ("generate", "pass trust_remote_code=True if you trust it", "pass trust_remote_code=True if you trust it"),
    ("import", "schedule has no step 3 (num_inference_steps=4)", "schedule has no step 3 (num_inference_steps=4)"),
    ("macs", "call it with num_inference_steps=20", "call it with num_inference_steps=20"),  # no such flag there
])
def test_messages_are_rephrased_with_the_commands_own_flags(command, message, expected):
    from ecad_hub.cli.messages import cli_message

    assert cli_message(message, command=command, parser=subparser(build_parser(), command)) == expected
