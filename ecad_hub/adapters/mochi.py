"""Mochi-1 (``MochiTransformer3DModel``): one group of asymmetric joint-attention blocks.

Each ``MochiTransformerBlock`` runs one joint attention over the video and caption tokens
(``attn1``, which returns both streams' outputs), a SwiGLU feed-forward on the video stream
(``ff``) and a narrower one on the caption stream (``ff_context``). The last block is
``context_pre_only``: the caption stream ends there, so it has no ``ff_context``.

Two lines of the diffusers forward cannot run on the ``meta`` device that MAC profiling uses:
the RoPE is built under ``torch.autocast(device_type)`` (no autocast for ``meta``) and the
attention processor keeps the caption tokens its mask marks valid with ``torch.nonzero`` (no
data-independent meta kernel). :meth:`MochiAdapter.model_class` therefore gives a subclass of the
diffusers class, of the same name, that runs those two steps without autocast and with "every mask
entry is set" (exact for the all-ones profile mask) on ``meta`` only, and is the diffusers class
unchanged on every other device. The conformance suite builds its Mochi models from it.
"""

from __future__ import annotations

import functools

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg

COMPONENTS = ("attn1", "ff", "ff_context")


class MochiAdapter(ArchitectureAdapter):
    """Mochi-1 (``MochiTransformer3DModel``): 1 group of blocks x {attn1, ff, ff_context}."""

    transformer_class = "MochiTransformer3DModel"
    family = "mochi"
    checkpoints = ("Mochi-1 preview",)
    default_text_len = 256  # MochiPipeline's max_sequence_length
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "mlp": "ff", "mlp_context": "ff_context"}
    temporal_compression = 6  # AutoencoderKLMochi
    default_num_frames = 19  # MochiPipeline's default: 4 latent frames

    def architecture(self, config):
        n = int(config.get("num_layers", 48))
        return Architecture(
            self.transformer_class,
            (BlockGroup("transformer_blocks", n, COMPONENTS, absent=frozenset({("ff_context", n - 1)})),),
        )

    def model_class(self):
        """The diffusers class with a ``meta``-device forward (see the module docstring)."""
        return _meta_safe_class()

    def fast_path(self, block):
        if type(block).__name__ != "MochiTransformerBlock" or not hasattr(block, "norm1"):
            return None
        return _mochi_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        frames = int(latent_frames if latent_frames is not None else
                     self.latent_frame_count(self.default_num_frames))
        p = int(config.get("patch_size", 2))
        if latent_height % p or latent_width % p:
            raise ValueError(f"Mochi patches {p}x{p} latents: got {latent_height}x{latent_width}")
        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 12), frames, latent_height, latent_width,
                                      device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("text_embed_dim", 4096), device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_attention_mask=torch.ones(batch_size, text_len, dtype=torch.bool, device=device),
        )

    def default_resolution(self, config, vae_scale_factor):
        return 480  # MochiPipeline's default height (width 848)

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        # negative_prompt=None: the pipeline's default negative prompt (empty)
        pe, pm, ne, nm = pipe.encode_prompt(
            prompt=prompts, negative_prompt=None, do_classifier_free_guidance=cfg,
            num_videos_per_prompt=1, max_sequence_length=max_sequence_length, device=device)
        out = {"prompt_embeds": pe, "prompt_attention_mask": pm}
        if cfg:
            out.update(negative_prompt_embeds=ne, negative_prompt_attention_mask=nm)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


@functools.lru_cache(maxsize=None)
def _meta_safe_class():
    import torch
    import torch.fx.experimental._config as fx_config
    from diffusers import MochiTransformer3DModel
    from diffusers.models.transformers.transformer_mochi import MochiRoPE

    class MetaSafeRoPE(MochiRoPE):
        def _create_rope(self, freqs, pos):
            if freqs.device.type != "meta":
                return super()._create_rope(freqs, pos)
            freqs = torch.einsum("nd,dhf->nhf", pos.to(torch.float32), freqs.to(torch.float32))
            return torch.cos(freqs), torch.sin(freqs)

    class MetaSafeMochi(MochiTransformer3DModel):
        def forward(self, *args, **kwargs):
            if self.pos_frequencies.device.type != "meta":
                return super().forward(*args, **kwargs)
            if type(self.rope) is MochiRoPE:
                self.rope.__class__ = MetaSafeRoPE  # no parameters or buffers: only the method changes
            with fx_config.patch(meta_nonzero_assume_all_nonzero=True):
                return super().forward(*args, **kwargs)

    MetaSafeMochi.__name__ = MetaSafeMochi.__qualname__ = MochiTransformer3DModel.__name__
    MetaSafeMochi.__module__ = __name__
    return MetaSafeMochi


def _mochi_block_fast(block, cached, args, kwargs):
    """``MochiTransformerBlock``: the modulated RMS norms of the kept outputs, gated into both streams."""
    import torch

    attention = cached.get("attn1")
    if "ff" not in cached or attention is None or (not block.context_pre_only and "ff_context" not in cached):
        return None
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = arg(args, kwargs, "encoder_hidden_states", 1)
    temb = arg(args, kwargs, "temb", 2)
    if hidden_states is None or encoder_hidden_states is None or temb is None:
        return None
    attn_hidden_states, context_attn_hidden_states = attention
    # MochiRMSNormZero's modulation, without the norm of the input it no longer needs
    emb = block.norm1.linear(block.norm1.silu(temb))
    _, gate_msa, _, gate_mlp = emb.chunk(4, dim=1)
    hidden_states = hidden_states + block.norm2(attn_hidden_states, torch.tanh(gate_msa).unsqueeze(1))
    hidden_states = hidden_states + block.norm4(cached["ff"], torch.tanh(gate_mlp).unsqueeze(1))
    if not block.context_pre_only:
        enc_emb = block.norm1_context.linear(block.norm1_context.silu(temb))
        _, enc_gate_msa, _, enc_gate_mlp = enc_emb.chunk(4, dim=1)
        encoder_hidden_states = encoder_hidden_states + block.norm2_context(
            context_attn_hidden_states, torch.tanh(enc_gate_msa).unsqueeze(1))
        encoder_hidden_states = encoder_hidden_states + block.norm4_context(
            cached["ff_context"], torch.tanh(enc_gate_mlp).unsqueeze(1))
    return hidden_states, encoder_hidden_states


ADAPTERS = (MochiAdapter(),)
