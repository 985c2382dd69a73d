"""SANA and SANA-Sprint (``SanaTransformer2DModel``): one group of linear-attention DiT blocks."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

#: self-attention (linear attention), cross-attention to the Gemma-2 caption, GLUMBConv feed-forward
COMPONENTS = ("attn1", "attn2", "ff")


class SanaAdapter(ArchitectureAdapter):
    """SANA / SANA-1.5 / SANA-Sprint (``SanaTransformer2DModel``): ``transformer_blocks`` x {attn1, attn2, ff}.

    SANA-Sprint checkpoints (``guidance_embeds=True``) take the guidance scale as an input and run one
    transformer pass per step; :meth:`uses_cfg` cannot see the config, so a search over a Sprint
    pipeline must use ``guidance_scale <= 1`` to profile one pass per image and to get call arguments
    ``SanaSprintPipeline`` accepts (it has no ``negative_prompt``); the prompt encoding follows the
    config.
    """

    transformer_class = "SanaTransformer2DModel"
    family = "sana"
    default_text_len = 300  # SanaPipeline's max_sequence_length
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "cross": "attn2", "cross_attn": "attn2", "mlp": "ff"}

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (BlockGroup("transformer_blocks", int(config.get("num_layers", 20)), COMPONENTS),),
        )

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int(config.get("patch_size", 1))
        if h % p or w % p:
            raise ValueError(f"SANA patchifies {p}x{p} latents: height and width must be multiples of "
                             f"{p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        kw = dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 32), latent_height, latent_width,
                                      device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("caption_channels", 2304), device=device),
            encoder_attention_mask=torch.ones(batch_size, text_len, dtype=torch.int64, device=device),
            timestep=torch.ones(batch_size, device=device),
        )
        if config.get("guidance_embeds"):
            kw["guidance"] = torch.ones(batch_size, device=device)
        return kw

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        chi = _call_default(pipe, "complex_human_instruction")  # what a call with prompt strings would use
        if getattr(pipe.transformer.config, "guidance_embeds", False):  # SANA-Sprint: no negative pass
            pe, pm = pipe.encode_prompt(prompts, num_images_per_prompt=1, device=device, clean_caption=False,
                                        max_sequence_length=max_sequence_length, complex_human_instruction=chi)
            return {"prompt_embeds": pe, "prompt_attention_mask": pm}
        cfg = self.uses_cfg(guidance_scale)
        pe, pm, ne, nm = pipe.encode_prompt(
            prompts, do_classifier_free_guidance=cfg, negative_prompt="", num_images_per_prompt=1, device=device,
            clean_caption=False, max_sequence_length=max_sequence_length, complex_human_instruction=chi)
        out = {"prompt_embeds": pe, "prompt_attention_mask": pm}
        if cfg:
            out.update(negative_prompt_embeds=ne, negative_prompt_attention_mask=nm)
        return out

    def call_kwargs(self, settings, *, prompt_embeds):
        # Resolution binning would move a non-standard size to the nearest trained aspect bucket;
        # the caption cleaner needs bs4/ftfy.
        kw = dict(use_resolution_binning=False, clean_caption=False,
                  max_sequence_length=settings["max_sequence_length"])
        if prompt_embeds and self.uses_cfg(settings["guidance_scale"]):
            kw["negative_prompt"] = None  # the negative embeddings are passed instead (SanaPipeline)
        return kw


def _call_default(pipe, name: str):
    """The default of the pipeline call's argument ``name`` (``None`` if it has none)."""
    import inspect

    param = inspect.signature(type(pipe).__call__).parameters.get(name)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


ADAPTERS = (SanaAdapter(),)
