"""Allegro (``AllegroTransformer3DModel``): PixArt-style blocks with 3D RoPE over video tokens."""

from families import FamilyCase


def tiny_allegro_config(**overrides) -> dict:
    """An Allegro-like config; the head width splits in 3 even RoPE parts (t, h, w)."""
    cfg = dict(_class_name="AllegroTransformer3DModel", patch_size=2, patch_size_t=1, num_attention_heads=2,
               attention_head_dim=12, in_channels=4, out_channels=4, num_layers=3, cross_attention_dim=24,
               attention_bias=True, sample_height=8, sample_width=8, sample_frames=2, caption_channels=16,
               norm_elementwise_affine=False, norm_eps=1e-6)
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("allegro", tiny_allegro_config(), latent_size=(4, 6), latent_frames=2),
    FamilyCase("allegro-3-frames", tiny_allegro_config(num_layers=2), latent_size=(4, 4), latent_frames=3,
               batch_size=1, notes="odd frame count"),
]
