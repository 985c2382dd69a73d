"""Exact MAC accounting against the ECAD authors' recorded figures."""

from __future__ import annotations

import numpy as np
import pytest

from ecad_hub import ArchitectureMismatchError, CacheSchedule, from_legacy, profile_macs
from ecad_hub.adapters import architecture_of
from support import FLUX_DEV_CONFIG, PIXART_XL_256_CONFIG, REFERENCE, needs_reference, reference_files

FULL_STEP = 285_689_806_848
ALL_REUSED_STEP = 1_498_447_872


@pytest.fixture(scope="module")
def pixart_profile():
    return profile_macs(PIXART_XL_256_CONFIG, 256, 256, batch_size=2, text_len=120)


def test_pixart_full_and_all_reused_step(pixart_profile):
    arch = architecture_of(PIXART_XL_256_CONFIG)
    assert pixart_profile.full_step_macs == FULL_STEP
    assert pixart_profile.always_macs == ALL_REUSED_STEP
    nothing = CacheSchedule("nothing", 20, arch, {"transformer_blocks": np.zeros((20, 28, 3), dtype=bool)})
    steps = pixart_profile.step_macs(nothing)
    assert steps == [FULL_STEP] + [ALL_REUSED_STEP] * 19  # step 0 computes what nothing cached yet
    assert pixart_profile.speedup(CacheSchedule.all_compute(arch, 20)) == 1.0


def test_step_macs_are_linear_in_the_mask(pixart_profile):
    arch = architecture_of(PIXART_XL_256_CONFIG)
    rng = np.random.default_rng(0)
    mask = rng.random((20, 28, 3)) < 0.5
    s = CacheSchedule("r", 20, arch, {"transformer_blocks": mask})
    comp = pixart_profile.component_macs["transformer_blocks"]
    eff = mask.copy()
    eff[0] = True
    expected = [ALL_REUSED_STEP + int(comp[eff[i]].sum()) for i in range(20)]
    assert pixart_profile.step_macs(s) == expected
    # identical blocks cost the same; ff is the largest component
    assert (comp == comp[0]).all() and comp[0, 2] > comp[0, 0] > comp[0, 1]


def test_attention_scores_option_adds_the_products():
    p = profile_macs(PIXART_XL_256_CONFIG, 256, 256, attention_scores=True)
    # QK^T and AV for 16 heads x 72 dims, batch 2: self-attention 256x256 tokens, cross 256x120
    per_block = 2 * 2 * 16 * 72 * (256 * 256 + 256 * 120)
    assert p.full_step_macs == FULL_STEP + 28 * per_block
    assert p.always_macs == ALL_REUSED_STEP


@needs_reference
@pytest.mark.parametrize("path", reference_files("pixart_alpha_256"), ids=lambda p: p.name)
def test_reference_pixart_schedules_match_recorded_macs_exactly(path, pixart_profile):
    s = from_legacy(path)
    assert pixart_profile.step_macs(s) == s.metrics["macs"]["per_step"]
    assert pixart_profile.total_macs(s) == s.metrics["macs"]["total"]


@needs_reference
def test_reference_config_file_gives_the_same_profile(pixart_profile):
    p = profile_macs(REFERENCE / "configs" / "pixart_xl_2_256_transformer.json", 256, 256)
    assert p.to_dict() == pixart_profile.to_dict()


@needs_reference
def test_paper_mac_ratios(pixart_profile):
    ratios = {name: round(pixart_profile.ratio(from_legacy(REFERENCE / "pixart_alpha_256" / f"{name}.json")), 4)
              for name in ("ours_fast", "ours_faster", "ours_fastest")}
    assert ratios == {"ours_fast": 0.3737, "ours_faster": 0.2547, "ours_fastest": 0.2057}


@pytest.mark.slow
def test_flux_full_and_reused_steps():
    p = profile_macs(FLUX_DEV_CONFIG, 256, 256, batch_size=2, text_len=512)
    assert p.full_step_macs == 9_934_575_501_312
    assert p.always_macs == 19_643_498_496  # includes the adaLN projections inside blocks


@needs_reference
@pytest.mark.slow
@pytest.mark.parametrize("path", reference_files("flux_256"), ids=lambda p: p.name)
def test_reference_flux_schedules_match_recorded_macs(path):
    p = profile_macs(REFERENCE / "configs" / "flux_1_dev_transformer.json", 256, 256, batch_size=2, text_len=512)
    s = from_legacy(path)
    assert p.step_macs(s) == s.metrics["macs"]["per_step"]


def test_sd3_absent_submodules_cost_nothing():
    cfg = {"_class_name": "SD3Transformer2DModel", "sample_size": 16, "patch_size": 2, "in_channels": 4, "num_layers": 3,
           "attention_head_dim": 8, "num_attention_heads": 2, "joint_attention_dim": 16, "caption_projection_dim": 16,
           "pooled_projection_dim": 8, "out_channels": 4, "dual_attention_layers": [0]}
    p = profile_macs(cfg, 128, 128, text_len=10)
    arch = p.architecture
    g = arch.groups[0]
    assert g.components == ("attn", "attn2", "ff", "ff_context")
    comp = p.component_macs["transformer_blocks"]
    present = g.present()
    assert (comp[~present] == 0).all() and (comp[present] > 0).all()


def test_profile_refuses_other_architectures(pixart_profile):
    other = architecture_of(FLUX_DEV_CONFIG)
    with pytest.raises(ArchitectureMismatchError, match="FluxTransformer2DModel"):
        pixart_profile.step_macs(CacheSchedule.all_compute(other, 20))


def test_profile_json_round_trip(pixart_profile):
    from ecad_hub.macs import MacProfile

    again = MacProfile.from_dict(pixart_profile.to_dict())
    assert again.to_dict() == pixart_profile.to_dict()
    assert again.full_step_macs == FULL_STEP


def test_annotate_fills_metrics(pixart_profile):
    arch = architecture_of(PIXART_XL_256_CONFIG)
    s = pixart_profile.annotate(CacheSchedule("nothing", 20, arch, {"transformer_blocks": np.zeros((20, 28, 3), bool)}))
    macs = s.metrics["macs"]
    assert macs["total"] == FULL_STEP + 19 * ALL_REUSED_STEP
    assert macs["all_compute_total"] == 20 * FULL_STEP
    assert s.mac_speedup == pytest.approx(20 * FULL_STEP / macs["total"], rel=1e-4)


@pytest.mark.parametrize("kind", ["pixart", "flux", "sd3"])
@pytest.mark.parametrize("attention_scores", [False, True])
def test_one_block_per_structure_gives_the_exhaustive_profile(kind, attention_scores):
    """Blocks of identical structure are profiled once; the result equals running every block."""
    from tiny_models import tiny_transformer

    extra = {"num_single_layers": 4} if kind == "flux" else {}
    model = tiny_transformer(kind, num_layers=4, **extra)
    fast = profile_macs(model, 64, 64, text_len=16, attention_scores=attention_scores)
    full = profile_macs(model, 64, 64, text_len=16, attention_scores=attention_scores, exhaustive=True)
    assert fast.to_dict() == full.to_dict()
    assert fast.always_macs > 0 and all(a.sum() > 0 for a in fast.component_macs.values())
