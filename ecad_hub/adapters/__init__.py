"""Architecture adapters: one file per diffusers transformer family ecad-hub can schedule.

``base.py`` defines the contract (:class:`ArchitectureAdapter`); every other module of this
package is one family (``pixart.py``, ``flux.py``, ``sd3.py``, ...) and lists its adapter
instances in a module-level ``ADAPTERS`` tuple, registered at import. This module keeps the
registry and looks adapters up for a model, a config or a class name. Everything ecad-hub knows
about a family lives in its adapter file: no other module names a family. Adding an architecture
is one new file here (or :func:`register_adapter` from your own code; see README, "Where to
change what").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..errors import ScheduleError, UnsupportedModelError
from ..schedule import Architecture
from .base import ArchitectureAdapter, LegacyLayout
from .flux import FluxAdapter
from .pixart import PixArtAdapter
from .sd3 import SD3Adapter

__all__ = ["ArchitectureAdapter", "LegacyLayout", "register_adapter", "adapters", "supported_classes",
           "get_adapter", "adapter_for", "find_adapter", "architecture_of", "load_transformer_config",
           "class_name_of", "PixArtAdapter", "FluxAdapter", "SD3Adapter"]

_ADAPTERS: dict[str, ArchitectureAdapter] = {}


def register_adapter(adapter: ArchitectureAdapter) -> ArchitectureAdapter:
    """Register an adapter instance for its ``transformer_class``; returns it."""
    _ADAPTERS[adapter.transformer_class] = adapter
    return adapter


def _register_builtin() -> None:
    """Register the adapters of every family module in this package (each lists them in ``ADAPTERS``)."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name in ("base", "auto") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for adapter in getattr(module, "ADAPTERS", ()):
            register_adapter(adapter)


_register_builtin()


def supported_classes() -> list[str]:
    """The transformer class names with a registered adapter, sorted."""
    return sorted(_ADAPTERS)


def adapters() -> list[ArchitectureAdapter]:
    """Every registered adapter, sorted by transformer class."""
    return [_ADAPTERS[name] for name in supported_classes()]


def find_adapter(transformer_class: str) -> ArchitectureAdapter | None:
    """The adapter registered for ``transformer_class``, or ``None``."""
    return _ADAPTERS.get(transformer_class)


def get_adapter(transformer_class: str) -> ArchitectureAdapter:
    """The adapter of a class name: the registered one, else the automatic adapter of a diffusers
    transformer class (:mod:`.auto`, derived per config when used); :class:`UnsupportedModelError` otherwise."""
    adapter = _ADAPTERS.get(transformer_class)
    if adapter is not None:
        return adapter
    from . import auto

    return auto.lookup(transformer_class, transformer_class, supported_classes())


def load_transformer_config(config) -> dict:
    """A transformer config as a dict, from a dict, a ``config.json`` path/folder, or a model (its ``.config``)."""
    if isinstance(config, Mapping):
        return dict(config)
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if path.is_dir():
            path = path / "config.json"
        from ..utils.io import read_json

        return read_json(path, error_cls=ScheduleError)
    cfg = getattr(config, "config", None)
    if cfg is not None:
        d = dict(cfg)
        d.setdefault("_class_name", type(config).__name__)
        return d
    raise TypeError(f"expected a transformer, a config dict or a config path, got {type(config).__name__}")


def class_name_of(obj) -> str:
    """The transformer class name of a model, a config dict or a config path."""
    import torch

    if isinstance(obj, torch.nn.Module):
        return type(obj).__name__
    cfg = load_transformer_config(obj)
    name = cfg.get("_class_name")
    if not name:
        raise UnsupportedModelError("the transformer config has no _class_name; cannot tell the architecture")
    return name


def adapter_for(obj) -> ArchitectureAdapter:
    """The adapter of a transformer model, config dict, config path, or class name.

    A diffusers transformer class with no registered adapter gets the automatic adapter
    (:func:`ecad_hub.adapters.auto.derive_adapter`, cached per class and config); anything else
    raises :class:`UnsupportedModelError`.
    """
    if isinstance(obj, str) and obj in _ADAPTERS:
        return _ADAPTERS[obj]
    if isinstance(obj, str) and obj.isidentifier() and not os.path.exists(obj):
        return get_adapter(obj)  # a class name
    name = class_name_of(obj)
    adapter = _ADAPTERS.get(name)
    if adapter is not None:
        return adapter
    from . import auto

    return auto.lookup(obj, name, supported_classes())


def architecture_of(obj) -> Architecture:
    """The :class:`Architecture` of a transformer (module, config dict or path) or a pipeline.

    Example::

        >>> architecture_of("configs/pixart_xl_2_256_transformer.json").describe()
        'PixArtTransformer2DModel(transformer_blocks[28]x{attn1,attn2,ff})'
    """
    if isinstance(obj, Architecture):
        return obj
    transformer = getattr(obj, "transformer", None)
    if transformer is not None and not isinstance(obj, Mapping):
        obj = transformer
    return adapter_for(obj).architecture(load_transformer_config(obj))
