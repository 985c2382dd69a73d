"""Allegro (``AllegroTransformer3DModel``): one group of PixArt-style blocks over video tokens.

Each ``AllegroTransformerBlock``: adaLN-single-modulated self-attention with 3D RoPE (``attn1``),
un-normed cross-attention on the T5 caption (``attn2``) and a gated feed-forward (``ff``). The
pipeline computes the RoPE tables once per call and passes them as ``image_rotary_emb``; the
VAE compresses 8x spatially and 4x in time (an even frame count maps to ``frames / 4`` latent
frames, an odd one to ``(frames - 1) / 4 + 1``).
"""

from __future__ import annotations

import math

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg

COMPONENTS = ("attn1", "attn2", "ff")


class AllegroAdapter(ArchitectureAdapter):
    """Allegro (``AllegroTransformer3DModel``): 1 group of blocks x {attn1, attn2, ff}."""

    transformer_class = "AllegroTransformer3DModel"
    family = "allegro"
    checkpoints = ("Allegro",)
    default_text_len = 512  # AllegroPipeline's max_sequence_length
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "cross": "attn2", "cross_attn": "attn2",
                         "mlp": "ff"}
    temporal_compression = 4  # AutoencoderKLAllegro
    default_num_frames = 88  # AllegroPipeline's default: 22 latent frames

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (BlockGroup("transformer_blocks", int(config.get("num_layers", 32)), COMPONENTS),),
        )

    def latent_frame_count(self, num_frames, temporal_factor=None):
        """AllegroPipeline.prepare_latents: ``ceil(n / f)`` frames for an even ``n``, ``ceil((n - 1) / f) + 1``
        for an odd one."""
        factor = int(temporal_factor or self.temporal_compression)
        if num_frames < 1:
            raise ValueError(f"num_frames must be positive for {self.transformer_class}, got {num_frames}")
        if num_frames % 2 == 0:
            return math.ceil(num_frames / factor)
        return math.ceil((num_frames - 1) / factor) + 1

    def fast_path(self, block):
        if type(block).__name__ != "AllegroTransformerBlock" or getattr(block, "attn2", None) is None:
            return None
        return _allegro_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        frames = int(latent_frames if latent_frames is not None else
                     self.latent_frame_count(self.default_num_frames))
        p = int(config.get("patch_size", 2))
        if latent_height % p or latent_width % p:
            raise ValueError(f"Allegro patches {p}x{p} latents: got {latent_height}x{latent_width}")
        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 4), frames, latent_height, latent_width,
                                      device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("caption_channels", 4096), device=device),
            encoder_attention_mask=torch.ones(batch_size, text_len, dtype=torch.long, device=device),
            timestep=torch.ones(batch_size, device=device),
            image_rotary_emb=rotary_embeddings(config, frames, latent_height // p, latent_width // p, device),
        )

    def default_resolution(self, config, vae_scale_factor):
        return int(config.get("sample_height", 90)) * int(vae_scale_factor)  # 720 (width 1280)

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, pm, ne, nm = pipe.encode_prompt(
            prompts, do_classifier_free_guidance=cfg, negative_prompt="", num_videos_per_prompt=1,
            device=device, clean_caption=False, max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": pe, "prompt_attention_mask": pm}
        if cfg:
            out.update(negative_prompt_embeds=ne, negative_prompt_attention_mask=nm)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        kw = dict(clean_caption=False, max_sequence_length=settings["max_sequence_length"])  # the cleaner needs bs4/ftfy
        if prompt_embeds:
            kw["negative_prompt"] = None  # the negative embeddings are passed instead
        return kw


def rotary_embeddings(config, frames: int, grid_height: int, grid_width: int, device):
    """``AllegroPipeline._prepare_rotary_positional_embeddings`` for a latent grid of patches."""
    import torch
    from diffusers.models.embeddings import get_3d_rotary_pos_embed_allegro

    freqs_t, freqs_h, freqs_w, grid_t, grid_h, grid_w = get_3d_rotary_pos_embed_allegro(
        embed_dim=config.get("attention_head_dim", 96),
        crops_coords=((0, 0), (grid_height, grid_width)),
        grid_size=(grid_height, grid_width),
        temporal_size=frames,
        interpolation_scale=(config.get("interpolation_scale_t", 2.2), config.get("interpolation_scale_h", 2.0),
                             config.get("interpolation_scale_w", 2.0)),
        device="cpu",
    )
    pos = torch.cartesian_prod(grid_t.to(torch.long), grid_h.to(torch.long), grid_w.to(torch.long))
    pos = pos.reshape(-1, 3).transpose(0, 1).reshape(3, 1, -1).contiguous()
    freqs = tuple(tuple(t.to(device) for t in f) for f in (freqs_t, freqs_h, freqs_w))
    return freqs, tuple(g.to(device) for g in pos)


def _allegro_block_fast(block, cached, args, kwargs):
    """``AllegroTransformerBlock``: gated self-attention, plain cross-attention, gated feed-forward."""
    if len(cached) != 3:
        return None
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    temb = arg(args, kwargs, "temb", 2)
    if hidden_states is None or temb is None:
        return None
    batch_size = hidden_states.shape[0]
    _, _, gate_msa, _, _, gate_mlp = (block.scale_shift_table[None] + temb.reshape(batch_size, 6, -1)).chunk(6, dim=1)
    attn_output = gate_msa * cached["attn1"]
    hidden_states = attn_output + hidden_states
    if hidden_states.ndim == 4:
        hidden_states = hidden_states.squeeze(1)
    hidden_states = cached["attn2"] + hidden_states
    ff_output = gate_mlp * cached["ff"]
    hidden_states = ff_output + hidden_states
    if hidden_states.ndim == 4:
        hidden_states = hidden_states.squeeze(1)
    return hidden_states


ADAPTERS = (AllegroAdapter(),)
