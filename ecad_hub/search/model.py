"""The searched model: loading the pipeline, and reading what the search needs from its configs.

:func:`model_info` reads only ``model_index.json`` and the transformer's and VAE's ``config.json``
(a few KB), so a Ray driver can profile MACs and plan a search without loading any weights.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EcadError, SearchError
from ..utils.compat import dtype_kwargs
from .config import EMBEDDED



def _embedded_defaults() -> dict:
    """Generation defaults of the embedded digits model (see :mod:`ecad_hub.embedded`)."""
    from .. import embedded as E

    return dict(height=E.IMAGE_SIZE, width=E.IMAGE_SIZE, num_inference_steps=E.NUM_INFERENCE_STEPS,
                guidance_scale=float(E.DEFAULT_GUIDANCE_SCALE), max_sequence_length=E.MAX_SEQUENCE_LENGTH)


@dataclass
class ModelInfo:
    """What a search needs to know about a pipeline, from its configs."""

    base_model: str
    revision: str | None
    pipeline_class: str
    transformer_config: dict
    vae_scale_factor: int
    scheduler_class: str | None = None
    pipeline_config: dict | None = None  # model_index.json's settings (not its components)
    scheduler_config: dict | None = None  # the scheduler's config (scheduler/scheduler_config.json)

    @property
    def adapter(self):
        """The :class:`~ecad_hub.adapters.ArchitectureAdapter` of the transformer."""
        from ..adapters import adapter_for

        return adapter_for(self.transformer_config)

    @property
    def family(self) -> str:
        return self.adapter.family

    @property
    def architecture(self):
        from ..adapters import architecture_of

        return architecture_of(self.transformer_config)

    def pipeline_cls(self):
        import diffusers

        return getattr(diffusers, self.pipeline_class, None)

    def call_default(self, name: str, fallback: Any = None) -> Any:
        """The default of a ``__call__`` argument of the pipeline class (e.g. ``max_sequence_length``)."""
        cls = self.pipeline_cls()
        if cls is None:
            return fallback
        param = inspect.signature(cls.__call__).parameters.get(name)
        if param is None or param.default is inspect.Parameter.empty or param.default is None:
            return fallback
        return param.default

    def accepts(self, name: str) -> bool:
        cls = self.pipeline_cls()
        return cls is not None and name in inspect.signature(cls.__call__).parameters

    def defaults(self) -> dict:
        """Generation defaults: height, width, num_inference_steps, guidance_scale, max_sequence_length."""
        if self.base_model == EMBEDDED:
            return _embedded_defaults()
        size = self.adapter.default_resolution(self.transformer_config, self.vae_scale_factor)
        out = dict(
            height=size, width=size,
            num_inference_steps=20,
            guidance_scale=float(self.call_default("guidance_scale", 4.5)),
            max_sequence_length=int(self.call_default("max_sequence_length", 120)),
        )
        if self.adapter.temporal_compression is not None:  # a video model
            out["num_frames"] = int(self.call_default("num_frames", self.adapter.default_num_frames))
        return out

    def uses_cfg(self, guidance_scale: float) -> bool:
        """Whether a pipeline call runs the transformer on a (cond, uncond) pair (batch 2 per image)."""
        return self.adapter.pipeline_uses_cfg(guidance_scale, self.pipeline_config)

    def text_len(self, max_sequence_length: int) -> int:
        """Text tokens the transformer sees for ``max_sequence_length`` (the adapter's rule)."""
        return self.adapter.text_len(max_sequence_length)


def embedded_path() -> Path:
    from .. import embedded

    return Path(embedded.EMBEDDED_PIPELINE_PATH)


def resolve_source(base_model: str) -> tuple[str, bool]:
    """(where to load from, is it a local folder)."""
    if base_model == EMBEDDED:
        path = embedded_path()
        if not (path / "model_index.json").is_file():
            raise SearchError(f"the embedded model's weights are missing at {path}; run `python scripts/train_embedded.py`")
        return str(path), True
    if os.path.isdir(base_model):
        return str(Path(base_model).resolve()), True
    return base_model, False


def _read_config(source: str, local: bool, filename: str, revision: str | None) -> dict:
    from ..utils.io import read_json

    if local:
        path = Path(source) / filename
    else:
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, filename, revision=revision))
        except Exception as err:  # noqa: BLE001 - one line for any hub failure
            raise SearchError(f"cannot read {filename} of {source}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    return read_json(path, error_cls=SearchError)


def _read_scheduler_config(source: str, local: bool, revision: str | None) -> dict | None:
    """``scheduler/scheduler_config.json`` (recorded with the frontier: the settings travel), or ``None``.

    Read with Python's own JSON parser: diffusers writes ``-Infinity`` for some defaults (e.g.
    ``lambda_min_clipped``), which ecad-hub's strict reader refuses; non-finite values are then
    left out of the record (the scheduler's default is the same)."""
    import json

    try:
        if local:
            path = Path(source) / "scheduler" / "scheduler_config.json"
        else:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, "scheduler_config.json", subfolder="scheduler", revision=revision))
        if not path.is_file() or path.stat().st_size > 1024 * 1024:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - optional: a search does not need it
        return None
    return doc if isinstance(doc, dict) else None


def model_info(base_model: str, revision: str | None = None) -> ModelInfo:
    """Read the pipeline class, transformer config and VAE scale factor of a model (no weights)."""
    source, local = resolve_source(base_model)
    index = _read_config(source, local, "model_index.json", revision)
    if "transformer" not in index:
        raise SearchError(f"{base_model}: the pipeline has no transformer component (ecad-hub searches diffusion transformers)")
    tcfg = _read_config(source, local, "transformer/config.json", revision)
    from ..adapters import adapter_for

    vcfg = _read_config(source, local, "vae/config.json", revision) if "vae" in index else None
    vae_sf = adapter_for(tcfg).vae_scale_factor(vcfg)
    scheduler = index.get("scheduler")
    scheduler_config = None
    if isinstance(scheduler, list):
        scheduler_config = _read_scheduler_config(source, local, revision)
    return ModelInfo(
        base_model=base_model, revision=revision, pipeline_class=str(index.get("_class_name")),
        transformer_config=tcfg, vae_scale_factor=int(vae_sf),
        scheduler_class=str(scheduler[1]) if isinstance(scheduler, list) and len(scheduler) == 2 else None,
        pipeline_config={k: v for k, v in index.items() if not k.startswith("_") and not isinstance(v, list)},
        scheduler_config=scheduler_config if isinstance(scheduler_config, dict) else None,
    )


def info_from_pipeline(pipe, base_model: str, revision: str | None = None) -> ModelInfo:
    """:class:`ModelInfo` of an already loaded pipeline."""
    from ..adapters import load_transformer_config

    from ..adapters import adapter_for

    tcfg = load_transformer_config(pipe.transformer)
    vae = getattr(pipe, "vae", None)
    return ModelInfo(
        base_model=base_model, revision=revision, pipeline_class=type(pipe).__name__,
        transformer_config=tcfg,
        vae_scale_factor=int(adapter_for(tcfg).vae_scale_factor(dict(vae.config) if vae is not None else None)),
        pipeline_config={k: v for k, v in dict(getattr(pipe, "config", {}) or {}).items()
                         if not k.startswith("_") and not isinstance(v, (list, tuple))},
        scheduler_class=type(getattr(pipe, "scheduler", None)).__name__ if getattr(pipe, "scheduler", None) is not None else None,
        scheduler_config=dict(getattr(getattr(pipe, "scheduler", None), "config", None) or {}) or None,
    )


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_pipeline(base_model: str, revision: str | None = None, *, dtype: str = "float32", device: str | None = None):
    """Load a diffusers pipeline (``"embedded"``: the packaged digits model) on ``device``."""
    from diffusers import DiffusionPipeline

    device = device or default_device()
    source, local = resolve_source(base_model)
    try:
        pipe = DiffusionPipeline.from_pretrained(source, revision=revision, local_files_only=local,
                                                 **dtype_kwargs(torch_dtype(dtype)))
    except EcadError:
        raise
    except (OSError, ValueError) as err:
        raise SearchError(f"cannot load pipeline {base_model}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
