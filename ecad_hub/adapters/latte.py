"""Latte (``LatteTransformer3DModel``): interleaved spatial and temporal block groups.

The forward runs ``transformer_blocks[i]`` (spatial: self-attention over the patches of each
frame, cross-attention on the T5 caption, feed-forward) and then
``temporal_transformer_blocks[i]`` (self-attention over the frames at each patch position,
feed-forward; no cross-attention) for ``i = 0, 1, ...``. Both are PixArt-style
``BasicTransformerBlock`` s with ``norm_type="ada_norm_single"``; the spatial group runs first,
so it is listed first. Latte denoises image-VAE latents frame by frame: one latent frame per
video frame (temporal compression 1).
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg

SPATIAL = ("attn1", "attn2", "ff")
TEMPORAL = ("attn1", "ff")


class LatteAdapter(ArchitectureAdapter):
    """Latte (``LatteTransformer3DModel``): transformer_blocks x {attn1, attn2, ff}, then
    temporal_transformer_blocks x {attn1, ff}, interleaved block by block."""

    transformer_class = "LatteTransformer3DModel"
    family = "latte-video"
    checkpoints = ("Latte-1",)
    default_text_len = 120  # LattePipeline's T5 length (before mask_feature trims the padding)
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "cross": "attn2", "cross_attn": "attn2",
                         "mlp": "ff"}
    temporal_compression = 1  # frames are encoded one by one with an image VAE
    default_num_frames = 16  # LattePipeline's video_length

    def architecture(self, config):
        n = int(config.get("num_layers", 1))
        return Architecture(
            self.transformer_class,
            (BlockGroup("transformer_blocks", n, SPATIAL),
             BlockGroup("temporal_transformer_blocks", n, TEMPORAL)),
        )

    def fast_path(self, block):
        if (type(block).__name__ != "BasicTransformerBlock" or getattr(block, "norm_type", None) != "ada_norm_single"
                or getattr(block, "pos_embed", None) is not None):
            return None
        return _latte_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        frames = int(latent_frames if latent_frames is not None else self.default_num_frames)
        if frames > 1 and frames != int(config.get("video_length", 16)):
            raise ValueError(f"Latte adds a temporal embedding of video_length={config.get('video_length', 16)} "
                             f"frames: it cannot run {frames} frames")
        p = int(config.get("patch_size") or 2)
        if latent_height % p or latent_width % p:
            raise ValueError(f"Latte patches {p}x{p} latents: got {latent_height}x{latent_width}")
        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 4), frames, latent_height, latent_width,
                                      device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("caption_channels", 4096), device=device),
            enable_temporal_attentions=True,
        )

    def text_len(self, max_sequence_length):
        return 120  # LattePipeline always tokenizes to 120 T5 tokens

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        # LattePipeline's own batched encoding: 120 tokens per row, the padding features zeroed
        # (mask_feature; a single prompt would be trimmed to its length instead)
        cfg = self.uses_cfg(guidance_scale)
        pe, ne = pipe.encode_prompt(prompts, do_classifier_free_guidance=cfg, negative_prompt="",
                                    num_images_per_prompt=1, device=device, clean_caption=False,
                                    mask_feature=True)
        out = {"prompt_embeds": pe}
        if cfg:
            out["negative_prompt_embeds"] = ne
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        kw = dict(clean_caption=False)  # the caption cleaner needs bs4/ftfy
        if prompt_embeds:
            # already masked by encode_prompts; LattePipeline would mask given embeddings again when
            # no negative ones come with them (and fails on a batch of them)
            kw["mask_feature"] = False
            kw["negative_prompt"] = None  # the negative embeddings are passed instead
        return kw


def _latte_block_fast(block, cached, args, kwargs):
    """``BasicTransformerBlock`` with ``norm_type="ada_norm_single"``: Latte's spatial blocks (with
    ``attn2``) and temporal blocks (without)."""
    has_cross = block.attn2 is not None
    if len(cached) != (3 if has_cross else 2) or (kwargs.get("cross_attention_kwargs") or {}).get("gligen") is not None:
        return None
    if len(args) > 5 and args[5] and args[5].get("gligen") is not None:
        return None
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    timestep = arg(args, kwargs, "timestep", 4)
    if hidden_states is None or timestep is None:
        return None
    batch_size = hidden_states.shape[0]
    _, _, gate_msa, _, _, gate_mlp = (block.scale_shift_table[None] + timestep.reshape(batch_size, 6, -1)).chunk(6, dim=1)
    attn_output = gate_msa * cached["attn1"]
    hidden_states = attn_output + hidden_states
    if hidden_states.ndim == 4:
        hidden_states = hidden_states.squeeze(1)
    if has_cross:
        hidden_states = cached["attn2"] + hidden_states
    ff_output = gate_mlp * cached["ff"]
    hidden_states = ff_output + hidden_states
    if hidden_states.ndim == 4:
        hidden_states = hidden_states.squeeze(1)
    return hidden_states


ADAPTERS = (LatteAdapter(),)
