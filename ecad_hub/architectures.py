"""Architecture adapters: one small class per diffusers transformer ecad-hub can schedule.

An adapter says which block groups and sub-modules a transformer has (the names are the
diffusers attribute names, so a schedule addresses ``transformer.<group>[i].<component>``),
builds dummy inputs for MAC profiling, and (in :mod:`ecad_hub.hooks`) assembles a block's
output from cached sub-module outputs when every component of the block is reused.

Adding an architecture is one new subclass registered with :func:`register_adapter`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from .errors import ScheduleError, UnsupportedModelError
from .schedule import Architecture, BlockGroup


class ArchitectureAdapter:
    """Describes one transformer class. Subclasses fill in the class attributes and methods."""

    #: diffusers class name, e.g. ``"PixArtTransformer2DModel"``
    transformer_class: str = ""
    #: model family tag used on the Hub (``pixart``, ``flux``, ``sd3``)
    family: str = ""
    #: text tokens used for MAC profiling when none are given
    default_text_len: int = 120
    #: component names other tools use -> diffusers names (SmoothCache import)
    component_aliases: Mapping[str, str] = {}

    def architecture(self, config: Mapping[str, Any]) -> Architecture:
        raise NotImplementedError

    def profile_inputs(self, config: Mapping[str, Any], latent_height: int, latent_width: int,
                       batch_size: int, text_len: int, device) -> dict:
        """Keyword arguments for one transformer forward at the given latent size."""
        raise NotImplementedError

    def latent_size(self, config: Mapping[str, Any], height: int, width: int, vae_scale_factor: int) -> tuple[int, int]:
        if height % vae_scale_factor or width % vae_scale_factor:
            raise ValueError(f"height and width must be multiples of the VAE scale factor {vae_scale_factor}")
        return height // vae_scale_factor, width // vae_scale_factor


class PixArtAdapter(ArchitectureAdapter):
    """PixArt-alpha and PixArt-Sigma (``PixArtTransformer2DModel``): 1 group of BasicTransformerBlocks."""

    transformer_class = "PixArtTransformer2DModel"
    family = "pixart"
    default_text_len = 120
    component_aliases = {"attn": "attn1", "self_attn": "attn1", "cross": "attn2", "cross_attn": "attn2", "mlp": "ff"}

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (BlockGroup("transformer_blocks", int(config["num_layers"]), ("attn1", "attn2", "ff")),),
        )

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device):
        import torch

        caption_channels = config.get("caption_channels") or 4096
        kw = dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 4), latent_height, latent_width, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, caption_channels, device=device),
            timestep=torch.ones(batch_size, device=device),
            added_cond_kwargs={
                "resolution": torch.ones(batch_size, 2, device=device),
                "aspect_ratio": torch.ones(batch_size, 1, device=device),
            },
        )
        return kw


class FluxAdapter(ArchitectureAdapter):
    """FLUX.1 (``FluxTransformer2DModel``): double-stream and single-stream block groups."""

    transformer_class = "FluxTransformer2DModel"
    family = "flux"
    default_text_len = 512
    component_aliases = {"full_attn": "attn", "full_ff": "ff", "full_ff_context": "ff_context",
                         "single_attn": "attn", "single_proj_mlp": "proj_mlp", "single_proj_out": "proj_out"}

    def architecture(self, config):
        return Architecture(
            self.transformer_class,
            (
                BlockGroup("transformer_blocks", int(config.get("num_layers", 19)), ("attn", "ff", "ff_context")),
                BlockGroup("single_transformer_blocks", int(config.get("num_single_layers", 38)), ("attn", "proj_mlp", "proj_out")),
            ),
        )

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        if h % 2 or w % 2:
            raise ValueError("FLUX packs 2x2 latent patches: height and width must be multiples of 2 x the VAE scale factor")
        return h, w

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device):
        import torch

        tokens = (latent_height // 2) * (latent_width // 2)
        kw = dict(
            hidden_states=torch.zeros(batch_size, tokens, config.get("in_channels", 64), device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 4096), device=device),
            pooled_projections=torch.zeros(batch_size, config.get("pooled_projection_dim", 768), device=device),
            timestep=torch.ones(batch_size, device=device),
            img_ids=torch.zeros(tokens, 3, device=device),
            txt_ids=torch.zeros(text_len, 3, device=device),
        )
        if config.get("guidance_embeds"):
            kw["guidance"] = torch.ones(batch_size, device=device)
        return kw


class SD3Adapter(ArchitectureAdapter):
    """Stable Diffusion 3 / 3.5 (``SD3Transformer2DModel``): joint blocks, ``attn2`` in dual-attention layers.

    The last block is ``context_pre_only`` and has no ``ff_context``; blocks outside
    ``dual_attention_layers`` have no ``attn2``. Those sub-modules are declared ``absent``.
    """

    transformer_class = "SD3Transformer2DModel"
    family = "sd3"
    default_text_len = 333  # 77 CLIP + 256 T5 tokens
    component_aliases = {"mlp": "ff", "self_attn": "attn"}

    def architecture(self, config):
        n = int(config.get("num_layers", 18))
        dual = sorted(int(i) for i in (config.get("dual_attention_layers") or ()))
        comps = ["attn"] + (["attn2"] if dual else []) + ["ff", "ff_context"]
        absent = {("ff_context", n - 1)}
        if dual:
            absent |= {("attn2", i) for i in range(n) if i not in dual}
        return Architecture(self.transformer_class, (BlockGroup("transformer_blocks", n, tuple(comps), frozenset(absent)),))

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device):
        import torch

        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 16), latent_height, latent_width, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 4096), device=device),
            pooled_projections=torch.zeros(batch_size, config.get("pooled_projection_dim", 2048), device=device),
            timestep=torch.ones(batch_size, device=device),
        )


_ADAPTERS: dict[str, ArchitectureAdapter] = {}


def register_adapter(adapter: ArchitectureAdapter) -> ArchitectureAdapter:
    """Register an adapter instance for its ``transformer_class``; returns it."""
    _ADAPTERS[adapter.transformer_class] = adapter
    return adapter


for _cls in (PixArtAdapter, FluxAdapter, SD3Adapter):
    register_adapter(_cls())


def supported_classes() -> list[str]:
    return sorted(_ADAPTERS)


def get_adapter(transformer_class: str) -> ArchitectureAdapter:
    try:
        return _ADAPTERS[transformer_class]
    except KeyError:
        raise UnsupportedModelError(
            f"no ecad-hub adapter for {transformer_class}; supported: {', '.join(supported_classes())}"
        ) from None


def load_transformer_config(config) -> dict:
    """A transformer config as a dict, from a dict, a ``config.json`` path/folder, or a model (its ``.config``)."""
    if isinstance(config, Mapping):
        return dict(config)
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if path.is_dir():
            path = path / "config.json"
        from ._io import read_json

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
    """The adapter of a transformer model, config dict, config path, or class name."""
    if isinstance(obj, str) and obj in _ADAPTERS:
        return _ADAPTERS[obj]
    return get_adapter(class_name_of(obj))


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
