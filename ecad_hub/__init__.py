"""ecad-hub: learned ECAD caching schedules for diffusion transformers, as Hub artifacts.

    >>> from ecad_hub import load_schedule, apply_schedule
    >>> handle = load_schedule(pipe, "user/pixart-ecad", schedule="2.5x")   # in place, like load_lora_weights
    >>> image = pipe("a red fox", **handle.call_kwargs).images[0]
    >>> handle.disable()                                                  # the plain model again
    >>> with apply_schedule(pipe, "ours_fast.json"):                       # a schedule file (or a CacheSchedule)
    ...     image = pipe("a red fox", num_inference_steps=20).images[0]

Heavy dependencies (torch, diffusers) are imported only when the names that need them are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .version import __version__  # noqa: E402

from .errors import (  # noqa: E402  (light, always imported)
    ArchitectureMismatchError,
    CacheConflictError,
    EcadError,
    FileWriteError,
    FrontierError,
    HubError,
    LegacyFormatError,
    MetricUnavailableError,
    ModelLoadError,
    ScheduleError,
    ScheduleNotFoundError,
    SearchError,
    StepMismatchError,
    UnsupportedFeatureError,
    UnsupportedModelError,
)
from .schedule import Architecture, BlockGroup, CacheSchedule  # noqa: E402

_LAZY = {
    "profile_macs": ".macs",
    "MacProfile": ".macs",
    "cache_memory": ".memory",
    "CacheMemory": ".memory",
    "apply_schedule": ".pipeline",  # any source (file, folder, repo, Frontier); ecad_hub.hooks.apply_schedule: CacheSchedule/file
    "load_schedule": ".pipeline",
    "LoadedSchedule": ".pipeline",
    "ScheduleHandle": ".hooks",
    "architecture_of": ".adapters",
    "register_adapter": ".adapters",
    "ArchitectureAdapter": ".adapters",
    "from_legacy": ".legacy",
    "Frontier": ".frontier",
    "ECADPipeline": ".pipeline",
    "browse": ".hub",
    "compile_blocks": ".compile",
}

__all__ = [
    "Architecture", "BlockGroup", "CacheSchedule",
    "EcadError", "ScheduleError", "LegacyFormatError", "UnsupportedFeatureError", "ArchitectureMismatchError",
    "StepMismatchError", "UnsupportedModelError", "FrontierError", "ScheduleNotFoundError", "HubError", "SearchError",
    "MetricUnavailableError", "ModelLoadError", "FileWriteError", "CacheConflictError", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ecad_hub' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from .adapters import architecture_of
    from .frontier import Frontier
    from .hooks import ScheduleHandle
    from .hub import browse
    from .legacy import from_legacy
    from .macs import MacProfile, profile_macs
    from .memory import CacheMemory, cache_memory
    from .pipeline import ECADPipeline, LoadedSchedule, apply_schedule, load_schedule
