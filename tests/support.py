"""Shared helpers for the tests (not fixtures: import what you need)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The ECAD authors' reference data, beside the project (absent in a user's clone).
REFERENCE = Path(os.environ.get("ECAD_REFERENCE_DIR", ROOT.parent / "shared" / "ecad-reference"))

needs_reference = pytest.mark.skipif(
    not (REFERENCE / "pixart_alpha_256").is_dir(),
    reason=f"ECAD reference data not found at {REFERENCE} (set ECAD_REFERENCE_DIR; it ships beside the project, not in it)",
)

PIXART_XL_256_CONFIG = {
    "_class_name": "PixArtTransformer2DModel",
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 72,
    "caption_channels": 4096,
    "cross_attention_dim": 1152,
    "in_channels": 4,
    "norm_elementwise_affine": False,
    "norm_eps": 1e-06,
    "norm_type": "ada_norm_single",
    "num_attention_heads": 16,
    "num_embeds_ada_norm": 1000,
    "num_layers": 28,
    "out_channels": 8,
    "patch_size": 2,
    "sample_size": 32,
    "use_additional_conditions": False,
}
"""PixArt-XL-2-256x256's transformer config (public architecture facts), for tests that need no shared data."""

FLUX_DEV_CONFIG = {
    "_class_name": "FluxTransformer2DModel",
    "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56],
    "guidance_embeds": True,
    "in_channels": 64,
    "joint_attention_dim": 4096,
    "num_attention_heads": 24,
    "num_layers": 19,
    "num_single_layers": 38,
    "patch_size": 1,
    "pooled_projection_dim": 768,
}


def reference_files(folder: str) -> list[Path]:
    return sorted((REFERENCE / folder).glob("*.json"))
