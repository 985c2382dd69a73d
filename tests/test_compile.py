"""torch.compile on scheduled transformers (ecad_hub.compile): no per-step recompiles, no ecad-hub
graph breaks inside compiled regions, outputs equal to eager, for both standard entry points.

Inductor on CPU for the entry points users call (tiny FLUX and PixArt pipelines, 4 steps, two
calls each: the second must compile nothing: ``torch._dynamo.config.error_on_recompile``);
``aot_eager`` (the same dynamo front end, no C++ build) for the bookkeeping around applying and
removing schedules on compiled modules.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from ecad_hub import CacheSchedule, apply_schedule, compile_blocks
from ecad_hub.adapters import architecture_of
from tiny_models import TINY_PROMPTS, pipeline_call_kwargs, single_threaded, tiny_pipeline, tiny_transformer, \
    transformer_step_inputs

STEPS = 4
EAGER_STEP = "_ecad_step_decision_runs_eager"


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    with single_threaded():
        yield
    torch._dynamo.reset()


def schedule_for(transformer, steps: int = STEPS, seed: int = 0) -> CacheSchedule:
    """A schedule whose every step has a different pattern (so per-step specialisation would show)
    and whose step 2 reuses everything (the fast path)."""
    arch = architecture_of(transformer)
    rng = np.random.default_rng(seed)
    masks = {}
    for g in arch.groups:
        m = rng.random((steps, g.num_blocks, len(g.components))) < 0.5
        m[2] = False
        masks[g.name] = m
    return CacheSchedule(f"random-{seed}", steps, arch, masks)


def call(pipe, kind: str):
    with torch.no_grad():
        return pipe(TINY_PROMPTS[0], generator=torch.Generator().manual_seed(0),
                    **pipeline_call_kwargs(kind, STEPS)).images


def graph_breaks() -> int:
    return sum(counters["graph_break"].values())


def compiled_graphs() -> int:
    return counters["stats"]["unique_graphs"]


def second_call_compiles_nothing(pipe, kind: str):
    before = compiled_graphs()
    with torch._dynamo.config.patch(error_on_recompile=True):
        out = call(pipe, kind)
    assert compiled_graphs() == before
    return out


# --------------------------------------------------------------------------------------------
# inductor: the two entry points
# --------------------------------------------------------------------------------------------

def test_compile_repeated_blocks_fullgraph_on_scheduled_flux():
    """diffusers' regional compile after apply_schedule: fullgraph holds, one graph per region."""
    pipe = tiny_pipeline("flux")
    schedule = schedule_for(pipe.transformer)
    handle = apply_schedule(pipe, schedule)
    eager = call(pipe, "flux")
    pipe.transformer.compile_repeated_blocks(fullgraph=True)
    first = call(pipe, "flux")
    assert graph_breaks() == 0
    # attn / ff / ff_context of the double blocks, attn / proj_mlp / proj_out of the single blocks,
    # the step-counting first block: a handful of graphs, whatever the number of steps and blocks
    assert 0 < compiled_graphs() <= 8
    second = second_call_compiles_nothing(pipe, "flux")
    torch.testing.assert_close(first, eager, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    assert handle.fast_path_calls() > 0  # the schedule really ran under the compiled regions
    counts = handle.computed_counts()["transformer_blocks"]
    mask = schedule.effective_masks()["transformer_blocks"]
    hooked = handle._plan.hooked[0]
    np.testing.assert_array_equal(counts[:, hooked], 3 * mask[:, hooked])  # three calls


def test_torch_compile_whole_scheduled_pixart():
    """torch.compile(pipe.transformer) plus compile_blocks (apply_schedule(compile="full")): no
    recompile in the second call; the outer graph splits only at the scheduled blocks."""
    pipe = tiny_pipeline("pixart", num_layers=3)
    schedule = schedule_for(pipe.transformer)
    with apply_schedule(pipe, schedule):
        eager = call(pipe, "pixart")
    handle = apply_schedule(pipe, schedule, compile="full", compile_options={"fullgraph": True})
    first = call(pipe, "pixart")
    reasons = list(counters["graph_break"])
    assert reasons and all(EAGER_STEP in r for r in reasons)  # only where the schedule decides
    second = second_call_compiles_nothing(pipe, "pixart")
    torch.testing.assert_close(first, eager, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    handle.remove()
    # the compile outlives the schedule: the plain transformer runs compiled, whole blocks
    plain = call(pipe, "pixart")
    pipe.transformer._compiled_call_impl = None
    for block in pipe.transformer.transformer_blocks:
        assert block._compiled_call_impl is not None
        block._compiled_call_impl = None
    torch.testing.assert_close(plain, call(pipe, "pixart"), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------
# aot_eager: bookkeeping
# --------------------------------------------------------------------------------------------

def _loop(transformer, kind, steps=STEPS):
    with torch.no_grad():
        return [transformer(**transformer_step_inputs(transformer, kind, s, 2, num_steps=steps))[0] for s in range(steps)]


@pytest.mark.parametrize("kind", ["pixart", "flux"])
def test_compile_blocks_bare_transformer_aot_eager(kind):
    """compile_blocks(fullgraph=True) on a bare scheduled transformer (step counted by forwards):
    two loops, the second compiles nothing; equal to eager; explain() of a region: one graph."""
    transformer = tiny_transformer(kind)
    schedule = schedule_for(transformer)
    handle = apply_schedule(transformer, schedule)
    eager = _loop(transformer, kind)
    handle.reset()
    compile_blocks(transformer, fullgraph=True, backend="aot_eager")
    first = _loop(transformer, kind)
    assert graph_breaks() == 0
    n = compiled_graphs()
    with torch._dynamo.config.patch(error_on_recompile=True):
        second = _loop(transformer, kind)
    assert compiled_graphs() == n
    for a, b, c in zip(eager, first, second):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(c, b, rtol=0, atol=0)
    # the whole transformer under explain: breaks only at hooked blocks, never a recompile per step
    handle.reset()
    # steps 0-2: all computed, partly reused, all reused (the fast path)
    inputs = [transformer_step_inputs(transformer, kind, s, 2, num_steps=STEPS) for s in range(3)]
    explained = [torch._dynamo.explain(transformer)(**x) for x in inputs]
    hooked_blocks = len(handle._block_hooks)
    for e in explained:
        assert e.graph_break_count <= hooked_blocks
        assert all(EAGER_STEP in str(r.reason) or EAGER_STEP in str(r) for r in e.break_reasons)
    assert len({e.graph_count for e in explained}) == 1  # the same split at every step


def test_compiled_before_apply_is_moved_and_restored(caplog):
    """Module.compile before apply_schedule would trace the hooks: ecad-hub moves it under them (a
    warning) and restores the user's compiled call afterwards."""
    transformer = tiny_transformer("pixart")
    blocks = list(transformer.transformer_blocks)
    for block in blocks:
        block.compile(backend="aot_eager")
    saved = [b._compiled_call_impl for b in blocks]
    schedule = schedule_for(transformer)
    with caplog.at_level(logging.WARNING, logger="ecad_hub.compile"):
        handle = apply_schedule(transformer, schedule)
    assert "compiled before the schedule was applied" in caplog.text
    with handle:
        assert all(b._compiled_call_impl is None for b in blocks)
        out = _loop(transformer, "pixart")
        assert graph_breaks() == 0
        with torch._dynamo.config.patch(error_on_recompile=True):
            _loop(transformer, "pixart")
        handle.reset()
        with torch.compiler.set_stance("force_eager"):
            eager_ref = _loop(transformer, "pixart")
    for a, b in zip(out, eager_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert [b._compiled_call_impl for b in blocks] == saved


def test_compile_then_apply_then_remove_keeps_request(caplog):
    """compile_blocks before the schedule: applied, the blocks are compiled under the hooks;
    removed, compiled whole again. Re-applying re-uses compiled code (no new graphs)."""
    transformer = tiny_transformer("pixart")
    compile_blocks(transformer, backend="aot_eager")
    schedule = schedule_for(transformer)
    _loop(transformer, "pixart")
    for _ in range(2):
        with apply_schedule(transformer, schedule):
            _loop(transformer, "pixart")
        _loop(transformer, "pixart")
        n = compiled_graphs()
    with torch._dynamo.config.patch(error_on_recompile=True):
        with apply_schedule(transformer, schedule):
            _loop(transformer, "pixart")
        _loop(transformer, "pixart")
    assert compiled_graphs() == n
    assert all(b._compiled_call_impl is not None for b in transformer.transformer_blocks)
    assert graph_breaks() == 0


def test_outer_compile_without_regions_warns(caplog):
    import ecad_hub.compile as ec

    transformer = tiny_transformer("pixart")
    ec._WARNED_EAGER = False
    with apply_schedule(transformer, schedule_for(transformer)):
        compiled = torch.compile(transformer, backend="aot_eager")
        with caplog.at_level(logging.WARNING, logger="ecad_hub.compile"), torch.no_grad():
            compiled(**transformer_step_inputs(transformer, "pixart", 0, 2, num_steps=STEPS))
    assert "runs the scheduled blocks" in caplog.text and "compile_blocks" in caplog.text


def test_apply_schedule_rejects_unknown_compile():
    transformer = tiny_transformer("pixart")
    with pytest.raises(ValueError, match="compile"):
        apply_schedule(transformer, schedule_for(transformer), compile="everything")
