"""Wan 2.1 / 2.2 (``WanTransformer3DModel``): ``blocks[i].{attn1, attn2, ffn}``."""

from families import FamilyCase


def tiny_wan_config(**overrides) -> dict:
    """A Wan2.1-T2V-like config: 3 blocks, width 16 (2 heads x 8), 3D RoPE over (t, h, w) = (4, 2, 2) dims."""
    cfg = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=16, ffn_dim=32, num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=32,
    )
    cfg.update(overrides)
    return {"_class_name": "WanTransformer3DModel", **cfg}


CASES = [
    FamilyCase("wan2.1-t2v", tiny_wan_config(), latent_frames=3),
    FamilyCase("wan2.1-i2v", tiny_wan_config(num_layers=2, in_channels=9, image_dim=8, added_kv_proj_dim=16),
               batch_size=1, text_len=512, latent_frames=2,
               notes="CLIP image tokens before the 512 text tokens the I2V processor assumes; added K/V in attn2"),
    FamilyCase("wan2.1-flf2v", tiny_wan_config(num_layers=2, in_channels=9, image_dim=8, added_kv_proj_dim=16,
                                               pos_embed_seq_len=8),
               batch_size=1, text_len=512, latent_frames=2, notes="first-last-frame: two images' tokens, learned positions"),
    FamilyCase("wan2.2-ti2v", tiny_wan_config(in_channels=48, out_channels=48), latent_frames=2,
               notes="48-channel Wan2.2 VAE latents: one timestep per token (expand_timesteps)"),
]
