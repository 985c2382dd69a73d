"""``ECADPipeline``: a diffusers pipeline that follows an ECAD schedule from a Hub repo or folder.

    >>> import torch
    >>> from ecad_hub import ECADPipeline
    >>> pipe = ECADPipeline.from_pretrained("user/pixart-ecad", torch_dtype=torch.float16).to("cuda")
    >>> image = pipe("a red fox in the snow").images[0]          # the default schedule, its steps
    >>> pipe.set_schedule(2.5)                                     # best quality at >= 2.5x MACs
    >>> pipe.set_schedule("ecad-3.93x")                            # or by name
    >>> pipe.disable_cache()                                       # the plain base model, bit for bit

Loading downloads only the ECAD repo's small JSON files, then the base model with
``DiffusionPipeline.from_pretrained`` (at the revision the schedules were searched on), checks
that its transformer has the architecture the schedules were written for, and applies the
schedule with :func:`ecad_hub.hooks.apply_schedule`. Everything else is the diffusers pipeline:
attributes, components, ``.to()``, ``enable_model_cpu_offload()`` ... are delegated to it.
"""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path
from typing import Any

from .errors import ArchitectureMismatchError, UnsupportedModelError
from .frontier import Frontier
from .schedule import CacheSchedule

#: diffusers ``from_pretrained`` keyword arguments that also apply to the ECAD repo download.
_SHARED_DOWNLOAD_KWARGS = ("cache_dir", "local_files_only")


class ECADPipeline:
    """A diffusers pipeline with an ECAD caching schedule applied; behaves like the pipeline.

    Build it with :meth:`from_pretrained` (loads the base model too) or :meth:`from_pipe`
    (for a pipeline you already loaded).

    Attributes:
        pipeline: the wrapped diffusers pipeline (the same object, with hooks on its transformer).
        frontier: the :class:`~ecad_hub.Frontier` the schedules come from.
        schedule: the selected :class:`~ecad_hub.CacheSchedule`.
        commit: the resolved commit of the ECAD repo (``None`` for a local folder).
        cache_enabled: whether the schedule is applied (see :meth:`disable_cache`).

    Calling it calls the pipeline; when ``num_inference_steps`` is not passed, the schedule's
    step count is used. Passing another step count raises
    :class:`~ecad_hub.errors.StepMismatchError` before any denoising while caching is on.
    """

    _OWN = frozenset({"_pipe", "_frontier", "_schedule", "_handle", "_cache_enabled"})

    def __init__(self, pipeline, frontier: Frontier, schedule: str | float | CacheSchedule | None = None):
        object.__setattr__(self, "_pipe", pipeline)
        object.__setattr__(self, "_frontier", frontier)
        object.__setattr__(self, "_schedule", None)
        object.__setattr__(self, "_handle", None)
        object.__setattr__(self, "_cache_enabled", True)
        _check_architecture(frontier, pipeline, _name_of(pipeline))
        self.set_schedule(schedule)

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        repo_or_dir: str | os.PathLike,
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
            repo_or_dir: an ECAD Hub repo id, an exported/pulled folder, or a search run directory.
            schedule: a schedule name, a MAC speedup (the best-quality schedule reaching it; a
                number or a string like ``"2.5x"``), or ``None`` for the frontier's default.
            base_model: load this model instead of the frontier's base (e.g. a fine-tune of
                the same architecture); warns, since the schedules were searched on another model.
            revision: the ECAD repo revision (branch, tag or commit sha) to load.
            base_revision: the base model revision (default: the one recorded in the frontier,
                unless ``base_model`` overrides the base).
            token: Hub token, for both repos.
            **diffusers_kwargs: passed to ``DiffusionPipeline.from_pretrained`` (``torch_dtype``,
                ``variant``, ``cache_dir``, ``local_files_only``, ...); ``cache_dir`` and
                ``local_files_only`` also apply to the ECAD repo. ``use_safetensors`` defaults
                to ``True`` (no pickled weights); pass ``use_safetensors=None`` to allow them.

        Raises:
            FrontierError: the repo or folder is not a valid ECAD frontier.
            HubError: a download failed.
            ArchitectureMismatchError: the base model's transformer is not the architecture the
                schedules are for (checked on its config before the weights are downloaded).

        Example::

            >>> pipe = ECADPipeline.from_pretrained("user/pixart-ecad", schedule="ecad-2.68x",
            ...                                     torch_dtype=torch.float16)
            >>> pipe.schedule.name, pipe.commit[:7]
            ('ecad-2.68x', '3f2a9c1')
        """
        from diffusers import DiffusionPipeline

        shared = {k: diffusers_kwargs[k] for k in _SHARED_DOWNLOAD_KWARGS if k in diffusers_kwargs}
        frontier = Frontier.load(repo_or_dir, revision=revision, token=token, **shared)
        base = os.fspath(base_model) if base_model is not None else frontier.base_model
        if base != frontier.base_model:
            warnings.warn(
                f"loading {base} instead of {frontier.base_model}, the model these schedules were searched on; "
                f"the architecture is checked, the image quality of the schedules is not", stacklevel=2)
            rev = base_revision
        else:
            rev = base_revision or frontier.base_model_revision
        _preflight(frontier, base, rev, token, diffusers_kwargs)
        diffusers_kwargs.setdefault("use_safetensors", True)
        pipe = DiffusionPipeline.from_pretrained(base, revision=rev, token=token, **diffusers_kwargs)
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
        """Apply an ECAD frontier's schedule to a pipeline you already loaded.

        ``repo_or_dir`` is a repo id, a folder, or a :class:`Frontier`. The pipeline is patched
        in place (its transformer gets the schedule's hooks) and wrapped.

        Example::

            >>> base = PixArtAlphaPipeline.from_pretrained("PixArt-alpha/PixArt-XL-2-256x256")
            >>> pipe = ECADPipeline.from_pipe(base, "user/pixart-ecad", schedule=2.0)
        """
        if isinstance(pipeline, ECADPipeline):
            pipeline.disable_cache()
            pipeline = pipeline.pipeline
        if isinstance(repo_or_dir, Frontier):
            frontier = repo_or_dir
        else:
            frontier = Frontier.load(repo_or_dir, revision=revision, token=token, cache_dir=cache_dir,
                                     local_files_only=local_files_only)
        return cls(pipeline, frontier, schedule)

    # --- schedule control -------------------------------------------------------------------
    def set_schedule(self, schedule: str | float | CacheSchedule | None = None) -> CacheSchedule:
        """Switch to another schedule of the frontier (name, MAC speedup, or ``None`` for the default).

        A :class:`CacheSchedule` object is applied as given. Returns the selected schedule.
        """
        chosen = self._frontier.resolve(schedule)
        object.__setattr__(self, "_schedule", chosen)
        if self._cache_enabled:
            self._apply()
        return chosen

    def _apply(self) -> None:
        from .hooks import apply_schedule

        object.__setattr__(self, "_handle", apply_schedule(self._pipe, self._schedule))

    def disable_cache(self) -> None:
        """Remove the schedule's hooks: the pipeline runs exactly like the unpatched base model."""
        if self._handle is not None:
            self._handle.remove()
        object.__setattr__(self, "_handle", None)
        object.__setattr__(self, "_cache_enabled", False)

    def enable_cache(self) -> None:
        """Apply the selected schedule again after :meth:`disable_cache`."""
        object.__setattr__(self, "_cache_enabled", True)
        if self._handle is None or not self._handle.active:
            self._apply()

    @property
    def cache_enabled(self) -> bool:
        return self._cache_enabled

    @property
    def schedule(self) -> CacheSchedule:
        return self._schedule

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
        return self._handle

    # --- the pipeline -----------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if "num_inference_steps" not in _bound_arguments(self._pipe, args, kwargs):
            kwargs["num_inference_steps"] = self._schedule.num_inference_steps
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
        s = self._schedule
        speed = f", {s.mac_speedup:.2f}x MACs" if s is not None and s.mac_speedup else ""
        state = "" if self._cache_enabled else ", cache disabled"
        where = self._frontier.source or self._frontier.base_model
        at = f"@{self.commit[:7]}" if self.commit else ""
        return (f"ECADPipeline({type(self._pipe).__name__}, schedule={s.name if s else None!r}{speed}{state}, "
                f"frontier={where}{'' if at and at in where else at})")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _bound_arguments(pipe, args, kwargs) -> dict:
    try:
        return inspect.signature(pipe.__call__).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return dict(kwargs)


def _name_of(pipe) -> str:
    name = getattr(pipe, "name_or_path", None) or getattr(getattr(pipe, "config", None), "_name_or_path", None)
    return f"{name} ({type(pipe).__name__})" if name else type(pipe).__name__


def _describe_found(obj) -> str:
    from .adapters import architecture_of

    try:
        return architecture_of(obj).describe()
    except UnsupportedModelError:
        return f"{type(obj).__name__ if not isinstance(obj, dict) else obj.get('_class_name')} (no ecad-hub adapter)"


def _check_architecture(frontier: Frontier, pipe_or_config, base_label: str) -> None:
    """Refuse, naming both architectures, when the transformer is not the frontier's architecture."""
    import torch

    from .adapters import architecture_of

    expected = frontier.architecture
    where = frontier.source or frontier.base_model
    transformer = pipe_or_config if isinstance(pipe_or_config, dict) else getattr(pipe_or_config, "transformer", None)
    if not isinstance(transformer, (dict, torch.nn.Module)):
        raise ArchitectureMismatchError(
            f"{where} has schedules for {expected.describe()}, but {base_label} has no diffusion transformer")
    try:
        actual = architecture_of(transformer)
    except UnsupportedModelError:
        raise ArchitectureMismatchError(
            f"{where} has schedules for {expected.describe()}, but {base_label} has "
            f"{_describe_found(transformer)}") from None
    diffs = expected.differences(actual)
    if diffs:
        raise ArchitectureMismatchError(
            f"{where} has schedules for {expected.describe()}, but {base_label} has {actual.describe()}: "
            f"{'; '.join(diffs)}")


def _preflight(frontier: Frontier, base: str, revision: str | None, token, diffusers_kwargs: dict) -> None:
    """Check the base model's transformer config before downloading its weights (best effort).

    Reads ``transformer/config.json`` (a small file); if it cannot be read, the check happens
    after loading instead.
    """
    from .utils.io import read_json

    config_path: Path | None = None
    local = Path(base)
    if local.is_dir():
        config_path = local / "transformer" / "config.json"
    else:
        from huggingface_hub import hf_hub_download

        try:
            config_path = Path(hf_hub_download(
                base, "config.json", subfolder="transformer", revision=revision, token=token,
                cache_dir=diffusers_kwargs.get("cache_dir"),
                local_files_only=bool(diffusers_kwargs.get("local_files_only", False))))
        except Exception:  # noqa: BLE001 - best effort; from_pretrained reports real problems
            return
    if not config_path.is_file():
        return
    try:
        config = read_json(config_path)
    except ValueError:
        return
    if isinstance(config, dict) and config.get("_class_name"):
        _check_architecture(frontier, config, base)
