"""Latte (``LatteTransformer3DModel``): spatial and temporal groups, interleaved block by block."""

from families import FamilyCase


def tiny_latte_config(**overrides) -> dict:
    """A Latte-1-like config (PixArt-alpha blocks); ``video_length`` = the frames it runs."""
    cfg = dict(_class_name="LatteTransformer3DModel", num_attention_heads=2, attention_head_dim=8, in_channels=4,
               out_channels=8, num_layers=2, cross_attention_dim=16, attention_bias=True, sample_size=8,
               patch_size=2, activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
               norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=16, video_length=3)
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("latte", tiny_latte_config(), latent_size=(4, 6), latent_frames=3,
               notes="spatial block i, then temporal block i"),
    FamilyCase("latte-2-frames", tiny_latte_config(num_layers=3, video_length=2), latent_size=(4, 4),
               latent_frames=2, batch_size=1),
]
