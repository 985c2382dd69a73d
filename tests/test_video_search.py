"""Video families end to end: a two-expert Wan 2.2 pipeline and a short search on a Wan pipeline.

* Wan 2.2 (``transformer`` for the high-noise steps, ``transformer_2`` after ``boundary_ratio``):
  one schedule applied to the pipeline hooks both experts, each with its own cached outputs and
  a shared step counter; the second expert's first step computes everything (nothing of it is
  cached yet) — with ``generation.expert_switch_step`` recorded, the executed sub-module forwards
  equal the effective mask exactly and the MAC figures count that step as computed.
* ``run_search`` on a tiny ``WanPipeline`` (video frames scored as images side by side): the run
  directory records the frames, the front has schedules that reuse, and MACs are profiled per frame count.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecad_hub import CacheSchedule, apply_schedule, profile_macs
from ecad_hub.adapters import adapter_for
from ecad_hub.search import SearchConfig, run_search

from tiny_models import TINY_PROMPTS, _seeded, single_threaded
from tiny_video import MAX_SEQUENCE_LENGTH, tiny_wan_pipeline

#: classes a search test runs on (README support table); PixArt's are in test_search.py
SEARCH_TESTED = ("WanTransformer3DModel",)

STEPS = 6
CALL = dict(height=16, width=16, num_frames=5, guidance_scale=5.0, num_inference_steps=STEPS,
            max_sequence_length=MAX_SEQUENCE_LENGTH, output_type="pt")


def _wan22():
    """A two-expert Wan 2.2 pipeline: a second, differently initialised transformer after the boundary."""
    from diffusers import WanPipeline

    base = tiny_wan_pipeline(0)
    with _seeded(7):
        expert = type(base.transformer).from_config(base.transformer.config).eval()
    return WanPipeline(tokenizer=base.tokenizer, text_encoder=base.text_encoder, vae=base.vae,
                       transformer=base.transformer, transformer_2=expert, scheduler=base.scheduler,
                       boundary_ratio=0.5)


def _video(pipe, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return pipe(TINY_PROMPTS[0], generator=gen, **CALL).frames


@pytest.fixture(scope="module")
def wan22():
    with single_threaded():
        pipe = _wan22()
        pipe.set_progress_bar_config(disable=True)
        yield pipe


def test_two_expert_pipeline_hooks_both_and_switches_with_fresh_caches(wan22):
    pipe = wan22
    adapter = adapter_for(pipe.transformer)
    arch = adapter.architecture(dict(pipe.transformer.config))
    pipe.scheduler.set_timesteps(STEPS)
    switch = adapter.expert_switch_step(pipe, pipe.scheduler.timesteps)
    assert switch is not None and 0 < switch < STEPS
    rng = np.random.default_rng(3)
    masks = {g.name: rng.random((STEPS, g.num_blocks, len(g.components))) > 0.5 for g in arch.groups}
    for g in arch.groups:
        masks[g.name][switch] = False  # the schedule says reuse, but the second expert has nothing cached
    schedule = CacheSchedule("wan22-mix", STEPS, arch, masks, generation={"expert_switch_step": switch})
    assert schedule.restart_steps() == (0, switch)
    with single_threaded():
        plain = _video(pipe)
        with apply_schedule(pipe, CacheSchedule.all_compute(arch, STEPS)):
            same = _video(pipe)
        with apply_schedule(pipe, schedule) as handle:
            assert handle.transformers == [pipe.transformer, pipe.transformer_2]
            assert pipe.transformer_2.ecad_schedule is schedule
            cached = _video(pipe)
            counts = handle.computed_counts()
        after = _video(pipe)
    assert torch.equal(plain, same) and torch.equal(plain, after)
    assert not torch.equal(plain, cached)
    assert not hasattr(pipe.transformer_2, "_ecad_handle")
    eff = schedule.effective_masks()
    for g in arch.groups:
        hooked = ~eff[g.name].all(axis=0)  # sub-modules reused somewhere carry hooks (and counts)
        # CFG runs two forwards per step (cond, uncond), each counted
        assert (counts[g.name][:, hooked] == 2 * eff[g.name][:, hooked]).all()
        assert eff[g.name][switch].all()
    profile = profile_macs(pipe.transformer, 16, 16, batch_size=1, text_len=MAX_SEQUENCE_LENGTH, num_frames=5)
    assert profile.step_macs(schedule)[switch] == profile.full_step_macs


def test_a_short_search_on_a_video_pipeline(tmp_path):
    with single_threaded():
        pipe = tiny_wan_pipeline(0)
        pipe.set_progress_bar_config(disable=True)
        prompts = tmp_path / "prompts.txt"
        prompts.write_text("\n".join(TINY_PROMPTS[:2]) + "\n")
        cfg = SearchConfig(base_model="local/tiny-wan", height=16, width=16, num_frames=5, num_inference_steps=4,
                           guidance_scale=5.0, max_sequence_length=MAX_SEQUENCE_LENGTH, metric="fidelity",
                           metric_kwargs={"max_psnr": 200.0}, prompts=str(prompts), population=4, generations=2,
                           num_threads=1, seed=0)
        result = run_search(cfg, tmp_path / "run", pipe=pipe, progress=False, quiet=True)
    import json

    doc = json.loads((tmp_path / "run" / "search.json").read_text())
    assert doc["num_frames"] == 5 and doc["mac_profile"]["num_frames"] == 5
    assert result.front and any((s.mac_speedup or 1.0) > 1.0 for s in result.front)
    assert all(s.architecture.transformer_class == "WanTransformer3DModel" for s in result.front)
