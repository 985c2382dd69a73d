"""HunyuanImage-2.1 (``HunyuanImageTransformer2DModel``): token refiner, double- and single-stream blocks."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter
from .lumina2 import with_values

REFINER = ("attn", "ff")
DOUBLE = ("attn", "ff", "ff_context")
#: only ``proj_out``'s output reaches the residual stream; ``attn`` and ``proj_mlp`` feed it
SINGLE = ("attn", "proj_mlp", "proj_out")
#: Qwen2.5-VL tokens (after the template is dropped) and ByT5 glyph tokens of HunyuanImagePipeline
MLLM_TOKENS, BYT5_TOKENS = 1000, 128


class HunyuanImageAdapter(ArchitectureAdapter):
    """HunyuanImage-2.1 and its refiner (``HunyuanImageTransformer2DModel``).

    Groups in execution order: the text token refiner
    (``context_embedder.token_refiner.refiner_blocks`` x {attn, ff}), ``transformer_blocks``
    (double stream, x {attn, ff, ff_context}) and ``single_transformer_blocks`` (x {attn, proj_mlp,
    proj_out}).

    ``text_len`` counts all text tokens the blocks see: with a ByT5 branch (``text_embed_2_dim``)
    the last ``min(128, text_len // 2)`` of them are ByT5 glyph tokens (1000 + 128 in the pipeline).
    HunyuanImagePipeline takes no ``guidance_scale`` and no ``max_sequence_length``: its guider
    decides about CFG.
    """

    transformer_class = "HunyuanImageTransformer2DModel"
    family = "hunyuanimage"
    default_text_len = MLLM_TOKENS + BYT5_TOKENS
    component_aliases = {"self_attn": "attn", "mlp": "ff"}

    def architecture(self, config):
        return Architecture(self.transformer_class, (
            BlockGroup("context_embedder.token_refiner.refiner_blocks", int(config.get("num_refiner_layers", 2)),
                       REFINER),
            BlockGroup("transformer_blocks", int(config.get("num_layers", 20)), DOUBLE),
            BlockGroup("single_transformer_blocks", int(config.get("num_single_layers", 40)), SINGLE),
        ))

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        ph, pw = _patch(config)[-2:]
        if h % ph or w % pw:
            raise ValueError(f"HunyuanImage patchifies {ph}x{pw} latents: height and width must be multiples of "
                             "the patch size x the VAE scale factor")
        return h, w

    def default_resolution(self, config, vae_scale_factor):
        return 2048  # HunyuanImagePipeline's default: 64 latents x its 32x VAE

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        channels = config.get("in_channels", 64)
        if len(_patch(config)) == 3:  # the refiner: one latent frame, 3-D patches
            shape = (batch_size, channels, latent_frames or 1, latent_height, latent_width)
        else:
            shape = (batch_size, channels, latent_height, latent_width)
        byt5_dim = config.get("text_embed_2_dim")
        n2 = min(BYT5_TOKENS, text_len // 2) if byt5_dim else 0
        n1 = text_len - n2
        kw = dict(
            hidden_states=torch.zeros(shape, device=device),
            timestep=torch.ones(batch_size, device=device),
            encoder_hidden_states=torch.zeros(batch_size, n1, config.get("text_embed_dim", 3584), device=device),
            # the transformer reorders the text tokens by their masks (boolean indexing): on the meta
            # device the masks carry their values along
            encoder_attention_mask=with_values(torch.ones(batch_size, n1, dtype=torch.int64), device),
        )
        if byt5_dim:
            mask = torch.zeros(batch_size, n2, dtype=torch.int64)
            mask[:, : (n2 + 1) // 2] = 1  # glyph tokens, then padding (as the ByT5 tokenizer pads)
            kw["encoder_hidden_states_2"] = torch.zeros(batch_size, n2, byt5_dim, device=device)
            kw["encoder_attention_mask_2"] = with_values(mask, device)
        if config.get("guidance_embeds"):
            kw["guidance"] = torch.full((batch_size,), 1000.0, device=device)  # the pipeline's scale x 1000
        if config.get("use_meanflow"):
            kw["timestep_r"] = torch.ones(batch_size, device=device)
        return kw

    def text_len(self, max_sequence_length):
        return MLLM_TOKENS + BYT5_TOKENS  # fixed by HunyuanImagePipeline (it has no max_sequence_length)

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        pe, pm, pe2, pm2 = pipe.encode_prompt(prompt=prompts, device=device, batch_size=len(prompts),
                                              num_images_per_prompt=1)
        out = {"prompt_embeds": pe, "prompt_embeds_mask": pm, "prompt_embeds_2": pe2, "prompt_embeds_mask_2": pm2}
        guider = getattr(pipe, "guider", None)
        if guider is not None and guider._enabled and guider.num_conditions > 1:  # as the pipeline decides
            ne, nm, ne2, nm2 = pipe.encode_prompt(prompt=None, device=device, batch_size=len(prompts),
                                                  num_images_per_prompt=1)
            out.update(negative_prompt_embeds=ne, negative_prompt_embeds_mask=nm, negative_prompt_embeds_2=ne2,
                       negative_prompt_embeds_mask_2=nm2)
        return out


def _patch(config) -> tuple:
    return tuple(int(p) for p in (config.get("patch_size") or (1, 1)))


ADAPTERS = (HunyuanImageAdapter(),)
