"""What one search is about, resolved from its :class:`~ecad_hub.search.config.SearchConfig` and
the model's configs: :class:`SearchContext` (device, model info, generation settings, metric name,
prompt set, genome, MAC profile) and the MAC-ratio objective. Resolving reads configs only, never
weights (a Ray driver plans a search without loading the model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SearchError
from .config import EMBEDDED, OperatorSettings, SearchConfig
from .genome import Genome

#: Call arguments never recorded as settings (per call, or the schedule's own step count).
NEVER_RECORDED = frozenset({"prompt", "negative_prompt", "prompt_embeds", "negative_prompt_embeds", "generator",
                            "latents", "output_type", "return_dict", "num_inference_steps", "num_images_per_prompt",
                            "callback_on_step_end", "timesteps", "sigmas"})


def _is_scalar(v: Any) -> bool:
    import math

    if isinstance(v, bool) or v is None:
        return True
    if isinstance(v, (int, float)):
        return math.isfinite(v)
    return isinstance(v, str) and len(v) <= 200 and v.isprintable()


@dataclass(frozen=True)
class SearchContext:
    """The resolved settings of one search (see :func:`resolve_context`)."""

    config: SearchConfig
    operators: OperatorSettings
    device: Any
    info: Any  # ecad_hub.search.model.ModelInfo
    settings: dict  # height, width, num_inference_steps, guidance_scale, max_sequence_length
    metric_name: str
    prompt_set: Any  # ecad_hub.search.prompts.PromptSet
    genome: Genome
    profile: Any  # ecad_hub.macs.MacProfile

    @property
    def architecture(self):
        return self.genome.architecture

    def pipeline_call(self) -> dict:
        """The pipeline call settings of the search as a user's call needs them (prompt strings, not
        embeddings): height, width, guidance scale (what the pipeline takes), and the adapter's
        call arguments (``max_sequence_length``, ``use_resolution_binning``, ...). Recorded in
        ``search.json`` and ``ecad_config.json`` (``pipeline_call``), the defaults of ECADPipeline calls."""
        s, info = self.settings, self.info
        generic = dict(height=s["height"], width=s["width"], guidance_scale=s["guidance_scale"])
        if "num_frames" in s:
            generic["num_frames"] = s["num_frames"]
        kw = {k: v for k, v in generic.items() if info.pipeline_cls() is None or info.accepts(k)}
        kw.update(info.adapter.call_kwargs(s, prompt_embeds=False))
        return {k: v for k, v in kw.items() if k not in NEVER_RECORDED and _is_scalar(v)}

    def scheduler_record(self) -> dict | None:
        """``{"class": ..., "config": {...}}`` of the scheduler searched with (``None`` if unknown)."""
        name = self.info.scheduler_class
        if not name or not str(name).isidentifier():
            return None
        config = {k: (list(v) if isinstance(v, tuple) else v)
                  for k, v in (self.info.scheduler_config or {}).items()
                  if isinstance(k, str) and k.isidentifier() and not k.startswith("_")}
        config = {k: v for k, v in config.items()
                  if _is_scalar(v) or (isinstance(v, list) and len(v) <= 4096 and all(_is_scalar(x) for x in v))}
        return {"class": str(name), "config": config}

    def mac_ratio(self, x: np.ndarray) -> tuple[float, int]:
        """(total MACs / all-compute MACs, total MACs) of a canonical vector (step 0 computes)."""
        total = 0
        for (name, _, _), view in zip(self.genome.groups, self.genome.views(np.asarray(x, dtype=bool))):
            total += int((view * self.profile.component_macs[name][None]).sum(dtype=np.int64))
        steps = self.settings["num_inference_steps"]
        total += self.profile.always_macs * steps
        return total / self.profile.all_compute_macs(steps), total


def resolve_context(config: SearchConfig, *, pipe=None, metric=None) -> SearchContext:
    """Resolve ``config``'s ``None`` fields from the model (``pipe`` when given, else the configs of
    ``config.base_model``) and profile its MACs at the searched size."""
    from ..macs import profile_macs
    from .model import default_device, info_from_pipeline, model_info
    from .prompts import resolve_prompts

    cfg = config
    if cfg.ray and pipe is not None:
        raise SearchError("pass either a loaded pipeline or --ray (Ray actors load the model from base_model)")
    device = cfg.device or (str(getattr(pipe, "_execution_device", "")) if pipe is not None else None) \
        or default_device()
    info = info_from_pipeline(pipe, cfg.base_model, cfg.revision) if pipe is not None \
        else model_info(cfg.base_model, cfg.revision)
    d = info.defaults()
    settings = dict(
        height=cfg.height or d["height"], width=cfg.width or d["width"],
        num_inference_steps=cfg.num_inference_steps or d["num_inference_steps"],
        guidance_scale=float(cfg.guidance_scale if cfg.guidance_scale is not None else d["guidance_scale"]),
        max_sequence_length=cfg.max_sequence_length or d["max_sequence_length"],
    )
    if cfg.num_frames is not None or d.get("num_frames") is not None:  # a video model
        if info.adapter.temporal_compression is None:
            raise SearchError(f"num_frames is for video models; {info.architecture.transformer_class} makes images")
        settings["num_frames"] = int(cfg.num_frames or d["num_frames"])
    metric_name = metric.name if metric is not None else \
        cfg.metric or ("embedded-reward" if cfg.base_model == EMBEDDED else "fidelity")
    prompt_set = resolve_prompts(cfg.prompts, cfg.num_prompts, embedded_model=cfg.base_model == EMBEDDED)
    genome = Genome(info.architecture, settings["num_inference_steps"])
    cfg_batch = 2 if info.uses_cfg(settings["guidance_scale"]) else 1
    frames = {"num_frames": settings["num_frames"]} if "num_frames" in settings else {}
    try:
        profile = profile_macs(info.transformer_config, settings["height"], settings["width"],
                               batch_size=cfg_batch, text_len=info.text_len(settings["max_sequence_length"]),
                               vae_scale_factor=info.vae_scale_factor, **frames)
    except ValueError as err:
        raise SearchError(f"cannot profile MACs at {settings['height']}x{settings['width']}: {err}") from None
    return SearchContext(config=cfg, operators=cfg.operator_settings(), device=device, info=info,
                         settings=settings, metric_name=metric_name, prompt_set=prompt_set, genome=genome,
                         profile=profile)
