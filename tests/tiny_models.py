"""Tiny random-weight diffusers transformers and pipelines for tests: offline, deterministic, fast on CPU.

Everything is built from configs in this file (nothing is downloaded): the transformers, a tiny
``AutoencoderKL``, tiny T5 / CLIP text encoders and tokenizers built with the ``tokenizers``
library over a small vocabulary, and the schedulers the real checkpoints ship with.

* ``tiny_{pixart,flux,sd3}_transformer(seed=0, ...)``: the transformer alone.
* ``tiny_{pixart,flux,sd3}_pipeline(seed=0)``: a full ``PixArtAlphaPipeline`` / ``FluxPipeline`` /
  ``StableDiffusion3Pipeline``; call it with ``**pipeline_call_kwargs(kind)``.
* ``save_tiny_pipeline(pipe, path)`` / ``load_tiny_pipeline(path)``: ``save_pretrained`` with
  safetensors / ``DiffusionPipeline.from_pretrained`` plus :func:`realign_weights` (bit-identical images).
* ``transformer_step_inputs(transformer, kind, step)``: kwargs for one transformer forward, shaped
  like what the pipeline's denoising loop passes at that step.

All weights are float32 and a pure function of ``seed`` (the global torch RNG is left untouched).
Sizes: latents 8x8 (VAE scale factor 8, so 64x64 images), PixArt/SD3 patch 2 and FLUX 2x2 packing,
i.e. 16 image tokens per image.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch

KINDS = ("pixart", "flux", "sd3")

TINY_PROMPTS = [
    "a photo of a cat",
    "a red car on a road at night",
    "a watercolor painting of a mountain lake",
    "an astronaut riding a horse",
]

#: Image size (pixels) the tiny pipelines generate by default: 8x8 latents with the 8x VAE.
TINY_IMAGE_SIZE = 64
#: Latent side length matching ``TINY_IMAGE_SIZE`` (the transformers' ``sample_size``).
TINY_LATENT_SIZE = 8
#: T5 tokens the pipelines are called with (``max_sequence_length``).
TINY_MAX_SEQUENCE_LENGTH = 16
#: CLIP tokenizer length; SD3 always encodes 77 CLIP tokens in front of the T5 ones.
CLIP_MAX_LENGTH = 77

# text-encoder widths (the transformers' conditioning widths follow from these)
T5_D_MODEL = 32
CLIP_L_HIDDEN = 16  # FLUX pooled projection; SD3 text_encoder
CLIP_G_HIDDEN = 8  # SD3 text_encoder_2 (CLIP-L + CLIP-G widths are zero-padded up to T5's in SD3)

# seed offsets so that no two components of one pipeline share an initial RNG state
_OFFSET = {"transformer": 0, "vae": 1, "t5": 2, "clip": 3, "clip_2": 4}


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU RNG for a block and restore the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (restoring the thread count after).

    The tiny models' ops are microseconds long, so intra-op threading only adds synchronisation:
    on a busy 2-core box a tiny pipeline call takes 0.05-0.1 s on 1 thread but 0.5-8 s on 2.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _init(cls, seed: int, *args, **kwargs):
    with _seeded(seed):
        model = cls(*args, **kwargs)
    # no model.to(float32): it is float32 already, and diffusers' .to(dtype) logs a warning per model
    assert all(p.dtype == torch.float32 for p in model.parameters()), f"{cls.__name__} is not float32"
    return model.eval()


# --------------------------------------------------------------------------------------------
# transformers
# --------------------------------------------------------------------------------------------

def tiny_pixart_config(num_layers: int = 2, **overrides) -> dict:
    """A PixArt-alpha-like ``PixArtTransformer2DModel`` config (learned sigma: out_channels = 2 x in_channels).

    ``use_additional_conditions=True`` (PixArt-1024's resolution/aspect-ratio embedding) needs an
    inner width (heads x head_dim) divisible by 3, e.g. ``num_attention_heads=3``.
    """
    cfg = dict(
        sample_size=TINY_LATENT_SIZE,
        patch_size=2,
        in_channels=4,
        out_channels=8,
        num_layers=num_layers,
        num_attention_heads=2,
        attention_head_dim=8,
        caption_channels=T5_D_MODEL,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
        num_embeds_ada_norm=1000,
        activation_fn="gelu-approximate",
        attention_bias=True,
        use_additional_conditions=False,
    )
    cfg.update(overrides)
    # attn2 attends to the caption projected to the inner width (1152 in PixArt-XL)
    cfg.setdefault("cross_attention_dim", cfg["num_attention_heads"] * cfg["attention_head_dim"])
    return cfg


def tiny_flux_config(num_layers: int = 2, num_single_layers: int = 2, **overrides) -> dict:
    """A FLUX.1-dev-like ``FluxTransformer2DModel`` config (guidance-distilled: ``guidance_embeds=True``)."""
    cfg = dict(
        patch_size=1,
        in_channels=64,  # 16 VAE latent channels x 2x2 packing
        num_layers=num_layers,
        num_single_layers=num_single_layers,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=T5_D_MODEL,
        pooled_projection_dim=CLIP_L_HIDDEN,
        guidance_embeds=True,
        axes_dims_rope=(2, 2, 4),  # sums to attention_head_dim; each even
    )
    cfg.update(overrides)
    return cfg


def tiny_sd3_config(num_layers: int = 3, dual_attention_layers=(0,), **overrides) -> dict:
    """An SD3.5-Medium-like ``SD3Transformer2DModel`` config.

    Blocks listed in ``dual_attention_layers`` have ``attn2``; the last block is ``context_pre_only``
    (no ``ff_context``).
    """
    cfg = dict(
        sample_size=TINY_LATENT_SIZE,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=num_layers,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=T5_D_MODEL,
        pooled_projection_dim=CLIP_L_HIDDEN + CLIP_G_HIDDEN,
        pos_embed_max_size=32,
        dual_attention_layers=tuple(dual_attention_layers),
        qk_norm="rms_norm" if dual_attention_layers else None,
    )
    cfg.update(overrides)
    # the context embedder projects T5/CLIP features to the inner width (1536 in SD3-medium)
    cfg.setdefault("caption_projection_dim", cfg["num_attention_heads"] * cfg["attention_head_dim"])
    return cfg


def tiny_pixart_transformer(seed: int = 0, num_layers: int = 2, **overrides):
    """A random ``PixArtTransformer2DModel`` (float32, eval mode); see :func:`tiny_pixart_config`."""
    from diffusers import PixArtTransformer2DModel

    return _init(PixArtTransformer2DModel, seed + _OFFSET["transformer"], **tiny_pixart_config(num_layers, **overrides))


def tiny_flux_transformer(seed: int = 0, num_layers: int = 2, num_single_layers: int = 2, **overrides):
    """A random ``FluxTransformer2DModel`` (float32, eval mode); see :func:`tiny_flux_config`."""
    from diffusers import FluxTransformer2DModel

    cfg = tiny_flux_config(num_layers, num_single_layers, **overrides)
    return _init(FluxTransformer2DModel, seed + _OFFSET["transformer"], **cfg)


def tiny_sd3_transformer(seed: int = 0, num_layers: int = 3, dual_attention_layers=(0,), **overrides):
    """A random ``SD3Transformer2DModel`` (float32, eval mode); see :func:`tiny_sd3_config`."""
    from diffusers import SD3Transformer2DModel

    cfg = tiny_sd3_config(num_layers, dual_attention_layers, **overrides)
    return _init(SD3Transformer2DModel, seed + _OFFSET["transformer"], **cfg)


def tiny_transformer(kind: str, seed: int = 0, **kwargs):
    """``tiny_<kind>_transformer(seed, **kwargs)`` for ``kind`` in :data:`KINDS`."""
    return {"pixart": tiny_pixart_transformer, "flux": tiny_flux_transformer, "sd3": tiny_sd3_transformer}[
        _check_kind(kind)
    ](seed, **kwargs)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    return kind


# --------------------------------------------------------------------------------------------
# VAE, text encoders, tokenizers, schedulers
# --------------------------------------------------------------------------------------------

#: What the pipelines read from ``vae.config``: ``block_out_channels`` (scale factor
#: ``2 ** (len - 1)``), ``scaling_factor``, and for FLUX/SD3 ``shift_factor`` (must not be None).
#: ``latent_channels`` must equal the transformer's ``in_channels`` (SD3, PixArt) or
#: ``in_channels // 4`` (FLUX).
_VAE_LATENTS = {
    "pixart": dict(latent_channels=4, scaling_factor=0.18215, shift_factor=None),  # SD / PixArt VAE
    "flux": dict(latent_channels=16, scaling_factor=0.3611, shift_factor=0.1159,
                 use_quant_conv=False, use_post_quant_conv=False),
    "sd3": dict(latent_channels=16, scaling_factor=1.5305, shift_factor=0.0609,
                use_quant_conv=False, use_post_quant_conv=False),
}


def tiny_vae(kind: str, seed: int = 0):
    """A random 4-level ``AutoencoderKL`` (scale factor 8) with the latent config of ``kind``'s real VAE."""
    from diffusers import AutoencoderKL

    return _init(
        AutoencoderKL,
        seed + _OFFSET["vae"],
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=TINY_IMAGE_SIZE,
        **_VAE_LATENTS[_check_kind(kind)],
    )


_WORDS = sorted({w for p in TINY_PROMPTS for w in p.split()} | set(
    "a an the of on in at with and photo painting picture cat dog horse car road night day red blue green "
    "white black mountain lake city tree sky sun astronaut riding watercolor portrait small large".split()
))
_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()"


def tiny_t5_tokenizer():
    """A ``T5TokenizerFast`` over a small Unigram vocabulary: ``<pad>``=0, ``</s>``=1, ``<unk>``=2 (as in T5).

    Whole words of :data:`TINY_PROMPTS` (and some more) are single pieces; any other text falls back
    to characters, unknown characters to ``<unk>``. Survives ``save_pretrained``/``from_pretrained``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -4.0)]
    pieces += [("\u2581" + w, -6.0) for w in _WORDS]
    seen = {p for p, _ in pieces}
    for c in _CHARS:  # characters inside a word, and starting one
        for piece, score in ((c, -10.0), ("\u2581" + c, -11.0)):
            if piece not in seen:
                pieces.append((piece, score))
                seen.add(piece)
    backend = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")]
    )
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=backend, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=0,
        model_max_length=512,
    )


def tiny_clip_tokenizer():
    """A byte-level BPE ``CLIPTokenizer`` like OpenAI CLIP's, over a small vocabulary.

    Vocabulary: the 256 byte symbols, each also with the end-of-word suffix ``</w>``, merges that
    spell the words of :data:`TINY_PROMPTS` (and some more), then ``<|startoftext|>`` and
    ``<|endoftext|>`` as the last two ids (as in CLIP, where eos is the largest id, so both CLIP
    pooling rules (first eos / argmax id) pick the eos position). pad = unk = eos, as in CLIP-L.
    ``model_max_length`` 77.
    """
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for s in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(s, len(vocab))
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in _WORDS:  # add merges until BPE (rank order, as tokenizers applies it) spells the word whole
        symbols = list(word.lower()[:-1]) + [word.lower()[-1] + "</w>"]
        while len(tokens := _apply_bpe(symbols, ranks)) > 1:
            pair = (tokens[0], tokens[1])
            ranks[pair] = len(merges)
            merges.append(pair)
            vocab.setdefault(pair[0] + pair[1], len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_LENGTH)


def _apply_bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word: repeatedly merge the adjacent pair of lowest rank."""
    tokens = list(symbols)
    while len(tokens) > 1:
        rank, i = min((ranks.get(pair, len(ranks)), i) for i, pair in enumerate(zip(tokens, tokens[1:])))
        if rank == len(ranks):
            break
        tokens[i : i + 2] = [tokens[i] + tokens[i + 1]]
    return tokens


def tiny_t5_encoder(vocab_size: int, seed: int = 0):
    """A random 2-layer ``T5EncoderModel`` (v1.1 style gated-gelu), ``d_model`` = :data:`T5_D_MODEL`."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size, d_model=T5_D_MODEL, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=32, dropout_rate=0.0,
        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    return _init(T5EncoderModel, seed + _OFFSET["t5"], config)


def tiny_clip_text_encoder(tokenizer, hidden_size: int = CLIP_L_HIDDEN, with_projection: bool = False,
                           seed: int = 0, offset: str = "clip"):
    """A random 2-layer ``CLIPTextModel`` (or ``CLIPTextModelWithProjection``, ``projection_dim`` = hidden).

    ``bos/eos/pad_token_id`` are taken from ``tokenizer``: CLIP pools the hidden state at the first
    ``eos_token_id`` (or, for the legacy ``eos_token_id == 2``, at the largest input id).
    """
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        projection_dim=hidden_size, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=CLIP_MAX_LENGTH, hidden_act="quick_gelu", layer_norm_eps=1e-5,
        attention_dropout=0.0, dropout=0.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return _init(cls, seed + _OFFSET[offset], config)


def tiny_scheduler(kind: str):
    """The scheduler the real checkpoints ship (PixArt-alpha: DPM-Solver++; FLUX.1-dev / SD3: flow-match Euler)."""
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

    if _check_kind(kind) == "pixart":
        return DPMSolverMultistepScheduler(
            num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
            prediction_type="epsilon", solver_order=2, algorithm_type="dpmsolver++", solver_type="midpoint",
            lower_order_final=True, use_karras_sigmas=False, timestep_spacing="linspace", steps_offset=0,
        )
    if kind == "flux":
        return FlowMatchEulerDiscreteScheduler(
            num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
            base_image_seq_len=256, max_image_seq_len=4096,
        )
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)


# --------------------------------------------------------------------------------------------
# pipelines
# --------------------------------------------------------------------------------------------

#: Calibration prompts of the search tests (``prompts.txt`` beside conftest's ``tiny_dir``).
SEARCH_PROMPTS = ["a photo of a cat", "a red car on a road at night"]


def tiny_pixart_pipeline(seed: int = 0, **transformer_overrides):
    """A ``PixArtAlphaPipeline``: tiny PixArt transformer, SD-style 4-channel VAE, tiny T5, DPM-Solver++."""
    from diffusers import PixArtAlphaPipeline

    tokenizer = tiny_t5_tokenizer()
    return PixArtAlphaPipeline(
        tokenizer=tokenizer,
        text_encoder=tiny_t5_encoder(len(tokenizer), seed),
        vae=tiny_vae("pixart", seed),
        transformer=tiny_pixart_transformer(seed, **transformer_overrides),
        scheduler=tiny_scheduler("pixart"),
    )


def tiny_flux_pipeline(seed: int = 0, **transformer_overrides):
    """A ``FluxPipeline``: tiny FLUX.1-dev-like transformer, 16-channel VAE, tiny CLIP-L + T5, flow-match Euler."""
    from diffusers import FluxPipeline

    clip_tok, t5_tok = tiny_clip_tokenizer(), tiny_t5_tokenizer()
    return FluxPipeline(
        scheduler=tiny_scheduler("flux"),
        vae=tiny_vae("flux", seed),
        text_encoder=tiny_clip_text_encoder(clip_tok, CLIP_L_HIDDEN, with_projection=False, seed=seed),
        tokenizer=clip_tok,
        text_encoder_2=tiny_t5_encoder(len(t5_tok), seed),
        tokenizer_2=t5_tok,
        transformer=tiny_flux_transformer(seed, **transformer_overrides),
    )


def tiny_sd3_pipeline(seed: int = 0, **transformer_overrides):
    """A ``StableDiffusion3Pipeline``: tiny SD3.5-like transformer, 16-channel VAE, two tiny CLIPs (with
    projection) + T5, flow-match Euler (shift 3)."""
    from diffusers import StableDiffusion3Pipeline

    clip_tok, clip_tok_2, t5_tok = tiny_clip_tokenizer(), tiny_clip_tokenizer(), tiny_t5_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=tiny_sd3_transformer(seed, **transformer_overrides),
        scheduler=tiny_scheduler("sd3"),
        vae=tiny_vae("sd3", seed),
        text_encoder=tiny_clip_text_encoder(clip_tok, CLIP_L_HIDDEN, with_projection=True, seed=seed),
        tokenizer=clip_tok,
        text_encoder_2=tiny_clip_text_encoder(clip_tok_2, CLIP_G_HIDDEN, with_projection=True, seed=seed,
                                              offset="clip_2"),
        tokenizer_2=clip_tok_2,
        text_encoder_3=tiny_t5_encoder(len(t5_tok), seed),
        tokenizer_3=t5_tok,
    )


def tiny_pipeline(kind: str, seed: int = 0, **transformer_overrides):
    """``tiny_<kind>_pipeline(seed)`` for ``kind`` in :data:`KINDS`."""
    return {"pixart": tiny_pixart_pipeline, "flux": tiny_flux_pipeline, "sd3": tiny_sd3_pipeline}[
        _check_kind(kind)
    ](seed, **transformer_overrides)


def pipeline_call_kwargs(kind: str, num_inference_steps: int = 4, **overrides) -> dict:
    """Keyword arguments that make ``tiny_<kind>_pipeline()(prompt, **kwargs)`` run in well under a second.

    Add ``generator=torch.Generator().manual_seed(0)`` for reproducible images. ``output_type`` is
    ``"pt"``. CFG is on for PixArt (4.5) and SD3 (7.0); FLUX.1-dev is guidance-distilled
    (``guidance_scale`` feeds the guidance embedding, one transformer call per step).
    """
    kw: dict[str, Any] = dict(
        height=TINY_IMAGE_SIZE,
        width=TINY_IMAGE_SIZE,
        num_inference_steps=num_inference_steps,
        max_sequence_length=TINY_MAX_SEQUENCE_LENGTH,
        output_type="pt",
    )
    if _check_kind(kind) == "pixart":
        # sample_size 8 has no aspect-ratio bin table; captions are plain ASCII
        kw.update(guidance_scale=4.5, use_resolution_binning=False, clean_caption=False)
    elif kind == "flux":
        kw.update(guidance_scale=3.5)
    else:
        kw.update(guidance_scale=7.0)
    kw.update(overrides)
    return kw


def save_tiny_pipeline(pipe, path: str | os.PathLike) -> str:
    """``pipe.save_pretrained(path)`` with safetensors; returns ``path`` as a string.

    Reload with :func:`load_tiny_pipeline` (bit-identical images) or plain
    ``DiffusionPipeline.from_pretrained(path)`` (same weights, see :func:`realign_weights`).
    """
    path = os.fspath(path)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def realign_weights(pipe_or_module):
    """Copy every parameter and buffer into freshly allocated memory; returns the argument.

    Weights loaded from safetensors live at 8-byte-aligned addresses, and CPU matmul kernels take a
    different path for such operands on some shapes (e.g. the batch-1 FLUX forward), so a reloaded
    pipeline's images can differ from the original's by ~1e-6 although the weights are equal. After
    this copy (64-byte-aligned, like a freshly built model) the outputs are bit-identical.
    """
    modules = ([c for c in pipe_or_module.components.values() if isinstance(c, torch.nn.Module)]
               if hasattr(pipe_or_module, "components") else [pipe_or_module])
    with torch.no_grad():
        for module in modules:
            for m in module.modules():
                for p in m.parameters(recurse=False):
                    p.data = p.data.clone(memory_format=torch.contiguous_format)
                for name, b in m._buffers.items():
                    if b is not None:
                        m._buffers[name] = b.clone(memory_format=torch.contiguous_format)
    return pipe_or_module


def load_tiny_pipeline(path: str | os.PathLike):
    """``DiffusionPipeline.from_pretrained(path)`` from a local folder (no Hub access), then :func:`realign_weights`."""
    from diffusers import DiffusionPipeline

    return realign_weights(DiffusionPipeline.from_pretrained(os.fspath(path), local_files_only=True))


# --------------------------------------------------------------------------------------------
# single-step transformer inputs
# --------------------------------------------------------------------------------------------

def transformer_step_inputs(transformer, kind: str, step: int, batch_size: int = 2, seed: int = 0, *,
                            num_steps: int = 10, text_len: int = TINY_MAX_SEQUENCE_LENGTH,
                            latent_size: int | None = None, guidance_scale: float = 3.5) -> dict:
    """Keyword arguments for one ``transformer(**kwargs)`` forward at denoising ``step``, as the pipeline passes them.

    ``hidden_states`` are random, seeded by ``(seed, step)``; text conditioning is seeded by ``seed``
    only (it is the same at every step of a real run). The timestep decreases linearly with
    ``step`` over ``num_steps`` (clamped at the end): PixArt gets an int64 DDPM timestep in [0, 999],
    SD3 a float ``1000 * sigma``, FLUX ``sigma`` (the pipeline divides by 1000). ``text_len`` is
    the T5 length (SD3 prepends 77 CLIP tokens); ``latent_size`` defaults to the config's
    ``sample_size`` (8 for FLUX, which has none). Always includes ``return_dict=False``.
    """
    _check_kind(kind)
    cfg = transformer.config
    param = next(transformer.parameters())
    device, dtype = param.device, param.dtype
    size = int(latent_size or cfg.get("sample_size", TINY_LATENT_SIZE))
    frac = min(max(step, 0), num_steps) / num_steps  # 0 at the first step, 1 after the last
    g_text = torch.Generator().manual_seed(seed)
    g_step = torch.Generator().manual_seed(seed * 1_000_003 + step + 1)

    def randn(g, *shape):
        return torch.randn(*shape, generator=g, dtype=torch.float32).to(device=device, dtype=dtype)

    if kind == "pixart":
        t = round(999 * (1 - frac))
        # T5 tokens followed by padding, as the tokenizer pads to max_sequence_length
        mask = torch.zeros(batch_size, text_len, dtype=torch.int64)
        mask[:, : max(1, text_len // 2)] = 1
        added = {"resolution": None, "aspect_ratio": None}
        if cfg.use_additional_conditions:
            px = float(size * 8)
            added = {"resolution": torch.tensor([[px, px]] * batch_size, dtype=dtype, device=device),
                     "aspect_ratio": torch.ones(batch_size, 1, dtype=dtype, device=device)}
        return dict(
            hidden_states=randn(g_step, batch_size, cfg.in_channels, size, size),
            encoder_hidden_states=randn(g_text, batch_size, text_len, cfg.caption_channels),
            encoder_attention_mask=mask.to(device),
            timestep=torch.tensor([t], dtype=torch.int64, device=device).expand(batch_size),
            added_cond_kwargs=added,
            return_dict=False,
        )

    sigma = 1.0 - frac * (1.0 - 1.0 / num_steps)  # 1 ... 1/num_steps, like the FLUX/SD3 sigma grids
    if kind == "flux":
        if size % 2:
            raise ValueError("FLUX packs 2x2 latent patches: latent_size must be even")
        h = w = size // 2
        img_ids = torch.zeros(h, w, 3)
        img_ids[..., 1] += torch.arange(h)[:, None]
        img_ids[..., 2] += torch.arange(w)[None, :]
        kw = dict(
            hidden_states=randn(g_step, batch_size, h * w, cfg.in_channels),
            timestep=torch.full((batch_size,), sigma, dtype=dtype, device=device),  # = t / 1000
            guidance=(torch.full((batch_size,), guidance_scale, dtype=torch.float32, device=device)
                      if cfg.guidance_embeds else None),
            pooled_projections=randn(g_text, batch_size, cfg.pooled_projection_dim),
            encoder_hidden_states=randn(g_text, batch_size, text_len, cfg.joint_attention_dim),
            txt_ids=torch.zeros(text_len, 3, dtype=dtype, device=device),
            img_ids=img_ids.reshape(h * w, 3).to(device=device, dtype=dtype),
            joint_attention_kwargs={},
            return_dict=False,
        )
        return kw

    # sd3
    return dict(
        hidden_states=randn(g_step, batch_size, cfg.in_channels, size, size),
        timestep=torch.full((batch_size,), 1000.0 * sigma, dtype=dtype, device=device),
        encoder_hidden_states=randn(g_text, batch_size, CLIP_MAX_LENGTH + text_len, cfg.joint_attention_dim),
        pooled_projections=randn(g_text, batch_size, cfg.pooled_projection_dim),
        joint_attention_kwargs=None,
        return_dict=False,
    )
