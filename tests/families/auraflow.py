"""AuraFlow (``AuraFlowTransformer2DModel``): joint MMDiT blocks, then single-stream blocks, register tokens."""

from families import FamilyCase


def tiny_auraflow_config(**overrides) -> dict:
    cfg = dict(
        _class_name="AuraFlowTransformer2DModel",
        sample_size=8,
        patch_size=2,
        in_channels=4,
        num_mmdit_layers=2,
        num_single_dit_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=16,
        caption_projection_dim=16,  # = heads x head dim
        out_channels=4,
        pos_embed_max_size=64,  # an 8x8 grid of positions
    )
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("auraflow", tiny_auraflow_config(), timestep_scale=1.0, notes="the pipeline passes t / 1000"),
    FamilyCase("auraflow-3-single", tiny_auraflow_config(num_mmdit_layers=1, num_single_dit_layers=3),
               batch_size=1, latent_size=(8, 12), timestep_scale=1.0, notes="one joint block, non-square latents"),
]
