"""LTX-Video (``LTXVideoTransformer3DModel``): one block group over packed video tokens."""

from families import FamilyCase


def tiny_ltx_config(**overrides) -> dict:
    """An LTX-Video-2B-like config (patch 1x1x1, RMS-norm qk across heads), 16 wide."""
    cfg = dict(_class_name="LTXVideoTransformer3DModel", in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
               num_attention_heads=2, attention_head_dim=8, cross_attention_dim=16, num_layers=3,
               caption_channels=16, qk_norm="rms_norm_across_heads", norm_elementwise_affine=False)
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("ltx-video", tiny_ltx_config(), latent_size=(4, 6), latent_frames=2,
               notes="CFG batch, 2 latent frames, non-square latents"),
    FamilyCase("ltx-video-distilled", tiny_ltx_config(num_layers=2, attention_bias=False, attention_out_bias=False),
               latent_size=(4, 4), latent_frames=3, batch_size=1,
               notes="guidance-free (0.9.x distilled) batch 1, 3 latent frames, no attention biases"),
]
