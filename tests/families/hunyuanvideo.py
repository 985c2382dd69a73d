"""HunyuanVideo (``HunyuanVideoTransformer3DModel``): token refiner, dual-stream and single-stream groups.

HunyuanVideo-1.5 (``HunyuanVideo15Transformer3DModel``): its forward reads tensor values, so its MAC
profile runs through the adapter's ``profile_forward`` (same MACs, no data-dependent masks).
"""

from families import FamilyCase


def tiny_hunyuanvideo_config(**overrides) -> dict:
    """A HunyuanVideo-T2V-like config: 2 refiner, 2 dual-stream, 2 single-stream blocks, width 16."""
    cfg = dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
        num_single_layers=2, num_refiner_layers=2, mlp_ratio=2.0, patch_size=2, patch_size_t=1,
        qk_norm="rms_norm", guidance_embeds=True, text_embed_dim=16, pooled_projection_dim=8,
        rope_theta=256.0, rope_axes_dim=(2, 2, 4), image_condition_type=None,
    )
    cfg.update(overrides)
    return {"_class_name": "HunyuanVideoTransformer3DModel", **cfg}


def tiny_hunyuanvideo15_config(**overrides) -> dict:
    """A HunyuanVideo-1.5-like config: 2 refiner and 3 dual-stream blocks, width 16, patch 1."""
    cfg = dict(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=3,
        num_refiner_layers=2, mlp_ratio=2.0, patch_size=1, patch_size_t=1, qk_norm="rms_norm",
        text_embed_dim=16, text_embed_2_dim=8, image_embed_dim=8, rope_theta=256.0, rope_axes_dim=(2, 2, 4),
        target_size=640, task_type="t2v", use_meanflow=False,
    )
    cfg.update(overrides)
    return {"_class_name": "HunyuanVideo15Transformer3DModel", **cfg}


CASES = [
    FamilyCase("hunyuanvideo", tiny_hunyuanvideo_config(), latent_frames=2, timestep_scale=1000.0),
    FamilyCase("hunyuanvideo-i2v", tiny_hunyuanvideo_config(in_channels=9, guidance_embeds=False,
                                                             image_condition_type="latent_concat"),
               latent_frames=3, notes="HunyuanVideo-I2V (latent concat, no guidance embedding)"),
    FamilyCase("hunyuanvideo-i2v-token-replace", tiny_hunyuanvideo_config(image_condition_type="token_replace"),
               batch_size=1, latent_frames=2, notes="token-replace blocks (first-frame tokens gated apart): no fast path"),
]

CASES += [
    FamilyCase("hunyuanvideo-1.5", tiny_hunyuanvideo15_config(), latent_frames=2, latent_size=(4, 4)),
    FamilyCase("hunyuanvideo-1.5-meanflow", tiny_hunyuanvideo15_config(num_layers=2, task_type="i2v", use_meanflow=True),
               batch_size=1, latent_frames=2, latent_size=(4, 4), notes="step-distilled: reference timestep embedding"),
]
