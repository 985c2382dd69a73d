"""SkyReels-V2 (``SkyReelsV2Transformer3DModel``): ``blocks[i].{attn1, attn2, ffn}``."""

from families import FamilyCase


def tiny_skyreels_config(**overrides) -> dict:
    """A SkyReels-V2-T2V-like config: 3 blocks, width 16 (2 heads x 8)."""
    cfg = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=16, ffn_dim=32, num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=32, inject_sample_info=False,
        num_frame_per_block=1,
    )
    cfg.update(overrides)
    return {"_class_name": "SkyReelsV2Transformer3DModel", **cfg}


CASES = [
    FamilyCase("skyreels-v2-t2v", tiny_skyreels_config(), latent_frames=3),
    FamilyCase("skyreels-v2-i2v", tiny_skyreels_config(num_layers=2, in_channels=9, image_dim=8, added_kv_proj_dim=16),
               batch_size=1, text_len=512, latent_frames=2, notes="CLIP image tokens + 512 text tokens"),
    FamilyCase("skyreels-v2-df", tiny_skyreels_config(inject_sample_info=True, num_frame_per_block=2),
               batch_size=1, latent_frames=4,
               notes="diffusion forcing: per-frame timesteps, fps embedding, block-causal mask over 2 frame blocks"),
    FamilyCase("skyreels-v2-df-batch2", tiny_skyreels_config(num_layers=2, inject_sample_info=True), latent_frames=2,
               notes="fps embedding with per-sample timesteps (diffusion forcing needs batch 1 in diffusers)"),
]
