"""The automatic adapter: an :class:`ArchitectureAdapter` derived from a diffusers transformer no hand adapter knows.

:func:`derive_adapter` reads the structure of the transformer (built weightless on the ``meta``
device from its config) and checks it on one traced dummy forward:

**Groups.** Every ``torch.nn.ModuleList`` of the transformer, at any depth, whose items are
blocks of at most three classes with at least one component candidate (below), named by its
attribute path (``single_transformer_blocks``, ``context_embedder.token_refiner.refiner_blocks``).
A ModuleList inside a block of another group is part of that block, not a group. Groups are
listed in execution order (the order in which their first block ran in the dummy forward).

**Components.** The direct children of each block that are

* attention: an instance of diffusers' ``Attention`` or ``AttentionModuleMixin``, or a module
  whose class name contains ``Attention``/``Attn``;
* feed-forward: an instance of diffusers' ``FeedForward``, a module whose class name contains
  ``FeedForward``, ``MLP``/``Mlp`` or ``FFN``/``Ffn``, or an ``nn.Sequential`` of linear layers and
  activations only (at least two linear layers, a diffusers ``GELU``/``GEGLU``/``SwiGLU``... counting
  as one, and one activation);

(class names also containing ``Pool``, ``Processor``, ``Embed``, ``Norm``, ``AdaLN``,
``Modulation``, ``Block`` or ``Proj`` are not components). A direct child that is neither (and
not a ModuleList/ModuleDict/Sequential) is a *wrapper*: its own direct children are looked at
with the same rule and named ``child.grandchild`` (HiDream-style ``block.attn1``). A component
missing in some blocks of a group (``None`` there, or never run there) is declared ``absent``.

**Verification.** One forward with torch module hooks and a dispatch mode that follows the
candidates' outputs: on the ``meta`` device (no weights); when that forward cannot run (e.g. it
calls ``.item()``), on the module given to :func:`derive_adapter` itself, on its device (with
example inputs, or when it has at most :data:`CPU_VERIFY_MAX_PARAMS` parameters), else on a CPU
copy at a tiny latent size for a model of at most that many parameters. A candidate passes when it ran only inside the forward of its
own block, at least once there (a fixed number of calls per block forward is fine: the hooks keep
one output per call), its module is not shared with any other place of the model, no operation
outside its block's forward read its output tensors or views of them (other than what the block
returned), and nothing modified them in place (a kept output would change). Every block of a
group must run exactly once per forward, block 0 first. Candidates (and groups) that do not pass
are excluded and reported with the reason; a component that exists but never ran in some blocks
is ``absent`` there.

**Inputs.** The dummy forward uses ``example_inputs`` (keyword arguments of one forward) when
given, else inputs synthesised from the forward signature and the config: the latents in turn as
image latents ``[B, C, H, W]``, video latents ``[B, C, F, H, W]`` or ``[B, F, C, H, W]``, and packed
2x2-patch tokens ``[B, N, C]``, until one layout runs; text embeddings whose width is the first
config entry of :data:`TEXT_DIM_KEYS`; timesteps, pooled projections, RoPE position ids,
guidance, class labels, SDXL-style size conditions, masks (see :func:`_value_for`). A required
argument of another name makes the synthesis fail: the derivation is then *unverified*, shown by
``ecad-hub inspect`` but refused by :meth:`AutoAdapter.architecture` (pass ``example_inputs``).
:meth:`AutoAdapter.profile_inputs` returns the inputs found (zero-filled floats; masks of ones and
zero ids kept) rebuilt at the requested latent size. Example inputs are rebuilt the same way, key
by key, when the synthesised value of that key has the example's shape; other keys are kept as
given, which is refused (``ValueError``) when a kept tensor has a dimension equal to a size that
changes (the rescaled inputs would be inconsistent). Example inputs whose latents are of none of
the layouts above are not rescaled at all: returned as given, with a warning (MACs are then those
of the example's size). Video layouts assume a VAE of 4x temporal compression and 49 frames by
default (:attr:`AutoAdapter.temporal_compression`, ``default_num_frames``); the default text
length is the config's fixed text length (:data:`TEXT_LEN_KEYS`), else 256. Prompt encoding for
a search is not derived (:meth:`AutoAdapter.encode_prompts` raises ``NotImplementedError``).

Derivations are cached per transformer class and config (:func:`derive_adapter`); applying or
profiling through a derived adapter warns once with what was derived.
"""

from __future__ import annotations

import inspect as _inspect
import json
import os
import re
import warnings
import weakref
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import UnsupportedModelError
from ..schedule import Architecture, BlockGroup
from .base import ArchitectureAdapter

__all__ = ["AutoAdapter", "AutoAdapterWarning", "Derivation", "Exclusion", "derive_adapter", "is_diffusers_transformer",
           "component_kind", "clear_cache", "block_ranges", "CPU_VERIFY_MAX_PARAMS", "TEXT_DIM_KEYS", "TEXT_LEN_KEYS"]

#: the largest model (parameters) verified on the CPU when its forward cannot run on ``meta``
CPU_VERIFY_MAX_PARAMS = 50_000_000
#: most groups a schedule may have (schema v1)
MAX_GROUPS = 8
#: config entries giving the width of the text embeddings, in the order they are tried
TEXT_DIM_KEYS = ("joint_attention_dim", "caption_channels", "text_embed_dim", "text_dim", "text_hidden_dim",
                 "text_states_dim", "context_in_dim", "cross_attention_input_dim", "cap_feat_dim", "caption_dim",
                 "context_dim", "in_text_dim", "encoder_hidden_dim", "text_in_dim", "txt_in_dim", "text_hidden_size",
                 "dit_text_dim", "cross_attention_dim")
#: config entries giving the (fixed) text length a model expects, for the dummy forward and MAC profiles
TEXT_LEN_KEYS = ("max_text_seq_length", "max_text_len", "text_len", "max_sequence_length", "text_length")
#: config entries giving the width of pooled text projections
POOLED_DIM_KEYS = ("pooled_projection_dim", "pooled_embed_dim", "text_pooled_dim", "pooled_dim", "in_text_dim2")
#: config entries giving the latent channels
CHANNEL_KEYS = ("in_channels", "in_visual_dim", "in_dim", "in_chans", "latent_channels", "num_channels_latents")

_LATENT_NAMES = ("hidden_states", "x", "sample", "latents", "img")
_TEXT_NAMES = ("encoder_hidden_states", "context", "cap_feats", "prompt_embeds", "text_states")
_TIMESTEP_NAMES = ("timestep", "timesteps", "t", "time", "sigma", "sigmas")
_POOLED_NAMES = ("pooled_projections", "pooled_prompt_embeds", "pooled_text_embeds")
_MASK_NAMES = ("encoder_attention_mask", "prompt_attention_mask", "encoder_hidden_states_mask", "encoder_mask",
               "text_mask", "txt_mask", "cap_mask", "attention_mask")
_SIZE_COND_NAMES = ("original_size", "target_size", "crop_coords")
#: arguments never synthesised (they have defaults and only tune the forward)
_SKIPPED = ("return_dict", "attention_kwargs", "joint_attention_kwargs", "cross_attention_kwargs", "added_cond_kwargs")

#: latent layouts, in the order they are tried
LAYOUTS = {
    "image": "image latents [B, C, H, W]",
    "video": "video latents [B, C, F, H, W]",
    "video-fc": "video latents [B, F, C, H, W]",
    "tokens": "packed 2x2-patch tokens [B, H/2*W/2, C]",
}
_TRACE_BATCH, _TRACE_TEXT = 2, 8

_ATTENTION_NAME = re.compile(r"Attention|Attn")
_FF_NAME = re.compile(r"FeedForward|MLP|Mlp|FFN|Ffn")
_NOT_COMPONENT = re.compile(r"Pool|Processor|Embed|Norm|AdaLN|Modulation|Block|Proj")
_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class AutoAdapterWarning(UserWarning):
    """Issued once per transformer class and config when a derived adapter is first used."""


@dataclass(frozen=True)
class Exclusion:
    """A candidate group or component that did not pass (``path``: ``group`` or ``group.*.component``)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class _Recipe:
    """How the dummy inputs of one forward are built: a latent layout and one rule per argument."""

    layout: str
    keys: tuple[str, ...]  # synthesised arguments, rebuilt at any size
    fixed: dict = field(default_factory=dict)  # example inputs kept as given (zero-filled floats)
    sizes: dict = field(default_factory=dict)  # B, T, H, W, F the dummy forward ran at
    source: str = "synthesised"  # or "example"


@dataclass
class Derivation:
    """What :func:`derive_adapter` found for one transformer class and config."""

    transformer_class: str
    architecture: Architecture | None  # None: no group (see `problem`)
    excluded: tuple[Exclusion, ...] = ()
    verified: bool = False
    device: str | None = None  # where the dummy forward ran ("meta" or "cpu")
    problem: str | None = None  # why it is not verified / has no group
    input_problem: str | None = None  # why no inputs could be synthesised
    recipe: _Recipe | None = None
    input_shapes: dict = field(default_factory=dict)  # argument -> shape (or repr) of the dummy forward
    kinds: dict = field(default_factory=dict)  # "group.*.component" -> "attention" | "feed-forward"
    config: dict = field(default_factory=dict, repr=False)  # the config with the class defaults filled in

    @property
    def usable(self) -> bool:
        return self.verified and self.architecture is not None and bool(self.architecture.groups)

    @property
    def layout(self) -> str | None:
        return self.recipe.layout if self.recipe is not None else None

    def describe(self) -> str:
        """One line: groups x components, absent entries, exclusions."""
        if self.architecture is None:
            return f"{self.transformer_class}: nothing derived ({self.problem})"
        parts = []
        for g in self.architecture.groups:
            part = f"{g.name}[{g.num_blocks}]x{{{','.join(g.components)}}}"
            if g.absent:
                part += f" (absent: {_absent_text(g)})"
            parts.append(part)
        text = "groups " + "; ".join(parts)
        text += "; excluded " + ("; ".join(str(e) for e in self.excluded) if self.excluded else "none")
        if not self.verified:
            text += f"; NOT verified: {self.problem}"
        return text

    def to_dict(self) -> dict:
        return {
            "transformer_class": self.transformer_class,
            "architecture": self.architecture.to_dict() if self.architecture is not None else None,
            "component_kinds": dict(self.kinds),
            "excluded": [{"path": e.path, "reason": e.reason} for e in self.excluded],
            "verified": self.verified,
            "verified_on": self.device,
            "problem": self.problem,
            "inputs": {
                "source": self.recipe.source if self.recipe is not None else None,
                "layout": LAYOUTS.get(self.layout) if self.layout else None,
                "shapes": dict(self.input_shapes),
                "problem": self.input_problem,
            },
        }


def _absent_text(group: BlockGroup) -> str:
    by_comp = defaultdict(list)
    for comp, b in sorted(group.absent):
        by_comp[comp].append(b)
    return ", ".join(f"{c} in block{'s' if len(bs) > 1 else ''} {block_ranges(bs)}" for c, bs in by_comp.items())


def block_ranges(values: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    out, start, prev = [], None, None
    for v in sorted(values):
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = v
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ",".join(out)


# --------------------------------------------------------------------------------------------
# what is a diffusers transformer, a block, a component
# --------------------------------------------------------------------------------------------

def is_diffusers_transformer(cls) -> bool:
    """A diffusers model class defined in (or derived from a class of) ``diffusers.models.transformers``."""
    try:
        from diffusers.models.modeling_utils import ModelMixin
    except ImportError:  # pragma: no cover
        return False
    return (isinstance(cls, type) and issubclass(cls, ModelMixin)
            and any((getattr(c, "__module__", "") or "").startswith("diffusers.models.transformers.")
                    for c in cls.__mro__))


def _activation_classes():
    import torch.nn as nn
    from diffusers.models import activations as act

    with_linear = tuple(getattr(act, n) for n in ("GELU", "GEGLU", "ApproximateGELU", "SwiGLU", "LinearActivation")
                        if hasattr(act, n))
    plain = (nn.GELU, nn.SiLU, nn.ReLU, nn.Tanh, nn.Mish, nn.LeakyReLU, nn.Sigmoid)
    extra = tuple(getattr(act, n) for n in ("FP32SiLU",) if hasattr(act, n))
    return with_linear, plain + extra


def _is_mlp_stack(seq) -> bool:
    import torch.nn as nn

    with_linear, plain = _activation_classes()
    linears = acts = 0
    for m in seq.children():
        if isinstance(m, nn.Linear):
            linears += 1
        elif isinstance(m, with_linear):
            linears += 1
            acts += 1
        elif isinstance(m, plain):
            acts += 1
        elif not isinstance(m, (nn.Dropout, nn.Identity)):
            return False
    return linears >= 2 and acts >= 1


def component_kind(module) -> str | None:
    """``"attention"``, ``"feed-forward"`` or ``None``: the component rule of this module (see the module docs)."""
    import torch.nn as nn
    from diffusers.models.attention import AttentionModuleMixin, FeedForward
    from diffusers.models.attention_processor import Attention

    if isinstance(module, (Attention, AttentionModuleMixin)):
        return "attention"
    if isinstance(module, FeedForward):
        return "feed-forward"
    name = type(module).__name__
    if not _NOT_COMPONENT.search(name):
        if _ATTENTION_NAME.search(name):
            return "attention"
        if _FF_NAME.search(name):
            return "feed-forward"
    if type(module) is nn.Sequential and _is_mlp_stack(module):
        return "feed-forward"
    return None


def _block_components(block) -> dict[str, tuple[str, Any]]:
    """Component name -> (kind, module) of one block: direct children, or children of a wrapper child."""
    import torch.nn as nn

    out = {}
    for name, child in block.named_children():
        kind = component_kind(child)
        if kind is not None:
            out[name] = (kind, child)
            continue
        if isinstance(child, (nn.ModuleList, nn.ModuleDict, nn.Sequential, nn.ParameterList, nn.ParameterDict)):
            continue
        for sub, grandchild in child.named_children():
            kind = component_kind(grandchild)
            if kind is not None:
                out[f"{name}.{sub}"] = (kind, grandchild)
    return out


def _addressable(path: str, max_segments: int) -> bool:
    parts = path.split(".")
    return len(parts) <= max_segments and all(_SEGMENT.fullmatch(p) for p in parts)


@dataclass
class _Candidate:
    name: str
    blocks: list  # modules
    components: list[str]  # in order of first appearance
    kinds: dict  # component -> kind
    present: dict  # component -> set of block indices having it
    modules: dict  # (block, component) -> module


def _find_candidates(model) -> tuple[list[_Candidate], list[Exclusion]]:
    """Candidate groups (registration order) and the ModuleLists of blocks that cannot be groups."""
    import torch.nn as nn

    containers = (nn.ModuleList, nn.ModuleDict, nn.Sequential)
    candidates, excluded, taken = [], [], []
    for name, module in model.named_modules():
        if not name or type(module) is not nn.ModuleList or any(name.startswith(t + ".") for t in taken):
            continue
        items = list(module)
        if not items or any(isinstance(i, containers) for i in items):
            continue
        per_block = [_block_components(b) for b in items]
        if not any(per_block):
            continue
        if len({type(i) for i in items}) > 3:
            excluded.append(Exclusion(name, f"its {len(items)} items are of {len({type(i) for i in items})} classes, "
                                            "not repeated blocks"))
            continue
        taken.append(name)
        if not _addressable(name, 4):
            excluded.append(Exclusion(name, "its path cannot name a schedule group (a list inside a list?)"))
            continue
        components, kinds, present, modules = [], {}, defaultdict(set), {}
        for b, comps in enumerate(per_block):
            for comp, (kind, mod) in comps.items():
                if comp not in kinds:
                    components.append(comp)
                    kinds[comp] = kind
                present[comp].add(b)
                modules[(b, comp)] = mod
        candidates.append(_Candidate(name, items, components, kinds, present, modules))
    return candidates, excluded


# --------------------------------------------------------------------------------------------
# the traced dummy forward
# --------------------------------------------------------------------------------------------

def _leaves(obj, out=None) -> list:
    """Tensors in nested tuples/lists/dicts/dataclass-like outputs."""
    import torch

    if out is None:
        out = []
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _leaves(o, out)
    elif isinstance(obj, Mapping):
        for o in obj.values():
            _leaves(o, out)
    elif hasattr(obj, "__dataclass_fields__"):
        for f in obj.__dataclass_fields__:
            _leaves(getattr(obj, f, None), out)
    return out


def _make_tracer():
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Tracer(TorchDispatchMode):
        """Counts candidate calls per block forward, and follows each candidate's output tensors (and
        their views) through the forward: a read by an operation outside the forward of the
        candidate's block, other than of what the block returned, is a leak; any in-place write to
        them (which would change a cached output) is a mutation."""

        def __init__(self):
            super().__init__()
            self.active: list[tuple[int, int]] = []
            self.seq = 0
            self.first_run: dict = {}
            self.block_runs: Counter = Counter()
            self.current: dict = {}
            self.calls: dict = defaultdict(list)  # (g, b, comp) -> calls in each forward of block (g, b)
            self.outside: set = set()
            self.leaks: set = set()
            self.mutated: set = set()
            self.taint: dict = {}  # id(tensor) -> [weak reference, origins, returned by its block]
            self.handles: list = []

        def install(self, candidates):
            for gi, cand in enumerate(candidates):
                for bi, block in enumerate(cand.blocks):
                    comps = [c for c in cand.components if bi in cand.present[c]]
                    self.handles.append(block.register_forward_pre_hook(self._block_pre(gi, bi, comps)))
                    self.handles.append(block.register_forward_hook(self._block_post(gi, bi, comps), always_call=True))
                    for comp in comps:
                        mod = cand.modules[(bi, comp)]
                        key = (gi, bi, comp)
                        self.handles.append(mod.register_forward_pre_hook(self._comp_pre(key)))
                        self.handles.append(mod.register_forward_hook(self._comp_post(key)))

        def remove(self):
            for h in self.handles:
                h.remove()
            self.handles.clear()
            self.taint.clear()

        def _block_pre(self, gi, bi, comps):
            def pre(module, args):
                self.active.append((gi, bi))
                self.block_runs[(gi, bi)] += 1
                self.first_run.setdefault((gi, bi), self.seq)
                self.seq += 1
                for c in comps:
                    self.current[(gi, bi, c)] = 0
            return pre

        def _block_post(self, gi, bi, comps):
            def post(module, args, output):
                if (gi, bi) in self.active:
                    del self.active[len(self.active) - 1 - self.active[::-1].index((gi, bi))]
                for c in comps:
                    self.calls[(gi, bi, c)].append(self.current.get((gi, bi, c), 0))
                for t in _leaves(output):  # what the block returns may be read by anyone
                    entry = self.taint.get(id(t))
                    if entry is not None:
                        entry[2] = True
            return post

        def _comp_pre(self, key):
            def pre(module, args):
                if (key[0], key[1]) in self.active:
                    self.current[key] = self.current.get(key, 0) + 1
                else:
                    self.outside.add(key)
            return pre

        def _mark(self, t, origins, returned: bool):
            entry = self.taint.get(id(t))
            if entry is not None:
                entry[1].update(origins)
                return
            key = id(t)
            # a weak reference: followed tensors are not kept alive (a real forward on a GPU keeps its memory);
            # the entry goes when the tensor does, before its id can be reused
            ref = weakref.ref(t, lambda _, k=key, taint=self.taint: taint.pop(k, None))
            self.taint[key] = [ref, set(origins), returned]

        def _comp_post(self, key):
            def post(module, args, output):
                for t in _leaves(output):
                    self._mark(t, {key}, False)
            return post

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            if not self.taint:
                return out
            schema = getattr(func, "_schema", None)
            written = set()
            if schema is not None:
                for i, a in enumerate(schema.arguments):
                    if a.alias_info is not None and a.alias_info.is_write:
                        value = kwargs.get(a.name, args[i] if i < len(args) else None)
                        written.update(id(t) for t in _leaves(value))
            found = [(id(t), self.taint[id(t)]) for t in _leaves((args, kwargs)) if id(t) in self.taint]
            if not found:
                return out
            found_ids = [i for i, _ in found]
            found = [e for _, e in found]
            active = set(self.active)
            for i, (_, origins, returned) in zip(found_ids, found):
                if i in written:
                    self.mutated.update(origins)
                elif not returned:
                    self.leaks.update(k for k in origins if (k[0], k[1]) not in active)
            if schema is not None and any(r.alias_info is not None for r in schema.returns):
                origins = set().union(*(e[1] for e in found))  # a view of a candidate's output
                returned = all(e[2] for e in found)
                for t in _leaves(out):
                    self._mark(t, origins, returned)
            return out

    return _Tracer()


def _run_traced(model, candidates, inputs):
    """One traced forward; returns the tracer (raises what the forward raises)."""
    import torch

    tracer = _make_tracer()
    tracer.install(candidates)
    try:
        with torch.no_grad(), tracer:
            model(**inputs, return_dict=False)
    finally:
        tracer.remove()
    return tracer


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------

def _first_int(config, keys, default=None):
    for k in keys:
        v = config.get(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            return v
        if isinstance(v, (list, tuple)) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            return v[0]
    return default


def _patch_sizes(config) -> tuple[int, int]:
    """(spatial, temporal) patch size of the config (1 when unknown)."""
    p = config.get("patch_size")
    if isinstance(p, (list, tuple)) and p:
        spatial = int(p[-1])
        temporal = int(p[0]) if len(p) == 3 else 1
    else:
        spatial = int(p) if isinstance(p, int) and p > 0 else 1
        temporal = 1
    pt = config.get("patch_size_t")
    if isinstance(pt, int) and pt > 0:
        temporal = pt
    return spatial, temporal


def _inner_dim(config) -> int | None:
    heads, dim = config.get("num_attention_heads"), config.get("attention_head_dim")
    if isinstance(heads, int) and isinstance(dim, int):
        return heads * dim
    return _first_int(config, ("hidden_size", "inner_dim", "model_dim", "dim"))


def _channels(config) -> int:
    return _first_int(config, CHANNEL_KEYS, 16)


def _signature(model_cls):
    """The named forward parameters: of the class, or of the first base class naming them (a subclass
    overriding ``forward(*args, **kwargs)`` to wrap its parent's)."""
    for klass in model_cls.__mro__:
        forward = vars(klass).get("forward")
        if forward is None:
            continue
        params = list(_inspect.signature(forward).parameters.values())[1:]
        named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if named:
            return named
    return []


class _CannotSynthesise(Exception):
    pass


def _value_for(name: str, required: bool, ctx: dict):
    """The synthesised value of forward argument ``name`` (``_OMIT``: leave its default)."""
    import torch

    cfg, B, T, H, W, F, dev = (ctx[k] for k in ("config", "B", "T", "H", "W", "F", "device"))
    layout = ctx["layout"]
    p, _ = _patch_sizes(cfg)
    axes = cfg.get("axes_dims_rope") or cfg.get("axes_dim") or cfg.get("axes_dims")
    n_axes = len(axes) if isinstance(axes, (list, tuple)) and axes else 3
    if name in _LATENT_NAMES:
        C = _channels(cfg)
        if layout == "image":
            return torch.zeros(B, C, H, W, device=dev)
        if layout == "video":
            return torch.zeros(B, C, F, H, W, device=dev)
        if layout == "video-fc":
            return torch.zeros(B, F, C, H, W, device=dev)
        return torch.zeros(B, (H // 2) * (W // 2), C, device=dev)
    if name in _TEXT_NAMES:
        dim = _first_int(cfg, TEXT_DIM_KEYS) or _inner_dim(cfg)
        if dim is None:
            raise _CannotSynthesise(f"`{name}`: no text width in the config (tried {', '.join(TEXT_DIM_KEYS[:5])}, ...)")
        return torch.zeros(B, T, dim, device=dev)
    if name in ("encoder_hidden_states_t5", "encoder_hidden_states_2"):
        dim = _first_int(cfg, ("text_embed_dim_t5", "text_states_dim_2", "cross_attention_dim_t5"))
        if dim is None:
            if required:
                raise _CannotSynthesise(f"`{name}`: no width for a second text encoder in the config")
            return _OMIT
        return torch.zeros(B, T, dim, device=dev)
    if name in _TIMESTEP_NAMES:
        return torch.ones(B, device=dev)
    if name in _POOLED_NAMES:
        dim = _first_int(cfg, POOLED_DIM_KEYS)
        if dim is None:
            if required:
                raise _CannotSynthesise(f"`{name}`: no pooled width in the config (tried {', '.join(POOLED_DIM_KEYS)})")
            return _OMIT
        return torch.zeros(B, dim, device=dev)
    if name == "img_ids":
        tokens = (H // 2) * (W // 2) if layout == "tokens" else (H // p) * (W // p)
        return torch.zeros(tokens, n_axes, device=dev)
    if name == "txt_ids":
        return torch.zeros(T, n_axes, device=dev)
    if name == "guidance":
        if required or cfg.get("guidance_embeds"):
            return torch.ones(B, device=dev)
        return _OMIT
    if name in ("class_labels", "y"):
        if required or cfg.get("num_embeds_ada_norm") or cfg.get("num_classes"):
            return torch.zeros(B, dtype=torch.long, device=dev)
        return _OMIT
    if name in _SIZE_COND_NAMES:
        if not required:
            return _OMIT
        if name == "crop_coords":
            return torch.zeros(B, 2, device=dev)
        return torch.tensor([[H * 8.0, W * 8.0]] * B, device=dev)
    if name in _MASK_NAMES:
        if not required:
            return _OMIT
        return torch.ones(B, T, dtype=ctx.get("mask_dtype", torch.long), device=dev)
    if name in ("num_frames", "frames"):
        return F if required else _OMIT
    if name in ("height", "width"):
        return (H if name == "height" else W) if required else _OMIT
    if name == "img_shapes":
        return [[(1, H // 2, W // 2)]] * B
    if name in ("txt_seq_lens", "text_lens"):
        return [T] * B
    if required:
        raise _CannotSynthesise(f"required argument `{name}`")
    return _OMIT


_OMIT = object()


def _build_inputs(model_cls, config, layout, B, T, H, W, F, device, only=None) -> dict:
    """Synthesised forward kwargs (``only``: rebuild just these keys)."""
    import torch

    ctx = dict(config=config, layout=layout, B=B, T=T, H=H, W=W, F=F, device=device, mask_dtype=torch.long)
    out = {}
    for param in _signature(model_cls):
        name = param.name
        if name in _SKIPPED or (only is not None and name not in only):
            continue
        value = _value_for(name, param.default is param.empty, ctx)
        if value is not _OMIT:
            out[name] = value
    return out


def _trace_sizes(config, layout) -> dict:
    p, pt = _patch_sizes(config)
    C = _channels(config)
    if layout == "tokens":  # avoid a token count equal to the channels (a wrong layout could then run)
        side = 16 if C != 64 else 20
    else:
        side = 8 * p if 8 * p != C else 10 * p
    F = 2 * pt if pt > 1 else 3
    if F == C:
        F += pt
    T = _first_int(config, TEXT_LEN_KEYS, _TRACE_TEXT)  # a model with text positions of a fixed length
    return dict(B=_TRACE_BATCH, T=T if 0 < T <= 1024 else _TRACE_TEXT, H=side, W=side, F=F)


def _shape_of(value):
    import torch

    if isinstance(value, torch.Tensor):
        return list(value.shape)
    if isinstance(value, (list, tuple)) and len(value) <= 8:
        return [_shape_of(v) for v in value]
    return repr(value) if len(repr(value)) <= 60 else type(value).__name__


def _to_device(value, device):
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return type(value)(_to_device(v, device) for v in value)
    return value


def _zero_filled(value, device):
    """Floats zeroed, integer/boolean tensors (masks, ids) kept; on ``device``."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point or value.dtype.is_complex:
            return torch.zeros(value.shape, dtype=value.dtype, device=device)
        return value.to(device) if value.device.type != "meta" or str(device) == "meta" else \
            torch.ones(value.shape, dtype=value.dtype, device=device)
    if isinstance(value, dict):
        return {k: _zero_filled(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return type(value)(_zero_filled(v, device) for v in value)
    return value


def _example_recipe(model_cls, config, example: Mapping) -> _Recipe:
    """Which example inputs can be rebuilt at another size (their synthesised value has their shape)."""
    import torch

    hidden = next((example[k] for k in _LATENT_NAMES if isinstance(example.get(k), torch.Tensor)), None)
    text = next((example[k] for k in _TEXT_NAMES if isinstance(example.get(k), torch.Tensor)), None)
    C = _channels(config)
    layout, sizes = None, {}
    if hidden is not None:
        shape = list(hidden.shape)
        T = int(text.shape[1]) if text is not None and text.ndim == 3 else _TRACE_TEXT
        if len(shape) == 4 and shape[1] == C:
            layout, sizes = "image", dict(B=shape[0], T=T, H=shape[2], W=shape[3], F=1)
        elif len(shape) == 5 and shape[1] == C:
            layout, sizes = "video", dict(B=shape[0], T=T, F=shape[2], H=shape[3], W=shape[4])
        elif len(shape) == 5 and shape[2] == C:
            layout, sizes = "video-fc", dict(B=shape[0], T=T, F=shape[1], H=shape[3], W=shape[4])
        elif len(shape) == 3 and shape[2] == C:
            n = shape[1]
            side = int(round(n ** 0.5))
            if side * side == n:
                layout, sizes = "tokens", dict(B=shape[0], T=T, H=2 * side, W=2 * side, F=1)
    keys, fixed = [], {}
    if layout is not None:
        try:
            synth = _build_inputs(model_cls, config, layout, device="meta", **sizes)
        except _CannotSynthesise:
            synth = {}
            for k in example:
                try:
                    synth.update(_build_inputs(model_cls, config, layout, device="meta", only=(k,), **sizes))
                except _CannotSynthesise:
                    pass
        for k, v in example.items():
            s = synth.get(k)
            if (isinstance(v, torch.Tensor) and isinstance(s, torch.Tensor) and list(v.shape) == list(s.shape)
                    and v.dtype.is_floating_point == s.dtype.is_floating_point):
                keys.append(k)
            elif not isinstance(v, torch.Tensor) and s is not None and not isinstance(s, torch.Tensor) and v == s:
                keys.append(k)
            else:
                fixed[k] = v
    else:
        fixed = dict(example)
    return _Recipe(layout or "unknown", tuple(keys), fixed, sizes, source="example")


# --------------------------------------------------------------------------------------------
# deriving
# --------------------------------------------------------------------------------------------

_DERIVATIONS: dict[tuple, Derivation] = {}
_CLASS_ADAPTERS: dict[type, "AutoAdapter"] = {}
_WARNED: set = set()


def clear_cache() -> None:
    """Forget every derivation (and which were warned about)."""
    _DERIVATIONS.clear()
    _CLASS_ADAPTERS.clear()
    _WARNED.clear()


def _config_key(config: Mapping) -> str:
    clean = {k: v for k, v in config.items() if not str(k).startswith("_")}
    return json.dumps(clean, sort_keys=True, default=repr)


def _clean(config: Mapping) -> dict:
    return {k: v for k, v in config.items() if not str(k).startswith("_")}


def _instantiate(model_cls, config, device: str):
    import torch

    from diffusers.utils import logging as dlogging

    level = dlogging.get_verbosity()
    dlogging.set_verbosity_error()  # "config attributes ... were passed but are not expected"
    try:
        with torch.device(device):
            model = model_cls.from_config(_clean(config))
    finally:
        dlogging.set_verbosity(level)
    return model.eval()


def _try_forwards(model_cls, model, config, candidates, device, example) -> tuple:
    """(tracer, recipe, inputs) of the first dummy forward that runs, or (None, None, problem)."""
    errors = []
    if example is not None:
        inputs = _to_device(dict(example), device)
        try:
            tracer = _run_traced(model, candidates, inputs)
        except Exception as e:  # noqa: BLE001 - any failure of a foreign forward
            return None, None, f"the example inputs do not run on {device}: {type(e).__name__}: {_short(e)}"
        return tracer, _example_recipe(model_cls, config, example), inputs
    for layout in LAYOUTS:
        sizes = _trace_sizes(config, layout)
        try:
            inputs = _build_inputs(model_cls, config, layout, device=device, **sizes)
        except _CannotSynthesise as e:
            return None, None, f"cannot synthesise inputs: {e}"
        try:
            tracer = _run_traced(model, candidates, inputs)
        except Exception as e:  # noqa: BLE001
            errors.append(f"{layout}: {type(e).__name__}: {_short(e)}")
            continue
        return tracer, _Recipe(layout, tuple(inputs), {}, sizes), inputs
    return None, None, f"no latent layout ran on {device} ({'; '.join(errors)})"


def _short(e: Exception, n: int = 160) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _decide(name: str, model, candidates, tracer) -> tuple[list[BlockGroup], list[Exclusion], dict]:
    """Groups (execution order) and exclusions from one traced forward."""
    paths = defaultdict(list)
    for path, mod in model.named_modules(remove_duplicate=False):
        paths[id(mod)].append(path)
    groups, excluded, kinds, order = [], [], {}, {}
    for gi, cand in enumerate(candidates):
        runs = [tracer.block_runs.get((gi, b), 0) for b in range(len(cand.blocks))]
        if any(r != 1 for r in runs):
            bad = [b for b, r in enumerate(runs) if r != 1]
            what = "never ran" if all(r == 0 for r in runs) else \
                f"block{'s' if len(bad) > 1 else ''} {block_ranges(bad)} ran {sorted({runs[b] for b in bad})} times, not once per forward"
            excluded.append(Exclusion(cand.name, what if what != "never ran" else "its blocks never ran in the dummy forward"))
            continue
        keep, absent = [], set()
        for comp in cand.components:
            label = f"{cand.name}.*.{comp}"
            reason, missing = None, set(range(len(cand.blocks))) - cand.present[comp]
            for b in sorted(cand.present[comp]):
                key = (gi, b, comp)
                mod = cand.modules[(b, comp)]
                owner = f"{cand.name}.{b}."
                foreign = [p for p in paths[id(mod)] if not p.startswith(owner)]
                if foreign:
                    reason = f"block {b}'s {comp} is shared with {foreign[0]}"
                elif key in tracer.outside:
                    reason = f"it runs outside its block's forward (block {b})"
                elif key in tracer.mutated:
                    reason = f"its output is modified in place (block {b}): a kept output would change"
                elif key in tracer.leaks:
                    reason = f"its output is used outside its block (block {b})"
                if reason:
                    break
                calls = tracer.calls.get(key, [])
                if not calls or calls[0] == 0:
                    missing.add(b)
            if reason is None and len(missing) == len(cand.blocks):
                reason = "it never ran in the dummy forward"
            if reason is not None:
                excluded.append(Exclusion(label, reason))
                continue
            keep.append(comp)
            kinds[label] = cand.kinds[comp]
            absent |= {(comp, b) for b in missing}
        if not keep:
            excluded.append(Exclusion(cand.name, "none of its components passed"))
            continue
        first = min(tracer.first_run[(gi, b)] for b in range(len(cand.blocks)))
        if tracer.first_run[(gi, 0)] != first:
            excluded.append(Exclusion(cand.name, "its blocks do not run in index order (block 0 is not the first)"))
            continue
        order[cand.name] = first
        groups.append(BlockGroup(cand.name, len(cand.blocks), tuple(keep), frozenset(absent)))
    groups.sort(key=lambda g: order[g.name])
    for g in groups[MAX_GROUPS:]:
        excluded.append(Exclusion(g.name, f"a schedule has at most {MAX_GROUPS} groups"))
    return groups[:MAX_GROUPS], excluded, kinds


def _structural(candidates) -> tuple[list[BlockGroup], dict]:
    """Groups from the structure alone (registration order), for an unverified derivation."""
    groups, kinds = [], {}
    for cand in candidates:
        absent = frozenset((c, b) for c in cand.components for b in range(len(cand.blocks)) if b not in cand.present[c])
        groups.append(BlockGroup(cand.name, len(cand.blocks), tuple(cand.components), absent))
        kinds.update({f"{cand.name}.*.{c}": k for c, k in cand.kinds.items()})
    return groups[:MAX_GROUPS], kinds


def _derive(model_cls, config: Mapping, example_inputs=None, module=None) -> Derivation:
    """Structure and verification, trying in turn: a weightless copy on ``meta``; then the given module
    itself (on its device: with example inputs, or when it is small); then a CPU copy of a small model."""
    name = model_cls.__name__
    attempts, problems = [], []
    try:
        attempts.append((_instantiate(model_cls, config, "meta"), "meta"))
    except Exception as e:  # noqa: BLE001 - any failure of a foreign constructor
        problems.append(f"cannot build {name} from its config on the meta device: {type(e).__name__}: {_short(e)}")
    n_params = None
    if module is not None:
        n_params = sum(p.numel() for p in module.parameters())
        if example_inputs is not None or n_params <= CPU_VERIFY_MAX_PARAMS:
            attempts.append((module, _device_of(module)))
    elif attempts:
        n_params = sum(p.numel() for p in attempts[0][0].parameters())
        if n_params <= CPU_VERIFY_MAX_PARAMS:
            attempts.append((None, "cpu"))  # built only if the meta forward fails
    if not attempts:
        return Derivation(name, None, problem=problems[0])
    first = attempts[0][0]
    config = {**dict(getattr(first, "config", None) or {}), **dict(config)}  # the class defaults filled in
    candidates, excluded = _find_candidates(first)
    if not candidates:
        return Derivation(name, None, tuple(excluded), problem="no ModuleList of blocks with attention or "
                                                              "feed-forward sub-modules", config=config)
    tracer = None
    for model, device in attempts:
        if model is None:
            try:
                model = _instantiate(model_cls, config, device)
            except Exception as e:  # noqa: BLE001
                problems.append(f"cannot build it on {device}: {type(e).__name__}: {_short(e)}")
                continue
        model_candidates = candidates if model is first else _find_candidates(model)[0]
        tracer, recipe, found = _try_forwards(model_cls, model, config, model_candidates, device, example_inputs)
        if tracer is not None:
            break
        problems.append(found if device == "meta" or not problems else f"on {device}: {found}")
        if found.startswith("cannot synthesise"):
            break  # the same on any device
    if tracer is None:
        if n_params is not None and n_params > CPU_VERIFY_MAX_PARAMS and not problems[-1].startswith("cannot synth"):
            problems.append(f"too large ({n_params:,} parameters) to verify on the CPU")
        groups, kinds = _structural(candidates)
        problem = "; ".join(problems)
        input_problem = problems[-1] if problems[-1].startswith("cannot synthesise") else None
        return Derivation(name, Architecture(name, tuple(groups)), tuple(excluded), verified=False, problem=problem,
                          input_problem=input_problem, kinds=kinds, config=config)
    groups, more, kinds = _decide(name, model, model_candidates, tracer)
    excluded = [*(_find_candidates(model)[1] if model is not first else excluded), *more]
    shapes = {k: _shape_of(v) for k, v in found.items()}
    if not groups:
        return Derivation(name, None, tuple(excluded), verified=True, device=device, recipe=recipe, input_shapes=shapes,
                          problem="no group passed the verification", config=config)
    return Derivation(name, Architecture(name, tuple(groups)), tuple(excluded), verified=True, device=device,
                      recipe=recipe, input_shapes=shapes, kinds=kinds, config=config)


def _device_of(module) -> str:
    for p in module.parameters():
        return p.device.type
    return "cpu"


def _derivation(model_cls, config: Mapping, example_inputs=None, module=None) -> Derivation:
    key = (model_cls, _config_key(config))
    if example_inputs is not None or key not in _DERIVATIONS:
        _DERIVATIONS[key] = _derive(model_cls, config, example_inputs, module)
    return _DERIVATIONS[key]


# --------------------------------------------------------------------------------------------
# the adapter
# --------------------------------------------------------------------------------------------

def _family_tag(name: str) -> str:
    tag = re.sub(r"(Transformer)?(\d+D)?(Model)?$", "", name) or name
    tag = re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")
    return tag[:64] or "auto"


class AutoAdapter(ArchitectureAdapter):
    """An adapter derived from the transformer's structure (see the module docs).

    One instance per transformer class (``AutoAdapter(cls)``) serves every config of that class:
    each config is derived once and cached. ``derive_adapter`` returns an instance bound to one
    config, whose :attr:`derivation` tells what was found.
    """

    def __init__(self, model_cls, config: Mapping | None = None):
        self._cls = model_cls
        self.transformer_class = model_cls.__name__
        self.family = _family_tag(model_cls.__name__)
        self._config = dict(config) if config is not None else None

    def __repr__(self) -> str:
        return f"<AutoAdapter for {self.transformer_class}>"

    # --- derivation -----------------------------------------------------------------------
    def derive(self, config: Mapping) -> Derivation:
        """The (cached) derivation for ``config``."""
        return _derivation(self._cls, config)

    @property
    def derivation(self) -> Derivation | None:
        """The derivation of the bound config (``None`` for a class-level adapter)."""
        return self.derive(self._config) if self._config is not None else None

    def _usable(self, config: Mapping) -> Derivation:
        d = self.derive(config)
        if d.architecture is None:
            raise UnsupportedModelError(f"no ecad-hub adapter for {self.transformer_class}, and none could be derived: "
                                        f"{d.problem}")
        if not d.verified:
            raise UnsupportedModelError(
                f"the adapter derived for {self.transformer_class} is unverified ({d.problem}); pass one forward's "
                "inputs to ecad_hub.adapters.auto.derive_adapter(model, example_inputs=...) first")
        return d

    def _current(self) -> Derivation | None:
        if self._config is not None:
            return self.derivation
        found = [d for (cls, _), d in _DERIVATIONS.items() if cls is self._cls and d.recipe is not None]
        return found[-1] if found else None

    # --- the contract ---------------------------------------------------------------------
    def model_class(self):
        return self._cls

    def architecture(self, config):
        d = self._usable(config)
        key = (self._cls, _config_key(config))
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(f"ecad-hub has no adapter for {self.transformer_class}; derived {d.describe()}; check with "
                          "`ecad-hub inspect`", AutoAdapterWarning, stacklevel=3)
        return d.architecture

    @property
    def temporal_compression(self):  # noqa: D401 - video layouts: a guess (4x, as most video VAEs)
        d = self._current()
        return 4 if d is not None and d.layout in ("video", "video-fc") else None

    @property
    def default_num_frames(self):
        return 49 if self.temporal_compression else None

    @property
    def default_text_len(self):
        d = self.derivation
        cfg = {**(d.config if d is not None else {}), **(self._config or {})}
        return _first_int(cfg, TEXT_LEN_KEYS, 256)

    def latent_size(self, config, height, width, vae_scale_factor):
        h, w = super().latent_size(config, height, width, vae_scale_factor)
        d = self.derive(config)
        if d.layout == "tokens" and (h % 2 or w % 2):
            raise ValueError(f"{self.transformer_class} takes packed 2x2 latent patches: height and width must be "
                             "multiples of 2 x the VAE scale factor")
        return h, w

    def uses_cfg(self, guidance_scale):
        cfg = self._config or {}
        if cfg.get("guidance_embeds"):
            return False  # guidance-distilled: the scale is an input
        return super().uses_cfg(guidance_scale)

    def profile_inputs(self, config, latent_height, latent_width, batch_size, text_len, device, latent_frames=None):
        d = self._usable(config)
        r = d.recipe
        config = {**d.config, **dict(config)}
        F = latent_frames if latent_frames is not None else r.sizes.get("F", 1)
        new = dict(B=batch_size, T=text_len, H=latent_height, W=latent_width, F=F)
        if r.layout == "unknown":  # example inputs of a layout not recognised: returned as given
            key = ("not rescaled", self._cls, _config_key(config))
            if key not in _WARNED:
                _WARNED.add(key)
                warnings.warn(f"the example inputs of {self.transformer_class} have a latent layout ecad-hub does not "
                              "recognise: they are not rescaled (MACs are those of the example's size)",
                              AutoAdapterWarning, stacklevel=2)
            return {k: _zero_filled(v, device) for k, v in r.fixed.items()}
        out = {}
        if r.keys:
            out.update(_build_inputs(self._cls, config, r.layout, device=device, only=r.keys, **new))
        if r.fixed:
            changed = {r.sizes[k] for k in r.sizes if k in new and new[k] != r.sizes[k]}
            import torch

            for k, v in r.fixed.items():
                if any(changed & set(t.shape) for t in _leaves(v)):
                    shape = list(v.shape) if isinstance(v, torch.Tensor) else _shape_of(v)
                    raise ValueError(f"cannot rescale example input `{k}` {shape} of {self.transformer_class} "
                                     f"to batch {batch_size}, {text_len} text tokens, latents {latent_height}x{latent_width}"
                                     f"{f'x{F}' if r.layout.startswith('video') else ''}; profile at the example's size")
                out[k] = _zero_filled(v, device)
        return out

    def encode_prompts(self, pipe, prompts, *, guidance_scale, max_sequence_length, device):
        raise NotImplementedError(f"the automatic adapter of {self.transformer_class} cannot encode prompts for a search; "
                                  "write an adapter for it (ecad_hub/adapters/)")


def _class_of(obj):
    """The transformer class of a module, config (dict/path) or class name; ``None`` if diffusers has none."""
    import torch

    if isinstance(obj, torch.nn.Module):
        return type(obj)
    if isinstance(obj, type):
        return obj
    if isinstance(obj, str) and obj.isidentifier() and not os.path.exists(obj):
        name = obj
    else:
        from . import load_transformer_config

        name = load_transformer_config(obj).get("_class_name")
    import diffusers

    try:
        return getattr(diffusers, name, None) if name else None
    except Exception:  # noqa: BLE001 - a lazy-import failure of an optional class
        return None


def class_adapter(model_cls) -> AutoAdapter:
    """The class-level automatic adapter of ``model_cls`` (one per class)."""
    adapter = _CLASS_ADAPTERS.get(model_cls)
    if adapter is None:
        adapter = _CLASS_ADAPTERS[model_cls] = AutoAdapter(model_cls)
    return adapter


def derive_adapter(transformer_or_config, example_inputs: Mapping | None = None) -> AutoAdapter:
    """Derive (or fetch from the cache) the automatic adapter of a diffusers transformer.

    Args:
        transformer_or_config: a transformer module, its config (dict, ``config.json`` path or
            folder), or its class.
        example_inputs: keyword arguments of one forward of this transformer (tensors of any
            device; any values): used for the dummy forward instead of synthesised inputs, and
            returned (zero-filled, rescaled where possible) by ``profile_inputs``. Replaces a cached
            derivation of the same class and config.

    Returns:
        An :class:`AutoAdapter` bound to the config; ``adapter.derivation`` says what was derived,
        excluded and why. Raises :class:`UnsupportedModelError` when the class is not a diffusers
        transformer.
    """
    import torch

    from . import load_transformer_config

    model_cls = _class_of(transformer_or_config)
    if model_cls is None or not is_diffusers_transformer(model_cls):
        what = model_cls.__name__ if isinstance(model_cls, type) else transformer_or_config
        raise UnsupportedModelError(f"{what} is not a diffusers transformer class: the automatic adapter cannot derive it")
    if isinstance(transformer_or_config, type):
        config = {"_class_name": model_cls.__name__}  # the class's default config
    else:
        config = load_transformer_config(transformer_or_config)
    module = transformer_or_config if isinstance(transformer_or_config, torch.nn.Module) else None
    _derivation(model_cls, config, example_inputs, module)
    return AutoAdapter(model_cls, config)


def lookup(obj, name: str, supported: list[str]) -> AutoAdapter:
    """The automatic adapter for ``obj`` (a module, a config, or the class name ``name``) of a class with
    no hand adapter: the class-level adapter for a class name, else the one derived for the config.

    Raises :class:`UnsupportedModelError` (one line) for what is not a diffusers transformer, or
    one with no ModuleList of blocks to schedule.
    """
    import torch

    model_cls = type(obj) if isinstance(obj, torch.nn.Module) else _class_of(name)
    if model_cls is None or not is_diffusers_transformer(model_cls):
        raise UnsupportedModelError(f"no ecad-hub adapter for {name}; supported: {', '.join(supported)} "
                                    "(and, derived automatically, other diffusers transformer classes)")
    if isinstance(obj, str) and obj == name:
        return class_adapter(model_cls)
    adapter = derive_adapter(obj)
    d = adapter.derivation
    if d.architecture is None:
        raise UnsupportedModelError(f"no ecad-hub adapter for {name}, and none could be derived: {d.problem}")
    return adapter
