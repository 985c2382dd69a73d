"""``ecad-hub validate`` on what ecad-hub writes: frontier folders (exported and pulled), search run
directories, and single files of every kind, each against its own schema and checks.

Through the real console script (``.venv/bin/ecad-hub``): exit status 0 with a summary for valid input;
for invalid input one line per problem on stdout naming the file, one ``error:`` line on stderr, exit 1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import toy_frontier

ECAD_HUB = shutil.which("ecad-hub", path=str(Path(sys.executable).parent)) or str(Path(sys.executable).parent / "ecad-hub")


def validate(*paths, cwd: Path, quiet: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([ECAD_HUB, "validate", *(["-q"] if quiet else []), *map(str, paths)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def assert_valid(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0 and "Traceback" not in result.stderr, (result.stdout, result.stderr)
    assert not [line for line in result.stderr.splitlines() if not line.startswith("warning: ")], result.stderr
    return result.stdout.splitlines()


def assert_invalid(result: subprocess.CompletedProcess, file: str, *expected: str) -> list[str]:
    """Exit 1, one ``error:`` line on stderr, and the problems of ``file`` (each naming it) on stdout."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "invalid" in errors[0], result.stderr
    problems = [line for line in result.stdout.splitlines() if not line.endswith(": ok") and ": ok (" not in line]
    assert problems and all(p.startswith(file) for p in problems), (file, result.stdout)
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    return problems


# --------------------------------------------------------------------------------------------
# frontier folders
# --------------------------------------------------------------------------------------------

@pytest.fixture
def export(tmp_path) -> Path:
    return toy_frontier().save_pretrained(tmp_path / "export")


def test_an_exported_frontier_folder_is_valid(export, tmp_path):
    out = assert_valid(validate("export", cwd=tmp_path))
    names = [f"schedules/{n}.json" for n in toy_frontier().names]
    for name in ["ecad_config.json", "frontier.json", *names]:
        assert f"export/{name}: ok" in out, (name, out)
    summary = next(line for line in out if line.startswith("export: ok (frontier folder"))
    assert f"{len(names)} listed" in summary and f"default {toy_frontier().default}" in summary
    assert out[-1] == f"{2 + len(names)} file(s) valid"
    assert validate("export", cwd=tmp_path, quiet=True).stdout == ""


def test_a_pulled_frontier_folder_is_valid(hub, tmp_path):
    toy_frontier().push_to_hub("test-user/validate-pulled")
    pulled = subprocess.run([ECAD_HUB, "pull", "--repo", "test-user/validate-pulled", "--out", "pulled"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "pulled" / "README.md").is_file()  # the card and plots are there, and not JSON to check
    out = assert_valid(validate("pulled", cwd=tmp_path))
    assert any(line.startswith("pulled: ok (frontier folder") for line in out)


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("file, change, expected", [
    ("ecad_config.json", lambda d: d.pop("default_schedule"), "'default_schedule' is a required property"),
    ("ecad_config.json", lambda d: d["architecture"]["groups"][0].update(absent={"zz": [0]}), "unknown component 'zz'"),
    ("frontier.json", lambda d: d.update(ecad_frontier_version=2), "ecad_frontier_version"),
    ("frontier.json", lambda d: d["schedules"][0].update(content_hash="0" * 64), "content hash does not match"),
    ("schedules/{first}.json", lambda d: d["mask"]["transformer_blocks"]["ff"].pop(), "steps"),
])
def test_a_broken_frontier_folder_names_the_file(export, tmp_path, file, change, expected):
    file = file.format(first=toy_frontier().names[0])
    _edit(export / file, change)
    problems = assert_invalid(validate("export", cwd=tmp_path), f"export/{file}" if "hash" not in expected
                              else "export/", expected)
    assert len(problems) >= 1


def test_a_frontier_folder_without_its_index(export, tmp_path):
    (export / "frontier.json").unlink()
    assert_invalid(validate("export", cwd=tmp_path), "export/frontier.json", "frontier.json: missing")


def test_single_files_are_checked_by_kind(export, tmp_path):
    first = f"export/schedules/{toy_frontier().names[0]}.json"
    out = assert_valid(validate("export/ecad_config.json", "export/frontier.json", first, cwd=tmp_path))
    assert out[:3] == ["export/ecad_config.json: ok", "export/frontier.json: ok", f"{first}: ok"]
    # detected by the top-level version key, whatever the file is called
    shutil.copy(export / "ecad_config.json", tmp_path / "renamed.json")
    shutil.copy(export / "frontier.json", tmp_path / "index-copy.json")
    out = assert_valid(validate("renamed.json", "index-copy.json", cwd=tmp_path))
    assert out[:2] == ["renamed.json: ok (ecad_config.json)", "index-copy.json: ok (frontier.json)"]
    _edit(tmp_path / "renamed.json", lambda d: d.update(num_inference_steps="four"))
    assert_invalid(validate("renamed.json", cwd=tmp_path), "renamed.json", "num_inference_steps")


# --------------------------------------------------------------------------------------------
# search run directories
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tiny_dir, tmp_path_factory) -> Path:
    """A real (tiny) search run: 2 generations of 4 on the tiny PixArt, through the console script."""
    root = tmp_path_factory.mktemp("validate-run")
    result = subprocess.run([ECAD_HUB, "search", "--model", str(tiny_dir), "--out", "run", "--steps", "3",
                             "--max-sequence-length", "16", "--prompts", str(tiny_dir.parent / "prompts.txt"),
                             "--population", "4", "--generations", "2", "--threads", "1", "--no-progress", "-q"],
                            cwd=root, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "run"


def test_a_search_run_directory_is_valid(run_dir):
    out = assert_valid(validate(run_dir.name, cwd=run_dir.parent))
    for name in ("search.json", "mac_profile.json", "generations/gen_0000.json", "generations/gen_0001.json",
                 "evaluations.json", "reference.json"):
        assert any(line.startswith(f"run/{name}: ok") for line in out), (name, out)
    assert any(line.startswith("run/front/") and line.endswith(": ok") for line in out)
    summary = next(line for line in out if line.startswith("run: ok (search run"))
    assert "2 generation(s)" in summary
    # and each file alone
    out = assert_valid(validate("run/search.json", "run/mac_profile.json", "run/generations/gen_0001.json",
                                "run/evaluations.json", cwd=run_dir.parent))
    assert out[:4] == ["run/search.json: ok", "run/mac_profile.json: ok", "run/generations/gen_0001.json: ok "
                       "(generation record)", "run/evaluations.json: ok"]


@pytest.mark.parametrize("file, change, expected", [
    ("search.json", lambda d: d.update(ecad_search_version=99), "ecad_search_version 99"),
    ("search.json", lambda d: d.pop("base_model"), "no base_model"),
    ("mac_profile.json", lambda d: d.pop("always_macs"), "missing key 'always_macs'"),
    ("mac_profile.json", lambda d: d["architecture"]["groups"][0].update(num_blocks=5), "component_macs"),
    ("generations/gen_0001.json", lambda d: d.update(seed=7), "seed 7, but search.json has seed 0"),
    ("generations/gen_0001.json", lambda d: d["offspring"][0].update(genome="00"), "genome"),
    ("evaluations.json", lambda d: d.update(ecad_search_version=3), "ecad_search_version 3"),
    ("reference.json", lambda d: d.update(images_sha256="xyz"), "images_sha256 is not a sha256"),
])
def test_a_damaged_run_directory_names_the_file(run_dir, tmp_path, file, change, expected):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    _edit(copy / file, change)
    assert_invalid(validate("run", cwd=tmp_path), f"run/{file}", expected)
    assert_invalid(validate(f"run/{file}", cwd=tmp_path), f"run/{file}", expected)  # alone, too


def test_a_front_schedule_that_disagrees_with_search_json(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "generations")  # (their genomes would not fit 5 steps either)
    _edit(copy / "search.json", lambda d: d.update(num_inference_steps=5))
    assert_invalid(validate("run", cwd=tmp_path), "run", "search.json says 5 steps")


def test_a_folder_of_mixed_files_and_nothing_to_check(export, tmp_path):
    (tmp_path / "mixed").mkdir()
    shutil.copy(export / "ecad_config.json", tmp_path / "mixed" / "config-copy.json")
    shutil.copytree(export, tmp_path / "mixed" / "nested-export")
    out = assert_valid(validate("mixed", cwd=tmp_path))
    assert "mixed/config-copy.json: ok (ecad_config.json)" in out
    assert any(line.startswith("mixed/nested-export: ok (frontier folder") for line in out), out
    (tmp_path / "empty").mkdir()
    result = validate("empty", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("error: no files to validate") \
        and result.stderr.count("\n") == 1
