"""Chroma (``ChromaTransformer2DModel``): FLUX.1-shaped double- and single-stream block groups.

Chroma prunes FLUX.1's per-block modulation projections: one ``distilled_guidance_layer``
(outside the blocks) produces every block's shift/scale/gate, so a block's MACs are all in its
scheduled sub-modules plus its norms. Double-stream blocks: ``attn``, ``ff``, ``ff_context``;
single-stream blocks: ``attn``, ``proj_mlp``, ``proj_out`` (the FLUX.1 names).
"""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

DOUBLE = ("attn", "ff", "ff_context")
SINGLE = ("attn", "proj_mlp", "proj_out")


class ChromaAdapter(ArchitectureAdapter):
    """Chroma1-HD / Chroma1-Base (``ChromaTransformer2DModel``), driven by ``ChromaPipeline``.

    ``ChromaPipeline`` runs true classifier-free guidance as a second transformer forward per step
    (no cache context) when ``guidance_scale > 1``; the hooks keep a separate stream per forward
    of a step, and the MACs of two batch-1 forwards equal one batch-2 forward.
    """

    transformer_class = "ChromaTransformer2DModel"
    family = "chroma"
    default_text_len = 512  # ChromaPipeline pads T5 prompts to max_sequence_length=512

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (
                BlockGroup("transformer_blocks", int(config.get("num_layers", 19)), DOUBLE),
                BlockGroup("single_transformer_blocks", int(config.get("num_single_layers", 38)), SINGLE),
            ),
        )

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        if h % 2 or w % 2:
            raise ValueError("Chroma packs 2x2 latent patches: height and width must be multiples of 2 x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        """What ``ChromaPipeline`` passes: packed latents, 3-axis position ids, timestep / 1000 and
        the attention mask over [text, image] tokens (T5 mask extended with ones for the image)."""
        import torch

        tokens = (latent_height // 2) * (latent_width // 2)
        return dict(
            hidden_states=torch.zeros(batch_size, tokens, config.get("in_channels", 64), device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 4096), device=device),
            timestep=torch.ones(batch_size, device=device),
            img_ids=torch.zeros(tokens, 3, device=device),
            txt_ids=torch.zeros(text_len, 3, device=device),
            attention_mask=torch.ones(batch_size, text_len + tokens, dtype=torch.bool, device=device),
        )

    def default_resolution(self, config, vae_scale_factor):
        return 1024  # ChromaPipeline's default_sample_size (128) x 8

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, _, mask, ne, _, nmask = pipe.encode_prompt(
            prompt=list(prompts), negative_prompt=[""] * len(prompts), device=device, num_images_per_prompt=1,
            do_classifier_free_guidance=cfg, max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": pe, "prompt_attention_mask": mask}
        if cfg:
            out.update(negative_prompt_embeds=ne, negative_prompt_attention_mask=nmask)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


ADAPTERS = (ChromaAdapter(),)
