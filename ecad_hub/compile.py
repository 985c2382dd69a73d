"""``torch.compile`` for transformers with a schedule applied: one graph per region, whatever the step.

A schedule decides per step, in Python, whether a sub-module recomputes or returns its kept
output. Traced by dynamo, that decision is specialised: a compiled block would be recompiled for
every step (and ``fullgraph=True`` fails on dynamo's recompile limit). So ecad-hub keeps the
decisions out of compiled code and compiles what runs *under* them:

* a scheduled sub-module (``attn1``, ``ff``, ...) is compiled through the original ``forward``
  its hook calls (``hook.fn_ref.original_forward``): the hook decides in eager, the compiled
  code sees the same shapes at every step;
* a block whose sub-modules are scheduled is compiled sub-module by sub-module (the scheduled
  ones as above, the others with ``Module.compile``); its elementwise glue (norms, modulation,
  residual adds) and the fast path of fully reused blocks run in eager;
* a block without scheduled sub-modules (the first block only counts steps) is compiled whole,
  through its original ``forward``; blocks ecad-hub does not hook are compiled whole with
  ``Module.compile``.

Both standard entry points work on a scheduled transformer:

* ``transformer.compile_repeated_blocks(fullgraph=True)`` (diffusers' regional compilation, for
  classes that declare ``_repeated_blocks``) and, for every class, :func:`compile_blocks`: each
  hooked module's ``compile`` is routed here, so no compiled region contains ecad-hub code;
* ``torch.compile(transformer)`` / ``transformer.compile()``: the hooks' decisions are invisible
  to dynamo (a hook traced by dynamo hands over to eager at ``_ecad_step_decision_runs_eager``),
  so the outer graph is split at the scheduled blocks instead of being recompiled per step; the
  inside of those blocks is compiled only by a regional compile (``apply_schedule(...,
  compile="full")`` does both).

The compile request is a property of the module: it survives :func:`~ecad_hub.apply_schedule`
(a module compiled before a schedule is applied is moved under the hooks, with a warning, and
restored afterwards) and ``handle.remove()`` (the module is then compiled as if no schedule had
ever been applied).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import torch

logger = logging.getLogger(__name__)


#: names of ecad-hub's hooks in a module's diffusers HookRegistry (set by :mod:`ecad_hub.hooks`)
_BLOCK_HOOK = "ecad_block"
_COMPONENT_HOOK = "ecad_component"

_REQUEST = "_ecad_compile_request"  # compile kwargs asked for this module (Module.__dict__)
_SAVED = "_ecad_saved_compiled_call_impl"  # a `_compiled_call_impl` set before a schedule was applied
_REALISED = "_ecad_compile_realised"  # undo list of the hook-aware compile of this module
_CONTEXT = "_dynamo_context"  # a request made by a compile done outside ecad-hub: its dynamo context


def _dynamo_context(compiled):
    """The dynamo context (backend, fullgraph, mode, ...) of a function made by ``torch.compile``, if found."""
    try:
        from torch._dynamo.eval_frame import _TorchDynamoContext
    except ImportError:  # pragma: no cover
        return None
    for cell in getattr(compiled, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if isinstance(value, _TorchDynamoContext):
            return value
    return None

__all__ = ["compile_blocks", "compile_transformer", "repeated_blocks"]


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def repeated_blocks(transformer: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks of ``transformer``: the blocks of its ecad-hub architecture groups (any
    supported class), else the modules whose class is in diffusers' ``_repeated_blocks``."""
    transformer = unwrap(transformer)
    try:
        from .adapters import architecture_of

        arch = architecture_of(transformer)
        blocks = [b for g in arch.groups for b in transformer.get_submodule(g.name)]
        if blocks:
            return blocks
    except Exception:  # not a supported class: fall back on diffusers' declaration
        pass
    names = getattr(transformer, "_repeated_blocks", None) or ()
    blocks = [m for m in transformer.modules() if type(m).__name__ in names]
    if not blocks:
        raise ValueError(f"{type(transformer).__name__}: no repeated blocks found (not an ecad-hub architecture and "
                         f"no `_repeated_blocks` declared)")
    return blocks


def compile_blocks(transformer: torch.nn.Module, **compile_kwargs) -> list[torch.nn.Module]:
    """Regional compilation of ``transformer``'s repeated blocks, schedule-aware.

    The ecad-hub counterpart of diffusers' ``compile_repeated_blocks`` for every supported class
    (PixArt and SD3 declare no ``_repeated_blocks``). ``compile_kwargs`` go to ``torch.compile``
    (``fullgraph=True``, ``mode=...``, ``dynamic=...``). Works before or after
    :func:`~ecad_hub.apply_schedule`; with a schedule applied, the step decisions stay in
    eager and each compiled region sees one fixed graph at every step (no recompilation after
    the first pipeline call). Returns the blocks.
    """
    blocks = repeated_blocks(transformer)
    for block in blocks:
        request_compile(block, compile_kwargs)
    return blocks


def compile_transformer(transformer: torch.nn.Module, mode: str = "regional", **compile_kwargs) -> torch.nn.Module:
    """``mode="regional"``: :func:`compile_blocks`; ``"full"``: that plus ``transformer.compile()``
    (the graph outside the blocks; with a schedule applied it is split at the scheduled blocks).
    ``fullgraph`` applies to the blocks only. Returns the transformer (compiled in place)."""
    if mode not in ("regional", "full"):
        raise ValueError(f"compile must be 'regional' or 'full', got {mode!r}")
    transformer = unwrap(transformer)
    compile_blocks(transformer, **compile_kwargs)
    if mode == "full":
        outer = {k: v for k, v in compile_kwargs.items() if k != "fullgraph"}
        _compile_whole(transformer, outer)
    return transformer


def unwrap(module):
    """The module inside a ``torch.compile`` wrapper (``OptimizedModule``), else ``module``."""
    return getattr(module, "_orig_mod", module)


# --------------------------------------------------------------------------------------------
# the compile request of one module, realised with or without ecad-hub hooks
# --------------------------------------------------------------------------------------------

def _hooks_of(module):

    registry = getattr(module, "_diffusers_hook", None)
    if registry is None:
        return None, None
    return registry.get_hook(_BLOCK_HOOK), registry.get_hook(_COMPONENT_HOOK)


def request_compile(module: torch.nn.Module, compile_kwargs: dict | None = None) -> None:
    """Compile ``module`` (as ``module.compile(**compile_kwargs)`` would), keeping ecad-hub's hooks
    outside the compiled code; the request is kept so applying or removing a schedule keeps it."""
    kwargs = dict(compile_kwargs or {})
    if module.__dict__.get(_REALISED) is not None:
        _unrealise(module)
    module.__dict__[_REQUEST] = kwargs
    _realise(module)


def _compiled(module: torch.nn.Module, fn, kwargs: dict):
    """``torch.compile(fn, **kwargs)``, made once per (module, function, options): re-applying a
    schedule re-uses the compiled code (a new ``torch.compile`` wrapper would compile again)."""
    key = (id(getattr(fn, "__func__", fn)), repr(sorted(kwargs.items(), key=lambda kv: kv[0])))
    cache = module.__dict__.setdefault("_ecad_compiled", {})
    compiled = cache.get(key)
    if compiled is None:
        context = kwargs.get(_CONTEXT)
        compiled = cache[key] = context(fn) if context is not None else torch.compile(fn, **kwargs)
        compiled._ecad_eager = fn
    return compiled


def _compile_whole(module: torch.nn.Module, kwargs: dict) -> None:
    """``module.compile(**kwargs)`` (``Module.compile``), with the compiled call kept for re-use."""
    module._compiled_call_impl = _compiled(module, module._call_impl, kwargs)


def _realise(module: torch.nn.Module) -> None:
    """Apply the recorded request to ``module`` as it is hooked now."""
    kwargs = module.__dict__.get(_REQUEST)
    if kwargs is None:
        return
    block_hook, component_hook = _hooks_of(module)
    if block_hook is None and component_hook is None:
        _compile_whole(module, kwargs)
        module.__dict__[_REALISED] = [("module", module)]
        return
    undo: list[tuple] = []
    module._compiled_call_impl = None  # the hooks must run outside compiled code
    if block_hook is not None and block_hook.components:
        # Sub-module by sub-module: the scheduled ones under their hook, the others whole.
        for name, _, _ in block_hook.components:
            sub = module.get_submodule(name)
            sub_block, sub_hook = _hooks_of(sub)
            if sub_hook is not None:
                _compile_under_hook(sub, sub_hook, kwargs, undo)
            elif getattr(sub, "_compiled_call_impl", None) is None:
                _compile_whole(sub, kwargs)
                undo.append(("module", sub))
    else:
        hook = block_hook if block_hook is not None else component_hook
        _compile_under_hook(module, hook, kwargs, undo)
    module.__dict__[_REALISED] = undo


def _compile_under_hook(module: torch.nn.Module, hook, kwargs: dict, undo: list) -> None:
    fn_ref = hook.fn_ref
    original = fn_ref.original_forward
    if getattr(original, "_ecad_eager", None) is not None:  # already compiled (e.g. shared by a block request)
        return
    fn_ref.original_forward = _compiled(module, original, kwargs)
    undo.append(("hook", hook))


def _unrealise(module: torch.nn.Module) -> None:
    """Undo the hook-aware compile of ``module`` (the request stays recorded)."""
    undo = module.__dict__.pop(_REALISED, None) or []
    for kind, obj in reversed(undo):
        if kind == "module":
            obj._compiled_call_impl = None
        else:
            fn_ref = obj.fn_ref
            eager = getattr(fn_ref.original_forward, "_ecad_eager", None)
            if eager is not None:
                fn_ref.original_forward = eager


def _compile_method(module: torch.nn.Module):
    """The ``compile`` method of a hooked module: ``module.compile(**kw)`` compiles it under its hook."""

    def compile(*args, **kwargs):  # noqa: A001  (the name diffusers' compile_repeated_blocks calls)
        if args:
            raise TypeError("ecad-hub: pass torch.compile options to compile() by keyword")
        request_compile(module, kwargs)

    compile._ecad_compile = True
    return compile


# --------------------------------------------------------------------------------------------
# called by ecad_hub.hooks when hooks come and go
# --------------------------------------------------------------------------------------------

def before_hooking(modules: Iterable[torch.nn.Module]) -> None:
    """Before ecad-hub hooks ``modules``: drop their current compile (re-applied by :func:`after_hooking`).

    A module compiled with ``Module.compile`` outside ecad-hub (e.g. ``compile_repeated_blocks``
    before ``apply_schedule``) would trace the hooks and recompile per step: its compiled call is
    set aside (restored by :func:`after_unhooking`) and it is recompiled under the hooks with the
    same options (its dynamo context; ``torch.compile``'s defaults if it cannot be found).
    """
    moved = []
    for module in modules:
        if module.__dict__.get(_REALISED) is not None:
            _unrealise(module)
        compiled = getattr(module, "_compiled_call_impl", None)
        if compiled is not None and module.__dict__.get(_REQUEST) is None:
            module.__dict__[_SAVED] = compiled
            module._compiled_call_impl = None
            context = _dynamo_context(compiled)
            module.__dict__[_REQUEST] = {_CONTEXT: context} if context is not None else {}
            moved.append(type(module).__name__)
    if moved:
        logger.warning("ecad-hub: %d module(s) (%s) were compiled before the schedule was applied; they are recompiled "
                       "with the same options under the schedule's hooks, which stay outside compiled code (compiling "
                       "after apply_schedule, or with ecad_hub.compile_blocks, avoids the second compile)", len(moved), ", ".join(sorted(set(moved))))


def after_hooking(modules: Iterable[torch.nn.Module]) -> None:
    """After ecad-hub hooked ``modules``: route their ``compile`` here and re-apply compile requests."""
    for module in modules:
        module.__dict__["compile"] = _compile_method(module)
        _realise(module)


def before_unhooking(modules: Iterable[torch.nn.Module]) -> None:
    for module in modules:
        _unrealise(module)
        if getattr(module.__dict__.get("compile"), "_ecad_compile", False):
            del module.__dict__["compile"]


def after_unhooking(modules: Iterable[torch.nn.Module]) -> None:
    """After ecad-hub unhooked ``modules``: compile them as if no schedule had been applied."""
    for module in modules:
        # diffusers leaves the original forward as an instance attribute: drop it when it is the
        # class's own (dynamo guards on it; the module is then exactly as before the schedule)
        forward = module.__dict__.get("forward")
        if getattr(forward, "__func__", None) is type(module).forward and getattr(forward, "__self__", None) is module:
            del module.__dict__["forward"]
        saved = module.__dict__.pop(_SAVED, None)
        if saved is not None:
            module.__dict__.pop(_REQUEST, None)
            module._compiled_call_impl = saved
            continue
        _realise(module)


_WARNED_EAGER = False


def warn_eager_blocks_once(module: torch.nn.Module) -> None:
    """An outer ``torch.compile`` reached a scheduled block that no regional compile covers: say so once."""
    global _WARNED_EAGER
    if not _WARNED_EAGER:
        _WARNED_EAGER = True
        logger.warning("ecad-hub: torch.compile of the whole transformer runs the scheduled blocks (%s, ...) in eager: "
                       "the schedule decides per step outside compiled code. Also compile the blocks: "
                       "ecad_hub.compile_blocks(transformer), transformer.compile_repeated_blocks(), or "
                       "apply_schedule(..., compile='full')", type(module).__name__)


def compile_state(module: torch.nn.Module) -> dict[str, Any] | None:
    """The compile options recorded for ``module`` (``None``: never compiled through ecad-hub)."""
    return module.__dict__.get(_REQUEST)
