"""Load ECAD schedules onto diffusers pipelines: in place (:func:`load_schedule`, the diffusers
way, like ``pipe.load_lora_weights``) or with the :class:`ECADPipeline` wrapper.

In place, on the pipeline you already have::

    >>> from ecad_hub import load_schedule
    >>> handle = load_schedule(pipe, "user/pixart-ecad", schedule="2.5x")   # or a folder, a run, a file
    >>> image = pipe("a red fox in the snow", **handle.call_kwargs).images[0]
    >>> handle.set_schedule("ecad-3.93x")                                  # switch
    >>> handle.disable(); handle.enable()                                  # the plain base model and back
    >>> handle.remove()

The wrapper, loading the base model too::

    >>> import torch
    >>> from ecad_hub import ECADPipeline
    >>> pipe = ECADPipeline.from_pretrained("user/pixart-ecad", dtype=torch.float16).to("cuda")
    >>> image = pipe("a red fox in the snow").images[0]          # the default schedule, its steps and settings
    >>> pipe.set_schedule(2.5)                                     # the nearest schedule at >= 2.5x MACs
    >>> pipe.set_schedule("ecad-3.93x")                            # or by name (or "3.93x")
    >>> pipe.disable_cache()                                       # the plain base model, bit for bit

Loading downloads only the ECAD repo's small JSON files, then the base model with
``DiffusionPipeline.from_pretrained`` (at the revision the schedules were searched on), checks
that its transformer has the architecture the schedules were written for, and applies the
schedule with :func:`ecad_hub.hooks.apply_schedule`. Everything else is the diffusers pipeline:
attributes, components, ``.to()``, ``enable_model_cpu_offload()`` ... are delegated to it.

Settings travel: a searched frontier records the pipeline call settings it was searched with
(``Frontier.pipeline_call``: resolution binning, ``max_sequence_length``, guidance scale, size)
and its scheduler (``Frontier.scheduler``). ``ECADPipeline`` calls use them as defaults (what
you pass wins) and ``from_pretrained`` installs the recorded scheduler; :func:`load_schedule`
exposes them as ``handle.call_kwargs`` and warns when the pipeline's scheduler differs.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from .errors import ArchitectureMismatchError, EcadError, FrontierError, ModelLoadError, UnsupportedModelError
from .errors import escape_control
from .frontier import Frontier, is_repo_id
from .schedule import CacheSchedule
from .utils.compat import diffusers_takes_dtype

#: diffusers ``from_pretrained`` keyword arguments that also apply to the ECAD repo download.
_SHARED_DOWNLOAD_KWARGS = ("cache_dir", "local_files_only")
#: Largest base-model config file the preflight reads (``model_index.json``, ``transformer/config.json``).
MAX_CONFIG_BYTES = 1024 * 1024
#: What diffusers raises when a pipeline cannot be loaded (missing or malformed files, custom code
#: refused, no safetensors, unknown classes, Hub failures: those subclass OSError).
_LOAD_ERRORS = (OSError, ValueError, AttributeError, ImportError, KeyError, TypeError, IndexError, RuntimeError)

logger = logging.getLogger(__name__)


class ECADPipeline:
    """A diffusers pipeline with an ECAD caching schedule applied; behaves like the pipeline.

    Build it with :meth:`from_pretrained` (loads the base model too) or :meth:`from_pipe`
    (for a pipeline you already loaded; :func:`load_schedule` does that without a wrapper).
    ``isinstance(pipe, DiffusionPipeline)`` (and the wrapped pipeline's class) is true, and
    ``type(pipe)`` is ``ECADPipeline``.

    Attributes:
        pipeline: the wrapped diffusers pipeline (the same object, with hooks on its transformer).
        frontier: the :class:`~ecad_hub.Frontier` the schedules come from.
        schedule: the selected :class:`~ecad_hub.CacheSchedule`.
        commit: the resolved commit of the ECAD repo (``None`` for a local folder).
        cache_enabled: whether the schedule is applied (see :meth:`disable_cache`).
        call_kwargs: the default call arguments (the frontier's recorded call settings and the
            schedule's step count).

    Calling it calls the pipeline; when ``num_inference_steps`` is not passed, the schedule's
    step count is used, and the frontier's recorded call settings (:attr:`call_kwargs`:
    ``height``, ``width``, ``guidance_scale``, ``max_sequence_length``,
    ``use_resolution_binning``, ...) fill in what the call does not pass. Passing another step
    count raises :class:`~ecad_hub.errors.StepMismatchError` before any denoising while caching is on.
    """

    _OWN = frozenset({"_pipe", "_frontier", "_loaded"})

    def __init__(self, pipeline, frontier: Frontier, schedule: str | float | CacheSchedule | None = None):
        object.__setattr__(self, "_pipe", pipeline)
        object.__setattr__(self, "_frontier", frontier)
        _check_architecture(frontier, pipeline, _name_of(pipeline))
        # the schedule control is a LoadedSchedule's (load_schedule's handle): one implementation
        object.__setattr__(self, "_loaded", LoadedSchedule(pipeline, frontier, frontier.resolve(schedule),
                                                           apply_options={}))
        self._loaded.enable()

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        repo_or_dir: str | os.PathLike | Frontier,
        schedule: str | float | None = None,
        *,
        base_model: str | os.PathLike | None = None,
        revision: str | None = None,
        base_revision: str | None = None,
        token: str | bool | None = None,
        **diffusers_kwargs: Any,
    ) -> "ECADPipeline":
        """Load an ECAD frontier and its base model, and apply a schedule.

        Args:
            repo_or_dir: an ECAD Hub repo id, an exported/pulled folder, a search run directory, or a
                :class:`~ecad_hub.Frontier` already loaded (``revision`` then does not apply).
            schedule: a schedule name, a MAC speedup (a number or a string like ``"2.5x"``: the
                schedule shown as that speedup, e.g. ``"3.93x"`` for ``ecad-3.93x``, else the nearest
                one at or above it; see :meth:`Frontier.pick <ecad_hub.Frontier.pick>`), or ``None``
                for the frontier's default.
            base_model: load this model instead of the frontier's base (e.g. a fine-tune of
                the same architecture); warns, since the schedules were searched on another model.
            revision: the ECAD repo revision (branch, tag or commit sha) to load.
            base_revision: the base model revision (default: the one recorded in the frontier,
                unless ``base_model`` overrides the base).
            token: Hub token, for both repos.
            **diffusers_kwargs: passed to ``DiffusionPipeline.from_pretrained`` (``dtype``,
                ``variant``, ``cache_dir``, ``local_files_only``, ...); ``cache_dir`` and
                ``local_files_only`` also apply to the ECAD repo. ``use_safetensors`` defaults
                to ``True`` (no pickled weights); pass ``use_safetensors=None`` to allow them.
                The deprecated ``torch_dtype=`` is passed on as ``dtype=`` (no FutureWarning).

        When the frontier records the scheduler it was searched with (a diffusers scheduler
        class) and the loaded pipeline has another one (or another config), the recorded one is
        installed (``pipe.scheduler = Recorded.from_config(...)``), so images match the frontier.

        Raises:
            FrontierError: the repo or folder is not a valid ECAD frontier, or a frontier from the
                Hub names a local path as its base model (only ``base_model=`` may do that).
            HubError: a download failed.
            ArchitectureMismatchError: the base model's transformer is not the architecture the
                schedules are for (checked on its config before the weights are downloaded).
            ModelLoadError: the base model cannot be loaded (malformed or missing files, weights
                only as pickles while ``use_safetensors=True``, custom code: a pipeline or component
                class diffusers does not define is refused unless ``trust_remote_code=True``).

        Example::

            >>> pipe = ECADPipeline.from_pretrained("user/pixart-ecad", schedule="ecad-2.68x",
            ...                                     dtype=torch.float16)
            >>> pipe.schedule.name, pipe.commit[:7]
            ('ecad-2.68x', '3f2a9c1')
        """
        shared = {k: diffusers_kwargs[k] for k in _SHARED_DOWNLOAD_KWARGS if k in diffusers_kwargs}
        if isinstance(repo_or_dir, Frontier):
            frontier = repo_or_dir
        else:
            frontier = Frontier.load(repo_or_dir, revision=revision, token=token, **shared)
        base = os.fspath(base_model) if base_model is not None else frontier.base_model
        if base_model is None and frontier.repo_id is not None and not is_repo_id(base):
            raise FrontierError(
                f"{frontier.source}: its base_model {base!r} is not a Hub repo id; a frontier from the Hub may only "
                f"name a Hub model (pass base_model= to load a local one)", path=frontier.repo_id)
        if base != frontier.base_model:
            warnings.warn(
                f"loading {base} instead of {frontier.base_model}, the model these schedules were searched on; "
                f"the architecture is checked, the image quality of the schedules is not", stacklevel=2)
            rev = base_revision
        else:
            rev = base_revision or frontier.base_model_revision
        _dtype_keyword(diffusers_kwargs)
        _preflight(frontier, base, rev, token, diffusers_kwargs)
        from diffusers import DiffusionPipeline

        diffusers_kwargs.setdefault("use_safetensors", True)
        try:
            pipe = DiffusionPipeline.from_pretrained(base, revision=rev, token=token, **diffusers_kwargs)
        except EcadError:
            raise
        except _LOAD_ERRORS as e:
            raise ModelLoadError(f"{base}: cannot load the base model ({_one_line(e)})", path=base) from None
        if frontier.scheduler and _scheduler_difference(pipe, frontier.scheduler):
            recorded = make_scheduler(frontier.scheduler, where=frontier.source or frontier.base_model)
            logger.info("ecad-hub: using the scheduler the schedules were searched with (%s)", type(recorded).__name__)
            pipe.scheduler = recorded
        return cls(pipe, frontier, schedule)

    @classmethod
    def from_pipe(
        cls,
        pipeline,
        repo_or_dir: str | os.PathLike | Frontier,
        schedule: str | float | None = None,
        *,
        revision: str | None = None,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
    ) -> "ECADPipeline":
        """Wrap a pipeline you already loaded and apply an ECAD frontier's schedule to it.

        ``repo_or_dir`` is a repo id, a folder, a search run directory, or a :class:`Frontier`.

        The wrapper *shares* ``pipeline``: it is the same object (``pipe.pipeline is pipeline``),
        not a copy, and the schedule's hooks are on its transformer, so calling ``pipeline``
        directly afterwards runs the schedule too. (A copy would not help: diffusers'
        ``DiffusionPipeline.from_pipe`` shares the transformer module, and hooks live on the
        module.) ``pipe.disable_cache()`` restores ``pipeline`` to the plain base model, bit
        for bit, and ``pipe.enable_cache()`` applies the schedule again. Wrapping an
        ``ECADPipeline`` replaces its schedule (the old wrapper's cache is disabled). For
        in-place loading without a wrapper use :func:`load_schedule`. The pipeline's scheduler
        is kept; a warning says so when it is not the one the frontier was searched with.

        Example::

            >>> base = PixArtAlphaPipeline.from_pretrained("PixArt-alpha/PixArt-XL-2-256x256")
            >>> pipe = ECADPipeline.from_pipe(base, "user/pixart-ecad", schedule=2.0)
            >>> pipe.pipeline is base          # shared: base now runs the schedule too
            True
            >>> pipe.disable_cache()           # base is the plain model again
        """
        if isinstance(pipeline, ECADPipeline):
            pipeline.disable_cache()
            pipeline = pipeline.pipeline
        if isinstance(repo_or_dir, Frontier):
            frontier = repo_or_dir
        else:
            frontier = Frontier.load(repo_or_dir, revision=revision, token=token, cache_dir=cache_dir,
                                     local_files_only=local_files_only)
        _warn_scheduler(pipeline, frontier)
        return cls(pipeline, frontier, schedule)

    # --- schedule control -------------------------------------------------------------------
    def set_schedule(self, schedule: str | float | CacheSchedule | None = None) -> CacheSchedule:
        """Switch to another schedule of the frontier (name, MAC speedup, or ``None`` for the default).

        A speedup as names and tables show it (``"3.93x"``, ``3.93``) selects that schedule; any
        other value the nearest one at or above it (``frontier.pick_note`` says which). A
        :class:`CacheSchedule` object is applied as given. Returns the selected schedule.
        """
        return self._loaded.set_schedule(schedule)

    def disable_cache(self) -> None:
        """Remove the schedule's hooks: the pipeline runs exactly like the unpatched base model."""
        self._loaded.disable()

    def enable_cache(self) -> None:
        """Apply the selected schedule again after :meth:`disable_cache` (or after another schedule
        applied to the same transformer replaced it)."""
        self._loaded.enable()

    @property
    def cache_enabled(self) -> bool:
        """Whether the schedule is applied now (``False`` after :meth:`disable_cache`, or once another
        schedule applied to the same transformer replaced it)."""
        return self._loaded.enabled

    @property
    def call_kwargs(self) -> dict:
        """The default call arguments: the frontier's recorded settings this pipeline takes, and the
        schedule's ``num_inference_steps``."""
        return self._loaded.call_kwargs

    @property
    def __class__(self):  # isinstance(pipe, DiffusionPipeline) / the wrapped class: true; type(pipe) stays
        pipe = self.__dict__.get("_pipe")
        return ECADPipeline if pipe is None else type(pipe)

    def __reduce_ex__(self, protocol):
        # pickle.dumps / copy.deepcopy: the hooks are not state to copy (they wrap forwards and the
        # scheduler), so the plain pipeline is pickled and the copy applies the schedule afresh.
        # The original's schedule is removed for that moment and applied again (a new `handle`).
        import pickle

        enabled = self.cache_enabled
        self._loaded.disable()
        try:
            plain = pickle.dumps(self._pipe, protocol=max(protocol, 2))
        finally:
            if enabled:
                self._loaded.enable()
        return _rebuild_ecad_pipeline, (plain, self._frontier, self.schedule, enabled)

    @property
    def schedule(self) -> CacheSchedule:
        return self._loaded.schedule

    @property
    def frontier(self) -> Frontier:
        return self._frontier

    @property
    def commit(self) -> str | None:
        return self._frontier.commit

    @property
    def pipeline(self):
        return self._pipe

    @property
    def handle(self):
        """The active :class:`~ecad_hub.hooks.ScheduleHandle` (``None`` while caching is disabled)."""
        return self._loaded.handle

    # --- the pipeline -----------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        bound = _bound_arguments(self._pipe, args, kwargs)
        for key, value in self.call_kwargs.items():
            if key not in bound:
                kwargs[key] = value
        return self._pipe(*args, **kwargs)

    def to(self, *args, **kwargs) -> "ECADPipeline":
        """``pipeline.to(...)``; returns this wrapper."""
        self._pipe.to(*args, **kwargs)
        return self

    def __getattr__(self, name: str):
        if name in ECADPipeline._OWN:  # not yet set (e.g. during unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._pipe, name)

    def __setattr__(self, name: str, value) -> None:
        if name in ECADPipeline._OWN or hasattr(type(self), name):
            object.__setattr__(self, name, value)
        else:
            setattr(self._pipe, name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(dir(self._pipe)))

    def __repr__(self) -> str:
        s = self.schedule
        speed = f", {s.mac_speedup:.2f}x MACs" if s is not None and s.mac_speedup else ""
        state = "" if self.cache_enabled else ", cache disabled"
        where = self._frontier.source or self._frontier.base_model
        at = f"@{self.commit[:7]}" if self.commit else ""
        return (f"ECADPipeline({type(self._pipe).__name__}, schedule={s.name if s else None!r}{speed}{state}, "
                f"frontier={where}{'' if at and at in where else at})")


def _rebuild_ecad_pipeline(plain: bytes, frontier, schedule, enabled):
    import pickle

    pipe = pickle.loads(plain)  # what ECADPipeline.__reduce_ex__ pickled in this same unpickling
    out = object.__new__(ECADPipeline)
    loaded = LoadedSchedule(pipe, frontier, schedule, apply_options={})
    for name, value in (("_pipe", pipe), ("_frontier", frontier), ("_loaded", loaded)):
        object.__setattr__(out, name, value)
    if enabled:
        loaded.enable()
    return out


# --------------------------------------------------------------------------------------------
# in-place loading
# --------------------------------------------------------------------------------------------

class LoadedSchedule:
    """An ECAD schedule loaded in place onto a pipeline by :func:`load_schedule`.

    Attributes:
        pipeline: the patched pipeline (or bare transformer).
        frontier: the :class:`~ecad_hub.Frontier` the schedule comes from (``None`` when a single
            schedule was loaded: a file or a :class:`~ecad_hub.CacheSchedule`).
        schedule: the selected :class:`~ecad_hub.CacheSchedule`.
        handle: the active :class:`~ecad_hub.hooks.ScheduleHandle` (``None`` while disabled).
        enabled: whether the schedule is applied.
        call_kwargs: what to call the pipeline with: the frontier's recorded call settings this
            pipeline takes (``height``, ``width``, ``guidance_scale``, ``max_sequence_length``,
            ``use_resolution_binning``, ...) and the schedule's ``num_inference_steps``:
            ``pipe(prompt, **handle.call_kwargs)``, or ``pipe(prompt, **{**handle.call_kwargs,
            "guidance_scale": 3.0})`` to override one.
        scheduler: the scheduler the frontier was searched with, ``{"class": ..., "config": ...}``
            (or ``None``); :meth:`make_scheduler` builds it.

    Also a context manager: leaving the ``with`` block removes the schedule.
    """

    def __init__(self, pipeline, frontier: Frontier | None, schedule: CacheSchedule, *, apply_options: dict):
        self.pipeline = pipeline
        self.frontier = frontier
        self._schedule = schedule
        self._apply_options = dict(apply_options)
        self._handle = None
        self._enabled = False

    # --- schedule control -------------------------------------------------------------------
    def set_schedule(self, schedule: str | float | CacheSchedule | None = None) -> CacheSchedule:
        """Switch to another schedule: a name, a MAC speedup (``2.5``, ``"3.93x"``: see
        :meth:`Frontier.pick <ecad_hub.Frontier.pick>`), ``None`` for the frontier's default, or a
        :class:`CacheSchedule` (applied as given). The rules of :meth:`ECADPipeline.set_schedule`.
        Returns the selected schedule; it is applied at once unless the handle is disabled."""
        if isinstance(schedule, CacheSchedule):
            chosen = schedule
        elif self.frontier is None:
            if schedule is None:
                chosen = self._schedule
            else:
                raise FrontierError(f"schedule {self._schedule.name!r} was loaded on its own (not from a frontier); "
                                    f"pass a CacheSchedule to switch, or load a frontier to choose by name or speedup")
        else:
            chosen = self.frontier.resolve(schedule)
        self._schedule = chosen
        if self._enabled:
            self._apply()
        return chosen

    def _apply(self) -> None:
        from .hooks import apply_schedule as _apply_schedule

        self._handle = _apply_schedule(self.pipeline, self._schedule, **self._apply_options)
        self._enabled = True

    def disable(self) -> None:
        """Remove the hooks: the pipeline runs exactly like the unpatched base model."""
        if self._handle is not None:
            self._handle.remove()
        self._handle = None
        self._enabled = False

    def enable(self) -> None:
        """Apply the selected schedule again after :meth:`disable` (or after another schedule replaced it)."""
        if self._handle is None or not self._handle.active:
            self._apply()
        self._enabled = True

    def remove(self) -> None:
        """Unload the schedule: :meth:`disable` (kept for symmetry with ``ScheduleHandle.remove``);
        :meth:`enable` can still apply it again."""
        self.disable()

    def __enter__(self) -> "LoadedSchedule":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    # --- inspection -------------------------------------------------------------------------
    @property
    def schedule(self) -> CacheSchedule:
        return self._schedule

    @property
    def handle(self):
        return self._handle if self._handle is not None and self._handle.active else None

    @property
    def enabled(self) -> bool:
        """Whether the schedule is applied now (``False`` after :meth:`disable`, or once another
        schedule applied to the same transformer replaced it)."""
        return self._enabled and self._handle is not None and self._handle.active

    @property
    def call_kwargs(self) -> dict:
        return call_defaults(self.pipeline, self.frontier, self._schedule)

    @property
    def scheduler(self) -> dict | None:
        return self.frontier.scheduler if self.frontier is not None else None

    def make_scheduler(self):
        """A new instance of the scheduler the frontier was searched with (``pipe.scheduler = handle.make_scheduler()``)."""
        if not self.scheduler:
            raise FrontierError(f"{self.frontier.source if self.frontier else self._schedule.name}: no scheduler "
                                f"is recorded")
        return make_scheduler(self.scheduler, where=self.frontier.source or self.frontier.base_model)

    def __repr__(self) -> str:
        s = self._schedule
        speed = f", {s.mac_speedup:.2f}x MACs" if s.mac_speedup else ""
        state = "enabled" if self.enabled else "disabled"
        where = f", frontier={self.frontier.source or self.frontier.base_model}" if self.frontier is not None else ""
        return f"<LoadedSchedule {s.name!r}{speed} on {type(self.pipeline).__name__} ({state}){where}>"


def _load_source(source, *, revision=None, token=None, cache_dir=None,
                 local_files_only: bool = False) -> tuple[Frontier | None, CacheSchedule | None]:
    """``(frontier, None)`` or ``(None, schedule)`` for any source :func:`load_schedule` takes."""
    if isinstance(source, CacheSchedule):
        return None, source
    if isinstance(source, Frontier):
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"a schedule source is a Hub repo id, a folder, a schedule file, a Frontier or a CacheSchedule, "
                        f"got {type(source).__name__}")
    path = Path(source)
    if path.is_file():
        if path.name == "ecad_config.json":  # the config of an exported folder: the folder
            return Frontier.load(path.parent), None
        return None, CacheSchedule.load(path)
    if not path.exists() and path.suffix.lower() == ".json":
        raise FrontierError(f"{escape_control(str(source))}: no such schedule file", path=str(source))
    return Frontier.load(source, revision=revision, token=token, cache_dir=cache_dir,
                         local_files_only=local_files_only), None


def load_schedule(pipe, source, schedule: str | float | CacheSchedule | None = None, *,
                  revision: str | None = None, token: str | bool | None = None,
                  cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                  fast_path: bool = True, compile: str | None = None,
                  compile_options: dict | None = None) -> LoadedSchedule:
    """Load an ECAD schedule onto ``pipe`` in place (like ``pipe.load_lora_weights``); returns its handle.

    Args:
        pipe: a diffusers pipeline with a transformer (or the transformer itself).
        source: an ECAD Hub repo id, an exported or pulled frontier folder, a search run
            directory, a schedule JSON file, a :class:`~ecad_hub.Frontier` or a
            :class:`~ecad_hub.CacheSchedule`.
        schedule: which schedule of a frontier: a name, a MAC speedup (``2.5`` / ``"2.5x"``: the
            schedule shown as that speedup, else the nearest one above it), or ``None`` for the
            frontier's default. Not for a single schedule.
        revision, token, cache_dir, local_files_only: for a Hub repo (the ECAD repo's revision).
        fast_path, compile, compile_options: as for :func:`ecad_hub.hooks.apply_schedule`.

    Returns:
        A :class:`LoadedSchedule`: ``set_schedule(...)``, ``disable()`` / ``enable()``,
        ``remove()``, ``.schedule``, ``.frontier``, ``.call_kwargs`` (call the pipeline with
        ``pipe(prompt, **handle.call_kwargs)`` to use the settings the frontier was searched
        with: its step count, resolution binning, ``max_sequence_length`` ...).

    Another ECAD schedule already on the transformer (from ``load_schedule``, ``ECADPipeline``
    or ``apply_schedule``) is replaced: it is removed first and its handle reports
    ``enabled == False``. A diffusers cache (``pipe.transformer.enable_cache(...)``, any
    ``diffusers.hooks.apply_*`` cache) is refused with
    :class:`~ecad_hub.errors.CacheConflictError`, whose message says how to remove it. When the
    frontier records a scheduler other than the pipeline's, a warning is logged (images may
    then differ from the frontier's quality figures; ``pipe.scheduler = handle.make_scheduler()``
    installs the recorded one).

    Raises:
        FrontierError: the source is not a valid frontier, or no schedule matches ``schedule``.
        ScheduleError: a schedule file is malformed.
        ArchitectureMismatchError: the schedules are for another transformer architecture.
        CacheConflictError: a diffusers cache is on the transformer.
        HubError: a download failed.

    Example::

        >>> handle = load_schedule(pipe, "user/pixart-ecad", schedule="2.5x")
        >>> image = pipe("a red fox", **handle.call_kwargs).images[0]
        >>> handle.set_schedule("ecad-3.93x"); handle.disable(); handle.enable()
    """
    frontier, single = _load_source(source, revision=revision, token=token, cache_dir=cache_dir,
                                    local_files_only=local_files_only)
    if single is not None:
        if schedule is not None and not isinstance(schedule, CacheSchedule):
            raise FrontierError(f"{single.name}: a single schedule was given, so schedule={schedule!r} cannot select "
                                f"one; load a frontier (a repo, folder or run directory) to choose")
        chosen = schedule if isinstance(schedule, CacheSchedule) else single
    else:
        if hasattr(pipe, "transformer"):  # a bare transformer: apply_schedule checks it
            _check_architecture(frontier, pipe, _name_of(pipe))
        chosen = frontier.resolve(schedule)
        _warn_scheduler(pipe, frontier)
    loaded = LoadedSchedule(pipe, frontier, chosen, apply_options=dict(fast_path=fast_path, compile=compile,
                                                                       compile_options=compile_options))
    loaded._apply()
    return loaded


def apply_schedule(pipe_or_transformer, schedule, *, select: str | float | None = None, fast_path: bool = True,
                   compile: str | None = None, compile_options: dict | None = None, revision: str | None = None,
                   token: str | bool | None = None, cache_dir: str | os.PathLike | None = None,
                   local_files_only: bool = False):
    """:func:`ecad_hub.hooks.apply_schedule`, for any source :func:`load_schedule` takes.

    ``schedule`` is a :class:`CacheSchedule`, a schedule file, a frontier folder, a search run
    directory, a Hub repo id or a :class:`~ecad_hub.Frontier` (then ``select`` picks the
    schedule: a name or a speedup; default: the frontier's default). Returns the
    :class:`~ecad_hub.hooks.ScheduleHandle` (``handle.remove()``, or use it in a ``with`` block).
    """
    from .hooks import apply_schedule as _apply_schedule

    frontier, single = _load_source(schedule, revision=revision, token=token, cache_dir=cache_dir,
                                    local_files_only=local_files_only)
    if single is None:
        single = frontier.resolve(select)
    elif select is not None:
        raise FrontierError(f"{single.name}: select= chooses a schedule of a frontier, but a single schedule was given")
    return _apply_schedule(pipe_or_transformer, single, fast_path=fast_path, compile=compile,
                           compile_options=compile_options)


# --------------------------------------------------------------------------------------------
# settings that travel
# --------------------------------------------------------------------------------------------

def _call_parameters(pipe) -> tuple[set, bool]:
    try:
        params = inspect.signature(pipe.__call__).parameters
    except (TypeError, ValueError):
        return set(), True
    return set(params), any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def call_defaults(pipe, frontier: Frontier | None, schedule: CacheSchedule | None) -> dict:
    """The call arguments a pipeline gets by default: the frontier's recorded call settings the
    pipeline's ``__call__`` takes, and the schedule's ``num_inference_steps``."""
    out: dict[str, Any] = {}
    recorded = (frontier.pipeline_call if frontier is not None else None) or {}
    if recorded and callable(pipe) and hasattr(pipe, "components"):
        names, any_kw = _call_parameters(pipe)
        out.update({k: v for k, v in recorded.items() if any_kw or k in names})
    if schedule is not None:
        out["num_inference_steps"] = schedule.num_inference_steps
    return out


def _normal(value):
    try:
        return json.loads(json.dumps(value, default=list))
    except (TypeError, ValueError):
        return repr(value)


def _scheduler_difference(pipe, record: dict) -> str | None:
    """How the pipeline's scheduler differs from the recorded one (``None``: it does not)."""
    current = getattr(pipe, "scheduler", None)
    if current is None:
        return None
    if type(current).__name__ != record.get("class"):
        return f"{type(current).__name__}, not {record.get('class')}"
    config = dict(getattr(current, "config", None) or {})
    for key, value in (record.get("config") or {}).items():
        if key in config and _normal(config[key]) != _normal(value):
            return f"{key}={_normal(config[key])!r}, not {value!r}"
    return None


def _warn_scheduler(pipe, frontier: Frontier) -> None:
    if not frontier.scheduler:
        return
    diff = _scheduler_difference(pipe, frontier.scheduler)
    if diff:
        logger.warning("ecad-hub: %s was searched with the scheduler %s; this pipeline's differs (%s), so images may "
                       "differ from the frontier's quality figures (pipe.scheduler = handle.make_scheduler() installs "
                       "the recorded one)", frontier.source or frontier.base_model, frontier.scheduler["class"], diff)


def make_scheduler(record: dict, *, where: str = "the frontier"):
    """The scheduler a frontier records, ``{"class": ..., "config": {...}}``, as a new instance.

    Only a scheduler class diffusers itself defines is used (nothing is imported from a repo).
    """
    import diffusers
    from diffusers import SchedulerMixin

    name = record.get("class")
    cls = getattr(diffusers, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        raise ModelLoadError(f"{where}: records the scheduler {name!r}, which is not a diffusers scheduler class")
    try:
        return cls.from_config(dict(record.get("config") or {}))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ModelLoadError(f"{where}: cannot build the recorded scheduler {name} ({_one_line(e)})") from None


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _dtype_keyword(kwargs: dict) -> None:
    """Pass a dtype under the name this diffusers takes: ``torch_dtype=`` becomes ``dtype=`` (no
    FutureWarning), or the other way round on a diffusers without ``dtype=``."""
    if diffusers_takes_dtype():
        if "torch_dtype" in kwargs:
            value = kwargs.pop("torch_dtype")
            if kwargs.get("dtype") is None:
                kwargs["dtype"] = value
    elif "dtype" in kwargs:
        value = kwargs.pop("dtype")
        if kwargs.get("torch_dtype") is None:
            kwargs["torch_dtype"] = value


def _bound_arguments(pipe, args, kwargs) -> dict:
    try:
        return inspect.signature(pipe.__call__).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return dict(kwargs)


def _name_of(pipe) -> str:
    name = getattr(pipe, "name_or_path", None) or getattr(getattr(pipe, "config", None), "_name_or_path", None)
    return f"{name} ({type(pipe).__name__})" if name else type(pipe).__name__


def _one_line(err: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message`` (control characters escaped), for wrapping a library's error."""
    text = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    text = escape_control(f"{type(err).__name__}: {text}" if text else type(err).__name__)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _architecture_of(obj, base_label: str):
    """:func:`ecad_hub.adapters.architecture_of`, with a malformed config as a one-line :class:`ModelLoadError`."""
    from .adapters import architecture_of

    try:
        return architecture_of(obj)
    except EcadError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ModelLoadError(f"{base_label}: its transformer config is malformed ({_one_line(e)})") from None


def _describe_found(obj, base_label: str = "the base model") -> str:
    try:
        return _architecture_of(obj, base_label).describe()
    except UnsupportedModelError:
        return f"{type(obj).__name__ if not isinstance(obj, dict) else obj.get('_class_name')} (no ecad-hub adapter)"


def _check_architecture(frontier: Frontier, pipe_or_config, base_label: str) -> None:
    """Refuse, naming both architectures, when the transformer is not the frontier's architecture."""
    import torch

    expected = frontier.architecture
    where = frontier.source or frontier.base_model
    transformer = pipe_or_config if isinstance(pipe_or_config, dict) else getattr(pipe_or_config, "transformer", None)
    if not isinstance(transformer, (dict, torch.nn.Module)):
        raise ArchitectureMismatchError(
            f"{where} has schedules for {expected.describe()}, but {base_label} has no diffusion transformer")
    try:
        actual = _architecture_of(transformer, base_label)
    except UnsupportedModelError:
        raise ArchitectureMismatchError(
            f"{where} has schedules for {expected.describe()}, but {base_label} has "
            f"{_describe_found(transformer, base_label)}") from None
    diffs = expected.differences(actual)
    if diffs:
        raise ArchitectureMismatchError(
            f"{where} has schedules for {expected.describe()}, but {base_label} has {actual.describe()}: "
            f"{'; '.join(diffs)}")


class _BaseFiles:
    """The small files of a base model (a local folder or a Hub repo), fetched one at a time, size-checked first."""

    def __init__(self, base: str, names: list[str], revision: str | None, token, diffusers_kwargs: dict):
        from huggingface_hub import HfApi, constants

        from .frontier.remote import hub_exceptions

        self.base, self.revision, self.token = base, revision, token
        self.cache_dir = diffusers_kwargs.get("cache_dir")
        self.local = Path(base) if Path(base).is_dir() else None
        self.offline = bool(diffusers_kwargs.get("local_files_only", False)) or constants.HF_HUB_OFFLINE
        self.available: set[str] | None = None  # None: unknown (offline), try the cache
        if self.local is None and not self.offline:
            try:
                infos = HfApi(token=token).get_paths_info(base, names, revision=revision)
            except hub_exceptions():
                infos = []  # best effort: from_pretrained reports real problems (one line, see _LOAD_ERRORS)
            for info in infos:
                size = getattr(info, "size", None)
                if size is not None and size > MAX_CONFIG_BYTES:
                    raise ModelLoadError(f"{base}: {info.path} is {size:,} bytes, larger than the {MAX_CONFIG_BYTES:,}-"
                                         f"byte limit for a config file; refusing to download it", path=base)
            self.available = {i.path for i in infos}

    def read(self, name: str) -> Any:
        """The parsed JSON file, or ``None`` when it cannot be had (then from_pretrained reports the problem)."""
        from huggingface_hub import hf_hub_download

        from .frontier.remote import hub_exceptions
        from .utils.io import read_json

        if self.local is not None:
            path = self.local / name
            if not path.is_file():
                return None
        else:
            if self.available is not None and name not in self.available:
                return None
            folder, _, filename = name.rpartition("/")
            try:
                path = Path(hf_hub_download(self.base, filename, subfolder=folder or None, revision=self.revision,
                                            token=self.token, cache_dir=self.cache_dir,
                                            local_files_only=self.offline))
            except hub_exceptions():
                return None
        try:
            return read_json(path, error_cls=ModelLoadError, max_bytes=MAX_CONFIG_BYTES)
        except ModelLoadError as e:  # name the base model's file, not its place in the cache
            message = str(e)
            if message.startswith(str(path)):
                message = f"{self.base}: {name}{message[len(str(path)):]}"
            raise ModelLoadError(message, path=self.base) from None


def _preflight(frontier: Frontier, base: str, revision: str | None, token, diffusers_kwargs: dict) -> None:
    """Check the base model before downloading its weights.

    * ``transformer/config.json`` (a small file): the transformer must have the frontier's
      architecture (:class:`ArchitectureMismatchError`); a malformed config is a
      :class:`ModelLoadError`;
    * ``model_index.json``: the pipeline class and every component class must be diffusers' or
      transformers' own; anything else would run code from the repo, which ecad-hub refuses
      (:class:`ModelLoadError`) unless ``trust_remote_code=True`` or ``custom_pipeline=`` is passed.

    A file that cannot be fetched is skipped here; ``from_pretrained`` then reports the problem.
    """
    files = _BaseFiles(base, ["transformer/config.json", "model_index.json"], revision, token, diffusers_kwargs)
    config = files.read("transformer/config.json")
    if config is not None:
        if not isinstance(config, dict):
            raise ModelLoadError(f"{base}: transformer/config.json is not a JSON object", path=base)
        if config.get("_class_name"):
            _check_architecture(frontier, config, base)
    if diffusers_kwargs.get("trust_remote_code") or diffusers_kwargs.get("custom_pipeline"):
        return
    index = files.read("model_index.json")
    if index is not None:
        problem = _custom_code(index)
        if problem:
            raise ModelLoadError(f"{base}: {problem}; ecad-hub never runs code from a model repo (pass "
                                 f"trust_remote_code=True if you trust it)", path=base)


def _custom_code(index: Any) -> str | None:
    """Why loading the pipeline described by ``model_index.json`` would import code from the repo, or ``None``."""
    import diffusers

    try:
        from diffusers.pipelines.pipeline_loading_utils import LOADABLE_CLASSES

        libraries = set(LOADABLE_CLASSES)
    except ImportError:  # pragma: no cover - older diffusers
        libraries = {"diffusers", "transformers"}
    if not isinstance(index, dict):
        return "model_index.json is not a JSON object"
    name = index.get("_class_name")
    if not isinstance(name, str) or not name.isidentifier() or not isinstance(getattr(diffusers, name, None), type):
        return f"model_index.json names the pipeline class {name!r}, which diffusers does not define (custom code)"
    for key, value in index.items():
        if key.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library, cls = value
        if library is None and cls is None:
            continue
        if library not in libraries:
            return (f"model_index.json: component {key!r} is {library!r}.{cls!r}, not a class of "
                    f"{' or '.join(sorted(libraries))} (custom code)")
    return None
