"""Apply a :class:`~ecad_hub.CacheSchedule` to a diffusers transformer with diffusers' own hooks.

    >>> handle = apply_schedule(pipe, CacheSchedule.load("ours_fast.json"))
    >>> image = pipe("a red fox", num_inference_steps=20).images[0]
    >>> handle.remove()            # back to the original behaviour, bit for bit

or, scoped::

    >>> with apply_schedule(pipe, schedule):
    ...     image = pipe("a red fox").images[0]

How it works. Three small :class:`diffusers.hooks.ModelHook` classes are registered through
:class:`diffusers.hooks.HookRegistry` (no copied block classes, no hand-patched ``forward``):

* :class:`ECADComponentHook` on every sub-module the schedule reuses at some step
  (``attn1``, ``ff``, ...): at a step whose bit is ``True`` (or when nothing is cached yet) it
  runs the sub-module and keeps the output if the next step reuses it; otherwise it returns the
  kept output. Sub-modules computed at every step get no hook at all, so the all-compute
  schedule costs one hook call per forward.
* :class:`ECADBlockHook` on the blocks of those sub-modules: when every component of the block
  is reused at this step, it assembles the block's output from the kept outputs with the few
  elementwise operations the block still needs (the adapter's *fast path*: no norms, attention
  or projections run). The hook on the first block also advances the step counter.
* Step state lives in a diffusers :class:`~diffusers.hooks.hooks.StateManager` (one state
  per cache context, so FLUX's true-CFG ``cond``/``uncond`` passes keep separate caches).
  The state is reset when the pipeline calls ``scheduler.set_timesteps`` (start of a call,
  where the step count is checked) and the step counter wraps after ``num_inference_steps``
  forwards. The cache holds only the outputs the next step reuses, so it is empty after the
  last step: cached tensors live for one call.

No hook sits on the transformer itself, so ``enable_model_cpu_offload`` (which re-wraps the
top-level ``forward`` after every call) cannot unhook it.

``torch.compile``: the decisions never run inside compiled code. A hooked module's ``compile``
(what diffusers' ``compile_repeated_blocks`` calls) compiles what runs under its hook, and an
outer compile hands over to eager at the hook (:mod:`ecad_hub.compile`).
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from typing import Any

import numpy as np
import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks.hooks import BaseState, StateManager

from . import compile as _compile
from .adapters import adapter_for, architecture_of, supported_classes
from .errors import ArchitectureMismatchError, CacheConflictError, StepMismatchError, UnsupportedModelError
from .schedule import CacheSchedule

logger = logging.getLogger(__name__)

_BLOCK_HOOK = _compile._BLOCK_HOOK
_COMPONENT_HOOK = _compile._COMPONENT_HOOK


# --------------------------------------------------------------------------------------------
# state
# --------------------------------------------------------------------------------------------

class ECADState(BaseState):
    """State of one stream of transformer forwards in a denoising loop: step counter and kept outputs.

    A stream is one cache context (FLUX's true-CFG ``cond``/``uncond``) and, when the pipeline
    calls the transformer more than once per denoising step without a cache context (e.g. CFG as
    two forwards), the k-th forward of each step: each keeps its own outputs, so a reused output
    always comes from the same stream.
    """

    def __init__(self) -> None:
        self.forward_index = 0  # transformer forwards started in this loop (steps without a scheduler)
        self.step = 0
        self.cache: dict[tuple, Any] = {}

    def reset(self) -> None:
        self.forward_index = 0
        self.step = 0
        self.cache.clear()


class _ECADStateManager(StateManager):
    """A StateManager keyed by (cache context, forward number within the step); works without a
    cache context (PixArt and SD3 pipelines set none)."""

    _DEFAULT = "default"

    def __init__(self, state_cls) -> None:
        super().__init__(state_cls)
        self.slot: dict[str, int] = {}  # context -> forward number within the current step

    def context_name(self) -> str:
        return self._context.name if self._context is not None else self._DEFAULT

    def get_state(self) -> ECADState:
        ctx = self.context_name()
        name = (ctx, self.slot.get(ctx, 0))
        state = self._state_cache.get(name)
        if state is None:
            state = self._state_cache[name] = self._state_cls()
        return state

    def states(self) -> list[ECADState]:
        return list(self._state_cache.values())

    def reset(self, *args, **kwargs) -> None:
        """Drop every state; the current cache context (set by ``cache_context``) stays."""
        context = self._context
        super().reset(*args, **kwargs)
        self._context = context
        self.slot.clear()


class _Plan:
    """What the schedule asks of each sub-module, decided once per application.

    Per group: ``compute[s, b, c]`` (run the sub-module; the effective mask, step 0 all true),
    ``keep[s, b, c]`` (hold its output after step ``s`` because step ``s + 1`` reuses it: the
    cache holds only what the next step needs, and is empty after the last step),
    ``hooked[b, c]`` (the sub-module is reused at some step; others always run and need no
    hook) and ``reused[s, b]`` (every sub-module of the block is reused: the fast path).
    """

    def __init__(self, schedule: CacheSchedule):
        self.steps = schedule.num_inference_steps
        self.step_forwards = [0] * self.steps  # transformer forwards seen per step (first block hook)
        self.compute, self.keep, self.hooked, self.reused = [], [], [], []
        for g in schedule.architecture.groups:
            eff = schedule.effective_masks()[g.name]
            present = g.present()
            keep = np.zeros_like(eff)
            keep[:-1] = ~eff[1:]
            self.compute.append(eff)
            self.keep.append(keep & present[None])
            self.hooked.append(present & (~eff).any(axis=0))
            self.reused.append(~(eff & present[None]).any(axis=2))


# --------------------------------------------------------------------------------------------
# hooks
# --------------------------------------------------------------------------------------------

class ECADComponentHook(ModelHook):
    """Recompute or reuse one sub-module's output according to the schedule."""

    _is_stateful = True

    def __init__(self, state_manager: _ECADStateManager, key: tuple[int, int, int], compute, keep):
        super().__init__()
        self.state_manager = state_manager
        self.key = key
        self.compute = tuple(bool(x) for x in compute)  # per step (plain tuples: cheap to index)
        self.keep = tuple(bool(x) for x in keep)
        self.counts = [0] * len(self.compute)  # executed forwards per step, for inspection
        # A sub-module may run more than once per block forward (CogView4 runs `ff` on the image
        # and then the text stream): the n-th call of a block forward keeps and reuses its own
        # output. The block hook resets the counter at the start of every block forward.
        self.call = 0

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        if torch.compiler.is_compiling():  # traced by an outer torch.compile: decide in eager (see ecad_hub.compile)
            return _ecad_step_decision_runs_eager(self._decide, module, args, kwargs)
        return self._decide(module, *args, **kwargs)

    def _decide(self, module: torch.nn.Module, *args, **kwargs):
        state = self.state_manager.get_state()
        call, self.call = self.call, self.call + 1
        s, cache = state.step, state.cache
        key = self.key if call == 0 else (*self.key, call)
        if self.compute[s] or key not in cache:
            output = self.fn_ref.original_forward(*args, **kwargs)
            self.counts[s] += 1
            if self.keep[s]:
                cache[key] = output
            else:
                cache.pop(key, None)
            return output
        return cache[key] if self.keep[s] else cache.pop(key)

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        self.state_manager.reset()
        return module


class ECADBlockHook(ModelHook):
    """Advance the step (first block), assemble fully reused blocks (fast path), guard chunking."""

    _is_stateful = True

    def __init__(self, state_manager: _ECADStateManager, plan: _Plan, components, fast_path, reused,
                 *, first: bool, handle: "ScheduleHandle", component_hooks=()):
        super().__init__()
        self.state_manager = state_manager
        self.plan = plan
        self.components = components  # [(name, cache key, keep per step)] of the block's sub-modules
        self.component_hooks = tuple(component_hooks)  # their hooks (call counters reset per block forward)
        self.fast_path = fast_path
        self.reused = tuple(bool(x) for x in reused)  # per step: every sub-module reused
        self.first = first
        self._handle_ref = weakref.ref(handle)
        self.fast_calls = 0

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        if torch.compiler.is_compiling():  # traced by an outer torch.compile: decide in eager (see ecad_hub.compile)
            return _ecad_step_decision_runs_eager(self._decide, module, args, kwargs)
        return self._decide(module, *args, **kwargs)

    def _decide(self, module: torch.nn.Module, *args, **kwargs):
        if self.first:
            state = self._start_forward()
        else:
            state = self.state_manager.get_state()
        for hook in self.component_hooks:
            hook.call = 0
        if getattr(module, "_chunk_size", None) is not None:
            _disable_chunking(module)
        s = state.step
        if self.fast_path is not None and self.reused[s]:
            cache = state.cache
            cached = {name: cache[key] for name, key, _ in self.components if key in cache}
            output = self.fast_path(module, cached, args, kwargs)
            if output is not None:
                self.fast_calls += 1
                for _, key, keep in self.components:
                    if not keep[s]:
                        cache.pop(key, None)
                return output
        return self.fn_ref.original_forward(*args, **kwargs)

    def _start_forward(self) -> ECADState:
        """A transformer forward starts (the first scheduled block runs first): find its step and stream."""
        manager = self.state_manager
        handle = self._handle_ref()
        steps = self.plan.steps
        if handle is not None:
            handle._check_scheduler()
        if handle is not None and handle._scheduler_steps is not None:
            # Driven by the pipeline's scheduler: the step is the number of `scheduler.step` calls
            # since `set_timesteps`, whatever the number of transformer forwards per step.
            ctx = manager.context_name()
            manager.slot[ctx] = handle._forwards_in_step.get((id(manager), ctx), 0)
            handle._forwards_in_step[(id(manager), ctx)] = manager.slot[ctx] + 1
            state = manager.get_state()
            step = min(handle._scheduler_steps, steps - 1)
            new_loop = state.forward_index == 0
        else:
            # A bare transformer (or a pipeline without a scheduler): one forward per step.
            state = manager.get_state()
            step = state.forward_index % steps
            new_loop = step == 0
        state.step = step
        state.forward_index += 1
        self.plan.step_forwards[step] += 1
        if new_loop:  # a new denoising loop
            state.cache.clear()
        return state

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        self.state_manager.reset()
        return module


@torch.compiler.disable
def _ecad_step_decision_runs_eager(decide, module, args, kwargs):
    """The schedule's recompute-or-reuse decision of one hooked module, always in eager.

    Reached only when an outer ``torch.compile`` (e.g. of the whole transformer) traces a hooked
    module: dynamo splits its graph here instead of specialising on the step (which would
    recompile at every step). With ``fullgraph=True`` on the whole transformer this is the
    graph break dynamo reports: compile the blocks instead (``compile_repeated_blocks``,
    :func:`ecad_hub.compile_blocks`), which keeps the decisions outside compiled code.
    """
    if _compile.compile_state(module) is None:
        _compile.warn_eager_blocks_once(module)
    return decide(module, *args, **kwargs)


def _disable_chunking(block: torch.nn.Module) -> None:
    logger.warning("ecad-hub: feed-forward chunking is disabled on %s while a schedule is applied "
                   "(a chunked feed-forward cannot be reused as one output)", type(block).__name__)
    block._chunk_size = None


# --------------------------------------------------------------------------------------------
# handle
# --------------------------------------------------------------------------------------------

class ScheduleHandle:
    """An applied schedule. :meth:`remove` restores the original behaviour; also a context manager.

    Attributes:
        schedule: the applied :class:`CacheSchedule`.
        transformer: the patched transformer.
        transformers: every patched transformer: ``transformer`` and, in a two-expert pipeline
            (Wan 2.2: ``transformer`` for the high-noise steps, ``transformer_2`` after), the other
            experts. Each keeps its own cached outputs; the step counter is shared.
    """

    def __init__(self, transformer: torch.nn.Module, schedule: CacheSchedule, pipeline=None, experts=()):
        self.schedule = schedule
        self.transformer = transformer
        self.transformers = [transformer, *experts]
        self._pipeline_ref = weakref.ref(pipeline) if pipeline is not None else None
        self._plan = _Plan(schedule)
        self._state_managers = [_ECADStateManager(ECADState) for _ in self.transformers]
        self._state_manager = self._state_managers[0]
        self._hooked: list[tuple[torch.nn.Module, str]] = []
        self._block_hooks: list[ECADBlockHook] = []
        self._component_hooks: dict[tuple[int, int, int], ECADComponentHook] = {}  # of `transformer`
        self._expert_hooks: dict[tuple[int, int, int, int], ECADComponentHook] = {}  # (expert, group, block, comp)
        self._chunk_sizes: list[tuple[torch.nn.Module, Any]] = []
        self._watched_scheduler = None
        self._scheduler_steps: int | None = None  # `scheduler.step` calls since `set_timesteps` (None: no scheduler)
        self._steps_from_scheduler = False
        self._forwards_in_step: dict[tuple, int] = {}  # per (state manager, cache context): forwards in this step
        self.active = False

    # --- lifecycle --------------------------------------------------------------------------
    def _install(self, fast_path: bool) -> None:
        """Hook the sub-modules the schedule reuses somewhere, and their blocks (plus the first block,
        which counts steps). Sub-modules computed at every step run untouched."""
        for ti, transformer in enumerate(self.transformers):
            self._install_on(ti, transformer, fast_path)
        _compile.after_hooking([m for m, _ in self._hooked])
        pipe = self.pipeline
        if pipe is not None:
            self._watch_scheduler(getattr(pipe, "scheduler", None))
            pipe.ecad_schedule = self.schedule
        for transformer in self.transformers:
            transformer.ecad_schedule = self.schedule
            transformer._ecad_handle = self
        self.active = True

    def _install_on(self, ti: int, transformer: torch.nn.Module, fast_path: bool) -> None:
        adapter = adapter_for(transformer)
        plan = self._plan
        manager = self._state_managers[ti]
        for gi, group in enumerate(self.schedule.architecture.groups):
            blocks = transformer.get_submodule(group.name)
            present = group.present()
            for bi, block in enumerate(blocks):
                hooked = plan.hooked[gi][bi]
                first = gi == 0 and bi == 0
                if not (first or hooked.any()):
                    continue
                if getattr(block, "_chunk_size", None) is not None:
                    self._chunk_sizes.append((block, block._chunk_size))
                    _disable_chunking(block)
                components, component_hooks = [], []
                for ci, comp in enumerate(group.components):
                    if not present[bi, ci]:
                        continue
                    key = (gi, bi, ci)
                    components.append((comp, key, tuple(bool(x) for x in plan.keep[gi][:, bi, ci])))
                    if hooked[ci]:
                        hook = ECADComponentHook(manager, key, plan.compute[gi][:, bi, ci], plan.keep[gi][:, bi, ci])
                        module = block.get_submodule(comp)  # a dotted path for wrapped blocks (HiDream)
                        _compile.before_hooking([module])
                        HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, _COMPONENT_HOOK)
                        self._hooked.append((module, _COMPONENT_HOOK))
                        if ti == 0:
                            self._component_hooks[key] = hook
                        else:
                            self._expert_hooks[(ti, *key)] = hook
                        component_hooks.append(hook)
                reused = plan.reused[gi][:, bi]
                fast = adapter.fast_path(block) if fast_path and reused.any() else None
                hook = ECADBlockHook(manager, plan, components, fast, reused, first=first, handle=self,
                                     component_hooks=component_hooks)
                _compile.before_hooking([block])
                HookRegistry.check_if_exists_or_initialize(block).register_hook(hook, _BLOCK_HOOK)
                self._hooked.append((block, _BLOCK_HOOK))
                self._block_hooks.append(hook)
        _invalidate_registry_caches(transformer)

    def remove(self) -> None:
        """Unhook everything and free cached tensors; the transformer behaves exactly as before."""
        if not self.active:
            return
        modules = list(dict.fromkeys(m for m, _ in self._hooked))
        _compile.before_unhooking(modules)
        for module, name in reversed(self._hooked):
            registry = getattr(module, "_diffusers_hook", None)
            if registry is not None:
                registry.remove_hook(name, recurse=False)
        self._hooked.clear()
        _compile.after_unhooking(modules)
        self._block_hooks.clear()
        self._component_hooks.clear()
        self._expert_hooks.clear()
        for transformer in self.transformers:
            _invalidate_registry_caches(transformer)
        for block, size in self._chunk_sizes:
            block._chunk_size = size
        self._chunk_sizes.clear()
        self._unwatch_scheduler()
        self._reset_states()
        for obj in (*self.transformers, self.pipeline):
            if obj is not None and getattr(obj, "ecad_schedule", None) is self.schedule:
                try:
                    delattr(obj, "ecad_schedule")
                except AttributeError:
                    pass
        for transformer in self.transformers:
            if getattr(transformer, "_ecad_handle", None) is self:
                del transformer._ecad_handle
        self.active = False

    def _reset_states(self) -> None:
        for manager in self._state_managers:
            manager.reset()
        self._forwards_in_step.clear()

    def reset(self) -> None:
        """Forget the step counter and cached outputs (the next forward is step 0)."""
        self._reset_states()

    def __enter__(self) -> "ScheduleHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "active" if self.active else "removed"
        return f"<ScheduleHandle {self.schedule.name!r} on {type(self.transformer).__name__} ({state})>"

    # --- inspection -------------------------------------------------------------------------
    @property
    def pipeline(self):
        return self._pipeline_ref() if self._pipeline_ref is not None else None

    def computed_counts(self) -> dict[str, np.ndarray]:
        """How many times each sub-module actually ran, per (step, block, component), since applied.

        Sub-modules the schedule never reuses carry no hook; they ran once per transformer forward.
        Counts of several experts (``transformers``) are summed: each step runs one of them.
        """
        out = {}
        for gi, g in enumerate(self.schedule.architecture.groups):
            counts = np.zeros((self.schedule.num_inference_steps, g.num_blocks, len(g.components)), dtype=np.int64)
            present = g.present()
            for bi in range(g.num_blocks):
                for ci in range(len(g.components)):
                    hooks = [self._component_hooks.get((gi, bi, ci))]
                    hooks += [self._expert_hooks.get((ti, gi, bi, ci)) for ti in range(1, len(self.transformers))]
                    hooks = [h for h in hooks if h is not None]
                    if hooks:
                        counts[:, bi, ci] = np.sum([h.counts for h in hooks], axis=0)
                    elif present[bi, ci]:
                        counts[:, bi, ci] = self._plan.step_forwards
            out[g.name] = counts
        return out

    def fast_path_calls(self) -> int:
        """How many block forwards were replaced by the fast path since applied."""
        return sum(h.fast_calls for h in self._block_hooks)

    def cached_tensors(self) -> int:
        """Number of sub-module outputs held right now (all cache contexts)."""
        return sum(len(s.cache) for m in self._state_managers for s in m.states())

    def cached_bytes(self) -> int:
        """Bytes of the sub-module outputs held right now (all cache contexts).

        A tensor held by several entries (a tuple output, a view) is counted once, by its storage.
        On the ``meta`` device the figure is exact too: the bytes the cache would take on a real
        device, so the cache of FLUX.1-dev at 1024x1024 can be sized without weights.
        """
        seen, total = set(), 0
        stack = [v for m in self._state_managers for s in m.states() for v in s.cache.values()]
        while stack:
            v = stack.pop()
            if isinstance(v, torch.Tensor):
                storage = v.untyped_storage()
                if storage._cdata not in seen:  # the storage's identity (meta storages have no data pointer)
                    seen.add(storage._cdata)
                    total += storage.nbytes()
            elif isinstance(v, (tuple, list)):
                stack.extend(v)
            elif isinstance(v, dict):
                stack.extend(v.values())
        return total

    # --- step tracking ----------------------------------------------------------------------
    def _watch_scheduler(self, scheduler) -> None:
        """Wrap ``scheduler.set_timesteps`` (called once at the start of every pipeline call).

        diffusers gives PixArt/SD3 pipelines no cache context, so this is where a new call is
        seen: the state is reset and the step count checked before any denoising.
        """
        if scheduler is None or not hasattr(scheduler, "set_timesteps"):
            return
        self._unwatch_scheduler()
        original = scheduler.set_timesteps
        handle_ref = weakref.ref(self)

        @functools.wraps(original)
        def set_timesteps(*args, **kwargs):
            result = original(*args, **kwargs)
            handle = handle_ref()
            if handle is not None and handle.active:
                handle._reset_states()
                handle._scheduler_steps = 0 if handle._steps_from_scheduler else None
                handle._check_steps(scheduler)
                for transformer in handle.transformers:  # a diffusers cache enabled after patching: refuse
                    check_no_other_cache(transformer, after=True)
            return result

        set_timesteps._ecad_original = original
        scheduler.set_timesteps = set_timesteps
        self._steps_from_scheduler = hasattr(scheduler, "step")
        if self._steps_from_scheduler:
            original_step = scheduler.step

            @functools.wraps(original_step)
            def step(*args, **kwargs):
                result = original_step(*args, **kwargs)
                handle = handle_ref()
                if handle is not None and handle.active and handle._scheduler_steps is not None:
                    handle._scheduler_steps += 1
                    handle._forwards_in_step.clear()
                return result

            step._ecad_original = original_step
            scheduler.step = step
        self._watched_scheduler = scheduler

    def _unwatch_scheduler(self) -> None:
        scheduler, self._watched_scheduler = self._watched_scheduler, None
        self._scheduler_steps = None
        self._forwards_in_step.clear()
        if scheduler is None:
            return
        for name in ("set_timesteps", "step"):
            if hasattr(scheduler.__dict__.get(name), "_ecad_original"):
                delattr(scheduler, name)

    def _check_scheduler(self) -> None:
        """At every transformer forward: follow a scheduler swapped in after patching.

        Its ``set_timesteps`` already ran unwatched, so this forward starts a new loop.
        """
        pipe = self.pipeline
        if pipe is None:
            return
        scheduler = getattr(pipe, "scheduler", None)
        if scheduler is not None and scheduler is not self._watched_scheduler:
            self._watch_scheduler(scheduler)
            self._reset_states()
            self._scheduler_steps = 0 if self._steps_from_scheduler else None
            self._check_steps(scheduler)

    def _check_steps(self, scheduler) -> None:
        timesteps = getattr(scheduler, "timesteps", None)
        if timesteps is None:
            return
        n = len(timesteps)
        if len(self.transformers) > 1 and n == self.schedule.num_inference_steps:
            self._check_expert_switch(timesteps)
        if n != self.schedule.num_inference_steps:
            raise StepMismatchError(
                f"the pipeline is set up for {n} denoising steps but schedule {self.schedule.name!r} has "
                f"{self.schedule.num_inference_steps}; call it with num_inference_steps={self.schedule.num_inference_steps} "
                f"or use a schedule searched for {n} steps"
            )


    def _check_expert_switch(self, timesteps) -> None:
        """Two experts: the second one starts with nothing cached, so its first step computes
        everything. Say so once when the schedule does not record that step (its MAC figures then
        count that step as the mask says)."""
        switch = adapter_for(self.transformer).expert_switch_step(self.pipeline, timesteps)
        recorded = self.schedule.generation.get("expert_switch_step")
        if switch is not None and recorded != switch and not getattr(self, "_warned_switch", False):
            self._warned_switch = True
            logger.warning("ecad-hub: the second expert starts at step %d, where it computes everything (nothing of it "
                           "is cached yet); schedule %r records %s", switch, self.schedule.name,
                           f"step {recorded}" if recorded is not None else "no expert switch step")


def _invalidate_registry_caches(transformer: torch.nn.Module) -> None:
    registry = getattr(transformer, "_diffusers_hook", None)
    if registry is not None and hasattr(registry, "invalidate_child_registries_cache"):
        registry.invalidate_child_registries_cache()
    for module in transformer.modules():
        reg = getattr(module, "_diffusers_hook", None)
        if reg is not None and hasattr(reg, "_child_registries_cache"):
            reg._child_registries_cache = None


# --------------------------------------------------------------------------------------------
# other caches
# --------------------------------------------------------------------------------------------

#: Hook names diffusers' caches register in a module's ``HookRegistry`` (``apply_*`` functions and
#: ``enable_cache``), and the cache each belongs to.
DIFFUSERS_CACHE_HOOKS = {
    "fbc_leader_block_hook": "FirstBlockCache", "fbc_block_hook": "FirstBlockCache",
    "pyramid_attention_broadcast": "PyramidAttentionBroadcast",
    "faster_cache_denoiser": "FasterCache", "faster_cache_block": "FasterCache",
    "taylorseer_cache": "TaylorSeerCache",
    "mag_cache_leader_block_hook": "MagCache", "mag_cache_block_hook": "MagCache",
    "sea_cache_root": "SeaCache", "sea_cache_leader_block": "SeaCache", "sea_cache_block": "SeaCache",
    "sea_cache_post_norm": "SeaCache",
    "text_kv_cache_transformer": "TextKVCache", "text_kv_cache_block": "TextKVCache",
}


def other_caches(transformer: torch.nn.Module) -> tuple[str | None, dict[str, str]]:
    """The diffusers caches on ``transformer``: ``(config class enabled with enable_cache or None,
    {hook name: cache name} of the cache hooks found in its modules' hook registries)``."""
    config = getattr(transformer, "_cache_config", None)
    hooks: dict[str, str] = {}
    for module in transformer.modules():
        registry = getattr(module, "_diffusers_hook", None)
        names = getattr(registry, "hooks", None) or {}
        for name in names:
            if name in DIFFUSERS_CACHE_HOOKS:
                hooks.setdefault(name, DIFFUSERS_CACHE_HOOKS[name])
    return (type(config).__name__ if config is not None else None), hooks


def check_no_other_cache(transformer: torch.nn.Module, *, after: bool = False) -> None:
    """Raise :class:`~ecad_hub.errors.CacheConflictError` (one line, saying how to remove it) when a
    diffusers cache is on ``transformer``: ecad-hub never stacks two caches.

    ``after``: the check at the start of a pipeline call, for a cache enabled after the schedule.
    """
    config, hooks = other_caches(transformer)
    if config is None and not hooks:
        return
    what = type(transformer).__name__
    when = (f"was applied to the transformer after the ECAD schedule ({what})" if after
            else f"is already on the transformer ({what})")
    if config is not None:
        raise CacheConflictError(
            f"a diffusers cache ({config}, enable_cache) {when}; two caches would be stacked: remove one first "
            f"(pipe.transformer.disable_cache() for diffusers', handle.remove() for the ECAD schedule)")
    caches = ", ".join(sorted(set(hooks.values())))
    names = ", ".join(repr(n) for n in sorted(hooks))
    raise CacheConflictError(
        f"a diffusers cache ({caches}, applied with diffusers.hooks.apply_*) {when}; two caches would be stacked: "
        f"remove one first (HookRegistry.check_if_exists_or_initialize(pipe.transformer).remove_hook(name, "
        f"recurse=True) for {names}, or handle.remove() for the ECAD schedule)")


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------

def _resolve(pipe_or_transformer):
    pipe_or_transformer = _compile.unwrap(pipe_or_transformer)  # torch.compile(transformer): hook the module inside
    if isinstance(pipe_or_transformer, torch.nn.Module) and not hasattr(pipe_or_transformer, "components"):
        return pipe_or_transformer, None
    transformer = _compile.unwrap(getattr(pipe_or_transformer, "transformer", None))
    if not isinstance(transformer, torch.nn.Module):
        raise UnsupportedModelError(
            f"{type(pipe_or_transformer).__name__} has no `transformer` component; ecad-hub schedules diffusion transformers "
            f"({', '.join(supported_classes())})"
        )
    return transformer, pipe_or_transformer


def apply_schedule(pipe_or_transformer, schedule: CacheSchedule | str | os.PathLike, *, fast_path: bool = True,
                   compile: str | None = None, compile_options: dict | None = None) -> ScheduleHandle:
    """Make a pipeline's (or a bare transformer's) transformer follow ``schedule``.

    At step ``s`` a sub-module whose bit is ``False`` returns the output it produced at the
    last step where it was computed (step 0 always computes). An ECAD schedule already applied
    to the same transformer is replaced: it is removed first (its handle becomes inactive). A
    diffusers cache on the transformer (``transformer.enable_cache(...)`` or any of the
    ``diffusers.hooks.apply_*`` caches: FirstBlockCache, PAB, FasterCache, TaylorSeer, MagCache,
    ...) is refused with :class:`~ecad_hub.errors.CacheConflictError`, here and, for one enabled
    after the schedule, at the start of the next pipeline call: two caches are never stacked.
    The active schedule is ``pipe.ecad_schedule``.

    To load a schedule from a frontier (a Hub repo, an exported folder, a search run) use
    :func:`ecad_hub.load_schedule` (``ecad_hub.apply_schedule`` accepts those sources too).

    Args:
        pipe_or_transformer: a diffusers pipeline with a ``transformer`` component, or the
            transformer itself (then the step counter wraps every ``num_inference_steps``
            forwards; call ``handle.reset()`` to restart it).
        schedule: the schedule (a :class:`CacheSchedule`, or the path of a v1 schedule file); its
            architecture must match the transformer exactly.
        fast_path: assemble fully reused blocks from cached outputs without running them.
        compile: ``"regional"``: also compile the transformer's repeated blocks
            (:func:`ecad_hub.compile_blocks`: the step decisions stay in eager, every compiled
            region keeps one graph whatever the step, so nothing recompiles after the first
            call); ``"full"``: that plus the rest of the transformer (``transformer.compile()``,
            split at the scheduled blocks). ``None`` (default): compile nothing here; a compile
            done before or after (``compile_repeated_blocks``, ``compile_blocks``,
            ``torch.compile``) is kept outside the hooks either way. The compile stays after
            ``handle.remove()``.
        compile_options: keyword arguments for ``torch.compile`` (``fullgraph``, ``mode``, ...).

    Returns:
        A :class:`ScheduleHandle`; ``handle.remove()`` (or leaving a ``with`` block) restores
        the original behaviour bit for bit.

    Raises:
        ArchitectureMismatchError: the schedule is for another architecture (the message lists
            every difference).
        StepMismatchError: raised by the pipeline call, before any denoising, when the pipeline
            runs a number of steps other than ``schedule.num_inference_steps``.
        CacheConflictError: a diffusers cache is on the transformer.
        ScheduleError: the schedule file is malformed.
    """
    if isinstance(schedule, (str, os.PathLike)):
        schedule = CacheSchedule.load(schedule)
    if not isinstance(schedule, CacheSchedule):
        raise TypeError(f"expected a CacheSchedule or the path of a schedule file, got {type(schedule).__name__}")
    if compile not in (None, "regional", "full"):
        raise ValueError(f"compile must be None, 'regional' or 'full', got {compile!r}")
    transformer, pipe = _resolve(pipe_or_transformer)
    actual = architecture_of(transformer)
    diffs = schedule.architecture.differences(actual)
    if diffs:
        raise ArchitectureMismatchError(
            f"schedule {schedule.name!r} is for {schedule.architecture.describe()} but the transformer is "
            f"{actual.describe()}: {'; '.join(diffs)}"
        )
    experts = _experts(pipe, transformer)
    for other in experts:
        diffs = schedule.architecture.differences(architecture_of(other))
        if diffs:
            raise ArchitectureMismatchError(f"schedule {schedule.name!r} does not fit the pipeline's second expert: "
                                            f"{'; '.join(diffs)}")
    for t in (transformer, *experts):
        check_no_other_cache(t)
    for t in (transformer, *experts):
        previous = getattr(t, "_ecad_handle", None)
        if previous is not None:
            previous.remove()
    handle = ScheduleHandle(transformer, schedule, pipe, experts=experts)
    handle._install(fast_path)
    if compile is not None:
        for t in handle.transformers:
            _compile.compile_transformer(t, compile, **(compile_options or {}))
    return handle


def _experts(pipe, transformer) -> list:
    """The other transformers of a pipeline that denoises with several experts (``transformer_2``, ...)."""
    if pipe is None:
        return []
    components = getattr(pipe, "components", None) or {}
    return [module for name, module in sorted(components.items())
            if name.startswith("transformer_") and isinstance(module, torch.nn.Module) and module is not transformer]
