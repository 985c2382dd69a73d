"""Hunyuan-DiT (``HunyuanDiT2DModel``): one group of U-shaped DiT blocks (long skips in the second half)."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

#: self-attention, cross-attention to the CLIP + mT5 caption, feed-forward. The long-skip merge
#: (``skip_norm`` / ``skip_linear``) of the second half's blocks always runs: its input changes every step.
COMPONENTS = ("attn1", "attn2", "ff")
#: CLIP (BERT) and mT5 tokens of HunyuanDiTPipeline (``text_len`` / ``text_len_t5`` of the config)
CLIP_TOKENS, T5_TOKENS = 77, 256


class HunyuanDiTAdapter(ArchitectureAdapter):
    """Hunyuan-DiT v1.0-v1.2 (``HunyuanDiT2DModel``): ``blocks`` x {attn1, attn2, ff}.

    The transformer sees a fixed number of text tokens, ``text_len`` CLIP + ``text_len_t5`` mT5
    tokens of its config (77 + 256): the ``text_len`` of a MAC profile is ignored.
    """

    transformer_class = "HunyuanDiT2DModel"
    profile_exhaustive = True  # each block's long skip depends on its index in `blocks`
    family = "hunyuandit"
    default_text_len = CLIP_TOKENS + T5_TOKENS
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "cross": "attn2", "cross_attn": "attn2", "mlp": "ff"}

    def architecture(self, config):
        return Architecture(self.transformer_class,
                            (BlockGroup("blocks", int(config.get("num_layers", 28)), COMPONENTS),))

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int(config.get("patch_size") or 2)
        if h % p or w % p:
            raise ValueError(f"Hunyuan-DiT patchifies {p}x{p} latents: height and width must be multiples of "
                             f"{p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        clip_len = int(config.get("text_len", CLIP_TOKENS))
        t5_len = int(config.get("text_len_t5", T5_TOKENS))
        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 4), latent_height, latent_width,
                                      device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=torch.zeros(batch_size, clip_len, config.get("cross_attention_dim", 1024),
                                              device=device),
            text_embedding_mask=torch.ones(batch_size, clip_len, dtype=torch.int64, device=device),
            encoder_hidden_states_t5=torch.zeros(batch_size, t5_len, config.get("cross_attention_dim_t5", 2048),
                                                 device=device),
            text_embedding_mask_t5=torch.ones(batch_size, t5_len, dtype=torch.int64, device=device),
            image_meta_size=torch.zeros(batch_size, 6, device=device),
            style=torch.zeros(batch_size, dtype=torch.int64, device=device),
            image_rotary_emb=_rotary_embedding(config, latent_height, latent_width, device),
        )

    def text_len(self, max_sequence_length):
        return CLIP_TOKENS + T5_TOKENS  # fixed by the pipeline (and the transformer's padding embedding)

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        out = {}
        for index, suffix, length in ((0, "", CLIP_TOKENS), (1, "_2", T5_TOKENS)):
            pe, ne, pm, nm = pipe.encode_prompt(
                prompt=prompts, device=device, dtype=pipe.transformer.dtype, num_images_per_prompt=1,
                do_classifier_free_guidance=cfg, negative_prompt="", max_sequence_length=length,
                text_encoder_index=index)
            out[f"prompt_embeds{suffix}"] = pe
            out[f"prompt_attention_mask{suffix}"] = pm
            if cfg:
                out[f"negative_prompt_embeds{suffix}"] = ne
                out[f"negative_prompt_attention_mask{suffix}"] = nm
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        # resolution binning would move a non-standard size to the nearest trained resolution
        return {"use_resolution_binning": False}


def _rotary_embedding(config, latent_height: int, latent_width: int, device):
    """The 2-D RoPE (cos, sin) HunyuanDiTPipeline computes for a latent size."""
    from diffusers.models.embeddings import get_2d_rotary_pos_embed
    from diffusers.pipelines.hunyuandit.pipeline_hunyuandit import get_resize_crop_region_for_grid

    p = int(config.get("patch_size") or 2)
    grid = (latent_height // p, latent_width // p)
    base_size = 512 // 8 // p  # the pipeline's base: 512 pixels at its VAE's factor 8
    head_dim = int(config.get("attention_head_dim", 88))
    cos, sin = get_2d_rotary_pos_embed(head_dim, get_resize_crop_region_for_grid(grid, base_size), grid,
                                       output_type="pt")
    return cos.to(device), sin.to(device)


ADAPTERS = (HunyuanDiTAdapter(),)
