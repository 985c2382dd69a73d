"""SANA / SANA-Sprint (``SanaTransformer2DModel``): linear self-attention, cross-attention, GLUMBConv."""

from families import FamilyCase


def tiny_sana_config(**overrides) -> dict:
    """A SANA-1600M-like config (patch 1, no positional embedding, 32-channel DC-AE latents scaled down)."""
    cfg = dict(
        _class_name="SanaTransformer2DModel",
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=3,
        num_cross_attention_heads=2,
        cross_attention_head_dim=8,
        cross_attention_dim=16,
        caption_channels=16,
        mlp_ratio=2.5,
        sample_size=8,
        patch_size=1,
    )
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("sana", tiny_sana_config()),
    FamilyCase("sana-sprint", tiny_sana_config(num_layers=2, patch_size=2, guidance_embeds=True,
                                               qk_norm="rms_norm_across_heads", interpolation_scale=1),
               timestep_scale=1.57, batch_size=1,
               notes="SANA-Sprint: guidance embedding, QK norm; patch 2 with sin-cos positions (SANA-4K-like)"),
]
