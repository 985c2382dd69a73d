"""FLUX.2 (``Flux2Transformer2DModel``): double-stream and single-stream block groups.

FLUX.2-dev and the FLUX.2-klein models share this class. A double-stream block runs the joint
attention ``attn`` and the two SwiGLU feed-forwards ``ff`` (image) and ``ff_context`` (text); a
single-stream block is one "parallel" ``attn`` module whose fused projections hold both the
attention and the MLP (``to_qkv_mlp_proj`` / ``to_out``), so ``attn`` is its only component. The
adaLN modulations are computed once per forward outside the blocks
(``double_stream_modulation_img/_txt``, ``single_stream_modulation``) and count as always-on MACs.
"""

from __future__ import annotations

import inspect

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

DOUBLE = ("attn", "ff", "ff_context")
SINGLE = ("attn",)


class Flux2Adapter(ArchitectureAdapter):
    """FLUX.2-dev / FLUX.2-klein (``Flux2Transformer2DModel``).

    Classifier-free guidance: FLUX.2-dev and the step-distilled klein models are guidance-distilled
    (one transformer forward per step), which is what :meth:`uses_cfg` reports. The klein *base*
    models (``Flux2KleinPipeline`` with ``is_distilled=False``) run a second, unconditional forward
    per step when ``guidance_scale > 1``; :meth:`uses_cfg` only sees the scale, not the pipeline,
    so MAC profiles of klein-base searches count one forward per step.
    """

    transformer_class = "Flux2Transformer2DModel"
    family = "flux2"
    default_text_len = 512  # Flux2Pipeline / Flux2KleinPipeline pad prompts to max_sequence_length=512

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (
                BlockGroup("transformer_blocks", int(config.get("num_layers", 8)), DOUBLE),
                BlockGroup("single_transformer_blocks", int(config.get("num_single_layers", 48)), SINGLE),
            ),
        )

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        if h % 2 or w % 2:
            raise ValueError("FLUX.2 packs 2x2 latent patches: height and width must be multiples of 2 x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        """What ``Flux2Pipeline`` passes: packed 2x2 latent patches ``[B, (h/2)(w/2), in_channels]``,
        4-axis (t, h, w, l) integer position ids for image and text, timestep / 1000."""
        import torch

        hp, wp = latent_height // 2, latent_width // 2
        tokens = hp * wp
        t, h, w, l = torch.arange(1), torch.arange(hp), torch.arange(wp), torch.arange(1)
        img_ids = torch.cartesian_prod(t, h, w, l).unsqueeze(0).expand(batch_size, -1, -1)
        txt_ids = torch.cartesian_prod(t, torch.arange(1), torch.arange(1), torch.arange(text_len))
        txt_ids = txt_ids.unsqueeze(0).expand(batch_size, -1, -1)
        kw = dict(
            hidden_states=torch.zeros(batch_size, tokens, config.get("in_channels", 128), device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 15360), device=device),
            timestep=torch.ones(batch_size, device=device),
            img_ids=img_ids.to(device),
            txt_ids=txt_ids.to(device),
        )
        if config.get("guidance_embeds", True):
            kw["guidance"] = torch.ones(batch_size, device=device)
        return kw

    def default_resolution(self, config, vae_scale_factor):
        return 1024  # Flux2Pipeline's default_sample_size (128) x 8

    def uses_cfg(self, guidance_scale):
        return False  # guidance-distilled (FLUX.2-dev, klein): the scale is an input, not a second pass

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        pe, _ = pipe.encode_prompt(prompt=list(prompts), device=device, num_images_per_prompt=1,
                                   max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": pe}
        # Flux2KleinPipeline (non-distilled) runs true CFG on an empty negative prompt; with
        # prompt_embeds given it needs the negative embeddings too, one row per prompt.
        cfg = getattr(pipe, "config", {}).get("is_distilled") is False and guidance_scale > 1
        if cfg and "negative_prompt_embeds" in inspect.signature(pipe.__call__).parameters:
            ne, _ = pipe.encode_prompt(prompt=[""] * len(prompts), device=device, num_images_per_prompt=1,
                                       max_sequence_length=max_sequence_length)
            out["negative_prompt_embeds"] = ne
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


ADAPTERS = (Flux2Adapter(),)
