"""The adapter contract: everything ecad-hub knows about one transformer family.

An :class:`ArchitectureAdapter` subclass is the only place a model family is named. It says

* which block groups and sub-modules the transformer has (:meth:`~ArchitectureAdapter.architecture`;
  names are the diffusers attribute names, so a schedule addresses ``transformer.<group>[i].<component>``)
  and which names other tools use for them (:attr:`~ArchitectureAdapter.component_aliases`);
* the dummy inputs of one forward for MAC profiling (:meth:`~ArchitectureAdapter.profile_inputs`)
  and how pixels map to latents (:meth:`~ArchitectureAdapter.latent_size`);
* how to assemble a fully reused block from cached outputs (:meth:`~ArchitectureAdapter.fast_path`,
  used by :mod:`ecad_hub.hooks`);
* how its diffusers pipeline is driven by a search: default resolution, classifier-free-guidance
  rule, text length seen by the transformer, prompt encoding and call arguments;
* how the ECAD authors' legacy JSON lays out its schedules (:meth:`~ArchitectureAdapter.legacy_layout`).

Every method has a default that suits a single-group, PixArt-like model; a family overrides
what differs. Register an instance with :func:`ecad_hub.adapters.register_adapter`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..schedule import Architecture


class LegacyLayout:
    """How one ECAD-reference ``cache_schedule`` maps onto an :class:`Architecture`.

    ``groups`` maps each group name to ``(legacy block keys in block order, {legacy component:
    diffusers component})``.
    """

    def __init__(self, architecture: Architecture, groups: Mapping[str, tuple[list[str], Mapping[str, str]]]):
        self.architecture = architecture
        self.groups = dict(groups)


class ArchitectureAdapter:
    """Describes one transformer class. Subclasses fill in the class attributes and methods."""

    #: diffusers class name, e.g. ``"PixArtTransformer2DModel"``
    transformer_class: str = ""
    #: model family tag used on the Hub (e.g. ``pixart``)
    family: str = ""
    #: text tokens used for MAC profiling when none are given
    default_text_len: int = 120
    #: component names other tools use -> diffusers names (SmoothCache import)
    component_aliases: Mapping[str, str] = {}
    #: profile every block (not one per distinct block structure): a forward that depends on a
    #: block's position in its list (long skips) needs the whole list
    profile_exhaustive: bool = False
    #: the published checkpoints this adapter covers (README support table), e.g. ``("PixArt-alpha", ...)``
    checkpoints: tuple[str, ...] = ()
    #: video families: pixel frames per latent frame of the family's VAE (``None``: an image model)
    temporal_compression: int | None = None
    #: video families: frames profiled when none are given
    default_num_frames: int | None = None

    # --- structure ------------------------------------------------------------------------
    def architecture(self, config: Mapping[str, Any]) -> Architecture:
        raise NotImplementedError

    def model_class(self):
        """The transformer class, to build a weightless copy from a config (MAC profiling).

        Default: the diffusers class named :attr:`transformer_class`.
        """
        import diffusers

        from ..errors import UnsupportedModelError

        cls = getattr(diffusers, self.transformer_class, None)
        if cls is None:
            raise UnsupportedModelError(f"diffusers {diffusers.__version__} has no class {self.transformer_class}; "
                                        f"{type(self).__name__} must override model_class()")
        return cls

    def profile_inputs(self, config: Mapping[str, Any], latent_height: int, latent_width: int,
                       batch_size: int, text_len: int, device, latent_frames: int | None = None) -> dict:
        """Keyword arguments for one transformer forward at the given latent size (zeros; any
        values work: only shapes matter for MACs). ``latent_frames`` is given to video families."""
        raise NotImplementedError

    def profile_forward(self, model, inputs: dict):
        """Run the MAC-profiling forward of ``model`` (on ``meta``) with ``inputs``.

        A family whose forward reads tensor values (``.item()``, data-dependent masks), which the
        ``meta`` device cannot, overrides this with a forward of the same MACs."""
        return model(**inputs, return_dict=False)

    def vae_scale_factor(self, vae_config: Mapping[str, Any] | None) -> int:
        """Pixels per latent of the family's VAE, from its config (8 when unknown)."""
        if not vae_config:
            return 8
        return 2 ** (len(vae_config.get("block_out_channels", [0] * 4)) - 1)

    def latent_frame_count(self, num_frames: int, temporal_factor: int | None = None) -> int:
        """Latent frames for ``num_frames`` pixel frames (the VAE keeps the first frame, then one latent
        frame per ``temporal_factor`` frames)."""
        factor = temporal_factor or self.temporal_compression
        if factor is None:
            raise ValueError(f"{self.transformer_class} is an image model: it takes no frame count")
        if num_frames < 1 or (num_frames - 1) % factor:
            raise ValueError(f"num_frames must be 1 + a multiple of {factor} for {self.transformer_class}, got {num_frames}")
        return (num_frames - 1) // factor + 1

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

    # --- driving the pipeline (search, quickstart, benchmarks) ------------------------------
    def default_resolution(self, config: Mapping[str, Any], vae_scale_factor: int) -> int:
        """Default image side in pixels: the transformer's ``sample_size`` in pixels (1024 if unknown)."""
        sample = config.get("sample_size")
        return int(sample) * int(vae_scale_factor) if sample else 1024

    def uses_cfg(self, guidance_scale: float) -> bool:
        """Whether a pipeline call runs the transformer on a (cond, uncond) pair (batch 2 per image)."""
        return guidance_scale > 1.0

    def pipeline_uses_cfg(self, guidance_scale: float, pipeline_config: Mapping[str, Any] | None = None) -> bool:
        """:meth:`uses_cfg` for a given pipeline (its ``model_index.json`` config: some pipelines
        switch CFG by a setting, e.g. a distilled flag). Default: :meth:`uses_cfg`."""
        return self.uses_cfg(guidance_scale)

    def text_len(self, max_sequence_length: int) -> int:
        """Text tokens the transformer sees for a pipeline's ``max_sequence_length``."""
        return int(max_sequence_length)

    def encode_prompts(self, pipe, prompts: list[str], *, guidance_scale: float, max_sequence_length: int,
                       device) -> dict:
        """Prompt embeddings for ``prompts`` as pipeline call keyword arguments (``prompt_embeds``, ...).

        Computed once per search with the pipeline's own ``encode_prompt``; every tensor has one
        row per prompt (the caller selects rows per image).
        """
        raise NotImplementedError(f"{type(self).__name__} does not say how to encode prompts for a search")

    def select_prompt_rows(self, embeds: Mapping[str, Any], index: list[int]) -> dict:
        """The rows ``index`` (one per image) of :meth:`encode_prompts`' output.

        Default: tensors along dim 0, lists item by item; a family whose embeddings keep the
        batch elsewhere (e.g. ``[layers, batch, ...]``) overrides this.
        """
        import torch

        out = {}
        for key, value in embeds.items():
            if isinstance(value, torch.Tensor):
                out[key] = value.index_select(0, torch.as_tensor(index, device=value.device))
            elif isinstance(value, (list, tuple)):
                out[key] = [value[i] for i in index]
            else:
                out[key] = value
        return out

    def call_kwargs(self, settings: Mapping[str, Any], *, prompt_embeds: bool) -> dict:
        """Extra pipeline call arguments for generation with ``settings`` (``max_sequence_length``, ...).

        ``prompt_embeds``: whether the call passes the embeddings of :meth:`encode_prompts`
        instead of prompt strings.
        """
        return {}

    def expert_switch_step(self, pipe, timesteps) -> int | None:
        """Pipelines denoising with two experts (``transformer`` then ``transformer_2``): the first
        step (index into ``timesteps``) run by the second expert; ``None`` for one transformer."""
        return None

    # --- other caches (``ecad-hub compare``): what diffusers' / cache-dit's caches need ---------
    def cache_block_groups(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Attribute names of the transformer's block lists, for caches that hook whole blocks or
        match module names (PAB, FasterCache, TaylorSeer). Default: the architecture's groups."""
        return tuple(g.name for g in self.architecture(config).groups)

    def needs_cache_context(self, pipe) -> bool:
        """Whether diffusers' caches need a cache context set around each transformer call because
        the pipeline sets none itself (a pipeline without ``CacheMixin`` support). Default: the
        pipeline's ``__call__`` never calls ``cache_context``."""
        import inspect

        try:
            source = inspect.getsource(type(pipe).__call__)
        except (OSError, TypeError):
            return True
        return "cache_context(" not in source

    def cache_timestep(self, args: tuple, kwargs: Mapping[str, Any]) -> float | None:
        """The current timestep on the 0..1000 training scale, from one transformer forward's
        arguments (PAB's / FasterCache's ``current_timestep_callback``). Default: ``timestep``."""
        import torch

        t = kwargs.get("timestep")
        if t is None:
            return None
        if isinstance(t, torch.Tensor):
            t = t.reshape(-1)[0].item() if t.numel() else None
        return None if t is None else float(t)

    def faster_cache_tensor_format(self, config: Mapping[str, Any]) -> str | None:
        """The layout of the transformer's ``hidden_states`` for diffusers' FasterCache (``"BCHW"``,
        ``"BCFHW"``, ``"BFCHW"``), or ``None`` where FasterCache does not apply (token sequences)."""
        return "BCFHW" if self.temporal_compression is not None else "BCHW"

    def faster_cache_cfg_kwargs(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Transformer forward arguments that carry the (uncond, cond) batch, which FasterCache halves
        when it skips the unconditional pass. Default: diffusers' list."""
        return ("hidden_states", "encoder_hidden_states", "timestep", "attention_mask", "encoder_attention_mask")

    def taylorseer_identifiers(self, config: Mapping[str, Any]) -> list[str]:
        """Full-match module-name patterns diffusers' TaylorSeer caches (its defaults match no
        block list of many transformers). Default: every block of every block group."""
        import re

        return [rf"{re.escape(g)}\.\d+" for g in self.cache_block_groups(config)]

    # --- legacy files -----------------------------------------------------------------------
    def legacy_layout(self, cache_schedule: Mapping[str, Any], source: str) -> LegacyLayout | None:
        """The layout of an ECAD-reference ``cache_schedule`` object written for this family.

        ``None`` when the file is not of this family's layout. Raise
        :class:`~ecad_hub.errors.LegacyFormatError` for a file of this family that is malformed.
        """
        return None


# --------------------------------------------------------------------------------------------
# Helpers for fast paths: the elementwise tail of a block whose sub-modules are all reused.
# Each fast path mirrors, operation for operation, the lines of the diffusers block's forward
# that combine sub-module outputs with the residual stream, so the result is bit-identical to
# running the block with every component returning its cached output (tested).
# --------------------------------------------------------------------------------------------

def arg(args: tuple, kwargs: dict, name: str, index: int, default=None):
    """A forward argument given by keyword or position."""
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def is_ada_zero(norm, chunks: int) -> bool:
    """An adaLN-Zero norm whose modulation is ``linear(silu(emb))`` with ``chunks`` outputs."""
    linear = getattr(norm, "linear", None)
    return (linear is not None and getattr(norm, "emb", None) is None and hasattr(norm, "silu")
            and linear.out_features % chunks == 0)


def modulation(norm, temb, chunks: int):
    return norm.linear(norm.silu(temb)).chunk(chunks, dim=1)


def positive_int(value: Any, where: str, source: str) -> int:
    """A positive integer read from a legacy file, or :class:`LegacyFormatError` naming ``where``."""
    from ..errors import LegacyFormatError

    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LegacyFormatError(f"{source}: {where}: expected a positive integer, got {value!r}", path=source)
    return value
