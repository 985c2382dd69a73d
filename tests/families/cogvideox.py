"""CogVideoX 1.0 / 1.5 (``CogVideoXTransformer3DModel``): ``transformer_blocks[i].{attn1, ff}``."""

from families import FamilyCase


def tiny_cogvideox_config(**overrides) -> dict:
    """A CogVideoX-5b-like config (3D RoPE from the pipeline): 3 blocks, width 32 (2 heads x 16: the 3D RoPE splits a head 4+6+6)."""
    cfg = dict(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=16,
        text_embed_dim=16, num_layers=3, sample_width=8, sample_height=8, sample_frames=9, patch_size=2,
        patch_size_t=None, temporal_compression_ratio=4, max_text_seq_length=8,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False, patch_bias=True,
    )
    cfg.update(overrides)
    return {"_class_name": "CogVideoXTransformer3DModel", **cfg}


CASES = [
    FamilyCase("cogvideox-5b", tiny_cogvideox_config(), latent_frames=3),
    FamilyCase("cogvideox-2b", tiny_cogvideox_config(use_rotary_positional_embeddings=False), latent_frames=2,
               notes="sin-cos position embeddings over max_text_seq_length text tokens + the video tokens"),
    FamilyCase("cogvideox1.5-i2v", tiny_cogvideox_config(num_layers=2, in_channels=8, patch_size_t=2, patch_bias=False,
                                                         ofs_embed_dim=16, sample_height=16, sample_width=16),
               latent_frames=3, notes="CogVideoX 1.5: temporal patches of 2 (3 latent frames padded to 4), ofs embedding"),
]
