"""PixArt-alpha and PixArt-Sigma (``PixArtTransformer2DModel``): one group of BasicTransformerBlocks."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter, LegacyLayout, arg, positive_int

COMPONENTS = ("attn1", "attn2", "ff")


class PixArtAdapter(ArchitectureAdapter):
    """PixArt-alpha and PixArt-Sigma (``PixArtTransformer2DModel``): 1 group of BasicTransformerBlocks."""

    transformer_class = "PixArtTransformer2DModel"
    family = "pixart"
    default_text_len = 120
    checkpoints = ("PixArt-α 256/512/1024", "PixArt-Σ 512/1024/2K")
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "cross": "attn2", "cross_attn": "attn2", "mlp": "ff"}

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (BlockGroup("transformer_blocks", int(config["num_layers"]), COMPONENTS),),
        )

    def fast_path(self, block):
        if (type(block).__name__ != "BasicTransformerBlock" or getattr(block, "norm_type", None) != "ada_norm_single"
                or getattr(block, "attn2", None) is None or getattr(block, "pos_embed", None) is not None):
            return None
        return _pixart_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        caption_channels = config.get("caption_channels") or 4096
        kw = dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 4), latent_height, latent_width, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, caption_channels, device=device),
            timestep=torch.ones(batch_size, device=device),
            added_cond_kwargs={
                "resolution": torch.ones(batch_size, 2, device=device),
                "aspect_ratio": torch.ones(batch_size, 1, device=device),
            },
        )
        return kw

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, pm, ne, nm = pipe.encode_prompt(
            prompts, do_classifier_free_guidance=cfg, negative_prompt="", num_images_per_prompt=1,
            device=device, clean_caption=False, max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": pe, "prompt_attention_mask": pm}
        if cfg:
            out.update(negative_prompt_embeds=ne, negative_prompt_attention_mask=nm)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        # Resolution binning would move a non-standard size (e.g. the embedded model's 32x32) to
        # the nearest trained aspect bucket; the caption cleaner needs bs4/ftfy.
        kw = dict(use_resolution_binning=False, clean_caption=False,
                  max_sequence_length=settings["max_sequence_length"])
        if prompt_embeds:
            kw["negative_prompt"] = None  # the negative embeddings are passed instead
        return kw

    def legacy_layout(self, cs, source):
        sched = cs.get("schedule") or {}
        if "num_single_blocks" in cs or any(isinstance(b, str) and b.startswith("single_")
                                            for blocks in sched.values() if isinstance(blocks, dict) for b in blocks):
            return None  # a two-stream (FLUX) file
        n = positive_int(cs.get("num_blocks"), "cache_schedule.num_blocks", source)
        arch = Architecture(self.transformer_class, (BlockGroup("transformer_blocks", n, COMPONENTS),))
        return LegacyLayout(arch, {"transformer_blocks": ([str(i) for i in range(n)], {c: c for c in COMPONENTS})})


def _pixart_block_fast(block, cached, args, kwargs):
    """``BasicTransformerBlock`` with ``norm_type="ada_norm_single"`` (PixArt)."""
    if len(cached) != 3 or (kwargs.get("cross_attention_kwargs") or {}).get("gligen") is not None:
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
    hidden_states = cached["attn2"] + hidden_states
    ff_output = gate_mlp * cached["ff"]
    hidden_states = ff_output + hidden_states
    if hidden_states.ndim == 4:
        hidden_states = hidden_states.squeeze(1)
    return hidden_states


ADAPTERS = (PixArtAdapter(),)
