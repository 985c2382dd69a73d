"""Qwen-Image (``QwenImageTransformer2DModel``): one group of dual-stream MMDiT blocks.

Each block runs the joint attention ``attn`` (image and text projections in one module) and two
feed-forwards, ``img_mlp`` (image stream) and ``txt_mlp`` (text stream). The per-block adaLN
projections ``img_mod`` / ``txt_mod`` are not scheduled (their MACs run at every step).
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

COMPONENTS = ("attn", "img_mlp", "txt_mlp")


class QwenImageAdapter(ArchitectureAdapter):
    """Qwen-Image / Qwen-Image-2512 (``QwenImageTransformer2DModel``), driven by ``QwenImagePipeline``.

    Guidance: ``QwenImagePipeline`` runs *true* CFG (a second forward per step in the ``uncond``
    cache context) when ``true_cfg_scale > 1`` and a negative prompt is given; its
    ``guidance_scale`` only feeds guidance-distilled checkpoints. ecad-hub's search setting
    ``guidance_scale`` is therefore passed as ``true_cfg_scale`` (:meth:`call_kwargs`), with the
    empty negative prompt whenever it is above 1.

    Text length: the pipeline pads prompts to the longest prompt of the call (at most
    ``max_sequence_length``, after dropping the 34 chat-template tokens), so the text tokens the
    transformer sees depend on the prompts. :meth:`text_len` reports ``max_sequence_length``, an
    upper bound for MAC profiles; :attr:`default_text_len` is a typical prompt length.
    """

    transformer_class = "QwenImageTransformer2DModel"
    family = "qwenimage"
    default_text_len = 128

    def architecture(self, config):
        return Architecture(self.transformer_class,
                            (BlockGroup("transformer_blocks", int(config.get("num_layers", 60)), COMPONENTS),))

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int(config.get("patch_size", 2))
        if h % p or w % p:
            raise ValueError(f"Qwen-Image packs {p}x{p} latent patches: height and width must be multiples of "
                             f"{p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        """What ``QwenImagePipeline`` passes: packed latents ``[B, (h/p)(w/p), in_channels]``, the text
        mask (ones: every token valid), timestep / 1000 and ``img_shapes`` for the RoPE."""
        import torch

        p = int(config.get("patch_size", 2))
        hp, wp = latent_height // p, latent_width // p
        kw = dict(
            hidden_states=torch.zeros(batch_size, hp * wp, config.get("in_channels", 64), device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 3584), device=device),
            encoder_hidden_states_mask=torch.ones(batch_size, text_len, dtype=torch.long, device=device),
            timestep=torch.ones(batch_size, device=device),
            img_shapes=[[(1, hp, wp)]] * batch_size,
        )
        if config.get("use_additional_t_cond"):
            kw["additional_t_cond"] = torch.zeros(batch_size, dtype=torch.long, device=device)
        return kw

    def default_resolution(self, config, vae_scale_factor):
        return 1024  # QwenImagePipeline's default_sample_size (128) x 8

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        import torch

        def encode(texts):
            pe, mask = pipe.encode_prompt(prompt=texts, device=device, num_images_per_prompt=1,
                                          max_sequence_length=max_sequence_length)
            if mask is None:  # encode_prompt drops an all-ones mask; the pipeline drops it again when given
                mask = torch.ones(pe.shape[:2], dtype=torch.long, device=pe.device)
            return pe, mask

        pe, mask = encode(list(prompts))
        out = {"prompt_embeds": pe, "prompt_embeds_mask": mask}
        if self.uses_cfg(guidance_scale):
            # QwenImagePipeline only runs CFG with a negative prompt; " " is the empty one its docs suggest
            ne, nmask = encode([" "] * len(prompts))
            out.update(negative_prompt_embeds=ne, negative_prompt_embeds_mask=nmask)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        scale = float(settings["guidance_scale"])
        kw = {"max_sequence_length": settings["max_sequence_length"], "true_cfg_scale": scale,
              "guidance_scale": None}  # only guidance-distilled checkpoints take an embedded scale
        if not prompt_embeds and self.uses_cfg(scale):
            kw["negative_prompt"] = " "
        return kw


ADAPTERS = (QwenImageAdapter(),)
