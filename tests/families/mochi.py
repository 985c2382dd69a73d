"""Mochi-1 (``MochiTransformer3DModel``): joint-attention blocks, the last one without ``ff_context``."""

from families import FamilyCase


def tiny_mochi_config(**overrides) -> dict:
    """A Mochi-1-like config (patch 2, SwiGLU, asymmetric caption stream 16 wide vs 16 for video)."""
    cfg = dict(_class_name="MochiTransformer3DModel", patch_size=2, num_attention_heads=2, attention_head_dim=8,
               num_layers=3, pooled_projection_dim=12, in_channels=4, text_embed_dim=32, time_embed_dim=16,
               max_sequence_length=8)
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("mochi", tiny_mochi_config(), latent_size=(4, 6), latent_frames=2,
               notes="last block context_pre_only: ff_context absent"),
    FamilyCase("mochi-3-frames", tiny_mochi_config(num_layers=2), latent_size=(4, 4), latent_frames=3, batch_size=1),
]
