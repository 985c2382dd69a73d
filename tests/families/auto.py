"""Transformer classes with no hand-written adapter: the automatic adapter (``ecad_hub/adapters/auto.py``).

``adapter_for(<class name>)`` falls back to the automatic adapter for these classes, so the
conformance suite runs them like any other case: groups, components and absent entries derived
from the structure and a traced dummy forward, inputs synthesised from the forward signature.
"""

from families import FamilyCase

CASES = [
    FamilyCase("auto-cogview3plus", {
        "_class_name": "CogView3PlusTransformer2DModel", "patch_size": 2, "in_channels": 4, "num_layers": 2,
        "attention_head_dim": 8, "num_attention_heads": 2, "out_channels": 4, "text_embed_dim": 16,
        "time_embed_dim": 16, "condition_dim": 4, "pos_embed_max_size": 16, "sample_size": 8},
        notes="image latents; SDXL-style size conditions synthesised"),
    FamilyCase("auto-easyanimate", {
        "_class_name": "EasyAnimateTransformer3DModel", "num_attention_heads": 2, "attention_head_dim": 16,
        "in_channels": 4, "out_channels": 4, "patch_size": 2, "num_layers": 3, "mmdit_layers": 2,
        "time_embed_dim": 16, "text_embed_dim": 16, "sample_width": 8, "sample_height": 8},
        latent_frames=2, notes="video latents [B, C, F, H, W]; the last block has no txt_ff (absent) and runs ff twice"),
    FamilyCase("auto-bria", {
        "_class_name": "BriaTransformer2DModel", "patch_size": 1, "in_channels": 16, "num_layers": 2,
        "num_single_layers": 2, "attention_head_dim": 8, "num_attention_heads": 2, "joint_attention_dim": 16,
        "axes_dims_rope": [2, 2, 4]},
        timestep_scale=1.0, notes="packed tokens, RoPE ids; double- and single-stream groups"),
    FamilyCase("auto-consisid", {
        "_class_name": "ConsisIDTransformer3DModel", "num_attention_heads": 2, "attention_head_dim": 8,
        "in_channels": 4, "out_channels": 4, "time_embed_dim": 8, "text_embed_dim": 16, "num_layers": 2,
        "sample_width": 8, "sample_height": 8, "sample_frames": 5, "patch_size": 2, "max_text_seq_length": 8},
        latent_frames=2, notes="video latents [B, F, C, H, W]"),
]


def _kandinsky5_inputs(transformer, adapter, step, seed):
    """Channels-last video latents and RoPE position lists: inputs the synthesis cannot make."""
    import torch

    g = torch.Generator().manual_seed(seed * 1_000_003 + step + 1)
    text = torch.Generator().manual_seed(seed)
    return dict(hidden_states=torch.randn(2, 2, 8, 8, 4, generator=g),
                encoder_hidden_states=torch.randn(2, 6, 16, generator=text),
                pooled_projections=torch.randn(2, 8, generator=text),
                timestep=torch.full((2,), 1000.0 * (1.0 - (step + 0.5) / 8)),
                visual_rope_pos=[torch.arange(2), torch.arange(4), torch.arange(4)], text_rope_pos=torch.arange(6))


def _kandinsky5_class():
    from diffusers import Kandinsky5Transformer3DModel

    return Kandinsky5Transformer3DModel


CASES.append(FamilyCase(
    "auto-kandinsky5-example-inputs", {
        "_class_name": "Kandinsky5Transformer3DModel", "in_visual_dim": 4, "in_text_dim": 16, "in_text_dim2": 8,
        "time_dim": 16, "out_visual_dim": 4, "patch_size": [1, 2, 2], "model_dim": 32, "ff_dim": 64,
        "num_text_blocks": 1, "num_visual_blocks": 2, "axes_dims": [4, 6, 6]},
    auto=True, model_cls=_kandinsky5_class(), inputs=_kandinsky5_inputs,
    notes="inputs cannot be synthesised: the adapter is derived from one forward's example inputs"))
