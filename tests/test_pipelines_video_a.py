"""Video families A (Wan, SkyReels-V2, HunyuanVideo, HunyuanVideo-1.5, CogVideoX): pipelines and what
the conformance suite cannot cover yet.

* Tiny ``WanPipeline`` (UMT5, ``AutoencoderKLWan``, UniPC flow scheduler; CFG as two forwards per
  step in ``cond``/``uncond`` cache contexts) and ``CogVideoXPipeline`` (T5,
  ``AutoencoderKLCogVideoX``, CogVideoX DDIM; CFG as one batch-2 forward; 3D RoPE from the
  pipeline): the all-compute schedule is bit-identical to the plain pipeline, a random schedule
  equals an independent reference (forward hooks substituting the last computed output, one
  cache per forward of a step) and differs from all-compute, and the adapter's
  ``encode_prompts`` + ``call_kwargs`` drive the pipeline as a search does.
* HunyuanVideo-1.5: the model's own forward cannot run on the meta device (it reorders text
  tokens with boolean masks), so its cases are not in the conformance suite; here they get the
  conformance checks that need no MAC profile, and the adapter's meta-safe ``profile_forward``
  is checked to run the same sub-modules on the same shapes (equal FLOP counts per module) as
  the real forward.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ecad_hub import CacheSchedule, apply_schedule
from ecad_hub.adapters import adapter_for

from families import build_transformer, step_inputs
from families.hunyuanvideo import CASES as HUNYUAN_CASES
from semantics import STEPS, Reference, _loop, _random_schedule
from tiny_models import TINY_PROMPTS, single_threaded
from tiny_video import tiny_cogvideox_pipeline, tiny_wan_pipeline

#: transformer classes whose pipelines are tested here (README support table)
PIPELINES_TESTED = ("WanTransformer3DModel", "CogVideoXTransformer3DModel")

NUM_STEPS = 4
MAX_SEQUENCE_LENGTH = 16


#: (builder, call kwargs, transformer forwards per denoising step)
PIPELINES = {
    "wan": (tiny_wan_pipeline, dict(height=16, width=16, num_frames=5, guidance_scale=5.0), 2),
    "cogvideox": (tiny_cogvideox_pipeline, dict(height=32, width=32, num_frames=9, guidance_scale=6.0), 1),
}


@pytest.fixture(scope="module", params=sorted(PIPELINES))
def video_pipe(request):
    build, call, forwards = PIPELINES[request.param]
    with single_threaded():
        pipe = build(0)
    pipe.set_progress_bar_config(disable=True)
    return request.param, pipe, call, forwards


def _call(pipe, call, **kw) -> torch.Tensor:
    args = dict(num_inference_steps=NUM_STEPS, max_sequence_length=MAX_SEQUENCE_LENGTH, output_type="pt",
                generator=torch.Generator().manual_seed(0), **call)
    args.update(kw)
    with single_threaded(), torch.no_grad():
        return pipe(**args).frames.clone()


class PipelineReference:
    """The schedule's semantics over a pipeline call, independently of ecad_hub's hooks: every
    sub-module runs; a forward hook substitutes its last computed output where the mask says
    reuse. The k-th transformer forward of a denoising step (CFG's cond / uncond) has its own
    cache, as its outputs come from other inputs."""

    def __init__(self, transformer, schedule: CacheSchedule, forwards_per_step: int):
        self.forwards = 0
        self.per_step = forwards_per_step
        self.cache: dict = {}
        self.calls: dict = defaultdict(int)
        self.handles = [transformer.register_forward_pre_hook(self._count)]
        effective = schedule.effective_masks()
        for gi, g in enumerate(schedule.architecture.groups):
            present = g.present()
            for bi, block in enumerate(transformer.get_submodule(g.name)):
                comps = [(ci, c) for ci, c in enumerate(g.components) if present[bi, ci]]
                self.handles.append(block.register_forward_pre_hook(self._reset(gi, bi, comps)))
                for ci, comp in comps:
                    hook = self._hook(gi, bi, ci, effective[g.name])
                    self.handles.append(block.get_submodule(comp).register_forward_hook(hook))

    def _count(self, module, args):
        self.forwards += 1

    @property
    def step(self) -> int:
        return (self.forwards - 1) // self.per_step

    def _reset(self, gi, bi, comps):
        def pre(module, args):
            for ci, _ in comps:
                self.calls[(gi, bi, ci)] = 0
        return pre

    def _hook(self, gi, bi, ci, mask):
        def hook(module, args, output):
            k = self.calls[(gi, bi, ci)]
            self.calls[(gi, bi, ci)] += 1
            slot = (self.forwards - 1) % self.per_step
            key = (slot, gi, bi, ci, k)
            if mask[self.step, bi, ci] or key not in self.cache:
                self.cache[key] = output
                return output
            return self.cache[key]
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def test_all_compute_pipeline_is_bit_identical(video_pipe):
    kind, pipe, call, _ = video_pipe
    arch = adapter_for(pipe.transformer).architecture(dict(pipe.transformer.config))
    plain = _call(pipe, call, prompt=TINY_PROMPTS[0])
    with apply_schedule(pipe, CacheSchedule.all_compute(arch, NUM_STEPS)):
        same = _call(pipe, call, prompt=TINY_PROMPTS[0])
    assert torch.equal(plain, same)


def test_random_schedule_pipeline_equals_the_reference(video_pipe):
    kind, pipe, call, forwards = video_pipe
    arch = adapter_for(pipe.transformer).architecture(dict(pipe.transformer.config))
    rng = np.random.default_rng(7)
    masks = {g.name: rng.random((NUM_STEPS, g.num_blocks, len(g.components))) > 0.5 for g in arch.groups}
    for g in arch.groups:
        masks[g.name][2] = False  # a fully reused step: the blocks' fast paths run
    schedule = CacheSchedule("random-video", NUM_STEPS, arch, masks)
    plain = _call(pipe, call, prompt=TINY_PROMPTS[1])
    ref = PipelineReference(pipe.transformer, schedule, forwards)
    try:
        expected = _call(pipe, call, prompt=TINY_PROMPTS[1])
    finally:
        ref.remove()
    assert ref.forwards == NUM_STEPS * forwards
    with apply_schedule(pipe, schedule) as handle:
        got = _call(pipe, call, prompt=TINY_PROMPTS[1])
        assert handle.fast_path_calls() > 0
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4), (got - expected).abs().max()
    assert not torch.equal(got, plain)


def test_encode_prompts_and_call_kwargs_drive_the_pipeline(video_pipe):
    """As a search calls it: embeddings once from the adapter, then the pipeline with them."""
    kind, pipe, call, _ = video_pipe
    adapter = adapter_for(pipe.transformer)
    prompts = TINY_PROMPTS[:2]
    settings = dict(max_sequence_length=MAX_SEQUENCE_LENGTH, guidance_scale=call["guidance_scale"],
                    num_frames=call["num_frames"])
    with torch.no_grad():
        embeds = adapter.encode_prompts(pipe, prompts, guidance_scale=call["guidance_scale"],
                                        max_sequence_length=MAX_SEQUENCE_LENGTH, device="cpu")
    assert set(embeds) == {"prompt_embeds", "negative_prompt_embeds"}
    assert all(v.shape[0] == len(prompts) for v in embeds.values())
    assert adapter.text_len(MAX_SEQUENCE_LENGTH) == embeds["prompt_embeds"].shape[1]
    kw = adapter.call_kwargs(settings, prompt_embeds=True)
    assert kw["num_frames"] == call["num_frames"]
    base = {k: v for k, v in call.items() if k != "num_frames"}
    from_embeds = _call(pipe, base, **embeds, **kw)
    from_prompts = _call(pipe, call, prompt=prompts, negative_prompt="")
    assert torch.equal(from_embeds, from_prompts)


# --------------------------------------------------------------------------------------------
# HunyuanVideo-1.5: its MAC profile needs the adapter's profile_forward (checked here)
# --------------------------------------------------------------------------------------------

HV15_CASES = [c for c in HUNYUAN_CASES if c.transformer_class == "HunyuanVideo15Transformer3DModel"]

@pytest.fixture(scope="module", params=HV15_CASES, ids=[c.id for c in HV15_CASES])
def hv15(request):
    case = request.param
    with single_threaded():
        adapter = adapter_for(case.transformer_class)
        transformer = build_transformer(case, adapter)
        arch = adapter.architecture(dict(transformer.config))
        inputs = [step_inputs(case, transformer, adapter, s) for s in range(STEPS)]
    return case, transformer, adapter, arch, inputs


def test_hv15_all_compute_is_bit_identical_and_random_equals_the_reference(hv15):
    case, transformer, adapter, arch, inputs = hv15
    with single_threaded():
        plain = _loop(transformer, inputs)
        with apply_schedule(transformer, CacheSchedule.all_compute(arch, STEPS)):
            same = _loop(transformer, inputs)
        schedule = _random_schedule(arch, 1)
        ref = Reference(transformer, schedule)
        try:
            expected = ref.run(transformer, inputs)
        finally:
            ref.remove()
        with apply_schedule(transformer, schedule):
            got = _loop(transformer, inputs)
        after = _loop(transformer, inputs)
    assert all(torch.equal(a, b) for a, b in zip(plain, same))
    assert all(torch.equal(a, b) for a, b in zip(plain, after))
    assert all(torch.allclose(a, b, atol=case.atol, rtol=1e-4) for a, b in zip(got, expected))
    assert any(not torch.equal(a, b) for a, b in zip(plain, got))


def _without_attention_products(counts) -> dict:
    from ecad_hub.macs import _ATTENTION_PRODUCT_OPS

    return {module: {op: n for op, n in ops.items() if not str(op).startswith(_ATTENTION_PRODUCT_OPS)}
            for module, ops in counts.items()}


def test_hv15_meta_profile_forward_counts_what_the_forward_runs(hv15):
    """The adapter's ``profile_forward`` on the meta device: same output shape and, module by
    module, the FLOPs of the real forward on the CPU (attention score/value products aside: the
    CPU's masked SDPA kernel is not counted by FlopCounterMode, the meta one is)."""
    case, transformer, adapter, arch, inputs = hv15
    config = dict(transformer.config)
    real = FlopCounterMode(display=False, depth=None)
    with single_threaded(), torch.no_grad(), real:
        out = transformer(**inputs[0], return_dict=False)[0]
    with torch.device("meta"):
        meta_model = type(transformer).from_config({k: v for k, v in config.items() if not k.startswith("_")}).eval()
    meta_inputs = adapter.profile_inputs(config, *case.latent_size, case.batch_size, case.text_len, "meta",
                                         latent_frames=case.latent_frames)
    counted = FlopCounterMode(display=False, depth=None)
    with torch.no_grad(), counted:
        meta_out = adapter.profile_forward(meta_model, meta_inputs)[0]
    assert meta_out.shape == out.shape and meta_out.device.type == "meta"
    assert "forward" not in vars(meta_model)  # the instance forward is restored
    assert _without_attention_products(counted.get_flop_counts()) == _without_attention_products(real.get_flop_counts())
    with pytest.raises(RuntimeError, match="meta"):  # why profile_forward exists
        meta_model(**meta_inputs, return_dict=False)
