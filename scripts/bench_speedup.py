#!/usr/bin/env python
"""Realized speedup of ECAD schedules vs the speedup their MACs promise.

Times, for the unpatched transformer, the all-compute schedule and each given schedule:

* ``loop``: the denoising loop alone: ``--steps`` transformer forwards of batch 2 (the
  classifier-free-guidance pair) with pipeline-shaped inputs;
* ``pipeline``: a whole ``PixArtAlphaPipeline`` call (latents, scheduler, transformer, VAE
  decode; prompt embeddings are passed in, so no text encoder runs).

Weights are random (from the transformer config; the VAE is the standard SD/PixArt VAE
architecture). Runs are interleaved round-robin after warm-up, so slow drift of the machine
hits every variant alike; medians are reported with the ratio

    realized / MAC = (median time unpatched / median time schedule) / MAC speedup

Example (CPU, the paper's PixArt-alpha 256 schedules)::

    python scripts/bench_speedup.py --transformer-config ../shared/ecad-reference/configs/pixart_xl_2_256_transformer.json \\
        --schedule ../shared/ecad-reference/pixart_alpha_256/ours_{fast,faster,fastest}.json --runs 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecad_hub import CacheSchedule, apply_schedule, profile_macs  # noqa: E402
from ecad_hub.adapters import adapter_for, load_transformer_config  # noqa: E402
from ecad_hub.legacy import load_any_schedule  # noqa: E402

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build(config_path: str, device: str, dtype: torch.dtype, seed: int):
    import diffusers

    config = load_transformer_config(config_path)
    adapter = adapter_for(config)
    if adapter.transformer_class != "PixArtTransformer2DModel":
        raise SystemExit("the benchmark builds a PixArt pipeline; give a PixArtTransformer2DModel config")
    torch.manual_seed(seed)
    transformer = diffusers.PixArtTransformer2DModel.from_config({k: v for k, v in config.items() if not k.startswith("_")})
    vae = diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=256,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[128, 256, 512, 512], layers_per_block=2, norm_num_groups=32, scaling_factor=0.18215,
    )
    scheduler = diffusers.DPMSolverMultistepScheduler(
        beta_start=0.0001, beta_end=0.02, beta_schedule="linear", num_train_timesteps=1000, solver_order=2,
        prediction_type="epsilon", algorithm_type="dpmsolver++", lower_order_final=True,
    )
    pipe = diffusers.PixArtAlphaPipeline(tokenizer=None, text_encoder=None, vae=vae, transformer=transformer, scheduler=scheduler)
    pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe, config


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def current_rss_mb() -> float:
    """Resident set size of this process now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def memory_check(pipe, schedule, run_pipeline, calls: int, device: str) -> dict:
    """RSS (and CUDA peak) after each of ``calls`` pipeline calls with ``schedule`` applied."""
    import gc

    rss, cuda = [], []
    handle = apply_schedule(pipe, schedule) if schedule is not None else None
    try:
        for _ in range(calls):
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            run_pipeline()
            gc.collect()
            rss.append(round(current_rss_mb(), 1))
            if device.startswith("cuda"):
                cuda.append(round(torch.cuda.max_memory_allocated() / 1e9, 3))
            if handle is not None:
                assert handle.cached_tensors() == 0, "cached tensors outlived the pipeline call"
    finally:
        if handle is not None:
            handle.remove()
    out = {"rss_mb": rss, "rss_growth_mb": round(rss[-1] - rss[0], 1)}
    if cuda:
        out["cuda_peak_gb"] = cuda
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--transformer-config", required=True)
    ap.add_argument("--schedule", nargs="*", default=[], metavar="FILE", help="v1 or legacy schedule files")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, choices=sorted(_DTYPES), help="default: float32 on CPU, float16 on CUDA")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per variant (after one warm-up)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=1, help="images per prompt; the transformer sees 2x (CFG)")
    ap.add_argument("--mode", choices=["loop", "pipeline", "both"], default="both")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--memory-calls", type=int, default=10,
                    help="pipeline calls with the last schedule for the memory check (0: skip)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = _DTYPES[args.dtype or ("float16" if args.device.startswith("cuda") else "float32")]

    pipe, config = build(args.transformer_config, args.device, dtype, seed=0)
    arch_profile = profile_macs(config, args.height, args.width, batch_size=2 * args.batch_size)
    arch = arch_profile.architecture
    variants: list[tuple[str, CacheSchedule | None]] = [("unpatched", None), ("all-compute", CacheSchedule.all_compute(arch, args.steps))]
    for path in args.schedule:
        s = load_any_schedule(path)
        variants.append((s.name, s))

    caption_channels = config.get("caption_channels", 4096)
    gen = torch.Generator("cpu").manual_seed(0)
    prompt_embeds = torch.randn(args.batch_size, 120, caption_channels, generator=gen).to(args.device, dtype)
    negative_embeds = torch.randn(args.batch_size, 120, caption_channels, generator=gen).to(args.device, dtype)
    mask = torch.ones(args.batch_size, 120, device=args.device)
    latent_h, latent_w = args.height // 8, args.width // 8
    loop_latents = torch.randn(2 * args.batch_size, 4, latent_h, latent_w, generator=gen).to(args.device, dtype)
    loop_embeds = torch.cat([negative_embeds, prompt_embeds])
    loop_mask = torch.cat([mask, mask])

    def run_loop() -> float:
        pipe.scheduler.set_timesteps(args.steps, device=args.device)
        sync(args.device)
        t0 = time.perf_counter()
        with torch.no_grad():
            for t in pipe.scheduler.timesteps:
                pipe.transformer(loop_latents, encoder_hidden_states=loop_embeds, encoder_attention_mask=loop_mask,
                                 timestep=t.expand(loop_latents.shape[0]).to(dtype),
                                 added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)
        sync(args.device)
        return time.perf_counter() - t0

    def run_pipeline() -> float:
        sync(args.device)
        t0 = time.perf_counter()
        pipe(prompt=None, negative_prompt=None, prompt_embeds=prompt_embeds, prompt_attention_mask=mask, negative_prompt_embeds=negative_embeds,
             negative_prompt_attention_mask=mask, num_inference_steps=args.steps, height=args.height, width=args.width,
             guidance_scale=4.5, use_resolution_binning=False, output_type="pt",
             generator=torch.Generator("cpu").manual_seed(0))
        sync(args.device)
        return time.perf_counter() - t0

    modes = ["loop", "pipeline"] if args.mode == "both" else [args.mode]
    times = {(name, mode): [] for name, _ in variants for mode in modes}
    rss_peak = {}

    def timed(name, schedule, mode, record: bool):
        handle = apply_schedule(pipe, schedule) if schedule is not None else None
        try:
            t = run_loop() if mode == "loop" else run_pipeline()
        finally:
            if handle is not None:
                handle.remove()
        if record:
            times[(name, mode)].append(t)
        return t

    print(f"device={args.device} dtype={str(dtype).replace('torch.', '')} threads={torch.get_num_threads()} "
          f"steps={args.steps} transformer batch={2 * args.batch_size} {args.height}x{args.width}", flush=True)
    for name, schedule in variants:  # warm-up
        for mode in modes:
            print(f"warm-up {name} {mode}: {timed(name, schedule, mode, record=False):.2f}s", flush=True)
    for r in range(args.runs):
        for name, schedule in variants:
            for mode in modes:
                t = timed(name, schedule, mode, record=True)
                print(f"run {r + 1}/{args.runs} {name:<28} {mode:<8} {t:8.3f}s", flush=True)
    if args.memory_calls:
        rss_peak["memory"] = memory_check(pipe, variants[-1][1], run_pipeline, args.memory_calls, args.device)
        m = rss_peak["memory"]
        print(f"memory over {args.memory_calls} pipeline calls with {variants[-1][0]}: RSS MB after each call "
              f"{m['rss_mb']}" + (f", CUDA peak GB per call {m['cuda_peak_gb']}" if m.get("cuda_peak_gb") else ""))

    rows = []
    for name, schedule in variants:
        mac = arch_profile.speedup(schedule) if schedule is not None else 1.0
        row = {"schedule": name, "mac_speedup": round(mac, 4)}
        for mode in modes:
            med = statistics.median(times[(name, mode)])
            base = statistics.median(times[("unpatched", mode)])
            row[f"{mode}_median_s"] = round(med, 4)
            row[f"{mode}_runs_s"] = [round(x, 4) for x in times[(name, mode)]]
            row[f"{mode}_speedup"] = round(base / med, 4)
            row[f"{mode}_realized_over_mac"] = round(base / med / mac, 4)
        rows.append(row)

    header = f"{'schedule':<28} {'MAC x':>7}" + "".join(f" {m + ' med s':>14} {m + ' x':>10} {'real/MAC':>9}" for m in modes)
    print("\n" + header)
    for row in rows:
        line = f"{row['schedule']:<28} {row['mac_speedup']:>7.3f}"
        for m in modes:
            line += f" {row[m + '_median_s']:>14.3f} {row[m + '_speedup']:>10.3f} {row[m + '_realized_over_mac']:>9.3f}"
        print(line)
    for m in modes:
        over = times[("all-compute", m)]
        base = times[("unpatched", m)]
        print(f"all-compute overhead ({m}): {100 * (statistics.median(over) / statistics.median(base) - 1):+.2f}%")

    if args.json:
        result = {
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name()},
            "settings": {k: v for k, v in vars(args).items() if k != "json"} | {"dtype": str(dtype)},
            "results": rows, **rss_peak,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
