"""Tiny image pipelines (Chroma, Z-Image, FLUX.2-klein, Qwen-Image) with a schedule applied, end to end.

Each pipeline is built from configs only: a tiny random transformer of the family (the conformance
configs of ``tests/families``, at the pipeline's widths), a tiny VAE of the class the checkpoints
ship, tiny text encoders (T5 for Chroma; a Qwen3 causal LM over the tiny T5 vocabulary with a chat
template for Z-Image, FLUX.2-klein and Qwen-Image, whose pipelines only read its hidden states) and
the scheduler class of the checkpoints. For each:

* the all-compute schedule is bit-identical to the plain pipeline;
* a random schedule changes the image, and equals an independent reference of the semantics (torch
  forward hooks that substitute the last computed output of the same stream: Chroma, klein-base and
  Qwen-Image run classifier-free guidance as a second transformer forward per step, Z-Image batches it);
* the adapter's ``encode_prompts`` + ``call_kwargs`` drive the pipeline as the search does (one
  embedding row per prompt, rows selected per image), giving what the prompt strings give.

Also here: HiDream's MAC-profiling class (``HiDreamAdapter.model_class()``) computes exactly what
diffusers' class computes, and its MoE feed-forwards run once per block forward.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from ecad_hub import CacheSchedule, apply_schedule, profile_macs
from ecad_hub.adapters import adapter_for, architecture_of
from families import FamilyCase, build_transformer
from families.chroma import tiny_chroma_config
from families.flux2 import tiny_flux2_config
from families.hidream import tiny_hidream_config
from families.qwenimage import tiny_qwenimage_config
from families.zimage import tiny_zimage_config
from tiny_models import T5_D_MODEL, single_threaded, tiny_t5_encoder, tiny_t5_tokenizer

STEPS = 4
PROMPTS = ["a photo of a cat", "a red car on a road at night"]
MAX_SEQUENCE_LENGTH = 16
SIZE = 64  # pixels: 8x8 latents with the 8x VAEs
QWEN3_HIDDEN = 8  # tiny Qwen3 text encoder width
#: Jinja chat template of the tiny Qwen3 tokenizer (Qwen3's role markers, no thinking block)
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|> {% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}")


def _transformer(config: dict, model_cls=None, seed: int = 0):
    """The family's tiny transformer with random weights everywhere (diffusers zero-initialises some
    output projections, which would make cached and computed outputs trivially equal)."""
    return build_transformer(FamilyCase(config["_class_name"], config, model_cls=model_cls),
                             adapter_for(config["_class_name"]), seed)


def _seeded(seed, fn, *args, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn(*args, **kwargs)


def _qwen3(tokenizer, num_layers: int, seed: int = 3):
    """A random tiny ``Qwen3ForCausalLM`` (the pipelines read its hidden states)."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=QWEN3_HIDDEN, intermediate_size=16,
                         num_hidden_layers=num_layers, num_attention_heads=2, num_key_value_heads=1, head_dim=4,
                         max_position_embeddings=128, tie_word_embeddings=False, pad_token_id=0)
    return _seeded(seed, Qwen3ForCausalLM, config).eval()


def _chat_tokenizer():
    tokenizer = tiny_t5_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _flux_vae(latent_channels: int, seed: int = 1, **extra):
    from diffusers import AutoencoderKL

    return _seeded(seed, AutoencoderKL, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                   up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
                   norm_num_groups=4, latent_channels=latent_channels, use_quant_conv=False,
                   use_post_quant_conv=False, **extra).eval()


def chroma_pipeline():
    from diffusers import ChromaPipeline, FlowMatchEulerDiscreteScheduler

    tokenizer = tiny_t5_tokenizer()
    pipe = ChromaPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True,
                                                  base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                                                  max_image_seq_len=4096),
        vae=_flux_vae(4, scaling_factor=0.3611, shift_factor=0.1159),
        text_encoder=tiny_t5_encoder(len(tokenizer)), tokenizer=tokenizer,
        transformer=_transformer(tiny_chroma_config(in_channels=16, joint_attention_dim=T5_D_MODEL)))
    # true CFG: a second transformer forward per step, no cache context
    return pipe, dict(height=SIZE, width=SIZE, guidance_scale=4.0), 2


def zimage_pipeline():
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    from families.zimage import ZImageTransformer2DModel as StackedZImage

    tokenizer = _chat_tokenizer()
    transformer = _transformer(tiny_zimage_config(in_channels=4, cap_feat_dim=QWEN3_HIDDEN))
    # the pipeline takes the plain class (it stacks the per-sample outputs itself)
    assert type(transformer) is not StackedZImage
    pipe = ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False),
        vae=_flux_vae(4, scaling_factor=0.3611, shift_factor=0.1159),
        text_encoder=_qwen3(tokenizer, num_layers=2).model, tokenizer=tokenizer, transformer=transformer)
    # Z-Image batches the (cond, uncond) pair (guidance_scale > 0) into one forward per step
    return pipe, dict(height=SIZE, width=SIZE, guidance_scale=3.0), 1


def klein_pipeline():
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline

    tokenizer = _chat_tokenizer()
    vae = _seeded(1, AutoencoderKLFlux2, block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=4,
                  norm_num_groups=4, use_quant_conv=False, use_post_quant_conv=False)
    with torch.no_grad():  # a trained-looking latent batch norm (running stats of 1 / 0 would be the identity)
        vae.bn.running_mean.copy_(_seeded(5, torch.randn, vae.bn.running_mean.shape) * 0.1)
        vae.bn.running_var.copy_(1 + _seeded(6, torch.rand, vae.bn.running_var.shape))
    transformer = _transformer(tiny_flux2_config(guidance_embeds=False, in_channels=16,
                                                 joint_attention_dim=3 * QWEN3_HIDDEN))
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True),
        vae=vae.eval(), text_encoder=_qwen3(tokenizer, num_layers=28), tokenizer=tokenizer, transformer=transformer,
        is_distilled=False)
    # klein base: true CFG in the "cond" / "uncond" cache contexts, two forwards per step
    return pipe, dict(height=SIZE, width=SIZE, guidance_scale=4.0), 2


def qwenimage_pipeline():
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImagePipeline

    tokenizer = _chat_tokenizer()
    vae = _seeded(1, AutoencoderKLQwenImage, base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                  temperal_downsample=[False, True, True], latents_mean=[0.1, -0.2, 0.3, 0.0],
                  latents_std=[1.5, 2.0, 1.0, 2.5])
    pipe = QwenImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=True,
                                                  base_shift=0.5, max_shift=0.9, base_image_seq_len=256,
                                                  max_image_seq_len=8192, shift_terminal=0.02),
        vae=vae.eval(), text_encoder=_qwen3(tokenizer, num_layers=2), tokenizer=tokenizer,
        transformer=_transformer(tiny_qwenimage_config(in_channels=16, out_channels=4, joint_attention_dim=QWEN3_HIDDEN)))
    # the search's guidance_scale becomes true_cfg_scale: "cond" / "uncond" forwards, two per step
    return pipe, dict(height=SIZE, width=SIZE, guidance_scale=4.0), 2


BUILDERS = {"chroma": chroma_pipeline, "zimage": zimage_pipeline, "flux2-klein-base": klein_pipeline,
            "qwenimage": qwenimage_pipeline}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def family(request):
    with single_threaded():
        pipe, call, forwards = BUILDERS[request.param]()
    pipe.set_progress_bar_config(disable=True)
    return request.param, pipe, call, forwards


def _random_schedule(arch, seed: int, p: float = 0.5) -> CacheSchedule:
    rng = np.random.default_rng(seed)
    return CacheSchedule(f"random-{seed}", STEPS, arch,
                         {g.name: rng.random((STEPS, g.num_blocks, len(g.components))) > p for g in arch.groups})


def _embeddings(pipe, call):
    """What a search passes: the adapter's embeddings and call arguments."""
    adapter = adapter_for(pipe.transformer)
    settings = {"max_sequence_length": MAX_SEQUENCE_LENGTH, "guidance_scale": call["guidance_scale"]}
    with torch.no_grad():
        embeds = adapter.encode_prompts(pipe, PROMPTS, guidance_scale=call["guidance_scale"],
                                        max_sequence_length=MAX_SEQUENCE_LENGTH, device="cpu")
    return embeds, adapter.call_kwargs(settings, prompt_embeds=True)


def _rows(value, idx: list[int]):
    """Rows ``idx`` of an embedding: a batched tensor, or Z-Image's list of per-prompt tensors."""
    if isinstance(value, list):
        return [value[i] for i in idx]
    return value.index_select(0, torch.tensor(idx))


def _generate(pipe, call, rows=(0, 1), seed=0, **kw):
    """The search's call: embedding rows selected per image, one generator per image, float images."""
    embeds, extra = _embeddings(pipe, call)
    kwargs = {k: _rows(v, list(rows)) for k, v in embeds.items() if v is not None}
    kwargs.update(extra)
    kwargs.update(call)
    kwargs.update(kw)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(rows))]
    with single_threaded(), torch.no_grad():
        return pipe(generator=gens, num_inference_steps=STEPS, output_type="pt", **kwargs).images


class Reference:
    """The semantics, independently: every sub-module runs, a forward hook substitutes the output of
    the last step that computed it where the mask says reuse. ``forwards`` transformer forwards per
    denoising step (true CFG: 2), each a stream with its own kept outputs."""

    def __init__(self, transformer, schedule: CacheSchedule, forwards: int):
        self.forward = -1
        self.forwards = forwards
        self.cache: dict = {}
        self.calls: dict = defaultdict(int)
        eff = schedule.effective_masks()
        self.handles = [transformer.register_forward_pre_hook(self._next_forward)]
        for gi, g in enumerate(schedule.architecture.groups):
            present = g.present()
            for bi, block in enumerate(transformer.get_submodule(g.name)):
                comps = [(ci, c) for ci, c in enumerate(g.components) if present[bi, ci]]
                self.handles.append(block.register_forward_pre_hook(self._reset(gi, bi, comps)))
                for ci, comp in comps:
                    self.handles.append(block.get_submodule(comp).register_forward_hook(
                        self._hook(gi, bi, ci, eff[g.name])))

    @property
    def step(self) -> int:
        return self.forward // self.forwards

    def _next_forward(self, module, args):
        self.forward += 1

    def _reset(self, gi, bi, comps):
        def pre(module, args):
            for ci, _ in comps:
                self.calls[(gi, bi, ci)] = 0
        return pre

    def _hook(self, gi, bi, ci, mask):
        def hook(module, args, output):
            k = self.calls[(gi, bi, ci)]
            self.calls[(gi, bi, ci)] += 1
            key = (self.forward % self.forwards, gi, bi, ci, k)
            if mask[self.step, bi, ci] or key not in self.cache:
                self.cache[key] = output
                return output
            return self.cache[key]
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def test_all_compute_is_bit_identical_to_the_plain_pipeline(family):
    name, pipe, call, _ = family
    plain = _generate(pipe, call)
    with apply_schedule(pipe, CacheSchedule.all_compute(architecture_of(pipe), STEPS)) as handle:
        same = _generate(pipe, call)
        assert handle.cached_tensors() == 0
    assert plain.shape == (len(PROMPTS), 3, SIZE, SIZE)
    assert torch.equal(plain, same)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_schedule_equals_the_reference_loop(family, seed):
    name, pipe, call, forwards = family
    schedule = _random_schedule(architecture_of(pipe), seed)
    plain = _generate(pipe, call)
    with apply_schedule(pipe, schedule) as handle:
        got = _generate(pipe, call)
        counts = handle.computed_counts()
    ref = Reference(pipe.transformer, schedule, forwards)
    try:
        expected = _generate(pipe, call)
    finally:
        ref.remove()
    assert ref.forward == STEPS * forwards - 1
    assert not torch.equal(got, plain), "the random schedule changed nothing"
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    for g in schedule.architecture.groups:  # every sub-module ran exactly where the mask computes, per stream
        np.testing.assert_array_equal(counts[g.name],
                                      (schedule.effective_masks()[g.name] & g.present()[None]) * forwards)
    assert torch.equal(_generate(pipe, call), plain)  # removed: the plain pipeline again


def test_encode_prompts_and_call_kwargs_match_the_prompt_strings(family):
    """The adapter's embeddings, rows selected per image as the search does, give the images the
    pipeline makes from the prompt strings, bit for bit."""
    name, pipe, call, _ = family
    embeds, extra = _embeddings(pipe, call)
    assert "negative_prompt_embeds" in embeds  # every builder runs CFG
    for key, value in embeds.items():
        assert len(value) == len(PROMPTS), key
    both = _generate(pipe, call)
    # the prompt-string call of the quickstart: the adapter's call_kwargs(prompt_embeds=False)
    settings = {"max_sequence_length": MAX_SEQUENCE_LENGTH, "guidance_scale": call["guidance_scale"]}
    strings = dict(call, **adapter_for(pipe.transformer).call_kwargs(settings, prompt_embeds=False))
    with single_threaded(), torch.no_grad():
        from_strings = pipe(prompt=list(PROMPTS), generator=[torch.Generator().manual_seed(i) for i in range(2)],
                            num_inference_steps=STEPS, output_type="pt", **strings).images
    assert torch.equal(both, from_strings)
    # a single image from row 1 is the second image of the pair (rows are independent)
    second = _generate(pipe, call, rows=(1,), seed=1)
    torch.testing.assert_close(second[0], both[1], rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------
# HiDream: the MAC-profiling class and the MoE feed-forwards
# --------------------------------------------------------------------------------------------

def _hidream_inputs(adapter, config, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    kw = adapter.profile_inputs(config, 8, 8, batch, 9, "cpu")
    return {k: torch.randn(v.shape, generator=g) for k, v in kw.items()}


def test_hidream_profiling_class_is_diffusers_own_forward():
    """``HiDreamAdapter.model_class()`` (MoE routable on ``meta``) computes exactly what diffusers'
    class computes on real tensors, and its meta MAC profile is what diffusers' class executes."""
    import diffusers
    from torch.utils.flop_counter import FlopCounterMode

    from ecad_hub.macs import counted_global

    config = tiny_hidream_config()
    adapter = adapter_for(config["_class_name"])
    ours = _transformer(config)
    plain = _transformer(config, model_cls=diffusers.HiDreamImageTransformer2DModel)
    assert type(plain) is diffusers.HiDreamImageTransformer2DModel and type(ours) is not type(plain)
    assert type(ours).__name__ == type(plain).__name__
    inputs = _hidream_inputs(adapter, dict(plain.config))
    with single_threaded(), torch.no_grad():
        a = ours(**inputs, return_dict=False)[0]
        counter = FlopCounterMode(display=False, depth=None)
        with counter:
            b = plain(**inputs, return_dict=False)[0]
    assert torch.equal(a, b)
    profile = profile_macs(config, 8, 8, batch_size=2, text_len=9, vae_scale_factor=1)
    assert profile.full_step_macs == counted_global(counter.get_flop_counts(), False)


def test_hidream_moe_feed_forward_runs_once_per_block_forward():
    config = tiny_hidream_config()
    adapter = adapter_for(config["_class_name"])
    model = _transformer(config)
    arch = adapter.architecture(dict(model.config))
    calls = defaultdict(int)
    handles = []
    for g in arch.groups:
        for bi, block in enumerate(model.get_submodule(g.name)):
            assert type(block.get_submodule("block.ff_i")).__name__ == "MetaRoutableMoE"  # the MoE of diffusers
            for comp in g.components:
                handles.append(block.get_submodule(comp).register_forward_hook(
                    lambda m, a, o, key=(g.name, bi, comp): calls.__setitem__(key, calls[key] + 1)))
    try:
        with single_threaded(), torch.no_grad():
            model(**_hidream_inputs(adapter, dict(model.config)), return_dict=False)
    finally:
        for h in handles:
            h.remove()
    expected = {(g.name, bi, c) for g in arch.groups for bi in range(g.num_blocks) for c in g.components}
    assert set(calls) == expected and set(calls.values()) == {1}
