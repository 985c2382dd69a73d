"""Every ecad-hub command given bad input exits 1 with one ``error:`` line and no traceback.

Run through the real console script (``.venv/bin/ecad-hub``) in a subprocess, so what is checked is what a
user sees: exit status and stderr. Hub commands talk to the Hub double of this test process (the
subprocess inherits ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_TOKEN`` from conftest).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import PIXART_CONFIG, toy_frontier

ECAD_HUB = shutil.which("ecad-hub", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).parent / "ecad-hub")
REPO = "test-user/cli-ecad"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ECAD_HUB, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def assert_one_error_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    err = result.stderr
    assert result.returncode == 1, (result.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert "\x1b" not in err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A folder with a v1 schedule, a SmoothCache schedule, a transformer config, a plain file and a frontier."""
    root = tmp_path_factory.mktemp("cli")
    frontier = toy_frontier()
    frontier.schedules[1].save(root / "s.json")
    (root / "smooth.json").write_text(json.dumps({"attn1": [1, 0, 1, 1], "ff": [1, 1, 0, 1]}))
    (root / "cfg.json").write_text(json.dumps(PIXART_CONFIG))
    (root / "afile").write_text("a file, not a folder\n")
    toy_frontier(base_model="test-user/never-published-base").save_pretrained(root / "export")  # not in any cache
    doc = json.loads((root / "s.json").read_text())
    doc["architecture"]["groups"][0]["absent"] = {"zz": [0]}
    (root / "absent.json").write_text(json.dumps(doc))
    doc = json.loads((root / "s.json").read_text())
    doc["num_inference_steps"] = 4.0
    (root / "float-steps.json").write_text(json.dumps(doc))
    doc = json.loads((root / "s.json").read_text())
    (root / "huge-number.json").write_text((root / "s.json").read_text().replace('"name"', '"description": 1e400, "name"'))
    doc["mask"]["transformer_blocks"]["evil\nkey\x1b[31m"] = doc["mask"]["transformer_blocks"].pop("ff")
    (root / "control.json").write_text(json.dumps(doc))
    (root / "latin1.json").write_bytes(b'{"name": "\xe9"}')
    return root


BAD_OUT = [("afile", "afile: is a file, not a folder"), ("afile/sub", "afile: is a file, not a folder"),
           ("/proc/ecad-hub-test-out", "cannot write (")]


@pytest.mark.parametrize("out, expected", BAD_OUT)
def test_import_export_and_search_with_an_unusable_out(files, out, expected):
    assert_one_error_line(run("import", "smooth.json", "--transformer-config", "cfg.json", "--out", out, cwd=files),
                          expected)
    expected_export = "afile: exists and is not a folder" if out == "afile" else expected
    assert_one_error_line(run("export", "s.json", "--base-model", "a/b", "--out", out, cwd=files), expected_export)
    if out == "afile/sub":  # (search's run directory is created through the CLI's OSError mapping)
        assert_one_error_line(run("search", "--out", f"{out}/run", "--generations", "1", "--population", "2",
                                  cwd=files))


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_a_read_only_out_folder(files, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert_one_error_line(run("import", files / "smooth.json", "--transformer-config", files / "cfg.json",
                                  "--out", ro / "x", cwd=files), "Permission denied")
        assert_one_error_line(run("export", files / "s.json", "--base-model", "a/b", "--out", ro / "x", cwd=files),
                              "Permission denied")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("flags, expected", [
    (["--height", "-8"], "--height must be a positive integer, got -8"),
    (["--height", "0"], "--height must be a positive integer, got 0"),
    (["--width", "0"], "--width must be a positive integer, got 0"),
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--text-len", "-1"], "--text-len must be a positive integer"),
    (["--vae-scale-factor", "0"], "--vae-scale-factor must be a positive integer"),
])
def test_macs_and_show_with_bad_sizes(files, flags, expected):
    assert_one_error_line(run("macs", "s.json", "--transformer-config", "cfg.json", *flags, cwd=files), expected)
    assert_one_error_line(run("show", "s.json", "--transformer-config", "cfg.json", *flags, cwd=files), expected)


def test_macs_of_a_size_the_model_cannot_take(files):
    assert_one_error_line(run("macs", "s.json", "--transformer-config", "cfg.json", "--height", "7", cwd=files),
                          "cannot profile cfg.json at 7x64")


@pytest.mark.parametrize("path, expected", [
    ("/dev/zero", "larger than the 8 MB limit"),
    (".", "is a directory"),
    ("missing.json", "no such file"),
    ("latin1.json", "not UTF-8"),
    ("absent.json", "unknown component 'zz'"),
    ("float-steps.json", "4.0 is not type 'integer'"),
    ("huge-number.json", "1e400 is too large"),
    ("control.json", "evil\\nkey\\x1b[31m"),
])
def test_show_and_macs_of_bad_files(files, path, expected):
    assert_one_error_line(run("show", path, cwd=files), expected)
    assert_one_error_line(run("macs", path, "--transformer-config", "cfg.json", cwd=files), expected)


def test_validate_prints_one_line_per_problem_even_for_keys_with_newlines(files):
    result = run("validate", "control.json", "absent.json", "s.json", cwd=files)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith(("control.json: ", "absent.json: ", "s.json: ok")) for line in lines), lines
    assert "\x1b" not in result.stdout and result.stderr == "error: 2 of 3 file(s) invalid\n"


def test_hub_commands_with_bad_repos_and_outs(hub, files, tmp_path):
    toy_frontier().push_to_hub(REPO)
    assert_one_error_line(run("pull", REPO, "--out", "afile/x", cwd=files), "afile: is a file, not a folder")
    assert_one_error_line(run("pull", REPO, "--out", "/proc/ecad-hub-test-out", cwd=files), "cannot write")
    assert_one_error_line(run("pull", "test-user/missing", cwd=files), "no such model repo")
    assert_one_error_line(run("pull", "not a repo id\n", cwd=files), "not a Hub repo id")
    assert_one_error_line(run("browse", "--limit", "0", cwd=files), "--limit must be a positive integer")

    frontier = toy_frontier()
    doc = json.loads(frontier.render()["ecad_config.json"])
    doc["architecture"]["groups"][0]["absent"] = {"zz": [0]}
    hub.seed(REPO, {"ecad_config.json": json.dumps(doc)})
    assert_one_error_line(run("pull", REPO, "--out", tmp_path / "p", cwd=files), "unknown component 'zz'")
    assert_one_error_line(run("generate", "--repo", REPO, "--prompt", "x", "-o", tmp_path / "x.png", cwd=files),
                          "unknown component 'zz'")

    toy_frontier(base_model="/etc").push_to_hub("test-user/local-base")
    assert_one_error_line(run("generate", "--repo", "test-user/local-base", "--prompt", "x", "-o", tmp_path / "x.png",
                              cwd=files), "is not a Hub repo id")
    assert_one_error_line(run("generate", "--repo", "export", "--prompt", "x", "-o", tmp_path / "x.png", cwd=files),
                          "test-user/never-published-base: cannot load the base model")
    assert_one_error_line(run("generate", "--repo", "export", "--prompt", "x", "--steps", "0", "-o",
                              tmp_path / "x.png", cwd=files), "--steps must be a positive integer")


def test_push_failures_are_one_line(hub, files):
    hub.binary_as_lfs = True
    hub.fail_next("PUT", r"^/lfs-objects/", status=403, times=100)  # not retried: no back-off to wait for
    assert_one_error_line(run("push", "export", "--repo", "test-user/lfs-fail", cwd=files),
                          "Error while uploading", "HTTP 403", "nothing was committed", "deleted again")
    assert not hub.repo_exists("test-user/lfs-fail")
