"""CogVideoX 1.0 / 1.5 (``CogVideoXTransformer3DModel``): one group of joint text-video blocks.

Each ``CogVideoXBlock`` runs ``attn1`` over the text and video tokens together and one ``ff`` over
their concatenation. CogVideoX-5b (and 1.5) take 3D rotary embeddings from the pipeline
(``image_rotary_emb``, computed here as the pipeline does); CogVideoX-2b adds sin-cos position
embeddings to the 226 text + video tokens inside the patch embedding.
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, arg

COMPONENTS = ("attn1", "ff")
#: the pipelines' spatial VAE factor, from which they compute the RoPE grid
VAE_SCALE_FACTOR = 8


class CogVideoXAdapter(ArchitectureAdapter):
    """CogVideoX (``CogVideoXTransformer3DModel``): ``transformer_blocks[i].{attn1, ff}``.

    The text length must be the config's ``max_text_seq_length`` (226) for the models with sin-cos
    position embeddings (CogVideoX-2b), which are laid out over that many text tokens.
    """

    transformer_class = "CogVideoXTransformer3DModel"
    family = "cogvideox"
    checkpoints = ("CogVideoX-2b", "CogVideoX-5b", "CogVideoX-5b-I2V", "CogVideoX1.5-5B", "CogVideoX1.5-5B-I2V")
    default_text_len = 226  # CogVideoXPipeline's max_sequence_length (T5 tokens)
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "mlp": "ff"}
    temporal_compression = 4  # AutoencoderKLCogVideoX
    default_num_frames = 49

    def architecture(self, config):
        return Architecture(self.transformer_class,
                            (BlockGroup("transformer_blocks", int(config.get("num_layers", 30)), COMPONENTS),))

    def fast_path(self, block):
        if type(block).__name__ != "CogVideoXBlock":
            return None
        for name in ("norm1", "norm2"):
            linear = getattr(getattr(block, name, None), "linear", None)
            if linear is None or linear.out_features % 6 or not hasattr(getattr(block, name), "silu"):
                return None
        return _cogvideox_block_fast

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        _check_patches(config, h, w)
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        _check_patches(config, latent_height, latent_width)
        frames = int(latent_frames or self.latent_frame_count(self.default_num_frames))
        p_t = config.get("patch_size_t")
        if p_t and frames % int(p_t):  # CogVideoX 1.5: the pipeline pads the latent frames to a multiple of p_t
            frames += int(p_t) - frames % int(p_t)
        use_rope = bool(config.get("use_rotary_positional_embeddings", False))
        max_text = int(config.get("max_text_seq_length", 226))
        if not use_rope and text_len != max_text:
            raise ValueError(f"{self.transformer_class} with sin-cos position embeddings takes exactly "
                             f"max_text_seq_length={max_text} text tokens, got {text_len}")
        kw = dict(
            hidden_states=torch.zeros(batch_size, frames, int(config.get("in_channels", 16)), latent_height,
                                      latent_width, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, int(config.get("text_embed_dim", 4096)),
                                              device=device),
            timestep=torch.ones(batch_size, dtype=torch.int64, device=device),
        )
        if config.get("ofs_embed_dim"):  # CogVideoX1.5-5B-I2V: the pipeline passes one ofs = 2.0 for the batch
            kw["ofs"] = torch.full((1,), 2.0, device=device)
        if use_rope:
            kw["image_rotary_emb"] = rotary_embeddings(config, latent_height, latent_width, frames, device)
        return kw

    def default_resolution(self, config, vae_scale_factor):
        return 480  # CogVideoX generates 480x720

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, ne = pipe.encode_prompt(prompt=prompts, negative_prompt="", do_classifier_free_guidance=cfg,
                                    num_videos_per_prompt=1, max_sequence_length=max_sequence_length, device=device)
        out = {"prompt_embeds": pe}
        if cfg:
            out["negative_prompt_embeds"] = ne
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        kw = {"max_sequence_length": settings["max_sequence_length"]}
        if settings.get("num_frames"):
            kw["num_frames"] = settings["num_frames"]
        return kw


def _check_patches(config, latent_height: int, latent_width: int) -> None:
    p = int(config.get("patch_size", 2))
    if latent_height % p or latent_width % p:
        raise ValueError(f"CogVideoXTransformer3DModel patches {p}x{p} latents: the latent height and width must be "
                         f"multiples of {p}, got {latent_height}x{latent_width}")


def rotary_embeddings(config, latent_height: int, latent_width: int, latent_frames: int, device):
    """``(freqs_cos, freqs_sin)`` as ``CogVideoXPipeline._prepare_rotary_positional_embeddings`` computes them."""
    from diffusers.models.embeddings import get_3d_rotary_pos_embed
    from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

    p = int(config.get("patch_size", 2))
    p_t = config.get("patch_size_t")
    grid_height, grid_width = latent_height // p, latent_width // p
    base_width = int(config.get("sample_width", 90)) // p
    base_height = int(config.get("sample_height", 60)) // p
    if p_t is None:  # CogVideoX 1.0
        crops = get_resize_crop_region_for_grid((grid_height, grid_width), base_width, base_height)
        return get_3d_rotary_pos_embed(embed_dim=int(config.get("attention_head_dim", 64)), crops_coords=crops,
                                       grid_size=(grid_height, grid_width), temporal_size=latent_frames, device=device)
    return get_3d_rotary_pos_embed(  # CogVideoX 1.5
        embed_dim=int(config.get("attention_head_dim", 64)), crops_coords=None, grid_size=(grid_height, grid_width),
        temporal_size=(latent_frames + int(p_t) - 1) // int(p_t), grid_type="slice",
        max_size=(base_height, base_width), device=device)


def _cogvideox_block_fast(block, cached, args, kwargs):
    """``CogVideoXBlock`` with ``attn1`` and ``ff`` reused."""
    hidden_states = arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = arg(args, kwargs, "encoder_hidden_states", 1)
    temb = arg(args, kwargs, "temb", 2)
    attention = cached.get("attn1")
    if (hidden_states is None or encoder_hidden_states is None or temb is None or "ff" not in cached
            or not isinstance(attention, tuple) or len(attention) != 2):
        return None
    text_seq_length = encoder_hidden_states.size(1)
    _, _, gate_msa, _, _, enc_gate_msa = block.norm1.linear(block.norm1.silu(temb)).chunk(6, dim=1)
    attn_hidden_states, attn_encoder_hidden_states = attention
    hidden_states = hidden_states + gate_msa[:, None, :] * attn_hidden_states
    encoder_hidden_states = encoder_hidden_states + enc_gate_msa[:, None, :] * attn_encoder_hidden_states
    _, _, gate_ff, _, _, enc_gate_ff = block.norm2.linear(block.norm2.silu(temb)).chunk(6, dim=1)
    ff_output = cached["ff"]
    hidden_states = hidden_states + gate_ff[:, None, :] * ff_output[:, text_seq_length:]
    encoder_hidden_states = encoder_hidden_states + enc_gate_ff[:, None, :] * ff_output[:, :text_seq_length]
    return hidden_states, encoder_hidden_states


ADAPTERS = (CogVideoXAdapter(),)
