"""Tiny video pipelines (LTX-Video, Mochi-1, Latte) with a schedule applied, end to end.

Each pipeline is built from configs only: a tiny random transformer of the family (the conformance
configs of ``tests/families``, at the pipeline's widths), the family's VAE class with tiny widths,
the tiny T5 of ``tiny_models`` and the scheduler class the checkpoints ship. For each:

* the all-compute schedule is bit-identical to the plain pipeline;
* a random schedule changes the video, and equals an independent reference of the semantics (torch
  forward hooks that substitute the last computed output, one step per transformer forward: these
  pipelines batch the CFG pair into one forward per step);
* the adapter's ``encode_prompts`` + ``call_kwargs`` drive the pipeline as the search does (one
  embedding row per prompt, rows selected per video), giving what the prompt strings give.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from ecad_hub import CacheSchedule, apply_schedule
from ecad_hub.adapters import adapter_for, architecture_of
from families import FamilyCase, build_transformer
from families.latte import tiny_latte_config
from families.ltx import tiny_ltx_config
from families.mochi import tiny_mochi_config
from tiny_models import T5_D_MODEL, single_threaded, tiny_t5_encoder, tiny_t5_tokenizer

PIPELINES_TESTED = ("LTXVideoTransformer3DModel", "MochiTransformer3DModel", "LatteTransformer3DModel")

STEPS = 4
PROMPTS = ["a photo of a cat", "a red car on a road at night"]
MAX_SEQUENCE_LENGTH = 16


def _transformer(config: dict, model_cls, seed: int = 0):
    """The family's tiny transformer with random weights everywhere (diffusers zero-initialises some
    output projections, which would make cached and computed outputs trivially equal)."""
    return build_transformer(FamilyCase(config["_class_name"], config, model_cls=model_cls), None, seed)


def ltx_pipeline():
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline, LTXVideoTransformer3DModel

    tokenizer = tiny_t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        vae = AutoencoderKLLTXVideo(
            latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, False, False),
            decoder_spatio_temporal_scaling=(True, True, False, False),
            decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
            upsample_factor=(1, 1, 1, 1), patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False)
    vae.use_framewise_encoding = vae.use_framewise_decoding = False
    transformer = _transformer(tiny_ltx_config(num_layers=2, caption_channels=T5_D_MODEL), LTXVideoTransformer3DModel)
    pipe = LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.95, max_shift=2.05,
                                                  base_image_seq_len=1024, max_image_seq_len=4096,
                                                  shift_terminal=0.1),
        vae=vae.eval(), text_encoder=tiny_t5_encoder(len(tokenizer)), tokenizer=tokenizer, transformer=transformer)
    # 4x spatial, 4x temporal VAE: 32x32 pixels, 9 frames -> 8x8 latents, 3 latent frames
    return pipe, dict(height=32, width=32, num_frames=9, guidance_scale=3.0)


def mochi_pipeline():
    from diffusers import AutoencoderKLMochi, FlowMatchEulerDiscreteScheduler, MochiPipeline, MochiTransformer3DModel

    tokenizer = tiny_t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        vae = AutoencoderKLMochi(latent_channels=12, out_channels=3, encoder_block_out_channels=(32, 32, 32, 32),
                                 decoder_block_out_channels=(32, 32, 32, 32), layers_per_block=(1, 1, 1, 1, 1))
    transformer = _transformer(tiny_mochi_config(num_layers=3, in_channels=12, text_embed_dim=T5_D_MODEL,
                                                 max_sequence_length=MAX_SEQUENCE_LENGTH), MochiTransformer3DModel)
    pipe = MochiPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae.eval(),
                         text_encoder=tiny_t5_encoder(len(tokenizer)), tokenizer=tokenizer, transformer=transformer)
    # 8x spatial, 6x temporal VAE: 32x32 pixels, 13 frames -> 4x4 latents (2x2 patches), 3 latent frames
    return pipe, dict(height=32, width=32, num_frames=13, guidance_scale=4.5)


def latte_pipeline():
    from diffusers import AutoencoderKL, DDIMScheduler, LattePipeline, LatteTransformer3DModel

    tokenizer = tiny_t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8),
                            layers_per_block=1, norm_num_groups=4, latent_channels=4, scaling_factor=0.18215)
    transformer = _transformer(tiny_latte_config(num_layers=2, caption_channels=T5_D_MODEL, video_length=3),
                               LatteTransformer3DModel)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                              prediction_type="epsilon", clip_sample=False, timestep_spacing="leading")
    pipe = LattePipeline(tokenizer=tokenizer, text_encoder=tiny_t5_encoder(len(tokenizer)), vae=vae.eval(),
                         transformer=transformer, scheduler=scheduler)
    # image VAE (8x), one latent per frame: 32x32 pixels, 3 frames -> 3 latent frames of 4x4
    return pipe, dict(height=32, width=32, video_length=3, guidance_scale=4.5)


BUILDERS = {"ltx-video": ltx_pipeline, "mochi": mochi_pipeline, "latte": latte_pipeline}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def family(request):
    with single_threaded():
        pipe, call = BUILDERS[request.param]()
    pipe.set_progress_bar_config(disable=True)
    return request.param, pipe, call


def _random_schedule(arch, seed: int, p: float = 0.5) -> CacheSchedule:
    rng = np.random.default_rng(seed)
    return CacheSchedule(f"random-{seed}", STEPS, arch,
                         {g.name: rng.random((STEPS, g.num_blocks, len(g.components))) > p for g in arch.groups})


def _embeddings(pipe, call):
    """What a search passes: the adapter's embeddings and call arguments."""
    adapter = adapter_for(pipe.transformer)
    with torch.no_grad():
        embeds = adapter.encode_prompts(pipe, PROMPTS, guidance_scale=call["guidance_scale"],
                                        max_sequence_length=MAX_SEQUENCE_LENGTH, device="cpu")
    settings = {"max_sequence_length": MAX_SEQUENCE_LENGTH, "guidance_scale": call["guidance_scale"]}
    return embeds, adapter.call_kwargs(settings, prompt_embeds=True)


def _generate(pipe, call, rows=(0, 1), seed=0, **kw):
    """The search's call: embedding rows selected per video, one generator per video, float frames."""
    embeds, extra = _embeddings(pipe, call)
    idx = torch.tensor(list(rows))
    kwargs = {k: v.index_select(0, idx) for k, v in embeds.items() if v is not None}
    kwargs.update(extra)
    kwargs.update(call)
    kwargs.update(kw)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(rows))]
    with single_threaded(), torch.no_grad():
        return pipe(generator=gens, num_inference_steps=STEPS, output_type="pt", **kwargs).frames


class Reference:
    """The semantics, independently: every sub-module runs, a forward hook substitutes the output of
    the last step that computed it where the mask says reuse; one step per transformer forward."""

    def __init__(self, transformer, schedule: CacheSchedule):
        self.step = -1
        self.cache: dict = {}
        self.calls: dict = defaultdict(int)
        eff = schedule.effective_masks()
        self.handles = [transformer.register_forward_pre_hook(self._next_step)]
        for gi, g in enumerate(schedule.architecture.groups):
            present = g.present()
            for bi, block in enumerate(transformer.get_submodule(g.name)):
                comps = [(ci, c) for ci, c in enumerate(g.components) if present[bi, ci]]
                self.handles.append(block.register_forward_pre_hook(self._reset(gi, bi, comps)))
                for ci, comp in comps:
                    self.handles.append(block.get_submodule(comp).register_forward_hook(
                        self._hook(gi, bi, ci, eff[g.name])))

    def _next_step(self, module, args):
        self.step += 1

    def _reset(self, gi, bi, comps):
        def pre(module, args):
            for ci, _ in comps:
                self.calls[(gi, bi, ci)] = 0
        return pre

    def _hook(self, gi, bi, ci, mask):
        def hook(module, args, output):
            k = self.calls[(gi, bi, ci)]
            self.calls[(gi, bi, ci)] += 1
            key = (gi, bi, ci, k)
            if mask[self.step, bi, ci] or key not in self.cache:
                self.cache[key] = output
                return output
            return self.cache[key]
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def test_all_compute_is_bit_identical_to_the_plain_pipeline(family):
    name, pipe, call = family
    plain = _generate(pipe, call)
    with apply_schedule(pipe, CacheSchedule.all_compute(architecture_of(pipe), STEPS)) as handle:
        same = _generate(pipe, call)
        assert handle.cached_tensors() == 0
    assert plain.shape[:2] == (len(PROMPTS), call.get("num_frames", call.get("video_length")))
    assert torch.equal(plain, same)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_schedule_equals_the_reference_loop(family, seed):
    name, pipe, call = family
    schedule = _random_schedule(architecture_of(pipe), seed)
    plain = _generate(pipe, call)
    with apply_schedule(pipe, schedule) as handle:
        got = _generate(pipe, call)
        counts = handle.computed_counts()
    ref = Reference(pipe.transformer, schedule)
    try:
        expected = _generate(pipe, call)
    finally:
        ref.remove()
    assert ref.step == STEPS - 1  # one transformer forward per denoising step
    assert not torch.equal(got, plain), "the random schedule changed nothing"
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    for g in schedule.architecture.groups:  # every sub-module ran exactly where the mask computes
        np.testing.assert_array_equal(counts[g.name], schedule.effective_masks()[g.name] & g.present()[None])
    assert torch.equal(_generate(pipe, call), plain)  # removed: the plain pipeline again


def test_encode_prompts_and_call_kwargs_match_the_prompt_strings(family):
    """The adapter's embeddings, rows selected per video as the search does, give the videos the
    pipeline makes from the prompt strings (LTX and Mochi: bit for bit; Latte masks the padding
    features of a batch of prompts, which a single-prompt call trims instead)."""
    name, pipe, call = family
    embeds, extra = _embeddings(pipe, call)
    for key, value in embeds.items():
        assert value.shape[0] == len(PROMPTS), key
    both = _generate(pipe, call)
    strings = dict(call)
    if name == "latte":
        strings.update(clean_caption=False)
    else:
        strings.update(max_sequence_length=MAX_SEQUENCE_LENGTH, negative_prompt="")
    with single_threaded(), torch.no_grad():
        from_strings = pipe(PROMPTS, generator=[torch.Generator().manual_seed(i) for i in range(2)],
                            num_inference_steps=STEPS, output_type="pt", **strings).frames
    assert torch.equal(both, from_strings)
    # a single video from row 1 is the second video of the pair (rows are independent)
    second = _generate(pipe, call, rows=(1,), seed=1)
    torch.testing.assert_close(second[0], both[1], rtol=1e-4, atol=1e-5)
