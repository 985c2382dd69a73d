"""Z-Image (``ZImageTransformer2DModel``): noise refiner, context refiner, then the main layers.

A forward runs, in order, ``noise_refiner`` (image tokens, timestep-modulated), ``context_refiner``
(caption tokens, unmodulated), ``siglip_refiner`` (Omni checkpoints only, on the SigLIP features of
condition images) and ``layers`` (the unified image + caption sequence). Every block has the same two
scheduled sub-modules, ``attention`` and ``feed_forward``; the blocks' ``adaLN_modulation``
projections and RMS norms always run.
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

COMPONENTS = ("attention", "feed_forward")
#: the transformer pads the image and caption sequences of every sample to a multiple of this
SEQ_MULTI_OF = 32


class ZImageAdapter(ArchitectureAdapter):
    """Z-Image-Turbo / Z-Image (``ZImageTransformer2DModel``), driven by ``ZImagePipeline``.

    * Guidance: ``ZImagePipeline`` batches a (cond, uncond) pair whenever ``guidance_scale > 0``
      (Z-Image-Turbo is run with 0: one pass).
    * Text length: the pipeline keeps only each prompt's real tokens (at most
      ``max_sequence_length``) and the transformer pads them to a multiple of 32, so the caption
      tokens depend on the prompt. :meth:`text_len` reports ``max_sequence_length``, an upper bound;
      :attr:`default_text_len` is a typical prompt length.
    * Omni checkpoints (``siglip_feat_dim`` set) have a ``siglip_refiner`` group that only runs with
      condition images (``ZImageOmniPipeline``); the text-to-image MAC profile gives it no MACs.
    * Prompt embeddings are per-prompt lists of variable-length tensors (the pipeline's own form),
      not a batched tensor.
    """

    transformer_class = "ZImageTransformer2DModel"
    family = "zimage"
    default_text_len = 128

    def architecture(self, config):
        n_ref = int(config.get("n_refiner_layers", 2))
        groups = [BlockGroup("noise_refiner", n_ref, COMPONENTS), BlockGroup("context_refiner", n_ref, COMPONENTS)]
        if config.get("siglip_feat_dim") is not None:
            groups.append(BlockGroup("siglip_refiner", n_ref, COMPONENTS))
        groups.append(BlockGroup("layers", int(config.get("n_layers", 30)), COMPONENTS))
        return Architecture(self.transformer_class, tuple(groups))

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int((config.get("all_patch_size") or (2,))[0])
        if h % p or w % p:
            raise ValueError(f"Z-Image patches {p}x{p} latents: height and width must be multiples of "
                             f"{p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        """One forward of ``ZImagePipeline``: latents ``[C, 1, h, w]`` and caption features
        ``[text_len, cap_feat_dim]`` per sample, ``t`` in [0, 1].

        The pipeline passes Python lists of per-sample tensors; here they are batched tensors
        (``[B, C, 1, h, w]``, ``[B, text_len, cap_feat_dim]``), which the transformer iterates
        sample by sample exactly like the lists (same operations, same MACs).
        """
        import torch

        return dict(
            x=torch.zeros(batch_size, config.get("in_channels", 16), 1, latent_height, latent_width, device=device),
            t=torch.ones(batch_size, device=device),
            cap_feats=torch.zeros(batch_size, text_len, config.get("cap_feat_dim", 2560), device=device),
        )

    def default_resolution(self, config, vae_scale_factor):
        return 1024  # ZImagePipeline's default height / width

    def uses_cfg(self, guidance_scale):
        return guidance_scale > 0  # ZImagePipeline.do_classifier_free_guidance

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        """``prompt_embeds`` (and ``negative_prompt_embeds`` with CFG): lists with one
        ``[tokens_i, cap_feat_dim]`` tensor per prompt, as ``ZImagePipeline.encode_prompt`` returns."""
        cfg = self.uses_cfg(guidance_scale)
        pe, ne = pipe.encode_prompt(prompt=list(prompts), device=device, do_classifier_free_guidance=cfg,
                                    max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": list(pe)}
        if cfg:
            out["negative_prompt_embeds"] = list(ne)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


ADAPTERS = (ZImageAdapter(),)
