"""apply_schedule on tiny PixArt, FLUX and SD3 models: exact semantics, counts, lifecycle, errors."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ecad_hub import (
    ArchitectureMismatchError,
    CacheSchedule,
    StepMismatchError,
    UnsupportedModelError,
    apply_schedule,
)
from ecad_hub.adapters import architecture_of
from ecad_hub.macs import profile_macs
from ecad_hub.schedule import Architecture, BlockGroup
from tiny_models import (
    KINDS,
    TINY_MAX_SEQUENCE_LENGTH,
    TINY_PROMPTS,
    pipeline_call_kwargs,
    tiny_pipeline,
    tiny_transformer,
    transformer_step_inputs,
)

#: classes whose diffusers pipeline this module runs with schedules applied (README support table)
PIPELINES_TESTED = ("PixArtTransformer2DModel", "FluxTransformer2DModel", "SD3Transformer2DModel")

STEPS = 6


def random_schedule(arch: Architecture, steps: int, seed: int, p: float = 0.45, reuse_steps=(3,)) -> CacheSchedule:
    """Random mask; the steps in ``reuse_steps`` reuse everything (exercises the block fast path)."""
    rng = np.random.default_rng(seed)
    masks = {}
    for g in arch.groups:
        m = rng.random((steps, g.num_blocks, len(g.components))) < p
        for s in reuse_steps:
            m[s] = False
        masks[g.name] = m
    return CacheSchedule(f"random-{seed}", steps, arch, masks)


def run_steps(transformer, kind: str, steps: int = STEPS, batch_size: int = 2) -> list[torch.Tensor]:
    with torch.no_grad():
        return [transformer(**transformer_step_inputs(transformer, kind, s, batch_size, num_steps=steps))[0]
                for s in range(steps)]


def reference_outputs(transformer, kind: str, schedule: CacheSchedule) -> list[torch.Tensor]:
    """The semantics, implemented independently of ecad_hub's hooks with plain torch forward hooks:
    run the unpatched transformer step by step, record each sub-module's output, and substitute
    the recorded output wherever the mask says reuse (step 0 computes everything)."""
    recorded: dict = {}
    step = [0]
    handles = []
    for g in schedule.architecture.groups:
        mask = schedule.masks[g.name]
        for b, block in enumerate(getattr(transformer, g.name)):
            for c, comp in enumerate(g.components):
                module = getattr(block, comp, None)
                if module is None:
                    continue

                def hook(mod, args, output, key=(g.name, b, c), mask=mask):
                    s = step[0]
                    if s == 0 or mask[s, key[1], key[2]]:
                        recorded[key] = output
                        return output
                    return recorded[key]

                handles.append(module.register_forward_hook(hook))
    outs = []
    try:
        with torch.no_grad():
            for s in range(schedule.num_inference_steps):
                step[0] = s
                outs.append(transformer(**transformer_step_inputs(transformer, kind, s, 2, num_steps=schedule.num_inference_steps))[0])
    finally:
        for h in handles:
            h.remove()
    return outs


@pytest.fixture(scope="module", params=KINDS)
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def transformer(kind):
    return tiny_transformer(kind, seed=0).eval()


@pytest.fixture(scope="module")
def pipe(kind):
    p = tiny_pipeline(kind, seed=0)
    p.set_progress_bar_config(disable=True)
    return p


def step_callback(kind, fn):
    """Per-step callback kwargs: PixArt-alpha has the older ``callback(step, t, latents)`` API."""
    if kind == "pixart":
        return {"callback": lambda i, t, latents: fn(i), "callback_steps": 1}

    def on_step_end(pipe, i, t, kwargs):
        fn(i)
        return kwargs

    return {"callback_on_step_end": on_step_end}


def generate(pipe, kind, steps=4, seed=0, **kw):
    args = pipeline_call_kwargs(kind, num_inference_steps=steps) | kw
    return pipe(TINY_PROMPTS[0], generator=torch.Generator().manual_seed(seed), **args).images


# --- semantics ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_schedules_match_the_reference_semantics(transformer, kind, seed):
    arch = architecture_of(transformer)
    schedule = random_schedule(arch, STEPS, seed)
    expected = reference_outputs(transformer, kind, schedule)
    with apply_schedule(transformer, schedule) as handle:
        got = run_steps(transformer, kind)
        assert handle.fast_path_calls() >= sum(g.num_blocks for g in arch.groups)  # step 3 reuses every block
    for s, (a, b) in enumerate(zip(expected, got)):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=f"step {s}")
    assert not torch.equal(got[-1], run_steps(transformer, kind)[-1])  # the schedule did change the result


def test_fast_path_equals_running_the_block(transformer, kind):
    """With the fast path off, fully reused blocks run their own forward; outputs are bit-identical."""
    schedule = random_schedule(architecture_of(transformer), STEPS, 7, reuse_steps=(2, 4))
    with apply_schedule(transformer, schedule, fast_path=True) as fast:
        a = run_steps(transformer, kind)
        assert fast.fast_path_calls() > 0
    with apply_schedule(transformer, schedule, fast_path=False) as slow:
        b = run_steps(transformer, kind)
        assert slow.fast_path_calls() == 0
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_executed_submodule_forwards_equal_the_mask(transformer, kind):
    arch = architecture_of(transformer)
    schedule = random_schedule(arch, STEPS, 3)
    with apply_schedule(transformer, schedule) as handle:
        run_steps(transformer, kind)
        counts = handle.computed_counts()
    for g in arch.groups:
        present = g.present()
        expected = schedule.effective_masks()[g.name] & present[None]
        np.testing.assert_array_equal(counts[g.name], expected.astype(np.int64))


@pytest.mark.parametrize("fast_path", [False, True])
def test_measured_macs_per_step_equal_the_mac_model(transformer, kind, fast_path):
    """Independent count: the FLOPs actually executed at each step (FlopCounterMode on the
    patched model) equal MacProfile.step_macs for the same shapes. The fast path may only do
    less: SD3's last block (context_pre_only) skips its context norm's projection, whose output
    a fully reused block no longer needs."""
    arch = architecture_of(transformer)
    schedule = random_schedule(arch, STEPS, 4)
    latent = transformer.config.get("sample_size") or 8
    batch = 2
    profile = profile_macs(transformer, latent * 8, latent * 8, batch_size=batch,
                           text_len=TINY_MAX_SEQUENCE_LENGTH + (77 if kind == "sd3" else 0))
    expected = profile.step_macs(schedule)
    if fast_path and kind == "sd3":
        last = transformer.transformer_blocks[-1]
        saved = batch * last.norm1_context.linear.in_features * last.norm1_context.linear.out_features
        eff = schedule.effective_masks()["transformer_blocks"]
        present = arch.groups[0].present()
        fully_reused = ~(eff[:, -1, :] & present[-1]).any(axis=1)
        expected = [m - saved * bool(r) for m, r in zip(expected, fully_reused)]
    measured = []
    with apply_schedule(transformer, schedule, fast_path=fast_path), torch.no_grad():
        for s in range(STEPS):
            counter = FlopCounterMode(display=False)
            with counter:
                transformer(**transformer_step_inputs(transformer, kind, s, batch, num_steps=STEPS))
            ops = counter.get_flop_counts()["Global"]
            measured.append(sum(v for op, v in ops.items() if "bmm" not in str(op) and "scaled_dot" not in str(op)) // 2)
    assert measured == expected


def test_inner_modules_run_only_when_computed_pixart():
    transformer = tiny_transformer("pixart", seed=0).eval()
    arch = architecture_of(transformer)
    schedule = random_schedule(arch, STEPS, 5)
    calls = {}
    hooks = []
    for b, block in enumerate(transformer.transformer_blocks):
        for c, inner in enumerate((block.attn1.to_q, block.attn2.to_q, block.ff.net[2])):
            calls[(b, c)] = 0

            def count(mod, args, key=(b, c)):
                calls[key] += 1

            hooks.append(inner.register_forward_pre_hook(count))
    with apply_schedule(transformer, schedule):
        run_steps(transformer, "pixart")
    for h in hooks:
        h.remove()
    eff = schedule.effective_masks()["transformer_blocks"]
    for (b, c), n in calls.items():
        assert n == int(eff[:, b, c].sum()), (b, c)


# --- lifecycle -----------------------------------------------------------------------------------

def test_remove_restores_bit_identical_outputs(transformer, kind):
    before = run_steps(transformer, kind)
    handle = apply_schedule(transformer, random_schedule(architecture_of(transformer), STEPS, 6))
    patched = run_steps(transformer, kind)
    handle.remove()
    after = run_steps(transformer, kind)
    assert any(not torch.equal(a, b) for a, b in zip(before, patched))
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert not hasattr(transformer, "ecad_schedule")
    for module in transformer.modules():
        registry = getattr(module, "_diffusers_hook", None)
        assert registry is None or not registry.hooks


def test_only_reused_submodules_are_hooked(transformer, kind):
    arch = architecture_of(transformer)

    def hooked_modules():
        return sum(1 for m in transformer.modules() if getattr(m, "_diffusers_hook", None) is not None
                   and m._diffusers_hook.hooks)

    with apply_schedule(transformer, CacheSchedule.all_compute(arch, STEPS)):
        assert hooked_modules() == 1  # the first block, which counts steps
    g = arch.groups[0]
    masks = {x.name: np.ones((STEPS, x.num_blocks, len(x.components)), bool) for x in arch.groups}
    masks[g.name][2, 1, 0] = False  # one reuse: that sub-module, its block, and the first block
    with apply_schedule(transformer, CacheSchedule("one", STEPS, arch, masks)) as handle:
        assert hooked_modules() == 3
        run_steps(transformer, kind)
        assert handle.computed_counts()[g.name][:, 1, 0].tolist() == [1, 1, 0, 1, 1, 1]
        assert handle.cached_tensors() == 0


def test_transformer_only_counter_wraps(transformer, kind):
    schedule = random_schedule(architecture_of(transformer), STEPS, 8)
    with apply_schedule(transformer, schedule):
        first = run_steps(transformer, kind)
        second = run_steps(transformer, kind)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_applying_a_second_schedule_replaces_the_first(transformer, kind):
    arch = architecture_of(transformer)
    s1, s2 = random_schedule(arch, STEPS, 9), random_schedule(arch, STEPS, 10)
    h1 = apply_schedule(transformer, s1)
    h2 = apply_schedule(transformer, s2)
    try:
        assert not h1.active and h2.active and transformer.ecad_schedule is s2
        with apply_schedule(transformer, s2):
            pass  # re-applying is fine too
        with apply_schedule(transformer, s2) as h3:
            got = run_steps(transformer, kind)
            for module in transformer.modules():
                registry = getattr(module, "_diffusers_hook", None)
                if registry is not None:
                    assert len(registry.hooks) <= 1
        assert not h3.active
    finally:
        h2.remove()
    for a, b in zip(got, reference_outputs(transformer, kind, s2)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# --- pipelines -----------------------------------------------------------------------------------

def test_all_compute_schedule_gives_bit_identical_images(pipe, kind):
    base = generate(pipe, kind)
    with apply_schedule(pipe, CacheSchedule.all_compute(architecture_of(pipe), 4)) as handle:
        patched = generate(pipe, kind)
        assert pipe.ecad_schedule is handle.schedule
        assert handle.cached_tensors() == 0
    assert torch.equal(base, patched)


def test_pipeline_steps_reset_per_call_and_match_reference_loop(pipe, kind):
    """Each pipeline call starts at step 0: two calls give identical images, different from unpatched."""
    schedule = random_schedule(architecture_of(pipe), 4, 11, reuse_steps=(2,))
    base = generate(pipe, kind)
    with apply_schedule(pipe, schedule) as handle:
        a = generate(pipe, kind)
        b = generate(pipe, kind)
        counts = handle.computed_counts()
    assert torch.equal(a, b) and not torch.equal(a, base)
    for g in schedule.architecture.groups:
        expected = 2 * (schedule.effective_masks()[g.name] & g.present()[None])
        np.testing.assert_array_equal(counts[g.name], expected)


def test_wrong_step_count_fails_before_any_denoising(pipe, kind):
    schedule = random_schedule(architecture_of(pipe), 4, 12)
    forwards = []
    hook = pipe.transformer.register_forward_pre_hook(lambda *a: forwards.append(1))
    try:
        with apply_schedule(pipe, schedule):
            with pytest.raises(StepMismatchError, match="6 denoising steps but schedule 'random-12' has 4"):
                generate(pipe, kind, steps=6)
            assert forwards == []
            generate(pipe, kind, steps=4)  # and the right count still works afterwards
    finally:
        hook.remove()


def test_interrupted_call_does_not_leak_into_the_next(pipe, kind):
    schedule = random_schedule(architecture_of(pipe), 4, 13)
    with apply_schedule(pipe, schedule):
        clean = generate(pipe, kind)

        def boom(i):
            if i == 1:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            generate(pipe, kind, **step_callback(kind, boom))
        again = generate(pipe, kind)
    assert torch.equal(clean, again)


def test_batches_num_images_per_prompt_and_callbacks(pipe, kind):
    schedule = random_schedule(architecture_of(pipe), 4, 14)
    seen = []
    with apply_schedule(pipe, schedule) as handle:
        args = pipeline_call_kwargs(kind, num_inference_steps=4)
        out = pipe(TINY_PROMPTS[:2], num_images_per_prompt=2, generator=torch.Generator().manual_seed(0),
                   **step_callback(kind, seen.append), **args).images
        assert out.shape[0] == 4 and torch.isfinite(out).all()
        assert seen == [0, 1, 2, 3]
        assert handle.cached_tensors() == 0


def test_replacing_the_scheduler_after_patching_is_followed(pipe, kind):
    schedule = random_schedule(architecture_of(pipe), 4, 15)
    original = pipe.scheduler
    with apply_schedule(pipe, schedule):
        expected = generate(pipe, kind)
        pipe.scheduler = type(original).from_config(original.config)
        try:
            assert torch.equal(generate(pipe, kind), expected)
            with pytest.raises(StepMismatchError):
                generate(pipe, kind, steps=5)
        finally:
            pipe.scheduler = original
    assert "set_timesteps" not in vars(original)


def test_pipe_to_dtype_after_patching():
    pipe = tiny_pipeline("pixart", seed=0)
    pipe.set_progress_bar_config(disable=True)
    schedule = random_schedule(architecture_of(pipe), 4, 16)
    with apply_schedule(pipe, schedule):
        expected = generate(pipe, "pixart")
        pipe.to(torch.float64)
        pipe.to(torch.float32)
        assert torch.equal(generate(pipe, "pixart"), expected)


def test_model_cpu_offload_keeps_the_schedule():
    pytest.importorskip("accelerate")
    pipe = tiny_pipeline("pixart", seed=0)
    pipe.set_progress_bar_config(disable=True)
    schedule = random_schedule(architecture_of(pipe), 4, 17)
    with apply_schedule(pipe, schedule):
        expected = generate(pipe, "pixart")
    pipe.enable_model_cpu_offload(device="cpu")
    with apply_schedule(pipe, schedule) as handle:
        first = generate(pipe, "pixart")
        second = generate(pipe, "pixart")  # offload re-wraps the top-level forward after each call
        assert handle.computed_counts()["transformer_blocks"].sum() == 2 * schedule.effective_masks()["transformer_blocks"].sum()
    assert torch.equal(first, expected) and torch.equal(second, expected)


def test_feed_forward_chunking_is_disabled_and_restored():
    pipe = tiny_pipeline("pixart", seed=0)
    pipe.set_progress_bar_config(disable=True)
    schedule = random_schedule(architecture_of(pipe), 4, 18)
    with apply_schedule(pipe, schedule):
        expected = generate(pipe, "pixart")
    for block in pipe.transformer.transformer_blocks:
        block.set_chunk_feed_forward(chunk_size=1, dim=1)
    with apply_schedule(pipe, schedule):
        assert all(b._chunk_size is None for b in pipe.transformer.transformer_blocks)
        assert torch.equal(generate(pipe, "pixart"), expected)
    assert all(b._chunk_size == 1 for b in pipe.transformer.transformer_blocks)


def test_flux_true_cfg_keeps_separate_caches_per_context():
    pipe = tiny_pipeline("flux", seed=0)
    pipe.set_progress_bar_config(disable=True)
    arch = architecture_of(pipe)
    kw = dict(true_cfg_scale=2.0, negative_prompt="blurry")
    base = generate(pipe, "flux", **kw)
    with apply_schedule(pipe, CacheSchedule.all_compute(arch, 4)):
        assert torch.equal(generate(pipe, "flux", **kw), base)
    schedule = random_schedule(arch, 4, 19)
    with apply_schedule(pipe, schedule) as handle:
        generate(pipe, "flux", **kw)
        counts = handle.computed_counts()
    for g in arch.groups:
        np.testing.assert_array_equal(counts[g.name], 2 * schedule.effective_masks()[g.name])


def test_memory_does_not_grow_over_repeated_calls():
    pipe = tiny_pipeline("pixart", seed=0)
    pipe.set_progress_bar_config(disable=True)
    schedule = random_schedule(architecture_of(pipe), 4, 20)

    def live_tensors():
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))

    with apply_schedule(pipe, schedule) as handle:
        generate(pipe, "pixart")
        baseline = live_tensors()
        for _ in range(10):
            images = generate(pipe, "pixart")
            assert handle.cached_tensors() == 0
        del images
        assert live_tensors() <= baseline


# --- errors --------------------------------------------------------------------------------------

def test_architecture_mismatches_are_refused_with_the_differences():
    transformer = tiny_transformer("pixart", seed=0)
    arch = architecture_of(transformer)
    group = arch.groups[0]
    deeper = Architecture(arch.transformer_class, (BlockGroup(group.name, group.num_blocks + 1, group.components),))
    with pytest.raises(ArchitectureMismatchError, match=f"{group.num_blocks + 1} blocks vs {group.num_blocks}"):
        apply_schedule(transformer, CacheSchedule.all_compute(deeper, 4))
    renamed = Architecture(arch.transformer_class, (BlockGroup(group.name, group.num_blocks, ("attn1", "attn_x", "ff")),))
    with pytest.raises(ArchitectureMismatchError, match="components"):
        apply_schedule(transformer, CacheSchedule.all_compute(renamed, 4))
    flux = architecture_of(tiny_transformer("flux", seed=0))
    with pytest.raises(ArchitectureMismatchError, match="FluxTransformer2DModel.*PixArtTransformer2DModel"):
        apply_schedule(transformer, CacheSchedule.all_compute(flux, 4))
    assert not hasattr(transformer, "ecad_schedule")


def test_unsupported_models_are_refused():
    from diffusers import UNet2DModel

    unet = UNet2DModel(sample_size=8, block_out_channels=(8, 8), norm_num_groups=4,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
    arch = architecture_of(tiny_transformer("pixart", seed=0))
    with pytest.raises(UnsupportedModelError, match="no ecad-hub adapter for UNet2DModel"):
        apply_schedule(unet, CacheSchedule.all_compute(arch, 4))
