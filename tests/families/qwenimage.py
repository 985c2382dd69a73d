"""Qwen-Image (``QwenImageTransformer2DModel``): one group of dual-stream blocks {attn, img_mlp, txt_mlp}."""

from families import FamilyCase


def tiny_qwenimage_config(**overrides) -> dict:
    """A Qwen-Image-like config (patch 2: in_channels = 4 x the VAE's latent channels)."""
    cfg = dict(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=3,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=24,
        guidance_embeds=False,
        axes_dims_rope=(2, 2, 4),  # sums to attention_head_dim
    )
    cfg.update(overrides)
    return {"_class_name": "QwenImageTransformer2DModel", **cfg}


CASES = [
    FamilyCase("qwenimage", tiny_qwenimage_config(), timestep_scale=1.0,
               notes="text mask of ones; the pipeline passes timestep / 1000"),
    FamilyCase("qwenimage-edit-2511", tiny_qwenimage_config(num_layers=2, zero_cond_t=True), batch_size=1,
               latent_size=(8, 12), timestep_scale=1.0,
               notes="zero_cond_t (Qwen-Image-Edit-2511): the modulation runs on a doubled timestep batch"),
]
