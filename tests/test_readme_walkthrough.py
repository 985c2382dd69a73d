"""The README's publishing walkthrough, command by command, through the real console script against the
Hub double: export the ECAD authors' PixArt-alpha 256 schedules, push them, browse with a plot, and
generate with no extra flags -- and no warning on any of it.

The base model on the double is a tiny random-weight PixArt-alpha pipeline shaped like
PixArt-XL-2-256x256 (28 blocks, latent size 32, scale-factor-8 VAE), uploaded under that id; nothing
else is set up by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tiny_models import save_tiny_pipeline, tiny_pixart_pipeline

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "ecad-reference"
PAPER = REFERENCE / "pixart_alpha_256"
BASE = "PixArt-alpha/PixArt-XL-2-256x256"
REPO = "you/pixart-ecad"
EXE = Path(sys.executable).with_name("ecad-hub")

pytestmark = pytest.mark.skipif(not PAPER.is_dir(), reason="needs ../shared/ecad-reference (the authors' schedules)")


def ecad_hub(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}  # Python's own filters, as a user has
    proc = subprocess.run([str(EXE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"ecad-hub {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    noise = [line for line in proc.stderr.splitlines()
             if "warning" in line.lower() or "Traceback" in line or "deprecat" in line.lower()]
    assert not noise, f"ecad-hub {' '.join(args)} printed warnings:\n{proc.stderr}"
    return proc


def test_export_push_browse_generate_as_the_readme_says(hub, tmp_path):
    base = save_tiny_pipeline(tiny_pixart_pipeline(0, num_layers=28, sample_size=32), tmp_path / "base")
    api = HfApi()
    api.create_repo(BASE)
    api.upload_folder(repo_id=BASE, folder_path=base, commit_message="tiny PixArt-XL-2-256x256 stand-in")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(PAPER, work / "paper")

    schedules = sorted(str(p.relative_to(work)) for p in (work / "paper").glob("*.json"))
    ecad_hub("export", *schedules, "--base-model", BASE, "--transformer-config", BASE, "--height", "256", "--width",
             "256", "--out", "pixart-ecad", cwd=work)
    config = json.loads((work / "pixart-ecad" / "ecad_config.json").read_text())
    index = json.loads((work / "pixart-ecad" / "frontier.json").read_text())
    names = {e["name"] for e in index["schedules"]}
    assert {"ours_fast", "ours_faster", "ours_fastest"} <= names  # the authors' names are kept
    assert config["default_schedule"] != "recompute_all_every_003"  # a heuristic is never the default

    ecad_hub("push", "pixart-ecad", "--repo", REPO, cwd=work)
    assert REPO in {r.id for r in api.list_models(author="you")}
    card = api.model_info(REPO).card_data
    assert card is not None and card.get("base_model") == BASE

    out = ecad_hub("browse", "--plot", "frontiers.png", cwd=work)
    assert REPO in out.stdout
    assert (work / "frontiers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    gen = ecad_hub("generate", "--repo", REPO, "--prompt", "an astronaut riding a horse", "-o", "out.png", cwd=work)
    assert (work / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert config["default_schedule"] in gen.stdout

    # a speedup typed as the table shows it picks the schedule it names (on the real model ours_faster is
    # 3.9255x, "3.93x", which ">= 3.93" alone would miss; the rounding-up case is in test_load_schedule.py)
    speedups = {e["name"]: e["mac_speedup"] for e in index["schedules"] if e["mac_speedup"]}
    shown = f"{speedups['ours_faster']:.2f}x"
    picked = ecad_hub("generate", "--repo", REPO, "--schedule", shown, "--prompt", "a red fox", "-o", "fast.png",
                      cwd=work)
    assert picked.stdout.startswith(f"schedule ours_faster ({shown} MACs)"), picked.stdout
