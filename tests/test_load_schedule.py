"""In-place loading (``load_schedule``, ``apply_schedule`` with any source), never two caches stacked
(real diffusers caches on a tiny PixArt), speedup selection at display precision, and the
``ECADPipeline`` wrapper's identity (``isinstance(..., DiffusionPipeline)``, ``from_pipe`` sharing).

Images are compared bit for bit with what ``ecad_hub.hooks.apply_schedule`` of the same
``CacheSchedule`` (or the unpatched pipeline) produces.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from diffusers.hooks import (
    FirstBlockCacheConfig,
    HookRegistry,
    PyramidAttentionBroadcastConfig,
    TaylorSeerCacheConfig,
    apply_first_block_cache,
    apply_pyramid_attention_broadcast,
)

import ecad_hub
from ecad_hub import CacheConflictError, CacheSchedule, ECADPipeline, Frontier, load_schedule
from ecad_hub.adapters import architecture_of
from ecad_hub.errors import FrontierError, ScheduleNotFoundError
from ecad_hub.hooks import apply_schedule as hooks_apply_schedule
from ecad_hub.macs import profile_macs
from support import STEPS, toy_schedules
from tiny_models import pipeline_call_kwargs, tiny_pipeline, tiny_pixart_pipeline

PROMPT = "a photo of a cat"
CALL = {k: v for k, v in pipeline_call_kwargs("pixart").items() if k != "num_inference_steps"}
REPO = "test-user/tiny-pixart-ecad"


@pytest.fixture(scope="module")
def pipe():
    p = tiny_pixart_pipeline(seed=0)
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def frontier(pipe) -> Frontier:
    """All-compute + three masks for the tiny transformer, MACs counted on the real module."""
    return Frontier.from_schedules(toy_schedules(architecture_of(pipe.transformer)), base_model="test-user/tiny-pixart",
                                   pipeline_class=type(pipe).__name__, profile=profile_macs(pipe.transformer, 64, 64))


def images(p, **kwargs) -> torch.Tensor:
    return p(PROMPT, generator=torch.Generator().manual_seed(0), num_inference_steps=STEPS, **CALL, **kwargs).images


@pytest.fixture(scope="module")
def reference(pipe, frontier):
    """``images`` of the unpatched pipeline (``None``) and under each schedule (plain hooks.apply_schedule)."""
    out = {None: images(pipe)}
    for s in frontier:
        with hooks_apply_schedule(pipe, s):
            out[s.name] = images(pipe)
    assert not hasattr(pipe.transformer, "_ecad_handle")
    return out


# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------

def test_apply_schedule_takes_a_schedule_file_a_folder_and_a_frontier(pipe, frontier, reference, tmp_path):
    fastest = frontier.names[-1]
    assert not torch.equal(reference[fastest], reference[None])
    path = frontier[fastest].save(tmp_path / "schedules" / "fast.json")
    folder = frontier.save_pretrained(tmp_path / "export")
    for apply in (ecad_hub.apply_schedule, hooks_apply_schedule):  # today's TypeError: a path is loaded
        for source in (path, str(path)):
            with apply(pipe, source) as handle:
                assert handle.schedule.content_hash == frontier[fastest].content_hash
                assert torch.equal(images(pipe), reference[fastest])
    for source in (folder, str(folder), frontier):
        with ecad_hub.apply_schedule(pipe, source, select=fastest):
            assert torch.equal(images(pipe), reference[fastest])
        with ecad_hub.apply_schedule(pipe, source) as handle:  # the frontier's default
            assert handle.schedule.name == frontier.default
    assert torch.equal(images(pipe), reference[None])  # everything removed
    with pytest.raises(FrontierError, match="no such schedule file"):
        ecad_hub.apply_schedule(pipe, tmp_path / "missing.json")
    with pytest.raises(TypeError, match="CacheSchedule or the path"):
        hooks_apply_schedule(pipe, 42)


def test_load_schedule_in_place_switches_disables_enables_and_removes(pipe, frontier, reference, tmp_path):
    folder = frontier.save_pretrained(tmp_path / "export")
    fastest, allc = frontier.names[-1], frontier.names[0]
    handle = load_schedule(pipe, folder, schedule=fastest)
    assert handle.schedule.name == fastest and handle.frontier == frontier and handle.enabled
    assert pipe.ecad_schedule.name == fastest and handle.handle.transformer is pipe.transformer
    assert torch.equal(images(pipe), reference[fastest])
    assert handle.call_kwargs == {"num_inference_steps": STEPS}  # nothing recorded by a frontier of files
    assert handle.set_schedule(1.0).name == allc and torch.equal(images(pipe), reference[None])
    handle.set_schedule(fastest)
    handle.disable()
    assert not handle.enabled and handle.handle is None and torch.equal(images(pipe), reference[None])
    assert handle.set_schedule(frontier.names[1]).name == frontier.names[1]  # switching while disabled applies nothing
    assert torch.equal(images(pipe), reference[None])
    handle.enable()
    assert handle.enabled and torch.equal(images(pipe), reference[frontier.names[1]])
    with handle:
        pass
    assert not handle.enabled and not hasattr(pipe.transformer, "_ecad_handle")
    assert torch.equal(images(pipe), reference[None])

    single = load_schedule(pipe, frontier[fastest].save(tmp_path / "one.json"))  # one schedule file
    try:
        assert single.frontier is None and single.schedule.name == fastest
        assert torch.equal(images(pipe), reference[fastest])
        with pytest.raises(FrontierError, match="loaded on its own"):
            single.set_schedule("2x")
        assert single.set_schedule(frontier[allc]).name == allc  # a CacheSchedule is applied as given
        assert torch.equal(images(pipe), reference[None])
    finally:
        single.remove()
    with pytest.raises(FrontierError, match="a single schedule was given"):
        load_schedule(pipe, tmp_path / "one.json", schedule="2x")
    assert not hasattr(pipe.transformer, "_ecad_handle")


def test_load_schedule_from_a_hub_repo(hub, pipe, frontier, reference, tmp_path):
    frontier.push_to_hub(REPO)
    handle = load_schedule(pipe, REPO, schedule=frontier.names[-1], cache_dir=tmp_path / "cache")
    try:
        assert handle.frontier.commit == hub.refs(REPO)["main"] and handle.frontier.repo_id == REPO
        assert torch.equal(images(pipe), reference[frontier.names[-1]])
    finally:
        handle.remove()


def test_load_schedule_refuses_another_architecture(pipe):
    arch = architecture_of({**dict(pipe.transformer.config), "_class_name": "PixArtTransformer2DModel",
                            "num_layers": 3})
    other = Frontier.from_schedules([CacheSchedule.all_compute(arch, STEPS)], base_model="m")
    with pytest.raises(ecad_hub.ArchitectureMismatchError, match="has schedules for"):
        load_schedule(pipe, other)
    assert not hasattr(pipe.transformer, "_ecad_handle")


# --------------------------------------------------------------------------------------------
# never two caches stacked
# --------------------------------------------------------------------------------------------

def _remove_hooks(transformer, *names):
    for name in names:
        HookRegistry.check_if_exists_or_initialize(transformer).remove_hook(name, recurse=True)


def test_a_diffusers_cache_applied_with_apply_hooks_is_refused(pipe, frontier, reference):
    fastest = frontier.names[-1]
    apply_first_block_cache(pipe.transformer, FirstBlockCacheConfig(threshold=0.05))
    try:
        for load in (lambda: load_schedule(pipe, frontier, schedule=fastest),
                     lambda: ecad_hub.apply_schedule(pipe, frontier[fastest]),
                     lambda: ECADPipeline.from_pipe(pipe, frontier)):
            with pytest.raises(CacheConflictError) as err:
                load()
            message = str(err.value)
            assert "FirstBlockCache, applied with diffusers.hooks.apply_" in message, message
            assert "remove_hook(name, recurse=True) for 'fbc_block_hook', 'fbc_leader_block_hook'" in message
            assert "\n" not in message
            assert not hasattr(pipe.transformer, "_ecad_handle")
    finally:
        _remove_hooks(pipe.transformer, "fbc_leader_block_hook", "fbc_block_hook")

    apply_pyramid_attention_broadcast(pipe.transformer, PyramidAttentionBroadcastConfig(
        spatial_attention_block_skip_range=2, spatial_attention_block_identifiers=("transformer_blocks",),
        current_timestep_callback=lambda: 500))
    try:
        with pytest.raises(CacheConflictError, match=r"PyramidAttentionBroadcast, applied .*'pyramid_attention"):
            load_schedule(pipe, frontier, schedule=fastest)
    finally:
        _remove_hooks(pipe.transformer, "pyramid_attention_broadcast")
    assert torch.equal(images(pipe), reference[None])

    # a diffusers cache applied after the schedule: refused at the next call, before denoising
    handle = load_schedule(pipe, frontier, schedule=fastest)
    apply_first_block_cache(pipe.transformer, FirstBlockCacheConfig(threshold=0.05))
    try:
        with pytest.raises(CacheConflictError, match="applied to the transformer after the ECAD schedule"):
            images(pipe)
    finally:
        _remove_hooks(pipe.transformer, "fbc_leader_block_hook", "fbc_block_hook")
    assert torch.equal(images(pipe), reference[fastest])
    handle.remove()
    assert torch.equal(images(pipe), reference[None])


def test_a_diffusers_cache_from_enable_cache_is_refused():
    flux = tiny_pipeline("flux")
    flux.set_progress_bar_config(disable=True)
    arch = architecture_of(flux.transformer)
    g = arch.groups[0]
    mask = np.ones((STEPS, g.num_blocks, len(g.components)), dtype=bool)
    mask[2] = False
    masks = {gr.name: np.ones((STEPS, gr.num_blocks, len(gr.components)), dtype=bool) for gr in arch.groups}
    masks[g.name] = mask
    schedule = CacheSchedule("reuse-step-2", STEPS, arch, masks)
    call = pipeline_call_kwargs("flux")
    for config in (FirstBlockCacheConfig(threshold=0.05), TaylorSeerCacheConfig(cache_interval=2)):
        flux.transformer.enable_cache(config)
        try:
            with pytest.raises(CacheConflictError) as err:
                load_schedule(flux, schedule)
            message = str(err.value)
            assert f"({type(config).__name__}, enable_cache)" in message and "pipe.transformer.disable_cache()" in message
            assert "\n" not in message and not hasattr(flux.transformer, "_ecad_handle")
        finally:
            flux.transformer.disable_cache()
    handle = load_schedule(flux, schedule)
    flux.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.05))
    try:
        with pytest.raises(CacheConflictError, match=r"\(FirstBlockCacheConfig, enable_cache\) was applied to the "
                                                     r"transformer after the ECAD schedule"):
            flux(PROMPT, generator=torch.Generator().manual_seed(0), **call)
    finally:
        flux.transformer.disable_cache()
    with_schedule = flux(PROMPT, generator=torch.Generator().manual_seed(0), **call).images
    handle.remove()
    plain_after = flux(PROMPT, generator=torch.Generator().manual_seed(0), **call).images
    assert not torch.equal(with_schedule, plain_after)  # the schedule ran (alone) while applied


def test_another_ecad_schedule_is_replaced(pipe, frontier, reference):
    first = load_schedule(pipe, frontier, schedule=frontier.names[-1])
    second = load_schedule(pipe, frontier, schedule=frontier.names[1])
    try:
        assert not first.enabled and first.handle is None and second.enabled
        assert pipe.ecad_schedule.name == frontier.names[1]
        assert torch.equal(images(pipe), reference[frontier.names[1]])  # one schedule, not two
        wrapped = ECADPipeline.from_pipe(pipe, frontier, schedule=frontier.names[-1])  # the wrapper replaces it too
        assert not second.enabled and torch.equal(images(pipe), reference[frontier.names[-1]])
        wrapped.disable_cache()
    finally:
        first.remove()
        second.remove()
    assert torch.equal(images(pipe), reference[None])


# --------------------------------------------------------------------------------------------
# speedup selection
# --------------------------------------------------------------------------------------------

def _speedup_frontier(arch, speedups_and_quality) -> Frontier:
    g = arch.groups[0]
    schedules = []
    for i, (speedup, quality) in enumerate(speedups_and_quality):
        mask = np.ones((STEPS, g.num_blocks, len(g.components)), dtype=bool)
        mask.reshape(-1)[len(g.components) * g.num_blocks + np.arange(i)] = False  # distinct masks, steps >= 1
        full = 10**8
        total = round(full / speedup)
        per_step = [total // STEPS] * (STEPS - 1)
        metrics = {"macs": {"per_step": [total - sum(per_step), *per_step], "total": total, "all_compute_total": full,
                            "ratio": total / full, "speedup": speedup}}
        if quality is not None:
            metrics["quality"] = [{"metric": "image_reward", "value": quality}]
        schedules.append(CacheSchedule(f"s{i}", STEPS, arch, {g.name: mask}, metrics=metrics))
    return Frontier.from_schedules(schedules, base_model="test-user/tiny-pixart")


def test_a_speedup_at_display_precision_selects_the_schedule_it_names(pipe, caplog):
    arch = architecture_of(pipe.transformer)
    f = _speedup_frontier(arch, [(1.0, 0.9), (1.5184, 0.8), (3.9255, 0.5), (4.86, 0.6)])  # 4.86 better than 3.93
    assert f.names == ["ecad-1.00x", "ecad-1.52x", "ecad-3.93x", "ecad-4.86x"]
    with caplog.at_level(logging.INFO, logger="ecad_hub.frontier"):
        for spec in ("3.93x", "3.93", 3.93, " 3.93 X", "ecad-3.93x"):
            caplog.clear()
            assert f.resolve(spec).name == "ecad-3.93x", spec
            assert f.pick_note is None and not caplog.records
        assert f.resolve("4.86x").name == f.resolve(4.86).name == "ecad-4.86x"
        assert f.resolve("1.518x").name == f.resolve(1.52).name == "ecad-1.52x"  # three decimals: compared at three
        assert f.pick(speedup=1.0).name == "ecad-1.00x" and f.resolve("1x").name == "ecad-1.00x"
        # otherwise: the nearest at or above (not the better-quality 4.86x), with a note
        caplog.clear()
        assert f.resolve(3.5).name == "ecad-3.93x"
        assert "picked ecad-3.93x" in f.pick_note and "nearest at or above" in f.pick_note
        assert any("picked ecad-3.93x" in r.getMessage() for r in caplog.records)
        assert f.resolve("4x").name == "ecad-4.86x" and "no schedule is shown as 4.00x" in f.pick_note
        assert f.resolve("1.5x").name == "ecad-1.52x"  # 1.50 is not shown: 1.5184 is the nearest above
    with pytest.raises(ScheduleNotFoundError, match=r"no schedule reaches a 5\.00x MAC speedup; the fastest is "
                                                    r"ecad-4\.86x"):
        f.resolve("5x")
    # the same on the pipeline and the in-place handle
    wrapped = ECADPipeline.from_pipe(pipe, f, schedule="3.93x")
    try:
        assert wrapped.schedule.name == "ecad-3.93x" and wrapped.set_schedule(3.93).name == "ecad-3.93x"
    finally:
        wrapped.disable_cache()
    handle = load_schedule(pipe, f, schedule="3.93x")
    try:
        assert handle.schedule.name == "ecad-3.93x" and handle.set_schedule("4.86x").name == "ecad-4.86x"
    finally:
        handle.remove()


# --------------------------------------------------------------------------------------------
# the wrapper
# --------------------------------------------------------------------------------------------

def test_ecad_pipeline_is_a_diffusion_pipeline_and_from_pipe_shares_the_base(pipe, frontier, reference):
    fastest = frontier.names[-1]
    wrapped = ECADPipeline.from_pipe(pipe, frontier, schedule=fastest)
    try:
        assert isinstance(wrapped, DiffusionPipeline) and isinstance(wrapped, type(pipe))
        assert isinstance(wrapped, ECADPipeline) and type(wrapped) is ECADPipeline
        assert not isinstance(pipe, ECADPipeline)
        assert wrapped.pipeline is pipe and wrapped.transformer is pipe.transformer
        assert torch.equal(images(wrapped), reference[fastest])
        assert torch.equal(images(pipe), reference[fastest])  # shared, as documented: the base runs it too
        wrapped.disable_cache()
        assert torch.equal(images(pipe), reference[None]) and torch.equal(images(wrapped), reference[None])
        wrapped.enable_cache()
        assert torch.equal(images(pipe), reference[fastest])
    finally:
        wrapped.disable_cache()
    assert not hasattr(pipe.transformer, "_ecad_handle")
