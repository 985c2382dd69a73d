"""scripts/gpu_check.sh --dry-run: the prepared GPU check runs end to end on a tiny config on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "gpu_check.json").read_text())
    assert doc["meta"]["dry_run"] is True
    [case] = doc["results"]
    assert case["case"] == "tiny-pixart" and not case.get("error") and not case["skipped"]
    rows = case["rows"]
    combos = {(r["compile"], r["batch_size"]) for r in rows}
    assert combos == {("none", 1), ("none", 2), ("regional", 1), ("regional", 2)}
    names = {r["schedule"] for r in rows}
    assert {"unpatched", "all-compute"} <= names and len(names) >= 3
    for r in rows:
        assert r["median_s"] > 0 and r["mac_speedup"] >= 1.0
        assert r["realized_over_mac"] > 0 and r["cache_peak_mb"] >= 0
        if r["schedule"] in ("unpatched", "all-compute"):
            assert r["mac_speedup"] == 1.0 and r["cache_peak_bytes"] == 0
        else:
            assert r["mac_speedup"] > 1.0 and r["cache_peak_bytes"] > 0
    md = (out / "gpu_check.md").read_text()
    assert "| case | dtype | compile |" in md and "tiny-pixart" in md
    assert md.count("\n| tiny-pixart |") == len(rows)
