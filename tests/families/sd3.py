"""Stable Diffusion 3 / 3.5 (``SD3Transformer2DModel``): absent ``ff_context`` and ``attn2`` bits."""

from families import FamilyCase
from tiny_models import tiny_sd3_config

CASES = [
    FamilyCase("sd3.5", {"_class_name": "SD3Transformer2DModel", **tiny_sd3_config()}),
    FamilyCase("sd3", {"_class_name": "SD3Transformer2DModel", **tiny_sd3_config(dual_attention_layers=())}),
]
