"""Image families b (SANA, Hunyuan-DiT, CogView4, Lumina2, AuraFlow, HunyuanImage, DiT): what the
conformance suite cannot cover.

* Tiny pipelines (DiT, AuraFlow, Lumina-Image 2.0, SANA): a random schedule applied to the pipeline gives
  what an independent reference gives (forward hooks substituting the last computed output, a step
  per ``scheduler.step``, one cache per transformer forward of a step), and differs from all-compute;
  the all-compute schedule is bit-identical to the plain pipeline; the adapter's ``encode_prompts`` +
  ``call_kwargs`` drive the pipeline as ``ecad_hub.search.evaluate`` does, giving the prompt-string images.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import numpy as np
import pytest
import torch

from ecad_hub import CacheSchedule, apply_schedule
from ecad_hub.adapters import adapter_for

from semantics import STEPS, _random_schedule
from tiny_models import (T5_D_MODEL, TINY_IMAGE_SIZE, TINY_PROMPTS, _init, single_threaded, tiny_scheduler,
                         tiny_t5_tokenizer, tiny_vae)

PIPE_STEPS = STEPS  # the random schedules of the conformance suite have STEPS steps


# --------------------------------------------------------------------------------------------
# An independent reference of the semantics inside a pipeline
# --------------------------------------------------------------------------------------------

class PipelineReference:
    """Every sub-module runs; a forward hook replaces its output with the one it produced at the last
    step where the mask computed it. Steps are counted at ``scheduler.step``; the k-th transformer
    forward of a step (CFG as two forwards) keeps its own outputs, per call of a sub-module in a block."""

    def __init__(self, pipe, schedule: CacheSchedule):
        self.step, self.slot, self.forwards = 0, 0, 0
        self.cache: dict = {}
        self.calls: dict = defaultdict(int)
        self.handles = []
        self.scheduler = pipe.scheduler
        original = self.scheduler.step

        @functools.wraps(original)
        def step(*args, **kwargs):
            self.step = min(self.step + 1, schedule.num_inference_steps - 1)
            self.forwards = 0
            return original(*args, **kwargs)

        self.scheduler.step = step
        transformer = pipe.transformer
        self.handles.append(transformer.register_forward_pre_hook(self._start))
        effective = schedule.effective_masks()
        for gi, g in enumerate(schedule.architecture.groups):
            present = g.present()
            for bi, block in enumerate(transformer.get_submodule(g.name)):
                comps = [(ci, c) for ci, c in enumerate(g.components) if present[bi, ci]]
                self.handles.append(block.register_forward_pre_hook(self._reset(gi, bi, comps)))
                for ci, comp in comps:
                    hook = self._hook(gi, bi, ci, effective[g.name])
                    self.handles.append(block.get_submodule(comp).register_forward_hook(hook))

    def _start(self, module, args):
        self.slot, self.forwards = self.forwards, self.forwards + 1

    def _reset(self, gi, bi, comps):
        def pre(module, args):
            for ci, _ in comps:
                self.calls[(gi, bi, ci)] = 0
        return pre

    def _hook(self, gi, bi, ci, mask):
        def hook(module, args, output):
            k = self.calls[(gi, bi, ci)]
            self.calls[(gi, bi, ci)] += 1
            key = (self.slot, gi, bi, ci, k)
            if mask[self.step, bi, ci] or key not in self.cache:
                self.cache[key] = output
                return output
            return self.cache[key]
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()
        del self.scheduler.step


def _images(pipe, **kwargs):
    with torch.no_grad():
        return pipe(**kwargs).images


def _as_tensor(images):
    return images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))


def _check_pipeline(pipe, call: dict, atol: float = 1e-5):
    """All-compute = plain, bit for bit; a random schedule = the reference, and differs from all-compute."""
    arch = adapter_for(pipe.transformer).architecture(dict(pipe.transformer.config))
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with single_threaded():
        plain = _as_tensor(_images(pipe, generator=gen(), **call))
        with apply_schedule(pipe, CacheSchedule.all_compute(arch, PIPE_STEPS)):
            same = _as_tensor(_images(pipe, generator=gen(), **call))
        schedule = _random_schedule(arch, 5)  # STEPS (= PIPE_STEPS) steps
        ref = PipelineReference(pipe, schedule)
        try:
            expected = _as_tensor(_images(pipe, generator=gen(), **call))
        finally:
            ref.remove()
        with apply_schedule(pipe, schedule):
            got = _as_tensor(_images(pipe, generator=gen(), **call))
        after = _as_tensor(_images(pipe, generator=gen(), **call))
    assert torch.equal(plain, same)
    assert torch.equal(plain, after)
    assert torch.allclose(got, expected, atol=atol, rtol=1e-4), float((got - expected).abs().max())
    assert not torch.equal(got, plain), "the random schedule changed nothing"


def _settings(**overrides) -> dict:
    s = dict(height=TINY_IMAGE_SIZE, width=TINY_IMAGE_SIZE, num_inference_steps=PIPE_STEPS, guidance_scale=4.0,
             max_sequence_length=16)
    s.update(overrides)
    return s


def _evaluator_call(pipe, prompts, settings, *, rows):
    """The call ``ecad_hub.search.evaluate.Evaluator`` makes: adapter embeddings (rows selected) + call kwargs."""
    adapter = adapter_for(pipe.transformer)
    with torch.no_grad():
        embeds = adapter.encode_prompts(pipe, prompts, guidance_scale=settings["guidance_scale"],
                                        max_sequence_length=settings["max_sequence_length"], device="cpu")
    idx = torch.tensor(rows)
    kw = {k: v.index_select(0, idx) for k, v in embeds.items() if v is not None}
    kw.update(height=settings["height"], width=settings["width"], num_inference_steps=settings["num_inference_steps"],
              guidance_scale=settings["guidance_scale"], output_type="pt")
    kw.update(adapter.call_kwargs(settings, prompt_embeds=True))
    return kw


# --------------------------------------------------------------------------------------------
# DiT (class-conditional)
# --------------------------------------------------------------------------------------------

DIT_LABELS = {0: "tench, Tinca tinca", 1: "goldfish, Carassius auratus", 2: "great white shark"}


def tiny_dit_pipeline(seed: int = 0):
    from diffusers import DiTPipeline, DiTTransformer2DModel

    from families.dit import tiny_dit_config

    cfg = {k: v for k, v in tiny_dit_config().items() if not k.startswith("_")}
    return DiTPipeline(transformer=_init(DiTTransformer2DModel, seed, **cfg), vae=tiny_vae("pixart", seed),
                       scheduler=tiny_scheduler("pixart"), id2label=DIT_LABELS)


def test_dit_pipeline_schedule_and_reference():
    pipe = tiny_dit_pipeline()
    _check_pipeline(pipe, dict(class_labels=[1, 2], guidance_scale=4.0, num_inference_steps=PIPE_STEPS,
                               output_type="np"))


def test_dit_encode_prompts_are_class_ids():
    pipe = tiny_dit_pipeline()
    adapter = adapter_for(pipe.transformer)
    out = adapter.encode_prompts(pipe, ["goldfish", "tench"], guidance_scale=4.0, max_sequence_length=0, device="cpu")
    assert out["class_labels"].tolist() == [1, 0]
    with single_threaded():
        by_ids = _images(pipe, class_labels=out["class_labels"].tolist(), num_inference_steps=2,
                         generator=torch.Generator().manual_seed(0), output_type="np")
        by_tensor = _images(pipe, class_labels=out["class_labels"], num_inference_steps=2,
                            generator=torch.Generator().manual_seed(0), output_type="np")
    assert np.array_equal(by_ids, by_tensor)
    assert adapter.text_len(120) == 0 and adapter.call_kwargs(_settings(), prompt_embeds=True) == {}


# --------------------------------------------------------------------------------------------
# AuraFlow (UMT5 text encoder, SDXL-style VAE)
# --------------------------------------------------------------------------------------------

def tiny_umt5_encoder(vocab_size: int, seed: int = 0):
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(vocab_size=vocab_size, d_model=T5_D_MODEL, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                        relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0,
                        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
                        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return _init(UMT5EncoderModel, seed + 2, config)


def tiny_auraflow_pipeline(seed: int = 0):
    from diffusers import AuraFlowPipeline, AuraFlowTransformer2DModel, FlowMatchEulerDiscreteScheduler

    from families.auraflow import tiny_auraflow_config

    cfg = {k: v for k, v in tiny_auraflow_config(joint_attention_dim=T5_D_MODEL).items() if not k.startswith("_")}
    tokenizer = tiny_t5_tokenizer()
    return AuraFlowPipeline(tokenizer=tokenizer, text_encoder=tiny_umt5_encoder(len(tokenizer), seed),
                            vae=tiny_vae("pixart", seed), transformer=_init(AuraFlowTransformer2DModel, seed, **cfg),
                            scheduler=FlowMatchEulerDiscreteScheduler(shift=1.73))


def test_auraflow_pipeline_schedule_and_reference():
    pipe = tiny_auraflow_pipeline()
    _check_pipeline(pipe, dict(prompt=TINY_PROMPTS[:2], height=TINY_IMAGE_SIZE, width=TINY_IMAGE_SIZE,
                               num_inference_steps=PIPE_STEPS, guidance_scale=3.5, max_sequence_length=16,
                               output_type="pt"))


@pytest.mark.parametrize("guidance_scale", [3.5, 1.0])
def test_auraflow_encode_prompts_drive_the_pipeline(guidance_scale):
    pipe = tiny_auraflow_pipeline()
    settings = _settings(guidance_scale=guidance_scale)
    prompts = TINY_PROMPTS[:3]
    with single_threaded():
        kw = _evaluator_call(pipe, prompts, settings, rows=[2, 0])
        got = _images(pipe, generator=torch.Generator().manual_seed(0), **kw)
        direct = _images(pipe, prompt=[prompts[2], prompts[0]], generator=torch.Generator().manual_seed(0),
                         height=TINY_IMAGE_SIZE, width=TINY_IMAGE_SIZE, num_inference_steps=PIPE_STEPS,
                         guidance_scale=guidance_scale, max_sequence_length=16, output_type="pt")
    assert torch.allclose(got, direct, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Lumina-Image 2.0 (Gemma-2 text encoder, FLUX-style VAE; CFG as two forwards, CFG truncation)
# --------------------------------------------------------------------------------------------

#: Gemma tokens: the pipeline prepends its system prompt, which the tiny tokenizer spells in characters
LUMINA2_TOKENS = 256


def tiny_gemma2_encoder(vocab_size: int, seed: int = 0):
    from transformers import Gemma2Config, Gemma2Model

    config = Gemma2Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
                          sliding_window=64, pad_token_id=0, eos_token_id=1, bos_token_id=2,
                          attention_dropout=0.0)
    return _init(Gemma2Model, seed + 2, config)


def tiny_lumina2_pipeline(seed: int = 0):
    from diffusers import FlowMatchEulerDiscreteScheduler, Lumina2Pipeline, Lumina2Transformer2DModel

    from families.lumina2 import tiny_lumina2_config

    cfg = {k: v for k, v in tiny_lumina2_config(in_channels=16, cap_feat_dim=32, axes_lens=(LUMINA2_TOKENS + 1, 32, 32)).items() if not k.startswith("_")}
    tokenizer = tiny_t5_tokenizer()
    return Lumina2Pipeline(transformer=_init(Lumina2Transformer2DModel, seed, **cfg),
                           scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_vae("flux", seed),
                           text_encoder=tiny_gemma2_encoder(len(tokenizer), seed), tokenizer=tokenizer)


@pytest.mark.parametrize("cfg_trunc_ratio", [1.0, 0.5])
def test_lumina2_pipeline_schedule_and_reference(cfg_trunc_ratio):
    """Two transformer forwards per step (cond, uncond), the uncond one dropped after half the steps."""
    pipe = tiny_lumina2_pipeline()
    _check_pipeline(pipe, dict(prompt=TINY_PROMPTS[:2], height=TINY_IMAGE_SIZE, width=TINY_IMAGE_SIZE,
                               num_inference_steps=PIPE_STEPS, guidance_scale=4.0, max_sequence_length=LUMINA2_TOKENS,
                               cfg_trunc_ratio=cfg_trunc_ratio, output_type="pt"))


def test_lumina2_encode_prompts_drive_the_pipeline():
    pipe = tiny_lumina2_pipeline()
    settings = _settings(max_sequence_length=LUMINA2_TOKENS)
    prompts = TINY_PROMPTS[:3]
    with single_threaded():
        kw = _evaluator_call(pipe, prompts, settings, rows=[1, 1])
        got = _images(pipe, generator=torch.Generator().manual_seed(0), **kw)
        direct = _images(pipe, prompt=[prompts[1], prompts[1]], generator=torch.Generator().manual_seed(0),
                         height=TINY_IMAGE_SIZE, width=TINY_IMAGE_SIZE, num_inference_steps=PIPE_STEPS,
                         guidance_scale=4.0, max_sequence_length=LUMINA2_TOKENS, output_type="pt")
    assert torch.allclose(got, direct, atol=1e-6)


# --------------------------------------------------------------------------------------------
# SANA (Gemma-2 text encoder with the complex human instruction, DC-AE)
# --------------------------------------------------------------------------------------------

#: SanaPipeline wants sizes divisible by 32; the tiny DC-AE compresses 2x, so 32 px = 16 x 16 latents
SANA_SIZE = 32


def tiny_sana_pipeline(seed: int = 0):
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel

    from families.sana import tiny_sana_config

    vae = _init(AutoencoderDC, seed + 1, in_channels=3, latent_channels=4, attention_head_dim=2,
                encoder_block_types=("ResBlock", "EfficientViTBlock"), decoder_block_types=("ResBlock", "EfficientViTBlock"),
                encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                encoder_qkv_multiscales=((), (5,)), decoder_qkv_multiscales=((), (5,)),
                encoder_layers_per_block=(1, 1), decoder_layers_per_block=(1, 1), downsample_block_type="conv",
                upsample_block_type="interpolate", decoder_norm_types="rms_norm", decoder_act_fns="silu",
                scaling_factor=0.41407)
    cfg = {k: v for k, v in tiny_sana_config(caption_channels=32, sample_size=16).items() if not k.startswith("_")}
    tokenizer = tiny_t5_tokenizer()
    return SanaPipeline(tokenizer=tokenizer, text_encoder=tiny_gemma2_encoder(len(tokenizer), seed), vae=vae,
                        transformer=_init(SanaTransformer2DModel, seed, **cfg),
                        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))


def test_sana_pipeline_schedule_and_reference():
    pipe = tiny_sana_pipeline()
    _check_pipeline(pipe, dict(prompt=TINY_PROMPTS[:2], height=SANA_SIZE, width=SANA_SIZE, num_inference_steps=PIPE_STEPS,
                               guidance_scale=4.5, max_sequence_length=32, use_resolution_binning=False,
                               output_type="pt"))


def test_sana_encode_prompts_drive_the_pipeline():
    """With the pipeline's default complex human instruction on both sides."""
    pipe = tiny_sana_pipeline()
    settings = _settings(height=SANA_SIZE, width=SANA_SIZE, guidance_scale=4.5, max_sequence_length=32)
    prompts = TINY_PROMPTS[:3]
    with single_threaded():
        kw = _evaluator_call(pipe, prompts, settings, rows=[2, 0])
        got = _images(pipe, generator=torch.Generator().manual_seed(0), **kw)
        direct = _images(pipe, prompt=[prompts[2], prompts[0]], generator=torch.Generator().manual_seed(0),
                         height=SANA_SIZE, width=SANA_SIZE, num_inference_steps=PIPE_STEPS, guidance_scale=4.5,
                         max_sequence_length=32, use_resolution_binning=False, output_type="pt")
    assert kw["prompt_embeds"].shape[1] == 32  # the instruction is encoded, then only max_sequence_length kept
    assert torch.allclose(got, direct, atol=1e-6)
