"""FLUX.2 (``Flux2Transformer2DModel``): double-stream blocks {attn, ff, ff_context}, single-stream {attn}."""

from families import FamilyCase


def tiny_flux2_config(**overrides) -> dict:
    """A FLUX.2-dev-like config (guidance-distilled); ``guidance_embeds=False`` is klein-like."""
    cfg = dict(
        patch_size=1,
        in_channels=16,  # 4 VAE latent channels x 2x2 packing
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=24,
        timestep_guidance_channels=32,
        mlp_ratio=3.0,
        axes_dims_rope=(2, 2, 2, 2),  # sums to attention_head_dim; each even
        rope_theta=2000,
        guidance_embeds=True,
    )
    cfg.update(overrides)
    return {"_class_name": "Flux2Transformer2DModel", **cfg}


CASES = [
    FamilyCase("flux2-dev", tiny_flux2_config(), timestep_scale=1.0,
               notes="guidance embedding; the pipeline passes timestep / 1000"),
    FamilyCase("flux2-klein", tiny_flux2_config(guidance_embeds=False, num_layers=3, num_single_layers=2),
               batch_size=1, timestep_scale=1.0, notes="no guidance embedding (klein)"),
]
