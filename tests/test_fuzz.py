"""Fuzzing the readers: damaged schedule files and frontier folders never crash ecad-hub or lie.

The mutations are scripts/fuzz.py's (byte flips, truncation, type swaps, shape changes, numbers such as
``20.0`` / ``1e400`` / ``-0``, unicode and control characters); here hypothesis makes the random choices,
with a fixed seed (``derandomize=True``) and a CI-sized budget, and shrinks a failing input. For long
runs: ``python scripts/fuzz.py --target schedules --n 20000`` (and ``--target frontiers``).

Every input must either be refused with an EcadError whose message is one line, or load, save and
load back equal.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ecad_fuzz", ROOT / "scripts" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

FUZZ_SETTINGS = dict(derandomize=True, deadline=None, database=None, print_blob=True,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                            HealthCheck.data_too_large])


class DrawChooser(fuzz.Chooser):
    """scripts/fuzz.py's random decisions, drawn by hypothesis (so it can shrink them)."""

    def __init__(self, data):
        self.data = data

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))


@pytest.fixture(scope="module")
def schedules_target(tmp_path_factory):
    return fuzz.SchedulesTarget(tmp_path_factory.mktemp("fuzz-schedules"))


@pytest.fixture(scope="module")
def frontiers_target(tmp_path_factory):
    return fuzz.FrontiersTarget(tmp_path_factory.mktemp("fuzz-frontiers"))


def _assert_allowed(outcome) -> None:
    assert not outcome.violation, f"{outcome.kind}: {outcome.detail}\n{outcome.trace}"


@settings(max_examples=1500, **FUZZ_SETTINGS)
@given(data=st.data())
def test_damaged_schedule_files_are_refused_in_one_line_or_round_trip(schedules_target, data):
    _assert_allowed(schedules_target.run(DrawChooser(data)))


@settings(max_examples=400, **FUZZ_SETTINGS)
@given(data=st.data())
def test_damaged_frontier_folders_are_refused_in_one_line_or_round_trip(frontiers_target, data):
    _assert_allowed(frontiers_target.run(DrawChooser(data)))


@pytest.mark.parametrize("target", ["schedules", "frontiers", "run-dirs"])
def test_the_seeded_fuzzer_finds_nothing_in_a_short_run(target, capsys):
    n = {"schedules": "150", "frontiers": "40", "run-dirs": "12"}[target]
    hf_env = {k: v for k, v in os.environ.items() if k.startswith("HF_")}
    assert fuzz.main(["--target", target, "--n", n, "--seed", "1"]) == 0
    # (HF_HUB_OFFLINE leaking from here once broke later tests' subprocesses)
    assert {k: v for k, v in os.environ.items() if k.startswith("HF_")} == hf_env
    out = capsys.readouterr().out
    assert "violations: 0" in out and "exceptions by type (not EcadError): none" in out


# Inputs the fuzzer found, or that the issue names, kept as fixed cases.
KNOWN = [
    ("absent-unknown", lambda d: d["architecture"]["groups"][0].update(absent={"zz": [0]})),
    ("absent-negative", lambda d: d["architecture"]["groups"][0].update(absent={"ff": [-1]})),
    ("steps-float", lambda d: d.update(num_inference_steps=4.0)),
    ("name-newline", lambda d: d.update(name="pixart\n")),
    ("row-newline", lambda d: d["mask"]["transformer_blocks"]["ff"].__setitem__(0, "1" * 5 + "\n")),
    ("key-control", lambda d: d["mask"]["transformer_blocks"].__setitem__("a\x1b\nb", [])),
    ("huge-int-quality", lambda d: d["metrics"]["quality"][0].update(value=10 ** 400)),
    ("huge-macs", lambda d: d["metrics"]["macs"].update(total=10 ** 30, per_step=[10 ** 30, 0, 0, 0],
                                                         all_compute_total=1)),
    ("speedup-zero", lambda d: d["metrics"]["macs"].update(speedup=0)),
]


@pytest.mark.parametrize("name, edit", KNOWN, ids=[k for k, _ in KNOWN])
def test_known_hostile_schedules(tmp_path, name, edit):
    doc = json.loads(fuzz.corpus_schedules()[0].to_json())
    edit(doc)
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    from ecad_hub import CacheSchedule

    outcome = fuzz.check(lambda: CacheSchedule.load(path),
                         lambda s: (s.save(tmp_path / "y.json"), CacheSchedule.load(tmp_path / "y.json"))[1])
    _assert_allowed(outcome)


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "NaN", "Infinity", '"\\ud800"', "9" * 4400])
def test_literals_json_cannot_carry_are_refused(tmp_path, literal):
    from ecad_hub import CacheSchedule, ScheduleError

    text = fuzz.corpus_schedules()[0].to_json().replace('"a schedule"', literal)
    with pytest.raises(ScheduleError) as err:
        CacheSchedule.from_json(text, source="x.json")
    assert len(str(err.value).splitlines()) == 1


def test_the_mutations_are_deterministic_for_a_seed():
    data = fuzz.corpus_schedules()[1].to_json().encode()
    runs = [[fuzz.mutate_file(data, c) for _ in range(20)] for c in (fuzz.Chooser(5), fuzz.Chooser(5))]
    assert runs[0] == runs[1] and len(set(runs[0])) > 10
    with tempfile.TemporaryDirectory() as tmp:
        assert {name: cls.name for name, cls in fuzz.TARGETS.items()} == {
            "schedules": "schedules", "frontiers": "frontiers", "run-dirs": "run-dirs"}
        assert {type(fuzz.TARGETS[name](Path(tmp))).name for name in ("schedules", "frontiers")} == {
            "schedules", "frontiers"}  # (the run-dirs target runs a search to set up: its own test above)
