"""The memory a schedule's cache holds: ``ScheduleHandle.cached_bytes`` against an independent count
(plain forward hooks on an unpatched transformer), the documented rule (after step ``s`` the cache
holds exactly the outputs step ``s + 1`` reuses), ``meta`` equal to CPU, and
``scripts/bench_memory.py --dry-run``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ecad_hub import CacheSchedule, EcadError, apply_schedule, cache_memory
from ecad_hub.adapters import architecture_of
from tiny_models import (
    TINY_MAX_SEQUENCE_LENGTH,
    tiny_flux_config,
    tiny_pixart_config,
    tiny_transformer,
    transformer_step_inputs,
)

ROOT = Path(__file__).resolve().parents[1]
STEPS = 5


def reuse_all_after_first(arch, steps: int) -> CacheSchedule:
    masks = {}
    for g in arch.groups:
        m = np.zeros((steps, g.num_blocks, len(g.components)), dtype=bool)
        m[0] = True
        masks[g.name] = m
    return CacheSchedule("bound", steps, arch, masks)


def storage_bytes(obj, seen: set) -> int:
    """Bytes of the distinct storages of the tensors in a module output (tuples of tensors included)."""
    if isinstance(obj, torch.Tensor):
        st = obj.untyped_storage()
        if st._cdata in seen:
            return 0
        seen.add(st._cdata)
        return st.nbytes()
    if isinstance(obj, (tuple, list)):
        return sum(storage_bytes(o, seen) for o in obj)
    return 0


def output_sizes(transformer, arch, inputs) -> dict[tuple[str, int, str], int]:
    """One unpatched forward; the output bytes of every scheduled sub-module, by torch forward hooks."""
    sizes, hooks = {}, []
    for g in arch.groups:
        for b, block in enumerate(getattr(transformer, g.name)):
            for c in g.components:
                def record(module, args, output, key=(g.name, b, c)):
                    sizes[key] = storage_bytes(output, set())
                hooks.append(block.get_submodule(c).register_forward_hook(record))
    try:
        with torch.no_grad():
            transformer(**inputs)
    finally:
        for h in hooks:
            h.remove()
    return sizes


def random_schedule(arch, steps: int, seed: int) -> CacheSchedule:
    rng = np.random.default_rng(seed)
    masks = {}
    for g in arch.groups:
        m = rng.random((steps, g.num_blocks, len(g.components))) < 0.5
        m[0] = True
        masks[g.name] = m
    return CacheSchedule("random", steps, arch, masks)


def run_steps(transformer, kind: str, schedule: CacheSchedule) -> tuple[list[int], list[int]]:
    sizes, counts = [], []
    with torch.no_grad(), apply_schedule(transformer, schedule) as handle:
        for step in range(schedule.num_inference_steps):
            transformer(**transformer_step_inputs(transformer, kind, step, num_steps=schedule.num_inference_steps))
            sizes.append(handle.cached_bytes())
            counts.append(handle.cached_tensors())
    return sizes, counts


@pytest.mark.parametrize("kind", ["pixart", "flux"])
def test_bound_schedule_holds_every_output_once_and_nothing_after_the_last_step(kind):
    transformer = tiny_transformer(kind, seed=0)
    arch = architecture_of(transformer)
    expected = output_sizes(transformer, arch, transformer_step_inputs(transformer, kind, 0, num_steps=STEPS))
    assert len(expected) == sum(int(g.present().sum()) for g in arch.groups) and all(v > 0 for v in expected.values())
    sizes, counts = run_steps(transformer, kind, reuse_all_after_first(arch, STEPS))
    assert sizes[:-1] == [sum(expected.values())] * (STEPS - 1)
    assert counts[:-1] == [len(expected)] * (STEPS - 1)
    assert sizes[-1] == 0 and counts[-1] == 0


@pytest.mark.parametrize("kind,seed", [("pixart", 1), ("pixart", 2), ("flux", 3)])
def test_cache_after_each_step_is_exactly_what_the_next_step_reuses(kind, seed):
    transformer = tiny_transformer(kind, seed=0)
    arch = architecture_of(transformer)
    size = output_sizes(transformer, arch, transformer_step_inputs(transformer, kind, 0, num_steps=STEPS))
    schedule = random_schedule(arch, STEPS, seed)
    masks = schedule.effective_masks()
    expected = []
    for s in range(STEPS):
        nxt = s + 1
        expected.append(0 if nxt == STEPS else sum(
            size[(g.name, b, c)] for g in arch.groups for b in range(g.num_blocks)
            for ci, c in enumerate(g.components) if g.present()[b, ci] and not masks[g.name][nxt, b, ci]))
    sizes, _ = run_steps(transformer, kind, schedule)
    assert sizes == expected
    assert max(expected) > 0  # the schedule reuses something, so the check is not vacuous


@pytest.mark.parametrize("kind,config", [("pixart", tiny_pixart_config), ("flux", tiny_flux_config)])
def test_meta_device_sizes_the_cache_as_cpu_does(kind, config):
    import diffusers

    cpu = tiny_transformer(kind, seed=0)
    cls = type(cpu)
    assert cls is getattr(diffusers, cls.__name__)
    with torch.device("meta"):
        meta = cls.from_config({k: v for k, v in config().items() if not k.startswith("_")})
    arch = architecture_of(cpu)
    schedule = random_schedule(arch, STEPS, 7)
    assert next(meta.parameters()).device.type == "meta"
    assert run_steps(meta.eval(), kind, schedule) == run_steps(cpu, kind, schedule)


@pytest.mark.parametrize("kind,config", [("pixart", tiny_pixart_config), ("flux", tiny_flux_config)])
def test_cache_memory_from_a_config_equals_a_cpu_run(kind, config):
    cpu = tiny_transformer(kind, seed=0)
    arch = architecture_of(cpu)
    schedule = random_schedule(arch, STEPS, 11)
    sizes, held = run_steps(cpu, kind, schedule)
    bound = output_sizes(cpu, arch, transformer_step_inputs(cpu, kind, 0, num_steps=STEPS))
    source = {"_class_name": type(cpu).__name__, **config()}
    m = cache_memory(source, schedule, 64, 64, batch_size=2, text_len=TINY_MAX_SEQUENCE_LENGTH, dtype="float32")
    assert list(m.per_step_bytes) == sizes and list(m.outputs_held) == held
    assert m.bound_bytes == sum(bound.values()) and m.outputs_max == len(bound)
    assert m.weights_bytes == sum(p.numel() * 4 for p in cpu.parameters())
    assert m.peak_bytes == max(sizes) > 0 and m.per_step_bytes[m.peak_after_step] == m.peak_bytes
    half = cache_memory(cpu, schedule, 64, 64, batch_size=2, text_len=TINY_MAX_SEQUENCE_LENGTH, dtype="bfloat16")
    assert 2 * half.peak_bytes == m.peak_bytes and 2 * half.weights_bytes == m.weights_bytes
    four = cache_memory(source, schedule, 64, 64, batch_size=4, text_len=TINY_MAX_SEQUENCE_LENGTH, dtype="float32")
    assert four.peak_bytes == 2 * m.peak_bytes  # linear in the rows
    assert "cache peak" in m.summary() and m.to_dict()["peak_bytes"] == m.peak_bytes


def test_cache_memory_refuses_an_unknown_dtype():
    schedule = CacheSchedule.all_compute(architecture_of(tiny_transformer("pixart", seed=0)), 2)
    with pytest.raises(EcadError, match="dtype must be one of"):
        cache_memory(tiny_transformer("pixart", seed=0), schedule, 64, 64, dtype="float8")


def test_bench_memory_dry_run(tmp_path):
    out = tmp_path / "memory.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_memory.py"), "--dry-run", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (case,) = json.loads(out.read_text())["results"]
    by_name = {s["schedule"]: s for s in case["schedules"]}
    bound = by_name["bound"]
    assert bound["outputs_held"] == case["outputs_max"] > 0
    assert bound["cache_peak_bytes"] > 0 and by_name["fora-3"]["per_step_bytes"][-1] == 0
    # FORA-2 reuses everything at step 1 (the bound's peak); FORA-3 too, at steps 1-2
    assert by_name["fora-2"]["cache_peak_bytes"] == by_name["fora-3"]["cache_peak_bytes"] == bound["cache_peak_bytes"]
    assert by_name["fora-2"]["per_step_bytes"][1] == 0  # step 2 recomputes everything: nothing kept after step 1
    assert "| tiny-pixart |" in proc.stdout and "bound" in proc.stdout
