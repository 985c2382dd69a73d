"""CogView4 (``CogView4Transformer2DModel``): one group of joint image/text DiT blocks."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

#: joint attention over image and text tokens, and the feed-forward, which each block runs twice
#: (on the image stream, then on the text stream): the hooks keep one output per call.
COMPONENTS = ("attn1", "ff")
#: CogView4Pipeline pads the GLM tokens of a batch to a multiple of this
TOKEN_MULTIPLE = 16


class CogView4Adapter(ArchitectureAdapter):
    """CogView4-6B (``CogView4Transformer2DModel``): ``transformer_blocks`` x {attn1, ff}.

    The pipeline does not pad the prompt to ``max_sequence_length``: the transformer sees the longest
    prompt of the call in GLM tokens, rounded up to a multiple of 16. :meth:`text_len` is therefore
    an upper bound, and MAC profiles default to 128 text tokens (a typical prompt).
    """

    transformer_class = "CogView4Transformer2DModel"
    family = "cogview4"
    default_text_len = 128
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "mlp": "ff"}

    def architecture(self, config):
        return Architecture(self.transformer_class,
                            (BlockGroup("transformer_blocks", int(config.get("num_layers", 30)), COMPONENTS),))

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int(config.get("patch_size", 2))
        if h % p or w % p:
            raise ValueError(f"CogView4 patchifies {p}x{p} latents: height and width must be multiples of "
                             f"{p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 16), latent_height, latent_width,
                                      device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("text_embed_dim", 4096), device=device),
            timestep=torch.ones(batch_size, device=device),
            original_size=torch.ones(batch_size, 2, device=device),
            target_size=torch.ones(batch_size, 2, device=device),
            crop_coords=torch.zeros(batch_size, 2, device=device),
        )

    def text_len(self, max_sequence_length):
        n = int(max_sequence_length)
        return -(-n // TOKEN_MULTIPLE) * TOKEN_MULTIPLE  # an upper bound: the longest prompt, padded

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        cfg = self.uses_cfg(guidance_scale)
        pe, ne = pipe.encode_prompt(prompts, negative_prompt="", do_classifier_free_guidance=cfg,
                                    num_images_per_prompt=1, device=device, max_sequence_length=max_sequence_length)
        out = {"prompt_embeds": pe}
        if cfg:
            out["negative_prompt_embeds"] = ne
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        return {"max_sequence_length": settings["max_sequence_length"]}


ADAPTERS = (CogView4Adapter(),)
