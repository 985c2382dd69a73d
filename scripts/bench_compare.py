#!/usr/bin/env python
"""ECAD against the caches people already use, on the embedded model, on held-out prompts.

1. a schedule search on the embedded model (``--preset full``: population 24 x 13 generations =
   312 evaluations on 16 calibration prompts; ``quick``: 12 x 5 on 8 prompts), exported as a frontier;
2. :func:`ecad_hub.compare.compare` of that frontier against FORA, Delta-DiT, attention-every-N,
   diffusers' FirstBlockCache / PyramidAttentionBroadcast / FasterCache / TaylorSeer / MagCache and
   cache-dit's DBCache (+TaylorSeer, when installed), >= 4 settings each, on held-out (prompt, seed)
   pairs disjoint from the calibration set (``full``: 96, ``quick``: 24);
3. prints the table, the per-baseline verdicts and the result at 1.5x, 2x, 3x and 4x MACs; writes
   ``compare.json``, ``compare.png`` and the frontier (with its "Compared with other caches" section).

    python scripts/bench_compare.py --preset quick --out bench-compare-quick
    python scripts/bench_compare.py --out bench-compare        # the full benchmark
    python scripts/bench_compare.py --frontier RUN_OR_FOLDER   # skip the search
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

PRESETS = {
    "full": dict(population=24, generations=13, num_prompts=16, heldout=96, timing_rounds=3, timing_batch=8),
    "quick": dict(population=12, generations=5, num_prompts=8, heldout=24, timing_rounds=2, timing_batch=4),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="full")
    ap.add_argument("--out", default=None, metavar="DIR")
    ap.add_argument("--frontier", default=None, help="compare this frontier / run directory instead of searching")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    p = PRESETS[args.preset]
    out = Path(args.out or f"bench-compare-{args.preset}")
    out.mkdir(parents=True, exist_ok=True)

    from ecad_hub.compare import compare
    from ecad_hub.compare.card import add_comparison
    from ecad_hub.frontier import Frontier
    from ecad_hub.search import SearchConfig, run_search
    from ecad_hub.search.evaluate import torch_threads
    from ecad_hub.search.model import load_pipeline
    from ecad_hub.utils.logging import quiet_libraries

    quiet_libraries()
    t0 = time.perf_counter()
    with torch_threads(args.threads):
        pipe = load_pipeline("embedded", dtype="float32", device="cpu")
        if args.frontier is None:
            run_dir = out / "search"
            if run_dir.exists():
                shutil.rmtree(run_dir)
            cfg = SearchConfig(base_model="embedded", metric="embedded-reward", population=p["population"],
                               generations=p["generations"], seed=args.seed, num_threads=args.threads,
                               num_prompts=p["num_prompts"])
            print(f"search: population {cfg.population} x {cfg.generations} generations on {p['num_prompts']} "
                  f"calibration prompts -> {run_dir}", flush=True)
            run_search(cfg, run_dir, pipe=pipe, progress=False, log=lambda s: print("  " + s, flush=True))
            frontier_src = run_dir
        else:
            frontier_src = args.frontier
        t_search = time.perf_counter() - t0
        frontier = Frontier.load(frontier_src)
        folder = out / "frontier"
        frontier.save_pretrained(folder)
        print(f"frontier: {len(frontier)} schedules ({t_search:.0f} s)", flush=True)
        result = compare(pipe, base_model="embedded", frontier=frontier, num_heldout=p["heldout"],
                         preset=args.preset, timing_rounds=p["timing_rounds"], timing_batch=p["timing_batch"],
                         num_threads=args.threads, log=lambda s: print(s, flush=True))
    result.save_json(out / "compare.json")
    result.plot(out / "compare.png", title="embedded digits model: held-out prompts")
    add_comparison(folder, result)
    print()
    print(result.table())
    print()
    for line in result.skipped:
        print("skipped: " + line)
    print()
    for line in result.summary_lines():
        print(line)
    print()
    print("at 1.5x / 2x / 3x / 4x MACs (best setting reaching the speedup, held-out quality):")
    for v in result.at_speedups():
        print(f"  {v['method']:<28} {v['target']:.1f}x: {v['verdict']}")
    print()
    print(f"held-out: {result.prompt_set}; machine: {result.describe_machine()}")
    print(f"search {t_search:.0f} s, comparison {result.seconds:.0f} s, total {time.perf_counter() - t0:.0f} s; "
          f"wrote {out}/compare.json, compare.png, frontier/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
