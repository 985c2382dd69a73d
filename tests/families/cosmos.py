"""Cosmos (``CosmosTransformer3DModel``): 1.0 (learnable positions), Predict2 and 2.5 (text projection).

Every released Cosmos checkpoint has ``concat_padding_mask=True``, which makes the diffusers forward
resize the padding mask with torchvision; torchvision cannot be installed beside the CPU torch of
this project's environment, so the cases always run without the padding-mask channel and the
padding-mask cases are added only where torchvision imports.
"""

from families import FamilyCase


def _padding_mask_runs() -> bool:
    """Whether diffusers' Cosmos module has torchvision's ``transforms`` (its padding-mask resize)."""
    from diffusers.models.transformers import transformer_cosmos

    return hasattr(transformer_cosmos, "transforms")


def tiny_cosmos_config(**overrides) -> dict:
    """A Cosmos-1.0-Diffusion-like config: head width 12 (RoPE 4/4/4), adaLN-LoRA 8; no padding-mask channel
    unless ``concat_padding_mask=True`` (torchvision)."""
    cfg = dict(_class_name="CosmosTransformer3DModel", in_channels=4, out_channels=4, num_attention_heads=2,
               attention_head_dim=12, num_layers=3, mlp_ratio=2.0, text_embed_dim=16, adaln_lora_dim=8,
               max_size=(8, 16, 16), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=False,
               extra_pos_embed_type="learnable")
    cfg.update(overrides)
    return cfg


CASES = [
    FamilyCase("cosmos-1.0", tiny_cosmos_config(), latent_size=(4, 6), latent_frames=2, batch_size=1,
               notes="text2world: one video per forward (CFG runs two forwards), learnable positions"),
    FamilyCase("cosmos-predict2", tiny_cosmos_config(num_layers=2, rope_scale=(1.0, 4.0, 4.0),
                                                     extra_pos_embed_type=None),
               latent_size=(4, 4), latent_frames=3, batch_size=2, notes="Predict2: no learnable positions"),
    FamilyCase("cosmos-2.5", tiny_cosmos_config(num_layers=2, rope_scale=(1.0, 3.0, 3.0), extra_pos_embed_type=None,
                                                use_crossattn_projection=True, crossattn_proj_in_channels=24,
                                                encoder_hidden_states_channels=16),
               latent_size=(4, 4), latent_frames=2, batch_size=1, notes="2.5: cross-attention projection"),
]

if _padding_mask_runs():
    CASES += [
        FamilyCase("cosmos-1.0-padding-mask", tiny_cosmos_config(concat_padding_mask=True), latent_size=(4, 6),
                   latent_frames=2, batch_size=1, notes="the released configs' padding-mask channel (torchvision)"),
        FamilyCase("cosmos-predict2-padding-mask",
                   tiny_cosmos_config(num_layers=2, rope_scale=(1.0, 4.0, 4.0), extra_pos_embed_type=None,
                                      concat_padding_mask=True),
                   latent_size=(4, 4), latent_frames=3, batch_size=2, notes="padding mask repeated over a CFG batch"),
    ]
