"""Architecture adapters: one small class per diffusers transformer ecad-hub can schedule.

An adapter says which block groups and sub-modules a transformer has (the names are the
diffusers attribute names, so a schedule addresses ``transformer.<group>[i].<component>``),
builds dummy inputs for MAC profiling, and (in :mod:`ecad_hub.hooks`) assembles a block's
output from cached sub-module outputs when every component of the block is reused.

Adding an architecture is one new subclass registered with :func:`register_adapter`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

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

    def fast_path(self, block) -> Callable | None:
        """A function ``(block, cached, args, kwargs) -> output`` assembling a fully reused block.

        ``cached`` maps component names to their kept outputs. The function must return exactly
        what the block's ``forward`` would return when every component returns its cached
        output, doing only the elementwise work the output needs; it returns ``None`` to fall
        back to the block's own forward (unexpected inputs, missing cache entries). Returns
        ``None`` when the block is not of the structure the fast path was written for.
        """
        return None

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

    def fast_path(self, block):
        if (type(block).__name__ != "BasicTransformerBlock" or getattr(block, "norm_type", None) != "ada_norm_single"
                or getattr(block, "attn2", None) is None or getattr(block, "pos_embed", None) is not None):
            return None
        return _pixart_block_fast

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

    def fast_path(self, block):
        name = type(block).__name__
        if name == "FluxTransformerBlock" and _is_ada_zero(getattr(block, "norm1", None), 6) \
                and _is_ada_zero(getattr(block, "norm1_context", None), 6):
            return _flux_double_fast
        if name == "FluxSingleTransformerBlock" and _is_ada_zero(getattr(block, "norm", None), 3):
            return _flux_single_fast
        return None

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

    def fast_path(self, block):
        if type(block).__name__ != "JointTransformerBlock":
            return None
        chunks = 9 if getattr(block, "use_dual_attention", False) else 6
        if not _is_ada_zero(getattr(block, "norm1", None), chunks):
            return None
        if not block.context_pre_only and not _is_ada_zero(getattr(block, "norm1_context", None), 6):
            return None
        return _sd3_block_fast

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device):
        import torch

        return dict(
            hidden_states=torch.zeros(batch_size, config.get("in_channels", 16), latent_height, latent_width, device=device),
            encoder_hidden_states=torch.zeros(batch_size, text_len, config.get("joint_attention_dim", 4096), device=device),
            pooled_projections=torch.zeros(batch_size, config.get("pooled_projection_dim", 2048), device=device),
            timestep=torch.ones(batch_size, device=device),
        )


# --------------------------------------------------------------------------------------------
# Fast paths: the elementwise tail of a block whose sub-modules are all reused.
# Each mirrors, operation for operation, the lines of the diffusers block's forward that
# combine sub-module outputs with the residual stream, so the result is bit-identical to
# running the block with every component returning its cached output (tested).
# --------------------------------------------------------------------------------------------

def _arg(args: tuple, kwargs: dict, name: str, index: int, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _is_ada_zero(norm, chunks: int) -> bool:
    """An adaLN-Zero norm whose modulation is ``linear(silu(emb))`` with ``chunks`` outputs."""
    linear = getattr(norm, "linear", None)
    return (linear is not None and getattr(norm, "emb", None) is None and hasattr(norm, "silu")
            and linear.out_features % chunks == 0)


def _modulation(norm, temb, chunks: int):
    return norm.linear(norm.silu(temb)).chunk(chunks, dim=1)


def _pixart_block_fast(block, cached, args, kwargs):
    """``BasicTransformerBlock`` with ``norm_type="ada_norm_single"`` (PixArt)."""
    if len(cached) != 3 or (kwargs.get("cross_attention_kwargs") or {}).get("gligen") is not None:
        return None
    hidden_states = _arg(args, kwargs, "hidden_states", 0)
    timestep = _arg(args, kwargs, "timestep", 4)
    if hidden_states is None or timestep is None:
        return None
    batch_size = hidden_states.shape[0]
    _, _, gate_msa, _, _, gate_mlp = (block.scale_shift_table[None] + timestep.reshape(batch_size, 6, -1)).chunk(6, dim=1)
    attn_output = gate_msa * cached["attn1"]
    hidden_states = attn_output + hidden_states
    if hidden_states.ndim == 4:
        hidden_states = hidden_states.squeeze(1)
    hidden_states = cached["attn2"] + hidden_states
    ff_output = gate_mlp * cached["ff"]
    hidden_states = ff_output + hidden_states
    if hidden_states.ndim == 4:
        hidden_states = hidden_states.squeeze(1)
    return hidden_states


def _flux_double_fast(block, cached, args, kwargs):
    """``FluxTransformerBlock`` (FLUX double-stream block)."""
    import torch

    if len(cached) != 3:
        return None
    hidden_states = _arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = _arg(args, kwargs, "encoder_hidden_states", 1)
    temb = _arg(args, kwargs, "temb", 2)
    attention_outputs = cached["attn"]
    if hidden_states is None or encoder_hidden_states is None or temb is None or len(attention_outputs) not in (2, 3):
        return None
    _, _, gate_msa, _, _, gate_mlp = _modulation(block.norm1, temb, 6)
    _, _, c_gate_msa, _, _, c_gate_mlp = _modulation(block.norm1_context, temb, 6)
    attn_output, context_attn_output = attention_outputs[0], attention_outputs[1]
    attn_output = gate_msa.unsqueeze(1) * attn_output
    hidden_states = hidden_states + attn_output
    ff_output = gate_mlp.unsqueeze(1) * cached["ff"]
    hidden_states = hidden_states + ff_output
    if len(attention_outputs) == 3:
        hidden_states = hidden_states + attention_outputs[2]
    context_attn_output = c_gate_msa.unsqueeze(1) * context_attn_output
    encoder_hidden_states = encoder_hidden_states + context_attn_output
    encoder_hidden_states = encoder_hidden_states + c_gate_mlp.unsqueeze(1) * cached["ff_context"]
    if encoder_hidden_states.dtype == torch.float16:
        encoder_hidden_states = encoder_hidden_states.clip(-65504, 65504)
    return encoder_hidden_states, hidden_states


def _flux_single_fast(block, cached, args, kwargs):
    """``FluxSingleTransformerBlock``: only ``proj_out``'s output reaches the residual stream."""
    import torch

    if "proj_out" not in cached:
        return None
    hidden_states = _arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = _arg(args, kwargs, "encoder_hidden_states", 1)
    temb = _arg(args, kwargs, "temb", 2)
    if hidden_states is None or encoder_hidden_states is None or temb is None:
        return None
    text_seq_len = encoder_hidden_states.shape[1]
    hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
    residual = hidden_states
    _, _, gate = _modulation(block.norm, temb, 3)
    gate = gate.unsqueeze(1)
    hidden_states = gate * cached["proj_out"]
    hidden_states = residual + hidden_states
    if hidden_states.dtype == torch.float16:
        hidden_states = hidden_states.clip(-65504, 65504)
    return hidden_states[:, :text_seq_len], hidden_states[:, text_seq_len:]


def _sd3_block_fast(block, cached, args, kwargs):
    """``JointTransformerBlock`` (SD3 / SD3.5, with ``attn2`` in dual-attention layers)."""
    hidden_states = _arg(args, kwargs, "hidden_states", 0)
    encoder_hidden_states = _arg(args, kwargs, "encoder_hidden_states", 1)
    temb = _arg(args, kwargs, "temb", 2)
    needed = {"attn", "ff"} | ({"attn2"} if block.use_dual_attention else set()) | (set() if block.context_pre_only else {"ff_context"})
    if hidden_states is None or temb is None or not needed <= set(cached):
        return None
    if block.use_dual_attention:
        _, _, gate_msa, _, _, gate_mlp, _, _, gate_msa2 = _modulation(block.norm1, temb, 9)
    else:
        _, _, gate_msa, _, _, gate_mlp = _modulation(block.norm1, temb, 6)
    attention = cached["attn"]
    attn_output, context_attn_output = (attention[0], attention[1]) if isinstance(attention, tuple) else (attention, None)
    attn_output = gate_msa.unsqueeze(1) * attn_output
    hidden_states = hidden_states + attn_output
    if block.use_dual_attention:
        attn_output2 = gate_msa2.unsqueeze(1) * cached["attn2"]
        hidden_states = hidden_states + attn_output2
    ff_output = gate_mlp.unsqueeze(1) * cached["ff"]
    hidden_states = hidden_states + ff_output
    if block.context_pre_only:
        encoder_hidden_states = None
    else:
        if encoder_hidden_states is None or context_attn_output is None:
            return None
        _, _, c_gate_msa, _, _, c_gate_mlp = _modulation(block.norm1_context, temb, 6)
        context_attn_output = c_gate_msa.unsqueeze(1) * context_attn_output
        encoder_hidden_states = encoder_hidden_states + context_attn_output
        encoder_hidden_states = encoder_hidden_states + c_gate_mlp.unsqueeze(1) * cached["ff_context"]
    return encoder_hidden_states, hidden_states


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
