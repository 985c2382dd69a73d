"""Lumina-Image 2.0 (``Lumina2Transformer2DModel``): context refiner, noise refiner, main layers."""

import dataclasses

from families import FamilyCase, step_inputs


def tiny_lumina2_config(**overrides) -> dict:
    """A Lumina-Image-2.0-like config: grouped-query attention (2 heads, 1 KV head), 3-axis RoPE."""
    cfg = dict(
        _class_name="Lumina2Transformer2DModel",
        sample_size=8,
        patch_size=2,
        in_channels=4,
        hidden_size=32,
        num_layers=2,
        num_refiner_layers=2,
        num_attention_heads=2,
        num_kv_heads=1,
        multiple_of=16,
        norm_eps=1e-5,
        axes_dim_rope=(4, 6, 6),  # sums to the head dim 16; each even
        axes_lens=(64, 32, 32),
        cap_feat_dim=16,
    )
    cfg.update(overrides)
    return cfg


def _padded_inputs(transformer, adapter, step, seed):
    """The profile inputs with padded captions of different lengths (as the Gemma tokenizer pads to
    ``max_sequence_length``): the joint sequence then carries an attention mask."""
    kw = step_inputs(_PLAIN, transformer, adapter, step, seed)
    mask = kw["encoder_attention_mask"].clone()
    mask[0, 5:] = 0
    mask[1, 3:] = 0
    kw["encoder_attention_mask"] = mask
    return kw


CASES = [
    FamilyCase("lumina2", tiny_lumina2_config(), timestep_scale=1.0,
               notes="the pipeline passes t in [0, 1]; refiner groups run before the main layers"),
    FamilyCase("lumina2-3-layers", tiny_lumina2_config(num_layers=3, num_refiner_layers=1, ffn_dim_multiplier=1.5),
               batch_size=1, timestep_scale=1.0, notes="one refiner block per refiner group"),
]

_PLAIN = CASES[0]
CASES.append(dataclasses.replace(_PLAIN, id="lumina2-padded", inputs=_padded_inputs,
                                 notes="captions of 5 and 3 valid tokens padded to 8 (masked joint attention); "
                                       "custom inputs, so no MAC check"))
