#!/usr/bin/env python
"""Memory an ECAD schedule's cache holds, per architecture at deployment resolutions.

:func:`ecad_hub.cache_memory`: the schedule's hooks run for real on the ``meta`` device (tensors
with shapes and dtypes, no data, no weights: FLUX.1-dev at 1024x1024 in seconds) and, after every
denoising step, the cache is sized (exact: the bytes the same tensors take on a GPU).
Per case:

* ``bound``: step 0 computes everything, every later step reuses everything; its cache holds every
  scheduled sub-module's output at once, the most any schedule of that model can keep;
* the case's schedules (the paper's PixArt ones where ``../shared/ecad-reference`` is present, its
  FLUX one; FORA-2/3 elsewhere): the peak over the steps, the step it is reached at and the number
  of outputs held then.

Weights are given in the same dtype to put the cache in proportion. Activation memory (the rest
of a step's peak) is not on ``meta``: ``scripts/bench_speedup.py --memory`` (RSS on CPU) and
``scripts/gpu_check.sh`` (``torch.cuda.max_memory_allocated``) measure whole peaks.

    python scripts/bench_memory.py --json memory.json       # every case, about a minute
    python scripts/bench_memory.py --dry-run --json x.json  # a tiny PixArt config (tests)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ecad_hub import cache_memory  # noqa: E402
from ecad_hub.adapters import adapter_for, load_transformer_config  # noqa: E402
from gpu_check import (  # noqa: E402  (the GPU check's configs and schedules: one source for both)
    PUBLISHED, TINY_PIXART, flux_dev_config, flux_schedules, heuristic, pixart_config, pixart_schedules,
)


def cases(dry_run: bool) -> list[dict]:
    if dry_run:
        return [dict(name="tiny-pixart", config=TINY_PIXART, height=64, width=64, cfg=True, dtype="float32",
                     schedules="heuristic")]

    def published(name):
        return load_transformer_config(PUBLISHED / f"{name}.json")

    return [
        dict(name="PixArt-XL-2-256", config=pixart_config(256), height=256, width=256, cfg=True, dtype="float16",
             schedules="pixart"),
        dict(name="PixArt-Sigma-XL-2-1024", config=pixart_config(1024), height=1024, width=1024, cfg=True,
             dtype="float16", schedules="pixart"),
        dict(name="SD3.5-medium-1024", config=published("stable-diffusion-3.5-medium"), height=1024, width=1024,
             cfg=True, dtype="bfloat16", schedules="heuristic"),
        dict(name="FLUX.1-dev-1024", config=flux_dev_config(), height=1024, width=1024, cfg=False, dtype="bfloat16",
             schedules="flux"),
        dict(name="Qwen-Image-1328", config=published("Qwen-Image"), height=1328, width=1328, cfg=True,
             dtype="bfloat16", schedules="heuristic"),
        dict(name="Wan2.1-T2V-1.3B-480x832x81", config=published("Wan2.1-T2V-1.3B"), height=480, width=832,
             num_frames=81, cfg=True, dtype="bfloat16", schedules="heuristic"),
        dict(name="Wan2.1-T2V-14B-720x1280x81", config=published("Wan2.1-T2V-14B"), height=720, width=1280,
             num_frames=81, cfg=True, dtype="bfloat16", schedules="heuristic"),
        dict(name="HunyuanVideo-720x1280x129", config=published("HunyuanVideo"), height=720, width=1280,
             num_frames=129, cfg=False, dtype="bfloat16", schedules="heuristic"),
    ]


def run_case(case: dict, steps: int) -> dict:
    config = load_transformer_config(case["config"])
    adapter = adapter_for(config)
    arch = adapter.architecture(config)
    rows = 2 if case["cfg"] else 1  # one image; with CFG the pair (one batch or two streams: the same bytes)
    kind = case["schedules"]
    scheds = pixart_schedules(arch, steps) if kind == "pixart" else flux_schedules(arch, steps) if kind == "flux" else \
        [heuristic(arch, steps, 2, "fora-2"), heuristic(arch, steps, 3, "fora-3")]
    t0 = time.perf_counter()
    sized = [cache_memory(config, s, case["height"], case["width"], batch_size=rows, dtype=case["dtype"],
                          num_frames=case.get("num_frames")) for s in scheds]
    first = sized[0]
    result = {"case": case["name"], "class": config["_class_name"], "dtype": case["dtype"], "height": case["height"],
              "width": case["width"], "num_frames": first.num_frames, "rows": rows, "steps": steps,
              "text_len": first.text_len, "weights_bytes": first.weights_bytes, "outputs_max": first.outputs_max,
              "schedules": [{"schedule": "bound", "cache_peak_bytes": first.bound_bytes, "peak_after_step": 0,
                             "outputs_held": first.outputs_max}]}
    for m in sized:
        result["schedules"].append({"schedule": m.schedule, "cache_peak_bytes": m.peak_bytes,
                                    "peak_after_step": m.peak_after_step,
                                    "outputs_held": m.outputs_held[m.peak_after_step],
                                    "per_step_bytes": list(m.per_step_bytes)})
    for s in result["schedules"]:
        s["per_row_bytes"] = s["cache_peak_bytes"] // rows
        s["of_weights"] = round(s["cache_peak_bytes"] / first.weights_bytes, 4)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def markdown(results: list[dict]) -> str:
    lines = ["| case | dtype | rows | weights | schedule | cache peak | per row | of weights | after step | outputs held |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for s in r["schedules"]:
            held = f"{s['outputs_held']}" + (f" / {r['outputs_max']}" if s["schedule"] == "bound" else "")
            lines.append(f"| {r['case']} | {r['dtype']} | {r['rows']} | {r['weights_bytes'] / 2**30:.2f} GiB "
                         f"| {s['schedule']} | {s['cache_peak_bytes'] / 2**20:,.1f} MiB | {s['per_row_bytes'] / 2**20:,.1f} MiB "
                         f"| {100 * s['of_weights']:.1f}% | {s['peak_after_step']} | {held} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="a tiny PixArt config only")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--cases", nargs="*", default=None, help="only cases whose name contains one of these")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    results = []
    for case in cases(args.dry_run):
        if args.cases and not any(c in case["name"] for c in args.cases):
            continue
        results.append(run_case(case, args.steps))
        print(f"{case['name']}: {results[-1]['seconds']}s", file=sys.stderr, flush=True)
    print(markdown(results), end="")
    if args.json:
        Path(args.json).write_text(json.dumps({"torch": torch.__version__, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
