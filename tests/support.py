"""Shared helpers for the tests (not fixtures: import what you need).

* reference data: :data:`REFERENCE`, :data:`needs_reference`, :func:`reference_files`;
* public transformer configs: :data:`PIXART_XL_256_CONFIG`, :data:`FLUX_DEV_CONFIG`;
* a toy frontier (test_frontier, test_hub, test_pipeline_hub, test_registry): :func:`toy_schedules`,
  :func:`toy_frontier` and what they are built from (:data:`STEPS`, :data:`METRIC`, :data:`SEARCH`,
  :data:`PIXART_CONFIG`, :func:`pixart_arch`, :func:`toy_profile`, :func:`toy_mask`);
* file checks: :func:`assert_valid_png`, :func:`folder_bytes`.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import html.parser
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from ecad_hub import CacheSchedule, Frontier
from ecad_hub.adapters import architecture_of
from ecad_hub.macs import MacProfile

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


# --------------------------------------------------------------------------------------------
# a toy frontier
# --------------------------------------------------------------------------------------------

STEPS = 4
METRIC = "image_reward"
PIXART_CONFIG = {"_class_name": "PixArtTransformer2DModel", "sample_size": 8, "patch_size": 2, "in_channels": 4,
                 "out_channels": 8, "num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 8,
                 "cross_attention_dim": 16, "caption_channels": 32, "norm_type": "ada_norm_single",
                 "norm_elementwise_affine": False, "norm_eps": 1e-6, "num_embeds_ada_norm": 1000,
                 "activation_fn": "gelu-approximate", "attention_bias": True, "use_additional_conditions": False}
"""tests/tiny_models.tiny_pixart_config() with its class name (architecture: 2 blocks x {attn1, attn2, ff})."""
SEARCH = {"metric": {"name": METRIC, "higher_is_better": True},
          "prompt_set": {"name": "tiny-prompts", "sha256": "ab" * 32, "num_prompts": 4, "images_per_prompt": 1},
          "population": 8, "generations": 3, "seed": 0, "ecad_hub_version": "0.1.0"}


def pixart_arch():
    return architecture_of(PIXART_CONFIG)


def toy_profile(arch=None) -> MacProfile:
    """Exact, hand-made MACs: attn1 100, attn2 50, ff 200 per block, 30 outside the blocks."""
    arch = arch or pixart_arch()
    comp = {g.name: np.tile(np.array([100, 50, 200], dtype=np.int64)[: len(g.components)], (g.num_blocks, 1))
            for g in arch.groups}
    return MacProfile(arch, comp, always_macs=30, outside_blocks_macs=30,
                      attention_product_macs={g: np.zeros_like(a) for g, a in comp.items()},
                      height=64, width=64, batch_size=2, text_len=16)


def toy_mask(reuse: dict[int, list[int]], arch=None) -> np.ndarray:
    """All-ones [steps, blocks, 3] mask with the listed components (by index) reused at the listed steps."""
    arch = arch or pixart_arch()
    g = arch.groups[0]
    m = np.ones((STEPS, g.num_blocks, len(g.components)), dtype=bool)
    for step, comps in reuse.items():
        m[step, :, comps] = False
    return m


def toy_schedules(arch=None) -> list[CacheSchedule]:
    """Four PixArt-tiny schedules of decreasing compute and quality (names: the search's candidate names)."""
    arch = arch or pixart_arch()
    specs = [("all", {}, 0.90), ("mild", {1: [2], 3: [2]}, 0.88), ("medium", {1: [2], 2: [0, 1, 2], 3: [2]}, 0.84),
             ("aggressive", {1: [0, 1, 2], 2: [0, 2], 3: [0, 1, 2]}, 0.70)]
    return [CacheSchedule(name, STEPS, arch, {arch.groups[0].name: toy_mask(reuse, arch)},
                          metrics={"quality": [{"metric": METRIC, "value": q}]}) for name, reuse, q in specs]


def toy_frontier(**kwargs) -> Frontier:
    kwargs.setdefault("base_model", "test-user/tiny-pixart")
    kwargs.setdefault("profile", toy_profile())
    kwargs.setdefault("search", SEARCH)
    return Frontier.from_schedules(kwargs.pop("schedules", None) or toy_schedules(), **kwargs)


def assert_valid_png(data: bytes) -> tuple[int, int]:
    """A well-formed PNG (signature, CRCs, IHDR first, IEND last, no text/time chunks); returns (width, height)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        kinds.append(kind)
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(kinds), kinds  # no Software string, no timestamp
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class StrictHTML(html.parser.HTMLParser):
    """An HTML checker for the static pages: every element closed in order (void elements aside);
    collects tags, ``(tag, key, value)`` attributes, ``src``/``href`` URLs and table cells by table class."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr", "area", "base", "col", "embed", "track",
            "param", "line", "rect", "circle", "polyline"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.urls, self.tags, self.attrs = [], [], [], [], []
        self.tables: dict[str, list[list[str]]] = {}
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs.extend((tag, k, v or "") for k, v in attrs)
        for key in ("src", "href"):
            if key in a:
                self.urls.append((tag, key, a[key]))
        if tag == "table":
            self._table = self.tables.setdefault(a.get("class", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
