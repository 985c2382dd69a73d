"""DiT (``DiTTransformer2DModel``): class-conditional adaLN-Zero DiT blocks (ImageNet)."""

from __future__ import annotations

from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

#: BasicTransformerBlock with ``norm_type="ada_norm_zero"`` and no cross-attention
COMPONENTS = ("attn1", "ff")


class DiTAdapter(ArchitectureAdapter):
    """DiT-XL/2 and friends (``DiTTransformer2DModel``): ``transformer_blocks`` x {attn1, ff}.

    Class-conditional: the condition is an ImageNet class id (``class_labels``), not text, so the
    transformer sees no text tokens (``text_len`` 0). :meth:`encode_prompts` maps prompts that are
    ImageNet label names to class ids (``DiTPipeline.get_label_ids``).
    """

    transformer_class = "DiTTransformer2DModel"
    family = "dit"
    default_text_len = 0
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "mlp": "ff"}

    def architecture(self, config):
        return Architecture(self.transformer_class,
                            (BlockGroup("transformer_blocks", int(config.get("num_layers", 28)), COMPONENTS),))

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        p = int(config.get("patch_size", 2))
        if h % p or w % p or h != w:
            raise ValueError(f"DiT takes square latents patchified {p}x{p}: height and width must be equal "
                             f"multiples of {p} x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        import torch

        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 4), latent_height, latent_width,
                                      device=device),
            timestep=torch.ones(batch_size, dtype=torch.int64, device=device),
            class_labels=torch.zeros(batch_size, dtype=torch.int64, device=device),
        )

    def text_len(self, max_sequence_length):
        return 0

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        import torch

        return {"class_labels": torch.tensor(pipe.get_label_ids(list(prompts)), dtype=torch.int64, device=device)}


ADAPTERS = (DiTAdapter(),)
