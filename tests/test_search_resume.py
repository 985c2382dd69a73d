"""Interrupting ``ecad-hub search`` (Ctrl-C, then ``kill -9``) and resuming it loses and repeats nothing:
the generation files are identical to an uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ecad_hub.search import SearchConfig, run_search

GENERATIONS = 4
#: Seconds the metric sleeps per candidate in the interrupted processes: a generation of 6 then
#: takes >= 3 s, so the signals land inside the generation the test aims at even on a loaded machine.
DELAY = "0.5"
PLUGIN = "slow_metric_plugin"


def _args(tiny_dir: Path, out: Path) -> list[str]:
    return ["search", "--model", str(tiny_dir), "--out", str(out), "--steps", "4", "--max-sequence-length", "16",
            "--population", "6", "--generations", str(GENERATIONS), "--metric", "slow-fidelity", "--plugin", PLUGIN,
            "--metric-arg", "max_psnr=200", "--prompts", str(tiny_dir.parent / "prompts.txt"), "--threads", "1",
            "--no-progress"]


def _start(tiny_dir: Path, out: Path, *extra: str) -> subprocess.Popen:
    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join([str(root), str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, ECAD_TEST_METRIC_DELAY=DELAY)
    # A shell without job control starts background jobs (e.g. a CI runner's `make test &`) with SIGINT
    # ignored, and Python keeps an inherited SIG_IGN: give the search the default disposition a
    # terminal's Ctrl-C meets.
    return subprocess.Popen([sys.executable, "-m", "ecad_hub", *_args(tiny_dir, out), *extra], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"search exited early ({proc.returncode}):\n{proc.stdout.read()}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.02)


def _generations(run: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run / "generations").glob("gen_*.json"))]


def test_ctrl_c_then_kill_9_then_resume_equals_an_uninterrupted_run(tiny_dir, tmp_path):
    from ecad_hub import cli

    run = tmp_path / "interrupted"
    gens = run / "generations"

    # 1. Ctrl-C (SIGINT) after generation 0: clean stop, exit status 130, state written
    proc = _start(tiny_dir, run)
    _wait_for(gens / "gen_0000.json", proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted" in (run / "log.txt").read_text()
    assert (run / "evaluations.json").is_file()
    done_after_sigint = len(_generations(run))
    assert done_after_sigint < GENERATIONS

    # 2. resume, then kill -9 right after generation 2 is written
    proc = _start(tiny_dir, run, "--resume")
    _wait_for(gens / "gen_0002.json", proc)
    proc.kill()  # SIGKILL: no chance to write anything
    proc.wait(timeout=60)
    done_after_kill = len(_generations(run))
    assert 3 <= done_after_kill < GENERATIONS, "the search finished before it could be killed"

    # 3. resume to the end (in-process CLI)
    assert cli.main([*_args(tiny_dir, run), "--resume", "-q"]) == 0

    # an uninterrupted run with the same settings
    ref = tmp_path / "reference"
    run_search(SearchConfig(base_model=str(tiny_dir), num_inference_steps=4, max_sequence_length=16, population=6,
                            generations=GENERATIONS, metric="slow-fidelity", metric_kwargs={"max_psnr": 200},
                            prompts=str(tiny_dir.parent / "prompts.txt"), num_threads=1),
               ref, plugins=[PLUGIN], progress=False, quiet=True)

    got, want = _generations(run), _generations(ref)
    assert [g["generation"] for g in got] == list(range(GENERATIONS))  # none lost, none repeated
    assert got == want
    for k in range(GENERATIONS):  # byte for byte
        name = f"gen_{k:04d}.json"
        assert (gens / name).read_bytes() == (ref / "generations" / name).read_bytes()
    assert sorted(p.name for p in (run / "front").glob("*.json")) == sorted(p.name for p in (ref / "front").glob("*.json"))
    log = (run / "log.txt").read_text()
    assert log.count("resuming") == 2
