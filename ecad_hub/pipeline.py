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

from .errors import ArchitectureMismatchError, EcadError, FrontierError, ModelLoadError, UnsupportedModelError
from .errors import escape_control
from .frontier import Frontier, is_repo_id
from .schedule import CacheSchedule

#: diffusers ``from_pretrained`` keyword arguments that also apply to the ECAD repo download.
_SHARED_DOWNLOAD_KWARGS = ("cache_dir", "local_files_only")
#: Largest base-model config file the preflight reads (``model_index.json``, ``transformer/config.json``).
MAX_CONFIG_BYTES = 1024 * 1024
#: What diffusers raises when a pipeline cannot be loaded (missing or malformed files, custom code
#: refused, no safetensors, unknown classes, Hub failures: those subclass OSError).
_LOAD_ERRORS = (OSError, ValueError, AttributeError, ImportError, KeyError, TypeError, IndexError, RuntimeError)


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
            ...                                     torch_dtype=torch.float16)
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
        _preflight(frontier, base, rev, token, diffusers_kwargs)
        from diffusers import DiffusionPipeline

        diffusers_kwargs.setdefault("use_safetensors", True)
        try:
            pipe = DiffusionPipeline.from_pretrained(base, revision=rev, token=token, **diffusers_kwargs)
        except EcadError:
            raise
        except _LOAD_ERRORS as e:
            raise ModelLoadError(f"{base}: cannot load the base model ({_one_line(e)})", path=base) from None
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
