"""Legacy import: ECAD reference files (PixArt, FLUX) and SmoothCache files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecad_hub import CacheSchedule, LegacyFormatError, UnsupportedFeatureError, from_legacy
from support import PIXART_XL_256_CONFIG, REFERENCE, needs_reference, reference_files


def _legacy_bits(doc):
    """(group, step, block, component) -> bool straight from the legacy JSON, independently of ecad_hub."""
    flux_names = {"full_attn": "attn", "full_ff": "ff", "full_ff_context": "ff_context",
                  "single_attn": "attn", "single_proj_mlp": "proj_mlp", "single_proj_out": "proj_out"}
    out = {}
    for step, blocks in doc["cache_schedule"]["schedule"].items():
        for block, comps in blocks.items():
            group = "single_transformer_blocks" if block.startswith("single_") else "transformer_blocks"
            index = int(block.removeprefix("single_"))
            for comp, bit in comps.items():
                out[(group, int(step), index, flux_names.get(comp, comp))] = bit
    return out


@needs_reference
@pytest.mark.parametrize("path", reference_files("pixart_alpha_256") + reference_files("flux_256"), ids=lambda p: p.name)
def test_legacy_to_v1_to_load_keeps_every_bit(path, tmp_path):
    doc = json.loads(path.read_text())
    schedule = from_legacy(path)
    target = schedule.save(tmp_path / f"{schedule.name}.json")
    loaded = CacheSchedule.load(target)
    bits = _legacy_bits(doc)
    expected_count = sum(len(g.components) * g.num_blocks for g in loaded.architecture.groups) * loaded.num_inference_steps
    assert len(bits) == expected_count
    for (group, step, block, comp), bit in bits.items():
        g = loaded.architecture.group(group)
        assert loaded.masks[group][step, block, g.components.index(comp)] == bit
    # recorded metrics and provenance survive
    per_step = [doc["metrics"]["by_inference_step"][k]["macs"] for k in sorted(doc["metrics"]["by_inference_step"])]
    assert loaded.metrics["macs"]["per_step"] == per_step
    assert loaded.metrics["macs"]["total"] == doc["metrics"]["total_macs"]
    assert loaded.metrics["latency"]["ms_per_image"] == pytest.approx(doc["metrics"]["latency"]["avg"])
    assert loaded.metrics["latency"]["batch_size"] == doc["metrics"]["latency"]["batch_size"]
    imported = loaded.provenance["imported_from"]
    assert imported["format"] == "ecad-legacy" and imported["file"] == path.name
    assert imported["name"] == doc["cache_schedule"]["name"]
    assert loaded.name == path.stem
    if "pixart" in str(path):
        assert target.stat().st_size < 8 * 1024
        assert path.stat().st_size > 80 * 1024


@needs_reference
def test_flux_layout_maps_to_diffusers_names():
    s = from_legacy(REFERENCE / "flux_256" / "default_256x256_gs_5.json")
    assert s.architecture.transformer_class == "FluxTransformer2DModel"
    assert [(g.name, g.num_blocks, g.components) for g in s.architecture.groups] == [
        ("transformer_blocks", 19, ("attn", "ff", "ff_context")),
        ("single_transformer_blocks", 38, ("attn", "proj_mlp", "proj_out")),
    ]
    assert s.generation == {"height": 256, "width": 256, "guidance_scale": 5.0}


def _tiny_legacy(steps=2, blocks=2, extra=None):
    sched = {
        f"{s:03d}": {str(b): {"attn1": True, "attn2": s == 0, "ff": b == 0} for b in range(blocks)} for s in range(steps)
    }
    doc = {"cache_schedule": {"num_blocks": blocks, "num_inference_steps": steps, "name": "tiny", "schedule": sched},
           "config": {}, "metrics": {}}
    if extra:
        extra(doc)
    return doc


def test_tgate_custom_attention_is_refused_by_name():
    def add_tgate(doc):
        doc["cache_schedule"]["schedule"]["001"]["1"]["custom_compute_attn"] = {
            "name": "compute_attn_tgate", "kwargs": {"gate_step": 10}}

    with pytest.raises(UnsupportedFeatureError) as err:
        from_legacy(_tiny_legacy(extra=add_tgate))
    msg = str(err.value)
    assert "custom_compute_attn" in msg and "compute_attn_tgate" in msg and "step 001, block 1" in msg


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["cache_schedule"]["schedule"].pop("001"), "no step 1"),
        (lambda d: d["cache_schedule"]["schedule"]["001"].pop("1"), "missing block '1'"),
        (lambda d: d["cache_schedule"]["schedule"]["001"]["1"].pop("ff"), "missing component 'ff'"),
        (lambda d: d["cache_schedule"]["schedule"]["001"]["1"].update(attn3=True), "unknown components ['attn3']"),
        (lambda d: d["cache_schedule"]["schedule"]["001"]["1"].update(ff="yes"), "expected true/false"),
        (lambda d: d["cache_schedule"].update(num_blocks="2"), "positive integer"),
        (lambda d: d["cache_schedule"]["schedule"].update({"xyz": {}}), "not a step number"),
        (lambda d: d.update(metrics={"by_inference_step": {"000": {"macs": 5}, "001": {"macs": 5}}, "total_macs": 11}), "not the sum"),
    ],
)
def test_bad_legacy_files_give_clear_errors(mutate, expected):
    with pytest.raises(LegacyFormatError, match=None) as err:
        from_legacy(_tiny_legacy(extra=mutate))
    assert expected in str(err.value)


def test_unknown_layout_is_refused(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"hello": "world"}')
    with pytest.raises(LegacyFormatError, match="not a known legacy layout"):
        from_legacy(p)


def test_smoothcache_shared_lists(tmp_path):
    p = tmp_path / "50-N-3.json"
    attn = [1, 0, 0, 1, 0]
    p.write_text(json.dumps({"attn": attn, "mlp": [1, 1, 0, 1, 0]}))
    s = from_legacy(p, architecture=PIXART_XL_256_CONFIG)
    m = s.masks["transformer_blocks"]
    assert m.shape == (5, 28, 3)
    assert (m[:, :, 0] == np.array(attn, bool)[:, None]).all()  # attn -> attn1
    assert m[:, :, 1].all()  # attn2 not mentioned: always computed
    assert list(m[:, 7, 2]) == [True, True, False, True, False]  # mlp -> ff
    assert s.provenance["imported_from"]["format"] == "smoothcache"
    assert s.name == "50-N-3"


def test_smoothcache_per_block_keys():
    doc = {f"attn-{i}": [1, i % 2, 1] for i in range(28)} | {f"mlp-{i}": [1, 0, 0] for i in range(28)}
    s = from_legacy(doc, architecture=PIXART_XL_256_CONFIG, name="per-block")
    m = s.masks["transformer_blocks"]
    assert list(m[1, :4, 0]) == [False, True, False, True]
    assert not m[1:, :, 2].any()


def test_smoothcache_needs_architecture_and_known_components():
    with pytest.raises(LegacyFormatError, match="architecture="):
        from_legacy({"attn": [1, 0]})
    with pytest.raises(LegacyFormatError, match="unknown component 'conv'"):
        from_legacy({"conv": [1, 0]}, architecture=PIXART_XL_256_CONFIG)
    with pytest.raises(LegacyFormatError, match="different lengths"):
        from_legacy({"attn": [1, 0], "mlp": [1]}, architecture=PIXART_XL_256_CONFIG)
