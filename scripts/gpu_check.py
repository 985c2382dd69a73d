#!/usr/bin/env python
"""GPU serving check of ECAD schedules: realized speedup, realized/MAC and peak memory per model,
dtype, compile setting and batch size. Random weights from configs (nothing is downloaded).

Each case is a denoising loop of transformer forwards (``--steps``, the step found by counting
forwards on the bare transformer) with the inputs the family's pipeline passes (the MAC profile's
inputs, filled with random values), batch ``B`` images (``2B`` rows with CFG). Variants: the
unpatched transformer, the all-compute schedule, the schedules of the case; each compiled variant
against the unpatched transformer compiled alike (``regional``: :func:`ecad_hub.compile_blocks`).
Runs are interleaved after a warm-up; medians. Memory: ``torch.cuda.max_memory_allocated`` over one
loop (RSS on CPU) and the peak bytes the schedule's cache holds.

    bash scripts/gpu_check.sh --out results/        # one large GPU, < 8 minutes
    bash scripts/gpu_check.sh --dry-run --out /tmp/x  # a tiny config on CPU, seconds

Writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out``. ``--budget-s`` stops starting new
cases when exceeded (the files then say which cases were skipped).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecad_hub import CacheSchedule, apply_schedule, from_legacy, profile_macs  # noqa: E402
from ecad_hub.adapters import adapter_for, load_transformer_config  # noqa: E402
from ecad_hub.compile import compile_transformer  # noqa: E402

SHARED = ROOT.parent / "shared" / "ecad-reference"
PUBLISHED = ROOT / "scripts" / "published_configs"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

TINY_PIXART = {
    "_class_name": "PixArtTransformer2DModel", "sample_size": 8, "patch_size": 2, "in_channels": 4, "out_channels": 8,
    "num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 8, "caption_channels": 32,
    "norm_type": "ada_norm_single", "norm_elementwise_affine": False, "norm_eps": 1e-6, "num_embeds_ada_norm": 1000,
    "activation_fn": "gelu-approximate", "attention_bias": True, "use_additional_conditions": False,
    "cross_attention_dim": 16,
}


def _first(*paths):
    for p in paths:
        if p is not None and Path(p).exists():
            return Path(p)
    return None


def pixart_config(res: int) -> dict:
    if res == 256:
        path = _first(SHARED / "configs" / "pixart_xl_2_256_transformer.json")
        if path is not None:
            return load_transformer_config(path)
    cfg = load_transformer_config(PUBLISHED / "PixArt-Sigma-XL-2-1024-MS.json")
    cfg["sample_size"] = res // 8
    if res != 1024:
        cfg["interpolation_scale"] = max(res // 512, 1)
    return cfg


def flux_dev_config() -> dict:
    path = _first(SHARED / "configs" / "flux_1_dev_transformer.json")
    cfg = load_transformer_config(path or PUBLISHED / "FLUX.1-schnell.json")
    cfg["guidance_embeds"] = True  # FLUX.1-dev: guidance-distilled, one forward per step
    return cfg


def heuristic(arch, steps: int, n: int, name: str, attention_only: bool = False) -> CacheSchedule:
    """FORA-style: recompute everything (or only the attention) every ``n`` steps, reuse between."""
    masks = {}
    for g in arch.groups:
        m = np.zeros((steps, g.num_blocks, len(g.components)), dtype=bool)
        m[::n] = True
        if attention_only:
            for ci, c in enumerate(g.components):
                if "attn" not in c:
                    m[:, :, ci] = True
        masks[g.name] = m
    return CacheSchedule(name, steps, arch, masks)


def pixart_schedules(arch, steps: int) -> list[CacheSchedule]:
    if steps == 20:
        files = [SHARED / "pixart_alpha_256" / f"ours_{k}.json" for k in ("fast", "faster", "fastest")]
        if all(f.exists() for f in files):
            return [from_legacy(f) for f in files]
    return [heuristic(arch, steps, 2, "fora-2"), heuristic(arch, steps, 3, "fora-3"), heuristic(arch, steps, 4, "fora-4")]


def flux_schedules(arch, steps: int) -> list[CacheSchedule]:
    path = SHARED / "flux_256" / "recompute_all_every_003.json"
    if steps == 20 and path.exists():
        try:
            return [from_legacy(path)]
        except Exception:  # noqa: BLE001  (a layout ecad-hub does not import: use the heuristic)
            pass
    return [heuristic(arch, steps, 3, "fora-3")]


def cases(args) -> list[dict]:
    if args.dry_run:
        return [dict(name="tiny-pixart", config=TINY_PIXART, height=64, width=64, cfg=True, dtype="float32",
                     schedules="pixart")]
    pix = [dict(name=f"PixArt-XL-2-{r}", config=pixart_config(r), height=r, width=r, cfg=True, dtype="float16",
                schedules="pixart") for r in (256, 1024)]
    flux = dict(name="FLUX.1-dev-1024", config=flux_dev_config(), height=1024, width=1024, cfg=False,
                dtype="bfloat16", schedules="flux")
    wan = dict(name="Wan2.1-T2V-1.3B-480x832x17", config=load_transformer_config(PUBLISHED / "Wan2.1-T2V-1.3B.json"),
               height=480, width=832, num_frames=17, cfg=True, dtype="bfloat16", schedules="heuristic")
    return [pix[0], flux, pix[1], wan]  # by priority: the budget may stop the last ones


def build(case, device, dtype):
    import diffusers

    config = {k: v for k, v in case["config"].items() if not k.startswith("_")}
    cls = getattr(diffusers, case["config"]["_class_name"])
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # parameters are made in the target dtype (FLUX: no fp32 copy)
    try:
        with torch.device(device):
            model = cls.from_config(config)
    finally:
        torch.set_default_dtype(default)
    model.to(dtype=dtype).eval()
    return model


def loop_inputs(case, adapter, config, batch: int, device, dtype):
    lh, lw = adapter.latent_size(config, case["height"], case["width"], 8)
    extra = {}
    if case.get("num_frames"):
        extra["latent_frames"] = adapter.latent_frame_count(case["num_frames"])
    rows = 2 * batch if case["cfg"] else batch
    inputs = adapter.profile_inputs(config, lh, lw, rows, adapter.default_text_len, device, **extra)
    gen = torch.Generator("cpu").manual_seed(0)
    out = {}
    for k, v in inputs.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and k != "timestep":
            v = torch.randn(v.shape, generator=gen).to(device=device, dtype=dtype)
        elif isinstance(v, torch.Tensor) and v.is_floating_point():
            v = v.to(device=device, dtype=dtype)
        out[k] = v
    return out, rows, extra


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_case(case, args, device, deadline) -> dict:
    dtype = DTYPES[args.dtype or case["dtype"]]
    config = load_transformer_config(case["config"])
    adapter = adapter_for(config)
    models = {c: build(case, device, dtype) for c in args.compile}
    for c, m in models.items():
        if c != "none":
            compile_transformer(m, c, **({"backend": args.compile_backend} if args.compile_backend else {}))
    arch = adapter.architecture(config)
    steps = args.steps
    kind = case["schedules"]
    scheds = pixart_schedules(arch, steps) if kind == "pixart" else flux_schedules(arch, steps) if kind == "flux" else \
        [heuristic(arch, steps, 2, "fora-2"), heuristic(arch, steps, 3, "fora-3")]
    variants = [("unpatched", None)]
    if kind == "pixart" or args.dry_run:  # the hooks' overhead, once per family is enough for the time budget
        variants.append(("all-compute", CacheSchedule.all_compute(arch, steps)))
    variants += [(s.name, s) for s in scheds]
    result = {"case": case["name"], "class": config["_class_name"], "dtype": str(dtype).replace("torch.", ""),
              "height": case["height"], "width": case["width"], "num_frames": case.get("num_frames"),
              "steps": steps, "cfg": case["cfg"], "rows": [], "skipped": []}
    for batch in args.batch_size:
        if time.monotonic() > deadline:
            result["skipped"].append(f"batch {batch}: time budget spent")
            continue
        inputs, rows, extra = loop_inputs(case, adapter, config, batch, device, dtype)
        prof = profile_macs(config, case["height"], case["width"], batch_size=rows,
                            num_frames=case.get("num_frames"))
        times = {(c, n): [] for c in args.compile for n, _ in variants}
        mem = {}  # per variant: from its timed runs (the first compile setting)

        def loop(model, schedule, measure=False):
            handle = apply_schedule(model, schedule) if schedule is not None else None
            track = []
            try:
                if measure:
                    gc.collect()
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                    start_rss = rss_mb()
                sync(device)
                t0 = time.perf_counter()
                with torch.no_grad():
                    for _ in range(steps):
                        model(**inputs, return_dict=False)
                        if measure:
                            track.append(handle.cached_bytes() if handle is not None else 0)
                sync(device)
                dt = time.perf_counter() - t0
                if measure:
                    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
                            else max(rss_mb() - start_rss, 0.0))
                    return dt, {"peak_mb": round(peak, 1), "cache_peak_bytes": max(track or [0]),
                               "cache_peak_mb": round(max(track or [0]) / 2**20, 2)}
                return dt, None
            finally:
                if handle is not None:
                    handle.remove()

        try:
            for _ in range(args.warmup):
                for c in args.compile:
                    for n, s in variants:
                        loop(models[c], s)
            for _ in range(args.runs):
                for c in args.compile:
                    for n, s in variants:
                        dt, m = loop(models[c], s, measure=c == args.compile[0])
                        times[(c, n)].append(dt)
                        if m is not None:
                            mem[n] = m
        except torch.cuda.OutOfMemoryError as e:  # pragma: no cover  (GPU only)
            result["skipped"].append(f"batch {batch}: out of memory ({e})")
            torch.cuda.empty_cache()
            continue
        for c in args.compile:
            base = statistics.median(times[(c, "unpatched")])
            for n, s in variants:
                med = statistics.median(times[(c, n)])
                mac = prof.speedup(s) if s is not None else 1.0
                result["rows"].append({
                    "compile": c, "batch_size": batch, "transformer_batch": rows, "schedule": n,
                    "mac_speedup": round(mac, 4), "median_s": round(med, 5), "runs_s": [round(t, 5) for t in times[(c, n)]],
                    "speedup": round(base / med, 4), "realized_over_mac": round(base / med / mac, 4),
                    "peak_mb": mem[n]["peak_mb"], "cache_peak_mb": mem[n]["cache_peak_mb"],
                    "cache_peak_bytes": mem[n]["cache_peak_bytes"],
                    "peak_over_unpatched_mb": round(mem[n]["peak_mb"] - mem["unpatched"]["peak_mb"], 1),
                })
        if args.on_batch is not None:
            args.on_batch(result)
        print(f"{case['name']} batch {batch}: done ({time.monotonic() - deadline + args.budget_s:.0f}s elapsed)", flush=True)
    del models
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def markdown(results: list[dict], meta: dict) -> str:
    lines = [f"# GPU check: {meta['device']}, torch {meta['torch']}", "",
             f"{meta['steps']} steps, {meta['runs']} timed runs after {meta['warmup']} warm-up, medians; "
             f"peak memory over one loop ({meta['memory']}).", "",
             "| case | dtype | compile | batch (rows) | schedule | MAC x | median s | realized x | realized / MAC "
             "| peak MB | cache peak MB | peak vs unpatched MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for row in r["rows"]:
            lines.append(f"| {r['case']} | {r['dtype']} | {row['compile']} | {row['batch_size']} ({row['transformer_batch']}) "
                         f"| {row['schedule']} | {row['mac_speedup']:.3f} | {row['median_s']:.4f} | {row['speedup']:.3f} "
                         f"| {row['realized_over_mac']:.3f} | {row['peak_mb']:.0f} | {row['cache_peak_mb']:.1f} "
                         f"| {row['peak_over_unpatched_mb']:+.0f} |")
        for s in r["skipped"]:
            lines.append(f"\n{r['case']}: skipped {s}")
        if r.get("error"):
            lines.append(f"\n{r['case']}: error {r['error']}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--dry-run", action="store_true", help="a tiny PixArt config on CPU, a few seconds")
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default=None, choices=sorted(DTYPES), help="default: per case (fp16 PixArt, bf16 FLUX/Wan)")
    ap.add_argument("--steps", type=int, default=None, help="default 20 (4 in a dry run)")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per variant (default 1)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch-size", type=int, nargs="+", default=None, help="images per prompt (default 1 4; 1 2 dry)")
    ap.add_argument("--compile", nargs="+", choices=["none", "regional", "full"], default=["none", "regional"])
    ap.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; 'eager' in a dry run)")
    ap.add_argument("--cases", nargs="*", default=None, help="only cases whose name contains one of these")
    ap.add_argument("--budget-s", type=float, default=420.0, help="start no new case/batch after this many seconds")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.device = args.device or "cpu"
        args.steps = args.steps or 4
        args.runs = args.runs or 1
        args.batch_size = args.batch_size or [1, 2]
        args.compile_backend = args.compile_backend or "eager"
        torch.set_num_threads(1)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.steps = args.steps or 20
    args.runs = args.runs or 1
    args.batch_size = args.batch_size or [1, 4]
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    deadline = t0 + args.budget_s
    meta = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu ({platform.processor() or platform.machine()})",
            "torch": torch.__version__, "steps": args.steps, "runs": args.runs, "warmup": args.warmup,
            "compile": args.compile, "compile_backend": args.compile_backend or "inductor", "dry_run": args.dry_run,
            "memory": "torch.cuda.max_memory_allocated" if args.device.startswith("cuda") else "RSS growth",
            "load_avg": os.getloadavg()}
    results = []

    def write(partial=None):
        doc = results + ([partial] if partial is not None and partial not in results else [])
        meta["elapsed_s"] = round(time.monotonic() - t0, 1)
        (out / "gpu_check.json").write_text(json.dumps({"meta": meta, "results": doc}, indent=2) + "\n")
        (out / "gpu_check.md").write_text(markdown(doc, meta))

    args.on_batch = write  # a timeout still leaves every finished batch in both files
    for case in cases(args):
        if args.cases and not any(c in case["name"] for c in args.cases):
            continue
        if time.monotonic() > deadline:
            results.append({"case": case["name"], "rows": [], "skipped": ["time budget spent"]})
            continue
        try:
            results.append(run_case(case, args, args.device, deadline))
        except Exception as e:  # noqa: BLE001  (one failing case must not lose the others' results)
            if args.dry_run:
                raise
            results.append({"case": case["name"], "rows": [], "skipped": [], "error": f"{type(e).__name__}: {e}"})
            print(f"{case['name']}: {type(e).__name__}: {e}", flush=True)
        write()
    write()
    print(markdown(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
