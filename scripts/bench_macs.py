"""MAC profiles of published transformer configurations, with the time each takes (no weights).

    python scripts/bench_macs.py                      # every scripts/published_configs/*.json (+ ../shared configs)
    python scripts/bench_macs.py --markdown           # the table for BENCHMARKS.md

Each config is the transformer ``config.json`` of a published checkpoint (``_class_name`` says the
diffusers class, ``_source`` where the numbers come from). It is profiled on the ``meta`` device at
the family's usual resolution (``adapter.default_resolution``), frames (``default_num_frames``) and
text length (``default_text_len``), batch 2 when the family runs CFG as a batch pair, else 1; a
``_profile`` object in the file overrides any of ``height``, ``width``, ``num_frames``,
``batch_size``, ``text_len``, ``vae_scale_factor``, ``vae_temporal_factor``. Each profile runs in a
fresh process: ``profile s`` is building the model on ``meta`` and counting, ``cold process s`` the
whole process (Python start, importing torch + diffusers, profiling), as ``ecad-hub macs`` would take.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "scripts" / "published_configs"
SHARED = ROOT.parent / "shared" / "ecad-reference" / "configs"


def settings(path: Path) -> dict:
    from ecad_hub.adapters import adapter_for

    config = json.loads(path.read_text())
    adapter = adapter_for(config)
    prof = dict(config.get("_profile") or {})
    vae = int(prof.get("vae_scale_factor", 8))
    side = adapter.default_resolution(config, vae)
    out = {
        "height": int(prof.get("height", side)), "width": int(prof.get("width", side)),
        "batch_size": int(prof.get("batch_size", 2 if adapter.uses_cfg(4.5) else 1)),
        "text_len": int(prof.get("text_len", adapter.default_text_len)), "vae_scale_factor": vae,
    }
    if adapter.temporal_compression is not None or "num_frames" in prof:
        out["num_frames"] = int(prof.get("num_frames", adapter.default_num_frames))
        if "vae_temporal_factor" in prof:
            out["vae_temporal_factor"] = int(prof["vae_temporal_factor"])
    return out


def profile_one(path: Path) -> dict:
    """Run in a child process: import, build on meta, count; returns the figures and seconds."""
    t0 = time.perf_counter()
    import diffusers  # noqa: F401  (importing torch + diffusers is most of a cold `ecad-hub macs`)

    from ecad_hub import profile_macs

    t1 = time.perf_counter()
    s = settings(path)
    profile = profile_macs(str(path), **s)
    t2 = time.perf_counter()
    return {"config": path.name, "class": profile.architecture.transformer_class, **s,
            "groups": profile.architecture.describe(), "full_step_macs": profile.full_step_macs,
            "always_macs": profile.always_macs, "import_seconds": round(t1 - t0, 2),
            "seconds": round(t2 - t1, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*", help="config files (default: scripts/published_configs/*.json and ../shared)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(profile_one(Path(args.child))))
        return 0
    paths = [Path(p) for p in args.configs] or sorted(CONFIGS.glob("*.json")) + sorted(SHARED.glob("*.json"))
    rows = []
    for path in paths:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        wall = time.perf_counter() - t0
        if proc.returncode:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{path.name}: FAILED: {last}", file=sys.stderr)
            rows.append({"config": path.name, "error": last})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["wall_seconds"] = round(wall, 2)
        rows.append(row)
        if not args.markdown:
            print(json.dumps(row))
    if args.markdown:
        print("| config | class | resolution | frames | batch | text | full-step MACs | profile s | cold process s |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            if "error" in r:
                print(f"| {r['config']} | FAILED: {r['error'][:80]} | | | | | | | |")
                continue
            print(f"| {r['config'][:-5]} | `{r['class']}` | {r['height']}x{r['width']} | {r.get('num_frames', '-')} | "
                  f"{r['batch_size']} | {r['text_len']} | {r['full_step_macs']:,} | {r['seconds']} | {r['wall_seconds']} |")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
