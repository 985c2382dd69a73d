"""``ecad-hub macs --frames`` profiles a video transformer at the given frame count (no weights)."""

from __future__ import annotations

import json

from ecad_hub import CacheSchedule, architecture_of
from ecad_hub.cli import main

from families.wan import CASES


def test_macs_frames_changes_the_profile(tmp_path, capsys):
    config = dict(CASES[0].config)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    schedule = CacheSchedule.all_compute(architecture_of(config), 4, name="all")
    path = schedule.save(tmp_path / "all.json")
    totals = {}
    for frames in (5, 9):
        assert main(["macs", str(path), "--transformer-config", str(cfg), "--height", "32", "--width", "32",
                     "--frames", str(frames), "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["profile"]["num_frames"] == frames
        totals[frames] = doc["total_macs"]
    assert totals[9] > totals[5] > 0
    assert main(["macs", str(path), "--transformer-config", str(cfg), "--frames", "0"]) == 1
    assert capsys.readouterr().err.count("\n") == 1
