"""Hunyuan-DiT (``HunyuanDiT2DModel``): U-shaped blocks with long skips, CLIP + mT5 cross-attention, 2-D RoPE."""

from families import FamilyCase


def tiny_hunyuandit_config(**overrides) -> dict:
    """A Hunyuan-DiT-v1.1-like config. ``num_layers`` must be even (the long skips pair block i with n-1-i)."""
    cfg = dict(
        _class_name="HunyuanDiT2DModel",
        num_attention_heads=2,
        attention_head_dim=8,
        hidden_size=16,
        in_channels=4,
        patch_size=2,
        sample_size=8,
        num_layers=4,
        mlp_ratio=4.0,
        learn_sigma=True,
        cross_attention_dim=16,
        cross_attention_dim_t5=16,  # the attention pool has 8 heads
        pooled_projection_dim=16,
        text_len=6,
        text_len_t5=8,
    )
    cfg.update(overrides)
    return cfg


#: The forward picks each block's long skip from its index, so the MAC model profiles every block
#: (the adapter's ``profile_exhaustive``).
CASES = [
    FamilyCase("hunyuandit", tiny_hunyuandit_config(), notes="v1.1: style and image-size conditioning"),
    FamilyCase("hunyuandit-v1.2", tiny_hunyuandit_config(num_layers=6, use_style_cond_and_image_meta_size=False),
               batch_size=1, notes="v1.2: no style / size conditioning; two long skips"),
]

