#!/usr/bin/env python
"""Train the embedded digit text-to-image pipeline and its reward model (CPU, fixed seeds).

Reproduces ``ecad_hub/embedded/weights/`` (the offline default model of ecad-hub):

    python scripts/train_embedded.py                      # full run, ~45 min on 2 CPU cores
    python scripts/train_embedded.py --quick              # ~1 min smoke test into a temp folder
    python scripts/train_embedded.py --stages eval        # evaluate the committed weights only

Stages (in order; ``--stages`` picks a subset):

``reward``     the attribute-classifier CNN (reward model), on real synthetic images.
``vae``        an ``AutoencoderKL`` 32x32x3 -> 16x16x4.
``diffusion``  ``PixArtTransformer2DModel`` + ``T5EncoderModel`` trained jointly (v-prediction,
               loss weight flat at high noise and min-SNR-like at low noise, caption dropout for
               classifier-free guidance, EMA) on the 5 most typical handwritings per digit, then
               the whole ``PixArtAlphaPipeline`` is saved with ``save_pretrained``.
``eval``       reward accuracy on held-out real images, prompt following of the pipeline
               (all-compute, 20 steps) on held-out prompt/seed pairs, and the same with the
               FORA-style recompute-every-3 schedule (the reward it costs).

Prints the wall time of each stage and the evaluation; writes ``training.json`` with both.
"""

from __future__ import annotations

import os

# Other processes share the 2 cores: OpenMP threads that spin while waiting burn the CPU time
# the other thread needs (measured 5x slower steps under load). Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ecad_hub import embedded as E  # noqa: E402
from ecad_hub.embedded import data as D  # noqa: E402
from ecad_hub.embedded.reward import AttributeClassifier, attribute_accuracy  # noqa: E402

STAGES = ("reward", "vae", "diffusion", "eval")

# ----------------------------------------------------------------------------- configuration

FULL = dict(
    seed=0,
    # reward CNN
    reward_images=60_000,
    reward_steps=800,
    reward_batch=128,
    reward_lr=2e-3,
    # VAE
    vae_images=30_000,
    vae_steps=800,
    vae_batch=64,
    vae_lr=2e-3,
    vae_kl=1e-4,
    # diffusion
    diff_images=20_000,
    diff_exemplars=5,
    diff_steps=1_400,
    diff_batch=64,
    diff_lr=1e-3,
    diff_warmup=100,
    diff_ema=0.998,
    cond_drop=0.1,
    min_snr_gamma=5.0,
    # evaluation
    eval_pairs=400,
    eval_real=5_000,
)
QUICK = dict(
    FULL,
    reward_images=2_000,
    reward_steps=30,
    vae_images=1_000,
    vae_steps=15,
    diff_images=1_000,
    diff_steps=20,
    diff_batch=32,
    diff_warmup=5,
    eval_pairs=8,
    eval_real=500,
)

#: The transformer: 64 image tokens (16x16x4 latent, patch 2), 8 blocks, width 128 (4 heads x 32).
TRANSFORMER_CONFIG = dict(
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=4,
    out_channels=4,  # no learned sigma
    num_layers=8,
    cross_attention_dim=128,
    sample_size=16,
    patch_size=2,
    caption_channels=128,  # = T5 d_model
    norm_num_groups=32,
    activation_fn="gelu-approximate",
    num_embeds_ada_norm=1000,
    norm_type="ada_norm_single",
    norm_elementwise_affine=False,
    norm_eps=1e-6,
    attention_bias=True,
    interpolation_scale=1,
    use_additional_conditions=False,
)
T5_CONFIG = dict(
    d_model=128,
    d_kv=32,
    d_ff=256,
    num_layers=2,
    num_heads=4,
    relative_attention_num_buckets=16,
    relative_attention_max_distance=32,
    dropout_rate=0.0,
    feed_forward_proj="gated-gelu",
    is_encoder_decoder=False,
    use_cache=False,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=(16, 32),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=32,
    mid_block_add_attention=False,
)
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.0001,
    beta_end=0.02,
    beta_schedule="linear",
    prediction_type="v_prediction",
    solver_order=2,
    algorithm_type="dpmsolver++",
    lower_order_final=True,
    timestep_spacing="linspace",
)


def log(msg: str) -> None:
    print(msg, flush=True)


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Reward-model augmentation: random blur and pixel noise, so it also judges imperfect samples."""
    n = len(x)
    blur = torch.rand(n, generator=g) < 0.2
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16
        xb = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), k.expand(3, 1, 3, 3), groups=3)
        x = x.clone()
        x[blur] = xb
    x = x * (1 + 0.2 * (torch.rand(n, 3, 1, 1, generator=g) - 0.5))  # +-10% per channel
    sigma = torch.rand(n, 1, 1, 1, generator=g) * 0.04
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


# ----------------------------------------------------------------------------- reward


def train_reward(cfg: dict, out: Path) -> dict:
    set_seed(cfg["seed"] + 1)
    images, labels, _ = D.make_dataset(cfg["reward_images"], seed=cfg["seed"] + 1, split="train", combos="any")
    x_all = torch.from_numpy(images)
    y_all = {k: torch.from_numpy(v) for k, v in labels.items()}
    model = AttributeClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["reward_lr"], weight_decay=1e-4)
    g = torch.Generator().manual_seed(cfg["seed"] + 2)
    n, bs, steps = len(x_all), cfg["reward_batch"], cfg["reward_steps"]
    model.train()
    t0 = time.time()
    for step in range(steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, cfg["reward_lr"], warmup=50, floor=0.02)
        idx = torch.randint(0, n, (bs,), generator=g)
        logits = model(augment(x_all[idx], g))
        loss = sum(F.cross_entropy(logits[k], y_all[k][idx]) for k in logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == steps - 1:
            log(f"  reward step {step:5d}/{steps}  loss {loss.item():.4f}  ({time.time() - t0:.0f}s)")
    model.eval()
    model.save(out / "reward")
    return {"steps": steps}


def eval_reward(cfg: dict, out: Path) -> dict:
    model = AttributeClassifier.load(out / "reward")
    images, labels, _ = D.make_dataset(cfg["eval_real"], seed=cfg["seed"] + 1000, split="test", combos="any")
    acc = attribute_accuracy(model, torch.from_numpy(images), labels)
    log("  reward accuracy on held-out real images (held-out digit sources): "
        + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()))
    return acc


# ----------------------------------------------------------------------------- VAE


def train_vae(cfg: dict, out: Path) -> dict:
    from diffusers import AutoencoderKL

    set_seed(cfg["seed"] + 10)
    vae = AutoencoderKL(**VAE_CONFIG)
    images, _, _ = D.make_dataset(cfg["vae_images"], seed=cfg["seed"] + 10, split="train", combos="any")
    x_all = torch.from_numpy(images) * 2 - 1
    vae = vae.to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg["vae_lr"], weight_decay=0.0)
    g = torch.Generator().manual_seed(cfg["seed"] + 11)
    steps, bs = cfg["vae_steps"], cfg["vae_batch"]
    t0 = time.time()
    for step in range(steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, cfg["vae_lr"], warmup=30, floor=0.05)
        x = x_all[torch.randint(0, len(x_all), (bs,), generator=g)].contiguous(memory_format=torch.channels_last)
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        err = rec - x
        # the digit covers ~10% of the image: weight it (and its border) 5x over the flat background
        fg = ((x - x[:, :, :1, :1]).abs().amax(1, keepdim=True) > 0.1).float()
        w = 1 + 4 * F.max_pool2d(fg, 3, 1, 1)
        rec_loss = (w * (err.abs() + err.square())).mean() / w.mean()
        kl = 0.5 * (post.mean.square() + post.var - 1 - post.logvar).mean()
        loss = rec_loss + cfg["vae_kl"] * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"  vae step {step:5d}/{steps}  rec {rec_loss.item():.4f}  kl {kl.item():.3f}  ({time.time() - t0:.0f}s)")
    vae = vae.to(memory_format=torch.contiguous_format).eval()
    # latent normalisation: scaling_factor = 1 / std of the latents
    with torch.no_grad():
        sample = x_all[: min(4096, len(x_all))]
        lat = torch.cat([vae.encode(sample[i : i + 512]).latent_dist.mean for i in range(0, len(sample), 512)])
    std = float(lat.std())
    vae.register_to_config(scaling_factor=round(1.0 / std, 5))
    log(f"  latent mean {float(lat.mean()):.3f} std {std:.3f} -> scaling_factor {vae.config.scaling_factor}")
    (out / "_stage").mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(out / "_stage" / "vae", safe_serialization=True)
    # reconstruction check with the reward model (if trained already)
    info = {"steps": steps, "scaling_factor": vae.config.scaling_factor}
    if (out / "reward" / "model.safetensors").exists():
        timg, tlab, _ = D.make_dataset(1000, seed=cfg["seed"] + 1001, split="test", combos="any")
        with torch.no_grad():
            xt = torch.from_numpy(timg) * 2 - 1
            recon = torch.cat([vae.decode(vae.encode(xt[i : i + 250]).latent_dist.mean).sample for i in range(0, 1000, 250)])
        recon = ((recon + 1) / 2).clamp(0, 1)
        acc = attribute_accuracy(AttributeClassifier.load(out / "reward"), recon, tlab)
        mse = float(((recon - torch.from_numpy(timg)) ** 2).mean())
        log("  reward accuracy on VAE reconstructions: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items())
            + f"; recon mse {mse:.5f}")
        info.update(recon_accuracy=acc, recon_mse=mse)
    return info


# ----------------------------------------------------------------------------- diffusion


def build_text_encoder(vocab_size: int):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=vocab_size, **T5_CONFIG))


def init_transformer(model) -> None:
    """DiT/PixArt-style init: xavier linears, zero output projection and cross-attention outputs."""
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(mod.weight)
            if mod.bias is not None:
                torch.nn.init.zeros_(mod.bias)
    for block in model.transformer_blocks:
        torch.nn.init.zeros_(block.attn2.to_out[0].weight)
    torch.nn.init.normal_(model.adaln_single.emb.timestep_embedder.linear_1.weight, std=0.02)
    torch.nn.init.normal_(model.adaln_single.emb.timestep_embedder.linear_2.weight, std=0.02)
    torch.nn.init.zeros_(model.proj_out.weight)
    torch.nn.init.zeros_(model.proj_out.bias)


class EMA:
    def __init__(self, modules, decay: float):
        self.decay = decay
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - d)

    @torch.no_grad()
    def copy_to(self) -> None:
        for s, p in zip(self.shadow, self.params):
            p.copy_(s)


def make_pipeline(transformer, vae, text_encoder, tokenizer):
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline

    return PixArtAlphaPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=DPMSolverMultistepScheduler(**SCHEDULER_CONFIG),
    )


def save_pipeline(pipe, path: Path) -> None:
    """save_pretrained with safetensors; the transformer is stored in float16 (loads as float32)."""
    import copy

    if path.exists():
        shutil.rmtree(path)
    tr32 = pipe.transformer
    pipe.transformer = copy.deepcopy(tr32).to(torch.float16)
    try:
        pipe.save_pretrained(path, safe_serialization=True)
    finally:
        pipe.transformer = tr32


def train_diffusion(cfg: dict, out: Path, eval_every: int = 0) -> dict:
    from diffusers import AutoencoderKL, DDPMScheduler, PixArtTransformer2DModel

    set_seed(cfg["seed"] + 20)
    tokenizer = D.build_tokenizer()
    vae_dir = out / "_stage" / "vae"
    vae = AutoencoderKL.from_pretrained(vae_dir if vae_dir.exists() else out / "pipeline" / "vae").eval()
    text_encoder = build_text_encoder(len(tokenizer))
    transformer = PixArtTransformer2DModel(**TRANSFORMER_CONFIG)
    init_transformer(transformer)
    n_params = sum(p.numel() for p in transformer.parameters())
    log(f"  transformer {n_params / 1e6:.2f}M params, text encoder "
        f"{sum(p.numel() for p in text_encoder.parameters()) / 1e6:.2f}M params")

    # data: images -> VAE posterior (mean, std), captions -> token ids
    t0 = time.time()
    # exact placements (no +-1 px jitter): 10 fixed digit boxes, all at the same 2 px phase of the
    # 4 px token grid, so the transformer learns each digit shape per box, not per sub-token offset
    images, _, captions = D.make_dataset(
        cfg["diff_images"], seed=cfg["seed"] + 20, split="train", combos="train", jitter=False,
        exemplars=cfg["diff_exemplars"] or None,
    )
    x_all = torch.from_numpy(images) * 2 - 1
    del images
    mus, stds = [], []
    with torch.no_grad():
        for i in range(0, len(x_all), 500):
            post = vae.encode(x_all[i : i + 500]).latent_dist
            mus.append(post.mean)
            stds.append(post.std)
    mu, sd = torch.cat(mus), torch.cat(stds)
    del x_all, mus, stds
    scale = vae.config.scaling_factor
    tok = tokenizer(captions, padding="max_length", max_length=E.MAX_SEQUENCE_LENGTH, truncation=True, return_tensors="pt")
    ids, mask = tok.input_ids, tok.attention_mask
    empty = tokenizer([""], padding="max_length", max_length=E.MAX_SEQUENCE_LENGTH, return_tensors="pt")
    log(f"  encoded {len(mu)} training images to latents {tuple(mu.shape[1:])} ({time.time() - t0:.0f}s)")

    sched = DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear", prediction_type="v_prediction"
    )
    ab = sched.alphas_cumprod.float()
    snr = ab / (1 - ab)
    # Loss weight of the v-prediction MSE: 1 at high noise, (gamma + 1) / (snr + 1) once snr > gamma.
    # (Plain min-SNR-gamma for v, min(snr, gamma) / (snr + 1), weights t near 1000 by ~snr -> 0: the
    # steps that decide *which digit* is drawn get no signal, and digit accuracy stalls near chance.)
    weight = (torch.clamp(snr, max=cfg["min_snr_gamma"]) + 1) / (snr + 1)
    # importance sampling of t: half uniform, half proportional to the weight (flat where snr < gamma,
    # i.e. t above ~100); the loss is reweighted by weight / (1000 q(t)), so the objective is unchanged
    # (E_uniform[weight * mse]) but fewer samples are spent at the low-noise end where weight ~ 0.
    q_t = 0.5 / 1000 + 0.5 * weight / weight.sum()
    loss_w = weight / (1000 * q_t)

    params = list(transformer.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["diff_lr"], betas=(0.9, 0.99), weight_decay=0.0)
    ema = EMA([transformer, text_encoder], cfg["diff_ema"])
    g = torch.Generator().manual_seed(cfg["seed"] + 21)
    steps, bs = cfg["diff_steps"], cfg["diff_batch"]
    transformer.train()
    text_encoder.train()
    t0 = time.time()
    history = []
    for step in range(steps):
        lr = lr_at(step, steps, cfg["diff_lr"], cfg["diff_warmup"])
        for pg in opt.param_groups:
            pg["lr"] = lr
        idx = torch.randint(0, len(mu), (bs,), generator=g)
        z0 = (mu[idx] + sd[idx] * torch.randn(mu[idx].shape, generator=g)) * scale
        b_ids, b_mask = ids[idx].clone(), mask[idx].clone()
        drop = torch.rand(bs, generator=g) < cfg["cond_drop"]
        b_ids[drop] = empty.input_ids[0]
        b_mask[drop] = empty.attention_mask[0]
        t = torch.multinomial(q_t, bs, replacement=True, generator=g)
        noise = torch.randn(z0.shape, generator=g)
        a = ab[t].sqrt().view(-1, 1, 1, 1)
        s = (1 - ab[t]).sqrt().view(-1, 1, 1, 1)
        zt = a * z0 + s * noise
        target = a * noise - s * z0
        enc = text_encoder(b_ids, attention_mask=b_mask).last_hidden_state
        pred = transformer(
            zt, encoder_hidden_states=enc, encoder_attention_mask=b_mask, timestep=t,
            added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False,
        )[0]
        loss = ((pred - target).square().mean(dim=(1, 2, 3)) * loss_w[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        if step % 100 == 0 or step == steps - 1:
            el = time.time() - t0
            log(f"  diffusion step {step:5d}/{steps}  loss {loss.item():.4f}  lr {lr:.2e}  "
                f"({el:.0f}s, {el / (step + 1):.2f}s/step)")
            history.append((step, round(loss.item(), 5)))
        if eval_every and step > 0 and step % eval_every == 0:
            _peek(transformer, text_encoder, vae, tokenizer, ema, out, n=100)

    # EMA weights -> save the pipeline
    ema.copy_to()
    transformer.eval()
    text_encoder.eval()
    pipe = make_pipeline(transformer, vae, text_encoder, tokenizer)
    save_pipeline(pipe, out / "pipeline")
    return {"steps": steps, "transformer_params": n_params, "loss_history": history}


def _peek(transformer, text_encoder, vae, tokenizer, ema, out: Path, n: int) -> None:
    """Evaluate the EMA weights mid-training (development aid; restores the training weights)."""
    import copy

    live = [p.detach().clone() for p in ema.params]
    ema.copy_to()
    try:
        pipe = make_pipeline(copy.deepcopy(transformer).eval(), vae, copy.deepcopy(text_encoder).eval(), tokenizer)
        pipe.set_progress_bar_config(disable=True)
        reward = E.load_reward(path=out / "reward")
        for gs in (3.0, 4.5):
            res = E.evaluate_pipeline(pipe, reward, n=n, seed=99, guidance_scale=gs)
            log(f"    [peek gs={gs}] " + _fmt_eval(res))
    finally:
        with torch.no_grad():
            for p, v in zip(ema.params, live):
                p.copy_(v)


def _fmt_eval(res: dict) -> str:
    acc = res["accuracy"]
    return (", ".join(f"{k} {v:.3f}" for k, v in acc.items())
            + f"; mean reward {res['mean_reward']:.4f} ({res['seconds']:.0f}s)")


def eval_pipeline(cfg: dict, out: Path) -> dict:
    pipe = E.load_pipeline(path=out / "pipeline")
    reward = E.load_reward(path=out / "reward")
    res = E.evaluate_pipeline(pipe, reward, n=cfg["eval_pairs"], seed=0)
    log(f"  held-out prompt/seed pairs (n={res['n']}, 20 steps, all-compute, guidance "
        f"{res['call_kwargs']['guidance_scale']}): " + _fmt_eval(res))
    for part in ("heldout_combos", "seen_combos"):
        log(f"    {part}: " + ", ".join(f"{k} {v:.3f}" for k, v in res[part].items()))
    out_doc = {k: v for k, v in res.items() if k not in ("scores",)}
    # caching matters: the FORA-style schedule (recompute everything every 3rd step, reuse in between)
    from ecad_hub import apply_schedule
    from ecad_hub.adapters import architecture_of
    from ecad_hub.search.genome import Genome
    from ecad_hub.search.seeding import heuristic_schedules

    genome = Genome(architecture_of(pipe.transformer), res["call_kwargs"]["num_inference_steps"])
    fora = dict(heuristic_schedules(genome))["fora-3"]
    schedule = genome.schedule(fora, name="fora-3")
    cached = E.evaluate_pipeline(pipe, reward, n=cfg["eval_pairs"], seed=0,
                                 schedule_context=lambda p: apply_schedule(p, schedule))
    diff = cached["scores"] - res["scores"]
    sem = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    log(f"  FORA every-3 (fraction computed {schedule.fraction_computed():.3f}): " + _fmt_eval(cached))
    log(f"    mean reward change vs all-compute: {float(diff.mean()):+.4f} +- {sem:.4f} (paired, same prompts/seeds)")
    out_doc["fora_3"] = {
        "fraction_computed": schedule.fraction_computed(),
        "accuracy": cached["accuracy"],
        "mean_reward": cached["mean_reward"],
        "mean_reward_change": float(diff.mean()),
        "mean_reward_change_sem": sem,
    }
    return out_doc



# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None,
                    help="weights folder (default: the package's ecad_hub/embedded/weights; with --quick a temp folder)")
    ap.add_argument("--quick", action="store_true", help="tiny run (~1 min) for smoke tests")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    ap.add_argument("--diff-steps", type=int, default=None, help="override the number of diffusion steps")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="development: override a training setting (see FULL), e.g. --set diff_lr=1e-3")
    ap.add_argument("--eval-every", type=int, default=0, help="development: peek at prompt following every N steps")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        ap.error(f"unknown stage(s) {bad}; choose from {STAGES}")
    cfg = dict(QUICK if args.quick else FULL)
    if args.diff_steps:
        cfg["diff_steps"] = args.diff_steps
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in cfg:
            ap.error(f"--set: unknown setting {key!r}")
        cfg[key] = type(cfg[key])(float(value)) if isinstance(cfg[key], (int, float)) else value
    out = args.out or (Path(tempfile.gettempdir()) / "ecad_embedded_quick" if args.quick else E.WEIGHTS_PATH)
    out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    log(f"train_embedded: stages {stages} -> {out} (torch {torch.__version__}, {args.threads} threads)")

    report_path = out / "training.json"
    report = json.loads(report_path.read_text()) if report_path.exists() and not args.quick else {}
    report["config"] = cfg
    report.setdefault("seconds", {})
    t_all = time.time()
    for stage in STAGES:
        if stage not in stages:
            continue
        log(f"[{stage}]")
        t0, c0 = time.time(), time.process_time()
        if stage == "reward":
            report["reward"] = train_reward(cfg, out)
        elif stage == "vae":
            report["vae"] = train_vae(cfg, out)
        elif stage == "diffusion":
            report["diffusion"] = train_diffusion(cfg, out, eval_every=args.eval_every)
        elif stage == "eval":
            report["eval"] = {"reward_heldout_real": eval_reward(cfg, out), "pipeline": eval_pipeline(cfg, out)}
        dt, dc = time.time() - t0, time.process_time() - c0
        report["seconds"][stage] = round(dt, 1)
        report.setdefault("cpu_seconds", {})[stage] = round(dc, 1)
        log(f"[{stage}] done in {dt / 60:.1f} min wall ({dc / 60:.1f} CPU-min over {args.threads} threads)")
        report_path.write_text(json.dumps(report, indent=2) + "\n")  # after every stage: stages can be rerun alone
    if set(stages) >= {"reward", "vae", "diffusion"}:
        report["seconds"]["total_training"] = round(sum(report["seconds"][s] for s in ("reward", "vae", "diffusion")), 1)
    report["seconds"]["this_run"] = round(time.time() - t_all, 1)
    report["torch"] = torch.__version__
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    # the VAE is part of the saved pipeline; the staging copy is not shipped
    if "diffusion" in stages and (out / "pipeline").exists():
        shutil.rmtree(out / "_stage", ignore_errors=True)
    log("wall time per stage (s): " + json.dumps(report["seconds"]))
    log("CPU time per stage (s): " + json.dumps(report.get("cpu_seconds", {})))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
