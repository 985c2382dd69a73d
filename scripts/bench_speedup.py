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

``--batch-size 1 2 4 8`` times every variant at each batch size (images per prompt; the
transformer sees twice that with CFG) and ``--compile none regional full`` with and without
``torch.compile`` (``regional``: :func:`ecad_hub.compile_blocks`, the repeated blocks;
``full``: that plus the rest of the transformer), each compiled variant against the unpatched
transformer compiled the same way. ``--memory`` reports the peak memory of one loop per variant
(RSS sampled on CPU, ``torch.cuda.max_memory_allocated`` on CUDA) and the peak bytes the
schedule's cache holds.

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
from ecad_hub.compile import compile_transformer  # noqa: E402
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


class PeakRSS:
    """Peak resident set size during a ``with`` block, sampled every ``interval`` seconds (Linux)."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak_mb, self.start_mb = interval, 0.0, 0.0

    def __enter__(self):
        import threading

        self.start_mb = self.peak_mb = current_rss_mb()
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self.peak_mb = max(self.peak_mb, current_rss_mb())
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, current_rss_mb())


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
    ap.add_argument("--batch-size", type=int, nargs="+", default=[1],
                    help="images per prompt (one or more); the transformer sees 2x (CFG)")
    ap.add_argument("--compile", nargs="+", choices=["none", "regional", "full"], default=["none"],
                    help="torch.compile settings to time (each against the unpatched transformer compiled alike)")
    ap.add_argument("--compile-mode", default=None, help="torch.compile mode (e.g. max-autotune-no-cudagraphs)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per variant first (compiles)")
    ap.add_argument("--warmup-steps", type=int, default=None,
                    help="loop mode: denoising steps of each warm-up run (default: all; 1 compiles everything a "
                         "schedule needs, since step 0 computes every sub-module)")
    ap.add_argument("--memory", action="store_true", help="peak memory of one loop per variant (after the timed runs)")
    ap.add_argument("--mode", choices=["loop", "pipeline", "both"], default="both")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--memory-calls", type=int, default=10,
                    help="pipeline calls with the last schedule for the memory check (0: skip)")
    ap.add_argument("--no-all-compute", action="store_true",
                    help="do not time the all-compute schedule (its overhead is then not reported)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = _DTYPES[args.dtype or ("float16" if args.device.startswith("cuda") else "float32")]

    compile_opts = {"mode": args.compile_mode} if args.compile_mode else {}
    pipes = {}
    for c in args.compile:  # one pipeline per compile setting: same seed, same weights
        pipe, config = build(args.transformer_config, args.device, dtype, seed=0)
        if c != "none":
            compile_transformer(pipe.transformer, c, **compile_opts)
        pipes[c] = pipe
    profiles = {b: profile_macs(config, args.height, args.width, batch_size=2 * b) for b in args.batch_size}
    arch = profiles[args.batch_size[0]].architecture
    variants: list[tuple[str, CacheSchedule | None]] = [("unpatched", None)]
    if not args.no_all_compute:
        variants.append(("all-compute", CacheSchedule.all_compute(arch, args.steps)))
    for path in args.schedule:
        sch = load_any_schedule(path)
        variants.append((sch.name, sch))

    caption_channels = config.get("caption_channels", 4096)
    latent_h, latent_w = args.height // 8, args.width // 8
    inputs = {}
    for b in args.batch_size:
        gen = torch.Generator("cpu").manual_seed(0)
        prompt_embeds = torch.randn(b, 120, caption_channels, generator=gen).to(args.device, dtype)
        negative_embeds = torch.randn(b, 120, caption_channels, generator=gen).to(args.device, dtype)
        mask = torch.ones(b, 120, device=args.device)
        inputs[b] = dict(
            prompt_embeds=prompt_embeds, negative_embeds=negative_embeds, mask=mask,
            loop_latents=torch.randn(2 * b, 4, latent_h, latent_w, generator=gen).to(args.device, dtype),
            loop_embeds=torch.cat([negative_embeds, prompt_embeds]), loop_mask=torch.cat([mask, mask]))

    def run_loop(pipe, b, handle=None, track=None, max_steps=None) -> float:
        x = inputs[b]
        pipe.scheduler.set_timesteps(args.steps, device=args.device)
        latents = x["loop_latents"]
        sync(args.device)
        t0 = time.perf_counter()
        with torch.no_grad():
            for t in pipe.scheduler.timesteps[:max_steps]:
                pipe.transformer(latents, encoder_hidden_states=x["loop_embeds"], encoder_attention_mask=x["loop_mask"],
                                 timestep=t.expand(latents.shape[0]).to(dtype),
                                 added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)
                if track is not None:
                    track.append(handle.cached_bytes() if handle is not None else 0)
        sync(args.device)
        return time.perf_counter() - t0

    def run_pipeline(pipe, b, handle=None, track=None) -> float:
        x = inputs[b]
        sync(args.device)
        t0 = time.perf_counter()
        pipe(prompt=None, negative_prompt=None, prompt_embeds=x["prompt_embeds"], prompt_attention_mask=x["mask"],
             negative_prompt_embeds=x["negative_embeds"], negative_prompt_attention_mask=x["mask"],
             num_inference_steps=args.steps, height=args.height, width=args.width,
             guidance_scale=4.5, use_resolution_binning=False, output_type="pt",
             generator=torch.Generator("cpu").manual_seed(0))
        sync(args.device)
        return time.perf_counter() - t0

    modes = ["loop", "pipeline"] if args.mode == "both" else [args.mode]
    combos = [(c, b, name, schedule) for c in args.compile for b in args.batch_size for name, schedule in variants]
    times = {(c, b, name, mode): [] for c, b, name, _ in combos for mode in modes}

    def timed(c, b, name, schedule, mode, record: bool):
        pipe = pipes[c]
        # the loop calls the transformer directly (no scheduler.step): schedule the bare transformer,
        # whose step is counted by forwards; the pipeline mode schedules the pipeline
        target = pipe.transformer if mode == "loop" else pipe
        handle = apply_schedule(target, schedule) if schedule is not None else None
        try:
            t = (run_loop(pipe, b, max_steps=None if record else args.warmup_steps) if mode == "loop"
                 else run_pipeline(pipe, b))
            if record and handle is not None and mode == "loop":
                ran = int(sum(v.sum() for v in handle.computed_counts().values()))
                expected = int(sum((m & g.present()[None]).sum() for g, m in
                                   zip(schedule.architecture.groups, schedule.effective_masks().values())))
                assert ran == expected, f"{name}: {ran} sub-module forwards ran, the schedule asks for {expected}"
        finally:
            if handle is not None:
                handle.remove()
        if record:
            times[(c, b, name, mode)].append(t)
        return t

    def label(c, b, name):
        return f"compile={c:<8} batch={b:<2} {name:<28}"

    print(f"device={args.device} dtype={str(dtype).replace('torch.', '')} threads={torch.get_num_threads()} "
          f"steps={args.steps} images per prompt={args.batch_size} (transformer batch 2x) {args.height}x{args.width} "
          f"compile={args.compile} load={os.getloadavg()[0]:.2f}", flush=True)
    for _ in range(args.warmup):  # warm-up (compiles)
        for c, b, name, schedule in combos:
            for mode in modes:
                print(f"warm-up {label(c, b, name)} {mode}: {timed(c, b, name, schedule, mode, record=False):.2f}s", flush=True)
    for r in range(args.runs):  # interleaved round-robin
        for c, b, name, schedule in combos:
            for mode in modes:
                t = timed(c, b, name, schedule, mode, record=True)
                print(f"run {r + 1}/{args.runs} {label(c, b, name)} {mode:<8} {t:8.3f}s load={os.getloadavg()[0]:.2f}", flush=True)

    memory = []
    if args.memory:
        import gc

        for c, b, name, schedule in combos:
            if c != args.compile[0]:  # memory does not depend on the compile setting: measure it once
                continue
            pipe = pipes[c]
            gc.collect()
            handle = apply_schedule(pipe.transformer, schedule) if schedule is not None else None
            track: list[int] = []
            try:
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                    run_loop(pipe, b, handle, track)
                    peak = {"cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                            "cuda_peak_over_start_mb": round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)}
                else:
                    with PeakRSS() as rss:
                        run_loop(pipe, b, handle, track)
                    peak = {"rss_peak_mb": round(rss.peak_mb, 1), "rss_peak_over_start_mb": round(rss.peak_mb - rss.start_mb, 1)}
            finally:
                if handle is not None:
                    handle.remove()
            row = {"compile": c, "batch_size": b, "schedule": name, "cache_peak_mb": round(max(track or [0]) / 2**20, 2),
                   **peak}
            memory.append(row)
            print("memory " + " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if args.memory_calls:
        m = memory_check(pipes[args.compile[0]], variants[-1][1],
                         lambda: run_pipeline(pipes[args.compile[0]], args.batch_size[0]), args.memory_calls, args.device)
        memory.append({"calls": args.memory_calls, "schedule": variants[-1][0], **m})
        print(f"memory over {args.memory_calls} pipeline calls with {variants[-1][0]}: RSS MB after each call {m['rss_mb']}")

    rows = []
    for c, b, name, schedule in combos:
        mac = profiles[b].speedup(schedule) if schedule is not None else 1.0
        row = {"compile": c, "batch_size": b, "schedule": name, "mac_speedup": round(mac, 4)}
        for mode in modes:
            ts, base_ts = times[(c, b, name, mode)], times[(c, b, "unpatched", mode)]
            if not ts:
                continue
            med, base = statistics.median(ts), statistics.median(base_ts)
            row[f"{mode}_median_s"] = round(med, 4)
            row[f"{mode}_runs_s"] = [round(x, 4) for x in ts]
            row[f"{mode}_speedup"] = round(base / med, 4)
            row[f"{mode}_realized_over_mac"] = round(base / med / mac, 4)
            if "none" in args.compile and c != "none":
                eager = statistics.median(times[("none", b, name, mode)])
                row[f"{mode}_compile_gain"] = round(eager / med, 4)
        rows.append(row)

    if args.runs:
        header = f"{'compile':<9} {'batch':>5} {'schedule':<28} {'MAC x':>7}" + "".join(
            f" {m + ' med s':>14} {m + ' x':>10} {'real/MAC':>9}" for m in modes)
        print("\n" + header)
        for row in rows:
            line = f"{row['compile']:<9} {row['batch_size']:>5} {row['schedule']:<28} {row['mac_speedup']:>7.3f}"
            for m in modes:
                line += f" {row[m + '_median_s']:>14.3f} {row[m + '_speedup']:>10.3f} {row[m + '_realized_over_mac']:>9.3f}"
            print(line)
        for c in args.compile:
            for b in args.batch_size:
                for m in modes if not args.no_all_compute else []:
                    over = statistics.median(times[(c, b, "all-compute", m)])
                    base = statistics.median(times[(c, b, "unpatched", m)])
                    print(f"all-compute overhead (compile={c}, batch={b}, {m}): {100 * (over / base - 1):+.2f}%")

    if args.json:
        result = {
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                        "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "load_avg_end": os.getloadavg(),
                        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name()},
            "settings": {k: v for k, v in vars(args).items() if k != "json"} | {"dtype": str(dtype)},
            "results": rows, "memory": memory,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
