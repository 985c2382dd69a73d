"""HunyuanImage-2.1 (``HunyuanImageTransformer2DModel``): token refiner, double- and single-stream blocks."""

from families import FamilyCase


def tiny_hunyuanimage_config(**overrides) -> dict:
    """A HunyuanImage-2.1-like config: ByT5 glyph branch, guidance-distilled variant's guidance embedding."""
    cfg = dict(
        _class_name="HunyuanImageTransformer2DModel",
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,
        num_single_layers=2,
        num_refiner_layers=2,
        mlp_ratio=4.0,
        patch_size=(1, 1),
        text_embed_dim=16,
        text_embed_2_dim=8,
        rope_axes_dim=(4, 4),  # sums to the head dim
        guidance_embeds=True,
    )
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("hunyuanimage", tiny_hunyuanimage_config(), latent_size=(4, 4), text_len=10,
               notes="ByT5 tokens reordered by their mask (on the meta device the masks keep their values)"),
    FamilyCase("hunyuanimage-refiner",
               tiny_hunyuanimage_config(patch_size=(1, 1, 1), rope_axes_dim=(2, 2, 4), text_embed_2_dim=None,
                                        guidance_embeds=False, use_meanflow=True, num_refiner_layers=1,
                                        num_single_layers=3, in_channels=8),
               batch_size=1, latent_size=(4, 6), notes="the refiner: 3-D patches over one latent frame, mean flow"),
]
