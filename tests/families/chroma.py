"""Chroma (``ChromaTransformer2DModel``): double-stream {attn, ff, ff_context}, single-stream {attn, proj_mlp, proj_out}."""

from families import FamilyCase


def tiny_chroma_config(**overrides) -> dict:
    """A Chroma1-HD-like config (pruned modulation: one approximator feeds every block)."""
    cfg = dict(
        patch_size=1,
        in_channels=16,  # 4 VAE latent channels x 2x2 packing
        num_layers=2,
        num_single_layers=3,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=24,
        axes_dims_rope=(2, 2, 4),  # sums to attention_head_dim; each even
        approximator_num_channels=16,
        approximator_hidden_dim=32,
        approximator_layers=2,
    )
    cfg.update(overrides)
    return {"_class_name": "ChromaTransformer2DModel", **cfg}


CASES = [
    FamilyCase("chroma", tiny_chroma_config(), timestep_scale=1.0,
               notes="attention mask over [text, image]; the pipeline passes timestep / 1000"),
    FamilyCase("chroma-batch1", tiny_chroma_config(num_layers=3, num_single_layers=2), batch_size=1,
               latent_size=(8, 12), text_len=6, timestep_scale=1.0, notes="one stream of a true-CFG pair, non-square"),
]
