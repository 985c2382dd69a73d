"""The format commands of the CLI: import, validate, show, macs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from ecad_hub import CacheSchedule
from ecad_hub.adapters import architecture_of
from ecad_hub.cli import main
from support import PIXART_XL_256_CONFIG, REFERENCE, needs_reference


def _write_config(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(PIXART_XL_256_CONFIG))
    return p


def _schedule(tmp_path, name="s"):
    arch = architecture_of(PIXART_XL_256_CONFIG)
    mask = np.ones((20, 28, 3), bool)
    mask[1::2] = False
    return CacheSchedule(name, 20, arch, {"transformer_blocks": mask}).save(tmp_path / f"{name}.json")


@needs_reference
def test_import_writes_valid_small_files(tmp_path, capsys):
    files = sorted(str(p) for p in (REFERENCE / "pixart_alpha_256").glob("*.json"))
    assert main(["import", *files, "--out", str(tmp_path / "out"), "--base-model", "PixArt-alpha/PixArt-XL-2-256x256",
                 "--height", "256", "--width", "256"]) == 0
    written = sorted((tmp_path / "out").glob("*.json"))
    assert [p.stem for p in written] == sorted(p.split("/")[-1][:-5] for p in files)
    assert all(p.stat().st_size < 8192 for p in written)
    assert main(["validate", str(tmp_path / "out")]) == 0
    s = CacheSchedule.load(tmp_path / "out" / "ours_fast.json")
    assert s.generation["base_model"] == "PixArt-alpha/PixArt-XL-2-256x256" and s.generation["height"] == 256


def test_import_failure_writes_nothing(tmp_path, capsys):
    good = _tiny_legacy(tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["import", str(good), str(bad), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not valid JSON" in err and err.count("\n") == 1


def _tiny_legacy(path):
    sched = {f"{s:03d}": {str(b): {"attn1": True, "attn2": True, "ff": s % 2 == 0} for b in range(28)} for s in range(4)}
    path.write_text(json.dumps({"cache_schedule": {"num_blocks": 28, "num_inference_steps": 4, "name": "t", "schedule": sched}}))
    return path


def test_validate_reports_one_line_per_problem_and_exit_1(tmp_path, capsys):
    good = _schedule(tmp_path, "good")
    doc = json.loads(good.read_text())
    doc["mask"]["transformer_blocks"]["ff"][3] = "1" * 27
    doc["mask"]["transformer_blocks"]["zz"] = ["1" * 28] * 20
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{good}: ok"
    problems = [line for line in out if line.startswith(str(bad))]
    assert len(problems) == 2
    assert any("27 blocks" in p for p in problems) and any("zz: unknown component" in p for p in problems)


def test_show_prints_summary_heatmap_and_macs(tmp_path, capsys):
    path = _schedule(tmp_path)
    assert main(["show", str(path), "--transformer-config", str(_write_config(tmp_path)), "--height", "256", "--width", "256"]) == 0
    out = capsys.readouterr().out
    assert "s  PixArtTransformer2DModel  20 steps" in out
    assert "speedup" in out and "285.69 GMACs" in out and "1.50 GMACs" in out
    assert "step   1 " + "." * 28 in out and "step   0 " + "#" * 28 in out


def test_macs_json(tmp_path, capsys):
    path = _schedule(tmp_path)
    assert main(["macs", str(path), "--transformer-config", str(_write_config(tmp_path)), "--height", "256", "--width", "256",
                 "--batch-size", "2", "--text-len", "120", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step_macs"][:2] == [285_689_806_848, 1_498_447_872]
    assert result["total_macs"] == sum(result["step_macs"])
    assert result["all_compute_macs"] == 20 * 285_689_806_848
    assert result["speedup"] == result["all_compute_macs"] / result["total_macs"]


def test_bad_input_exit_code_and_one_line_from_a_real_process(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"ecad_schedule_version": 99, "name": "x"}')
    proc = subprocess.run([sys.executable, "-m", "ecad_hub", "show", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "unsupported ecad_schedule_version 99" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sizes_must_be_positive_and_zero_is_not_the_default(tmp_path, capsys):
    path, config = _schedule(tmp_path), _write_config(tmp_path)
    for flag, value in (("--height", "0"), ("--height", "-8"), ("--width", "0"), ("--batch-size", "0"),
                        ("--text-len", "0"), ("--vae-scale-factor", "0")):
        assert main(["macs", str(path), "--transformer-config", str(config), flag, value]) == 1
        err = capsys.readouterr().err
        assert err == f"error: {flag} must be a positive integer, got {value}\n"


def test_an_unwritable_out_is_one_error_line_not_a_traceback(tmp_path, capsys):
    legacy = tmp_path / "smooth.json"
    legacy.write_text(json.dumps({"attn1": [1, 0] * 10}))
    (tmp_path / "afile").write_text("x")
    config = _write_config(tmp_path)
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        assert main(["import", str(legacy), "--transformer-config", str(config), "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err == f"error: {tmp_path / 'afile'}: is a file, not a folder (cannot write {out / 'smooth.json'} under it)\n"


def test_main_maps_any_os_error_to_one_line(monkeypatch, capsys):
    import ecad_hub.cli.format as format_module

    def broken(args):
        raise PermissionError(13, "Permission denied", "/somewhere/out")

    monkeypatch.setattr(format_module, "cmd_validate", broken)
    assert main(["validate", "x"]) == 1
    assert capsys.readouterr().err == "error: /somewhere/out: failed (Permission denied)\n"


def test_macs_memory_sizes_the_cache_per_step(tmp_path, capsys):
    # PixArt-XL-2 at 256 on meta: the every-other-step schedule keeps all 84 outputs after each full step
    path = _schedule(tmp_path)
    args = ["macs", str(path), "--transformer-config", str(_write_config(tmp_path)), "--height", "256", "--width", "256",
            "--memory", "--dtype", "float16"]
    assert main(args + ["--json"]) == 0
    mem = json.loads(capsys.readouterr().out)["cache_memory"]
    # 2 rows x 256 tokens x 1152 wide x 2 bytes per output, 28 blocks x 3 sub-modules
    per_output = 2 * 256 * 1152 * 2
    assert mem["bound_bytes"] == 84 * per_output and mem["outputs_max"] == 84
    assert mem["per_step_bytes"][0::2][:-1] == [84 * per_output] * 9 and mem["per_step_bytes"][1::2] == [0] * 10
    assert mem["peak_bytes"] == 84 * per_output and mem["peak_after_step"] == 0 and mem["dtype"] == "float16"
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cache peak 94.50 MiB after step 0 (84 of 84 outputs" in out
    assert "cache after:" in out
