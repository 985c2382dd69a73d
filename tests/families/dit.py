"""DiT (``DiTTransformer2DModel``): class-conditional adaLN-Zero blocks (``class_labels`` input)."""

from families import FamilyCase


def tiny_dit_config(**overrides) -> dict:
    cfg = dict(
        _class_name="DiTTransformer2DModel",
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,  # learned sigma
        num_layers=3,
        sample_size=8,
        patch_size=2,
        num_embeds_ada_norm=1000,
    )
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("dit", tiny_dit_config(), notes="class labels; the output head reuses block 0's label embedding"),
    FamilyCase("dit-patch4", tiny_dit_config(num_layers=2, patch_size=4), batch_size=1, latent_size=(8, 8)),
]
