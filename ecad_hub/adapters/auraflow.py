"""AuraFlow (``AuraFlowTransformer2DModel``): joint (MMDiT) blocks, then single-stream DiT blocks."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

JOINT = ("attn", "ff", "ff_context")
SINGLE = ("attn", "ff")


class AuraFlowAdapter(ArchitectureAdapter):
    """AuraFlow v0.1-v0.3 (``AuraFlowTransformer2DModel``): ``joint_transformer_blocks`` x {attn, ff,
    ff_context}, then ``single_transformer_blocks`` x {attn, ff}.

    The transformer prepends 8 learned register tokens to the ``max_sequence_length`` UMT5 tokens.
    """

    transformer_class = "AuraFlowTransformer2DModel"
    family = "auraflow"
    default_text_len = 256  # AuraFlowPipeline's max_sequence_length
    component_aliases = {"self_attn": "attn", "mlp": "ff"}

    def architecture(self, config):
        return Architecture(self.transformer_class, (
            BlockGroup("joint_transformer_blocks", int(config.get("num_mmdit_layers", 4)), JOINT),
            BlockGroup("single_transformer_blocks", int(config.get("num_single_dit_layers", 32)), SINGLE),
        ))

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int(config.get("patch_size", 2))
        if h % p or w % p:
            raise ValueError(f"AuraFlow patchifies {p}x{p} latents: height and width must be multiples of "
                             f"{p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 4), latent_height, latent_width,
                                      device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 2048),
                                              device=device),
            timestep=torch.ones(batch_size, device=device),  # the pipeline passes t / 1000
        )

    def default_resolution(self, config, vae_scale_factor):
        return 1024  # sample_size (64) is the pos-embedding base, not the training resolution

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, pm, ne, nm = pipe.encode_prompt(prompts, negative_prompt="", do_classifier_free_guidance=cfg,
                                            num_images_per_prompt=1, device=device,
                                            max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": pe, "prompt_attention_mask": pm}
        if cfg:
            out.update(negative_prompt_embeds=ne, negative_prompt_attention_mask=nm)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


ADAPTERS = (AuraFlowAdapter(),)
