"""LTX-Video (``LTXVideoTransformer3DModel``): one group of ``LTXVideoTransformerBlock``.

Each block: RMS-normed, adaLN-modulated self-attention (``attn1``, 3D RoPE over the video tokens),
cross-attention on the T5 caption (``attn2``, no norm, no gate) and a gated feed-forward (``ff``).
The pipeline packs the latent video ``[B, C, F, H, W]`` into ``[B, F*H*W, C]`` tokens (patch size
1 in every released checkpoint) and passes the latent grid (``num_frames``, ``height``, ``width``)
for the RoPE. The VAE compresses 32x spatially and 8x in time.
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg

COMPONENTS = ("attn1", "attn2", "ff")


class LTXVideoAdapter(ArchitectureAdapter):
    """LTX-Video (``LTXVideoTransformer3DModel``): 1 group of blocks x {attn1, attn2, ff}."""

    transformer_class = "LTXVideoTransformer3DModel"
    family = "ltx-video"
    checkpoints = ("LTX-Video 2B 0.9.0/0.9.1/0.9.5", "LTX-Video 13B 0.9.7/0.9.8 dev/distilled")
    default_text_len = 128  # LTXPipeline's max_sequence_length
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "cross": "attn2", "cross_attn": "attn2",
                         "mlp": "ff"}
    temporal_compression = 8  # AutoencoderKLLTXVideo
    default_num_frames = 161  # LTXPipeline's default: 21 latent frames
    #: LTXPipeline's default frame rate (the RoPE's temporal interpolation scale is 8 / frame_rate)
    frame_rate = 25
    spatial_compression = 32

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (BlockGroup("transformer_blocks", int(config.get("num_layers", 28)), COMPONENTS),),
        )

    def fast_path(self, block):
        if type(block).__name__ != "LTXVideoTransformerBlock" or getattr(block, "scale_shift_table", None) is None:
            return None
        return _ltx_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        frames = int(latent_frames if latent_frames is not None else
                     self.latent_frame_count(self.default_num_frames))
        p, pt = int(config.get("patch_size", 1)), int(config.get("patch_size_t", 1))
        if latent_height % p or latent_width % p or frames % pt:
            raise ValueError(f"LTX-Video patches {pt}x{p}x{p} latents: got {frames}x{latent_height}x{latent_width}")
        grid = (frames // pt, latent_height // p, latent_width // p)
        tokens = grid[0] * grid[1] * grid[2]
        return dict(
            hidden_states=torch.zeros(batch_size, tokens, config.get("in_channels", 128), device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("caption_channels", 4096), device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_attention_mask=torch.ones(batch_size, text_len, dtype=torch.bool, device=device),
            num_frames=grid[0],
            height=grid[1],
            width=grid[2],
            rope_interpolation_scale=(self.temporal_compression / self.frame_rate, self.spatial_compression,
                                      self.spatial_compression),
        )

    def default_resolution(self, config, vae_scale_factor):
        return 512  # LTXPipeline's default height (width 704)

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


def _ltx_block_fast(block, cached, args, kwargs):
    """``LTXVideoTransformerBlock``: gated self-attention, plain cross-attention, gated feed-forward."""
    if len(cached) != 3:
        return None
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    temb = arg(args, kwargs, "temb", 2)
    if hidden_states is None or temb is None:
        return None
    batch_size = hidden_states.size(0)
    num_ada_params = block.scale_shift_table.shape[0]
    ada_values = block.scale_shift_table[None, None].to(temb.device) + temb.reshape(
        batch_size, temb.size(1), num_ada_params, -1)
    _, _, gate_msa, _, _, gate_mlp = ada_values.unbind(dim=2)
    hidden_states = hidden_states + cached["attn1"] * gate_msa
    hidden_states = hidden_states + cached["attn2"]
    hidden_states = hidden_states + cached["ff"] * gate_mlp
    return hidden_states


ADAPTERS = (LTXVideoAdapter(),)
