"""CogView4 (``CogView4Transformer2DModel``): joint attention; the block runs ``ff`` on image then text."""

from families import FamilyCase


def tiny_cogview4_config(**overrides) -> dict:
    cfg = dict(
        _class_name="CogView4Transformer2DModel",
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=3,
        attention_head_dim=8,
        num_attention_heads=2,
        text_embed_dim=16,
        time_embed_dim=16,
        condition_dim=8,
        pos_embed_max_size=16,
        sample_size=8,
        rope_axes_dim=(8, 8),
    )
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("cogview4", tiny_cogview4_config(), text_len=16,
               notes="ff is called twice per block forward (image stream, then text stream)"),
    FamilyCase("cogview4-batch1", tiny_cogview4_config(num_layers=2), batch_size=1, latent_size=(8, 12),
               text_len=32, notes="one forward per CFG branch (the pipeline runs cond / uncond separately)"),
]
