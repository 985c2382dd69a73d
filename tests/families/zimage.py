"""Z-Image (``ZImageTransformer2DModel``): noise_refiner, context_refiner and layers, each {attention, feed_forward}.

The transformer returns a Python list of per-sample outputs (``ZImagePipeline`` stacks them); the
conformance harness compares one tensor per forward, so the cases build :class:`ZImageTransformer2DModel`
below: the diffusers class itself (same name, same blocks, same forward), with the per-sample outputs
stacked into one tensor after the forward.
"""

import diffusers
import torch

from families import FamilyCase


class ZImageTransformer2DModel(diffusers.ZImageTransformer2DModel):
    """diffusers' ``ZImageTransformer2DModel``; the forward's list of per-sample outputs is stacked."""

    def forward(self, *args, return_dict: bool = True, **kwargs):
        out = super().forward(*args, return_dict=False, **kwargs)[0]
        return (torch.stack(list(out)),)


def tiny_zimage_config(**overrides) -> dict:
    """A Z-Image-Turbo-like config (2 refiner layers per refiner, qk-norm, 2x2 patches)."""
    cfg = dict(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=4,
        dim=32,
        n_layers=3,
        n_refiner_layers=2,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=24,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[4, 6, 6],  # sums to dim / n_heads
        axes_lens=[256, 64, 64],
    )
    cfg.update(overrides)
    return {"_class_name": "ZImageTransformer2DModel", **cfg}


CASES = [
    FamilyCase("zimage-turbo", tiny_zimage_config(), model_cls=ZImageTransformer2DModel, timestep_scale=1.0,
               notes="8x8 latents: 16 image tokens (padded to 32) + 8 caption tokens (padded to 32)"),
    FamilyCase("zimage-cfg", tiny_zimage_config(n_layers=2, n_refiner_layers=1), model_cls=ZImageTransformer2DModel,
               batch_size=2, latent_size=(16, 12), text_len=40, timestep_scale=1.0,
               notes="non-square, 48 image tokens (padded to 64), 40 caption tokens (padded to 64)"),
]
