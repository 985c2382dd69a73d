"""Compatibility layer that runs the PyPI package ``image-reward`` 1.5 (import name ``ImageReward``,
released 2023-07 against transformers 4.27–4.x) on torch 2.13 / transformers 5, without editing its files.

Every shim below is applied only when the symbol it replaces is actually missing, so on a
transformers 4 install this module changes nothing. What breaks, and what each shim does:

At import (:func:`import_image_reward`; the shims are installed for the ``import ImageReward`` statement
only and removed right after it, so nothing else in the process sees them):

1. ``ImageReward/models/{CLIPScore,AestheticScore}.py`` do ``import clip`` (OpenAI CLIP, a git-only
   package that image-reward does not even declare). ``ImageReward/__init__`` imports them eagerly,
   but they only serve ``ImageReward.load_score("CLIP" | "Aesthetic")``; the reward model
   (``ImageReward.load``/``ImageReward.ImageReward``) never uses ``clip``. A placeholder module is
   put in ``sys.modules["clip"]`` for the import (only if no ``clip`` module is installed) and
   removed again; using it later raises an ImportError that says why.
2. ``ImageReward/models/BLIP/med.py`` (BLIP's private copy of BERT, from transformers 4.15) imports
   ``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices`` and ``prune_linear_layer``
   from ``transformers.modeling_utils``. transformers 5 dropped those re-exports:
   ``apply_chunking_to_forward`` and ``prune_linear_layer`` still live in
   ``transformers.pytorch_utils`` (same functions, re-exported for the import);
   ``find_pruneable_heads_and_indices`` was deleted outright. It is only called by
   ``BertAttention.prune_heads`` (attention-head pruning, never used for scoring), so it is
   replaced by a function that raises if called.
3. The package's own side effects on the process are undone: ``ImageReward/models/BLIP/blip.py``
   runs ``warnings.filterwarnings("ignore")`` (silences every warning of the process) and
   ``blip_pretrain.py`` runs ``transformers.logging.set_verbosity_error()``. The import runs inside
   ``warnings.catch_warnings()`` and the transformers verbosity is restored afterwards.

After import, on the package's private ``med.BertModel`` class (:func:`_patch_med_bert`; permanent,
but only that class, which nothing outside ImageReward uses):

4. ``invert_attention_mask`` and ``get_head_mask`` were methods of transformers 4's
   ``ModuleUtilsMixin`` (a base of ``PreTrainedModel``); transformers 5 removed them and
   ``med.BertModel.forward`` calls both. ``invert_attention_mask`` is the transformers 4.57 code
   verbatim; ``get_head_mask`` supports the only call ImageReward makes (``head_mask=None`` ->
   ``[None] * num_layers``) and raises for anything else.
5. ``med.BertModel.__init__`` ends with ``self.init_weights()`` (the transformers 4.15 idiom). In
   transformers 5 the model lifecycle is ``post_init()``, which first records ``all_tied_weights_keys``
   and then calls ``init_weights()``; calling ``init_weights()`` first fails with
   "'BertModel' object has no attribute 'all_tied_weights_keys'". ``med.BertModel.init_weights`` is
   given a version that, when called from ``__init__`` (no ``all_tied_weights_keys`` yet), runs
   ``post_init()`` instead, exactly what ``init_weights()`` meant in transformers 4.

While building a model (:func:`building_model`; undone when the ``with`` block exits):

6. ``blip.init_tokenizer()`` calls ``BertTokenizer.from_pretrained("bert-base-uncased")`` (no
   cache_dir / local_files_only) and then reads ``tokenizer.additional_special_tokens_ids``, which
   transformers 5 renamed ``extra_special_tokens_ids``. The module-global ``BertTokenizer`` of
   ``ImageReward.models.BLIP.blip`` is pointed at a subclass that maps the old attribute name to
   the new one and loads the tokenizer the way the caller asks (Hub cache, offline, or a local
   vocabulary for a randomly initialised model). The package's own ``init_tokenizer`` still runs.

Not handled here (environment, not API): PyPI's torchvision wheels are CUDA builds; next to a CPU-only
torch their operator library cannot load and ``import torchvision`` (hence timm, ImageReward and even
``transformers.modeling_utils``) fails with "operator torchvision::nms does not exist". Install a
torchvision built for your torch (e.g. from the PyTorch CPU index), or see
:func:`allow_torchvision_without_ops` for CI machines that cannot.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
import warnings
from typing import Any, Callable, Iterator

_MISSING = object()


@contextlib.contextmanager
def _set_attr(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Set ``obj.name = value`` for the ``with`` block, then restore exactly what was there (or nothing)."""
    old = vars(obj).get(name, _MISSING)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if old is _MISSING:
            delattr(obj, name)
        else:
            setattr(obj, name, old)


@contextlib.contextmanager
def _set_module(name: str, module: types.ModuleType) -> Iterator[None]:
    """Make ``import name`` give ``module`` for the ``with`` block (modules that imported it keep it)."""
    sys.modules[name] = module
    try:
        yield
    finally:
        if sys.modules.get(name) is module:
            del sys.modules[name]


class _UnavailableClip(types.ModuleType):
    """Placeholder for OpenAI CLIP (shim 1): importable, but any use says why it is not there."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(
            f"clip.{attr}: OpenAI CLIP is not installed; ecad-hub imported ImageReward without it because "
            "only ImageReward.load_score('CLIP'/'Aesthetic') needs it, not the ImageReward reward model"
        )


def _find_pruneable_heads_and_indices(*args: Any, **kwargs: Any) -> Any:
    """Stand-in for transformers 4's ``pytorch_utils.find_pruneable_heads_and_indices`` (shim 2)."""
    raise NotImplementedError(
        "attention-head pruning of ImageReward's BERT is not supported on transformers 5 "
        "(find_pruneable_heads_and_indices was removed)"
    )


def import_image_reward() -> types.ModuleType:
    """Import and return the ``ImageReward`` package with shims 1-5 applied.

    Raises whatever the import raises (``ModuleNotFoundError`` when the package or one of its
    dependencies is missing); a failed import leaves no ``ImageReward`` modules behind.
    """
    import transformers
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils

    if "ImageReward" in sys.modules:  # imported before (by us, or by the user with their own fixes)
        module = sys.modules["ImageReward"]
        _patch_med_bert(importlib.import_module("ImageReward.models.BLIP.med"))
        return module

    verbosity = transformers.logging.get_verbosity()
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())  # shim 3: undo blip.py's filterwarnings("ignore")
        if "clip" not in sys.modules and importlib.util.find_spec("clip") is None:  # shim 1
            stack.enter_context(_set_module("clip", _UnavailableClip("clip")))
        # shim 2: same functions, re-exported where med.py looks for them
        for name in ("apply_chunking_to_forward", "prune_linear_layer"):
            if not hasattr(modeling_utils, name):
                stack.enter_context(_set_attr(modeling_utils, name, getattr(pytorch_utils, name)))
        if not hasattr(modeling_utils, "find_pruneable_heads_and_indices"):
            stack.enter_context(
                _set_attr(modeling_utils, "find_pruneable_heads_and_indices", _find_pruneable_heads_and_indices)
            )
        try:
            module = importlib.import_module("ImageReward")
            med = importlib.import_module("ImageReward.models.BLIP.med")
        except BaseException:
            for name in [n for n in sys.modules if n == "ImageReward" or n.startswith("ImageReward.")]:
                del sys.modules[name]
            raise
        finally:
            transformers.logging.set_verbosity(verbosity)  # shim 3
    _patch_med_bert(med)
    return module


def _patch_med_bert(med: types.ModuleType) -> None:
    """Shims 4 and 5 on ImageReward's private ``med.BertModel`` (only where the method is missing)."""
    import torch
    from transformers import PreTrainedModel

    cls = med.BertModel
    if getattr(cls, "_ecad_hub_patched", False):
        return

    if not hasattr(cls, "invert_attention_mask"):  # shim 4: transformers 4.57 ModuleUtilsMixin code

        def invert_attention_mask(self, encoder_attention_mask: torch.Tensor) -> torch.Tensor:
            if encoder_attention_mask.dim() == 3:
                encoder_extended_attention_mask = encoder_attention_mask[:, None, :, :]
            if encoder_attention_mask.dim() == 2:
                encoder_extended_attention_mask = encoder_attention_mask[:, None, None, :]
            encoder_extended_attention_mask = encoder_extended_attention_mask.to(dtype=self.dtype)
            return (1.0 - encoder_extended_attention_mask) * torch.finfo(self.dtype).min

        cls.invert_attention_mask = invert_attention_mask

    if not hasattr(cls, "get_head_mask"):  # shim 4: only the head_mask=None case ImageReward uses

        def get_head_mask(self, head_mask, num_hidden_layers: int, is_attention_chunked: bool = False):
            if head_mask is not None:
                raise NotImplementedError("head_mask is not supported by ImageReward's BERT on transformers 5")
            return [None] * num_hidden_layers

        cls.get_head_mask = get_head_mask

    # shim 5: transformers 5 needs post_init() (which itself calls init_weights()) where
    # transformers 4.15 code calls init_weights() directly.
    if hasattr(PreTrainedModel, "post_init") and hasattr(PreTrainedModel, "get_expanded_tied_weights_keys"):

        def init_weights(self) -> None:
            if "all_tied_weights_keys" not in vars(self):  # called from med.BertModel.__init__
                self.post_init()  # records the v5 bookkeeping, then re-enters here (branch below)
            else:
                PreTrainedModel.init_weights(self)

        cls.init_weights = init_weights

    cls._ecad_hub_patched = True


@contextlib.contextmanager
def building_model(load_tokenizer: Callable[..., Any]) -> Iterator[None]:
    """Shim 6, for constructing ``ImageReward.ImageReward`` / ``BLIP_Pretrain`` inside the block.

    ``load_tokenizer(cls, name)`` must return an instance of ``cls`` (a ``transformers.BertTokenizer``
    subclass), e.g. ``cls.load_pretrained(name, cache_dir=..., local_files_only=...)`` (transformers'
    ``from_pretrained``) or ``cls(vocab=...)``.
    """
    from transformers import BertTokenizer as _BertTokenizer

    blip = importlib.import_module("ImageReward.models.BLIP.blip")

    class BertTokenizer(_BertTokenizer):  # same name: transformers compares it with tokenizer_config.json
        @classmethod
        def from_pretrained(cls, name, *args, **kwargs):  # what blip.init_tokenizer() calls
            return load_tokenizer(cls, name)

        @classmethod
        def load_pretrained(cls, name, **kwargs):
            return super().from_pretrained(name, **kwargs)

        if not hasattr(_BertTokenizer, "additional_special_tokens_ids"):

            @property
            def additional_special_tokens_ids(self) -> list[int]:  # renamed in transformers 5
                return self.extra_special_tokens_ids

    with _set_attr(blip, "BertTokenizer", BertTokenizer):
        yield


def allow_torchvision_without_ops() -> bool:
    """Let a CUDA build of torchvision import next to a CPU-only torch, without its C++ operators.

    Not used by the metric: call it first thing in a process (before anything imports transformers,
    timm or torchvision) on a machine where only that pairing can be installed, e.g. CI on CPU with
    torchvision from PyPI. There ``torchvision/_meta_registrations.py`` registers fake kernels for
    ``torchvision::nms`` and ``torchvision::qnms`` unconditionally, and these operators do not exist
    because ``torchvision/_C.so`` (linked against CUDA torch) failed to load, so ``import torchvision``
    raises. This defines just those two operator schemas (no kernels), so torchvision imports with
    ``torchvision.extension._has_ops() == False``: transforms work, ``torchvision.ops`` raises when used.

    Returns True when it did that, False when nothing was needed (torchvision missing or loadable).
    """
    global _TORCHVISION_LIB
    spec = importlib.util.find_spec("torchvision")
    if spec is None or "torchvision" in sys.modules or _TORCHVISION_LIB is not None:
        return False
    import glob
    import os

    import torch

    if torch.version.cuda is not None:
        return False
    libs = glob.glob(os.path.join(next(iter(spec.submodule_search_locations)), "_C*.so"))
    try:
        for lib in libs:
            torch.ops.load_library(lib)
        if libs:
            return False
    except OSError:
        pass
    _TORCHVISION_LIB = torch.library.Library("torchvision", "DEF")  # kept alive: dropping it undefines
    _TORCHVISION_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return True


_TORCHVISION_LIB: Any = None
