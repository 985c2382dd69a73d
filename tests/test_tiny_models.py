"""The tiny offline pipelines/transformers of ``tests/tiny_models.py`` work as the other tests assume."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import tiny_models as tm  # noqa: E402  (tests/ is on sys.path via conftest.py)

KINDS = tm.KINDS

# diffusers' DPMSolverMultistepScheduler calls np.array(tensor, copy=False): not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny ops are dominated by threading overhead: 1 thread is 5-50x faster on a busy 2-core box."""
    with tm.single_threaded():
        yield


_PIPES: dict = {}


def _pipe(kind: str):
    """One shared pipeline per kind (do not mutate it in tests)."""
    if kind not in _PIPES:
        pipe = tm.tiny_pipeline(kind)
        pipe.set_progress_bar_config(disable=True)
        _PIPES[kind] = pipe
    return _PIPES[kind]


def _run(pipe, kind, prompt=tm.TINY_PROMPTS[0], seed=0, **overrides):
    kw = tm.pipeline_call_kwargs(kind, **overrides)
    return pipe(prompt, generator=torch.Generator().manual_seed(seed), **kw).images


def _record_transformer_calls(pipe):
    """Capture the kwargs of every transformer forward (positional hidden_states included)."""
    calls = []

    def hook(module, args, kwargs):
        kw = dict(kwargs)
        if args:
            kw["hidden_states"] = args[0]
        calls.append(kw)

    return calls, pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("kind", KINDS)
def test_pipeline_runs_deterministically(kind):
    pipe = _pipe(kind)
    a = _run(pipe, kind)
    assert a.shape == (1, 3, tm.TINY_IMAGE_SIZE, tm.TINY_IMAGE_SIZE) and a.dtype == torch.float32
    assert torch.isfinite(a).all() and a.min() >= 0 and a.max() <= 1 and a.std() > 0
    assert torch.equal(a, _run(pipe, kind)), "same pipeline, same generator seed"

    rebuilt = tm.tiny_pipeline(kind)
    rebuilt.set_progress_bar_config(disable=True)
    assert torch.equal(a, _run(rebuilt, kind)), "same build seed -> same weights -> same image"
    assert not torch.equal(a, _run(pipe, kind, seed=1)), "generator seed must matter"

    other = tm.tiny_pipeline(kind, seed=1)
    other.set_progress_bar_config(disable=True)
    assert not torch.equal(a, _run(other, kind)), "build seed must matter"


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_reload_bit_identical(kind, tmp_path):
    pipe = _pipe(kind)
    a = _run(pipe, kind, prompt=tm.TINY_PROMPTS[1])
    path = tm.save_tiny_pipeline(pipe, tmp_path / kind)
    assert (tmp_path / kind / "model_index.json").is_file()
    assert list((tmp_path / kind / "transformer").glob("*.safetensors"))
    assert not list((tmp_path / kind).rglob("*.bin"))

    from diffusers import DiffusionPipeline

    plain = DiffusionPipeline.from_pretrained(path)
    plain.set_progress_bar_config(disable=True)
    assert type(plain) is type(pipe)
    assert set(plain.components) == set(pipe.components)
    for name, comp in pipe.components.items():
        again = plain.components[name]
        assert type(again) is type(comp), name
        if isinstance(comp, torch.nn.Module):
            sd, sd2 = comp.state_dict(), again.state_dict()
            assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd), name
        elif hasattr(comp, "vocab_size"):  # tokenizers
            assert len(again) == len(comp), name
            assert again(tm.TINY_PROMPTS).input_ids == comp(tm.TINY_PROMPTS).input_ids, name
    # weights loaded from safetensors are only 8-byte aligned: ~1e-6 differences are possible
    torch.testing.assert_close(_run(plain, kind, prompt=tm.TINY_PROMPTS[1]), a, rtol=0, atol=1e-5)

    tm.realign_weights(plain)
    assert torch.equal(_run(plain, kind, prompt=tm.TINY_PROMPTS[1]), a)
    reloaded = tm.load_tiny_pipeline(path)
    reloaded.set_progress_bar_config(disable=True)
    assert torch.equal(_run(reloaded, kind, prompt=tm.TINY_PROMPTS[1]), a)


@pytest.mark.parametrize("kind", KINDS)
def test_num_images_per_prompt(kind):
    pipe = _pipe(kind)
    imgs = _run(pipe, kind, num_images_per_prompt=2)
    assert imgs.shape == (2, 3, tm.TINY_IMAGE_SIZE, tm.TINY_IMAGE_SIZE)
    assert not torch.equal(imgs[0], imgs[1]), "each image gets its own noise"
    imgs = _run(pipe, kind, prompt=tm.TINY_PROMPTS[:2], num_images_per_prompt=2, num_inference_steps=2)
    assert imgs.shape[0] == 4


@pytest.mark.parametrize("kind", KINDS)
def test_guidance_scale(kind):
    pipe = _pipe(kind)
    guidance = tm.pipeline_call_kwargs(kind)["guidance_scale"]
    calls, handle = _record_transformer_calls(pipe)
    try:
        a = _run(pipe, kind)
        n_cfg = len(calls)
        batches = {c["hidden_states"].shape[0] for c in calls}
        del calls[:]
        b = _run(pipe, kind, guidance_scale=1.0)
        batches_off = {c["hidden_states"].shape[0] for c in calls}
    finally:
        handle.remove()
    assert n_cfg == tm.pipeline_call_kwargs(kind)["num_inference_steps"]
    assert not torch.equal(a, b), "guidance_scale must change the image"
    if kind == "flux":  # guidance-distilled: one batch-1 call per step, guidance goes into the embedding
        assert batches == batches_off == {1}
        assert torch.equal(calls[0]["guidance"], torch.tensor([1.0]))
    else:  # classifier-free guidance: uncond + cond in one batch-2 call; off at guidance_scale 1
        assert guidance > 1 and batches == {2} and batches_off == {1}


@pytest.mark.parametrize("kind", KINDS)
def test_step_inputs_match_the_pipeline(kind):
    """transformer_step_inputs gives the keys, shapes and dtypes the pipeline's denoising loop passes."""
    pipe = _pipe(kind)
    calls, handle = _record_transformer_calls(pipe)
    try:
        _run(pipe, kind, num_inference_steps=2)
    finally:
        handle.remove()
    batch = calls[0]["hidden_states"].shape[0]
    ours = tm.transformer_step_inputs(pipe.transformer, kind, step=0, batch_size=batch)
    assert set(ours) == set(calls[0]), kind
    for key, value in calls[0].items():
        mine = ours[key]
        if torch.is_tensor(value):
            assert mine.shape == value.shape and mine.dtype == value.dtype, key
        elif isinstance(value, dict):
            assert set(mine) == set(value), key
        else:
            assert mine == value, key


@pytest.mark.parametrize("kind", KINDS)
def test_step_inputs_forward(kind):
    transformer = tm.tiny_transformer(kind)
    inputs = [tm.transformer_step_inputs(transformer, kind, step) for step in range(3)]
    assert all(kw["return_dict"] is False for kw in inputs)
    again = tm.transformer_step_inputs(transformer, kind, 1)
    assert all(torch.equal(v, inputs[1][k]) for k, v in again.items() if torch.is_tensor(v)), "deterministic"
    assert not torch.equal(inputs[0]["hidden_states"], inputs[1]["hidden_states"]), "latents seeded by step"
    assert torch.equal(inputs[0]["encoder_hidden_states"], inputs[1]["encoder_hidden_states"]), "text fixed"
    ts = [float(kw["timestep"][0]) for kw in inputs]
    assert ts[0] > ts[1] > ts[2] >= 0
    for kw in inputs:
        assert kw["hidden_states"].shape[0] == 2
        with torch.no_grad():
            out = transformer(**kw)
        assert isinstance(out, tuple)
        sample = out[0]
        expected = list(kw["hidden_states"].shape)
        if kind == "pixart":
            expected[1] = transformer.config.out_channels  # learned sigma: 2 x in_channels
        assert list(sample.shape) == expected and torch.isfinite(sample).all()
    batch3 = tm.transformer_step_inputs(transformer, kind, 0, batch_size=3)
    with torch.no_grad():
        assert transformer(**batch3)[0].shape[0] == 3


def test_transformer_structure():
    pixart = tm.tiny_pixart_transformer()
    assert pixart.config.out_channels == 2 * pixart.config.in_channels and len(pixart.transformer_blocks) == 2
    assert pixart.config.caption_channels == tm.T5_D_MODEL and pixart.config.norm_type == "ada_norm_single"
    assert len(tm.tiny_pixart_transformer(num_layers=4).transformer_blocks) == 4

    flux = tm.tiny_flux_transformer(num_layers=1, num_single_layers=3)
    assert flux.config.guidance_embeds
    assert sum(flux.config.axes_dims_rope) == flux.config.attention_head_dim
    assert len(flux.transformer_blocks) == 1 and len(flux.single_transformer_blocks) == 3

    sd3 = tm.tiny_sd3_transformer()
    blocks = sd3.transformer_blocks
    assert len(blocks) == 3 and blocks[0].attn2 is not None
    assert all(getattr(b, "attn2", None) is None for b in blocks[1:])
    assert blocks[-1].context_pre_only and blocks[-1].ff_context is None
    assert all(b.ff_context is not None for b in blocks[:-1])
    sd30 = tm.tiny_sd3_transformer(dual_attention_layers=())
    assert all(getattr(b, "attn2", None) is None for b in sd30.transformer_blocks)


def test_builders_are_deterministic_and_leave_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b = tm.tiny_sd3_transformer(seed=3), tm.tiny_sd3_transformer(seed=3)
    assert torch.equal(state, torch.get_rng_state())
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = tm.tiny_sd3_transformer(seed=4)
    assert not torch.equal(sa["proj_out.weight"], c.state_dict()["proj_out.weight"])
    assert all(p.dtype == torch.float32 for p in a.parameters())


def test_tokenizers_and_clip_pooling():
    clip_tok = tm.tiny_clip_tokenizer()
    assert clip_tok.model_max_length == 77
    # CLIP convention: bos, eos last in the vocabulary; pad = eos
    assert (clip_tok.bos_token_id, clip_tok.eos_token_id) == (len(clip_tok) - 2, len(clip_tok) - 1)
    assert clip_tok.pad_token_id == clip_tok.eos_token_id
    ids = clip_tok("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert ids[0] == clip_tok.bos_token_id and len(ids) == 77
    assert clip_tok.convert_ids_to_tokens(ids[1:6]) == ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"]
    assert ids[6] == clip_tok.eos_token_id

    encoder = tm.tiny_clip_text_encoder(clip_tok)
    assert encoder.config.eos_token_id == clip_tok.eos_token_id != 2
    assert encoder.config.bos_token_id == clip_tok.bos_token_id
    with torch.no_grad():
        out = encoder(torch.tensor([ids]))
    assert torch.equal(out.pooler_output[0], out.last_hidden_state[0, 6]), "pools at the first eos"

    t5_tok = tm.tiny_t5_tokenizer()
    assert (t5_tok.pad_token_id, t5_tok.eos_token_id, t5_tok.unk_token_id) == (0, 1, 2)
    enc = t5_tok("a photo of a cat", padding="max_length", max_length=8)
    assert t5_tok.convert_ids_to_tokens(enc.input_ids[:6]) == ["\u2581a", "\u2581photo", "\u2581of", "\u2581a",
                                                               "\u2581cat", "</s>"]
    assert enc.input_ids[6:] == [0, 0] and enc.attention_mask == [1] * 6 + [0, 0]
    assert t5_tok.unk_token_id not in t5_tok("zebra xylophone 42").input_ids, "unknown words fall back to characters"
