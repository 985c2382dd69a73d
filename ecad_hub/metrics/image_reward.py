"""The ``image-reward`` metric: ImageReward (Xu et al., 2023), a BLIP-based human-preference reward.

Needs the optional ``image-reward`` package (``pip install 'ecad-hub[image-reward]'``), which is
imported through :mod:`._image_reward_compat` so that it runs on transformers 5. Weights come from
the Hugging Face cache: ``THUDM/ImageReward`` (``ImageReward.pt``, ``med_config.json``) and the
``bert-base-uncased`` tokenizer, the same files ``ImageReward.load()`` fetches.

Scores are ImageReward's rewards (standardised with the model's own mean/std, higher is better),
computed in batches on tensors with the same preprocessing as the package's ``ImageReward.score``
on a PIL image: 8-bit quantisation (what converting the tensor to a PIL image does), resize of the
short side to 224 with PIL's antialiased bicubic filter, centre crop 224x224, CLIP normalisation.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any, Sequence

import numpy as np

from ..errors import MetricUnavailableError
from . import QualityMetric

#: Hub repo and files ``ImageReward.load("ImageReward-v1.0")`` downloads.
REPO_ID = "THUDM/ImageReward"
MODELS = {"ImageReward-v1.0": "ImageReward.pt"}
MED_CONFIG_FILE = "med_config.json"
#: The tokenizer ``ImageReward.models.BLIP.blip.init_tokenizer`` loads.
TOKENIZER_ID = "bert-base-uncased"

#: BLIP's ``configs/med_config.json`` (the BERT of ImageReward's BLIP text encoder), used for
#: :meth:`ImageRewardMetric.from_random`. ``encoder_width`` is replaced by the ViT width (1024).
MED_CONFIG = {
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "type_vocab_size": 2,
    "vocab_size": 30524,
    "encoder_width": 768,
    "add_cross_attention": True,
}

# ImageReward.ImageReward._transform / .score constants.
IMAGE_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_PROMPT_TOKENS = 35

_INSTALL_HINT = "pip install 'ecad-hub[image-reward]'"


def _import_package():
    from . import _image_reward_compat

    try:
        return _image_reward_compat.import_image_reward()
    except ModuleNotFoundError as err:
        missing = err.name or str(err)
        what = "the 'image-reward' package" if missing.split(".")[0] == "ImageReward" else f"module {missing!r}"
        raise MetricUnavailableError(
            f"metric 'image-reward' needs {what}, which is not installed: {_INSTALL_HINT}"
        ) from err
    except Exception as err:  # noqa: BLE001 - one line instead of a traceback from deep inside the package
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise MetricUnavailableError(
            f"metric 'image-reward': importing ImageReward failed ({type(err).__name__}: {first}); "
            f"reinstall with {_INSTALL_HINT} and a torchvision built for your torch"
        ) from err


def _default_local_files_only() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _unavailable(what: str, local_files_only: bool, err: BaseException) -> MetricUnavailableError:
    where = (
        "is not in the Hugging Face cache and downloads are off (local_files_only / HF_HUB_OFFLINE)"
        if local_files_only
        else f"could not be downloaded ({type(err).__name__})"
    )
    return MetricUnavailableError(
        f"metric 'image-reward': model {what} {where}; download it once online, "
        "or use --metric fidelity"
    )


def _random_vocab() -> dict[str, int]:
    """A deterministic 30522-token WordPiece vocabulary laid out like bert-base-uncased's
    ([PAD]=0, [unused*], [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, ...), for random models."""
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    tokens += pieces + ["##" + p for p in pieces if p.isalnum()]
    tokens += [f"[unused{i}]" for i in range(99, 99 + 30522 - len(tokens))]
    return {t: i for i, t in enumerate(tokens)}


def preprocess(images, device=None):
    """``[N, 3, H, W]`` floats in [0, 1] -> ``[N, 3, 224, 224]`` normalised pixels, matching what the
    package's ``ImageReward.preprocess`` (torchvision on a PIL image) gives for the 8-bit image."""
    import torch
    import torch.nn.functional as F

    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be a [N, 3, H, W] tensor, got {getattr(images, 'shape', type(images))}")
    x = images.detach().to(images.device if device is None else device, torch.float32)

    def to_8bit(t):  # PIL keeps 8-bit pixels, clipped and rounded, after each resampling pass
        return (t.clamp(0.0, 1.0) * 255.0).round() / 255.0

    x = to_8bit(x)  # tensor -> PIL image (diffusers' numpy_to_pil: (x * 255).round())
    h, w = x.shape[-2:]
    # torchvision Resize(224, BICUBIC) on PIL: short side -> 224, long side int(224 * long / short),
    # by PIL's bicubic (a = -0.5, antialiased when shrinking), horizontal pass first, then vertical.
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = IMAGE_SIZE, int(IMAGE_SIZE * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if new_w != w:
        x = to_8bit(F.interpolate(x, size=(h, new_w), mode="bicubic", antialias=True, align_corners=False))
    if new_h != h:
        x = to_8bit(F.interpolate(x, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False))
    # CenterCrop(224), with torchvision's rounding; then ToTensor + Normalize(CLIP mean/std)
    top = int(round((new_h - IMAGE_SIZE) / 2.0))
    left = int(round((new_w - IMAGE_SIZE) / 2.0))
    x = x[:, :, top : top + IMAGE_SIZE, left : left + IMAGE_SIZE]
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _read_checkpoint(path: str) -> dict:
    """Read an ImageReward checkpoint without running code from it.

    ``ImageReward.pt`` is a plain state_dict (THUDM/ImageReward train/src/config/utils.py saves
    ``model.state_dict()``; ``ImageReward.load`` passes the file straight to ``load_state_dict``), so
    ``torch.load(weights_only=True)``, which only rebuilds tensors and containers, reads it.
    """
    import torch

    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise MetricUnavailableError(
            f"metric 'image-reward': cannot read checkpoint {path} as a state_dict ({type(err).__name__})"
        ) from err
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise MetricUnavailableError(f"metric 'image-reward': checkpoint {path} is not a state_dict of tensors")
    return state_dict


def _load_checkpoint(model, state_dict: dict, path: str) -> None:
    """``model.load_state_dict(state_dict, strict=False)`` as ``ImageReward.load`` does (the file may hold
    more than the scoring model), but a missing parameter means the wrong file: refuse it rather than
    score with random weights."""
    result = model.load_state_dict(state_dict, strict=False)
    parameters = {name for name, _ in model.named_parameters()}
    missing = [key for key in result.missing_keys if key in parameters]
    if missing:
        raise MetricUnavailableError(
            f"metric 'image-reward': checkpoint {path} lacks {len(missing)} of the model's parameters "
            f"(first: {missing[0]}); is it an ImageReward checkpoint?"
        )


class ImageRewardMetric(QualityMetric):
    """ImageReward reward of each image for its prompt (higher is better)."""

    name = "image-reward"
    needs_reference = False

    def __init__(
        self,
        model_name: str = "ImageReward-v1.0",
        device: Any = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
        batch_size: int = 8,
        med_config: str | os.PathLike | None = None,
        tokenizer: str = TOKENIZER_ID,
    ):
        """Load ImageReward from the Hugging Face cache (downloading unless ``local_files_only``).

        ``model_name`` is ``"ImageReward-v1.0"`` or the path of a checkpoint (a state_dict saved
        with ``torch.save``, loaded with ``weights_only=True``); ``med_config`` overrides the
        ``med_config.json`` of ``THUDM/ImageReward``; ``tokenizer`` replaces the Hub id of the BERT
        tokenizer (``bert-base-uncased``, alias ``google-bert/bert-base-uncased``).
        ``local_files_only`` defaults to ``HF_HUB_OFFLINE``. Raises :class:`MetricUnavailableError` (one line) when the package or
        a file is missing.
        """
        package = _import_package()
        if local_files_only is None:
            local_files_only = _default_local_files_only()
        cache_dir = os.fspath(cache_dir) if cache_dir is not None else None

        if model_name in MODELS:
            checkpoint = self._hub_file(MODELS[model_name], cache_dir, local_files_only)
        elif os.path.isfile(model_name):
            checkpoint = os.fspath(model_name)
        else:
            raise MetricUnavailableError(
                f"metric 'image-reward': unknown model {model_name!r}; use one of "
                f"{', '.join(MODELS)} or the path of a checkpoint file"
            )
        if med_config is None:
            med_config = self._hub_file(MED_CONFIG_FILE, cache_dir, local_files_only)

        def load_tokenizer(cls, name):  # name: "bert-base-uncased", hard-coded in blip.init_tokenizer
            try:
                return cls.load_pretrained(tokenizer, cache_dir=cache_dir, local_files_only=local_files_only)
            except (OSError, ValueError) as err:  # transformers: OSError; hub errors subclass OSError
                raise _unavailable(f"{tokenizer} (tokenizer)", local_files_only, err) from err

        state_dict = _read_checkpoint(checkpoint)
        model = self._build(package, os.fspath(med_config), load_tokenizer)
        _load_checkpoint(model, state_dict, checkpoint)
        self._setup(model, model_name=model_name, device=device, batch_size=batch_size)

    @classmethod
    def from_random(cls, seed: int = 0, device: Any = "cpu", batch_size: int = 8) -> "ImageRewardMetric":
        """ImageReward's architecture (BLIP ViT-L/16 + BERT-base from ``MED_CONFIG``) with random
        weights and a synthetic vocabulary: no download, for tests. Deterministic in ``seed``.

        The package initialises its reward head (5 linear layers, no activations) with
        std 1/(768+1), which makes every reward ~ -mean/std whatever the image; the head is
        re-initialised here with std 1/sqrt(fan_in) so rewards differ between images.
        """
        import torch

        package = _import_package()
        vocab = _random_vocab()

        def load_tokenizer(tokenizer_cls, name):
            return tokenizer_cls(vocab=vocab)

        with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(seed)
            path = os.path.join(tmp, MED_CONFIG_FILE)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(MED_CONFIG, f)
            model = cls._build(package, path, load_tokenizer)
            with torch.no_grad():
                for layer in model.mlp.layers:
                    if isinstance(layer, torch.nn.Linear):
                        layer.weight.normal_(0.0, 1.0 / math.sqrt(layer.in_features))
                        layer.bias.zero_()
        self = cls.__new__(cls)
        self._setup(model, model_name=f"random(seed={seed})", device=device, batch_size=batch_size)
        return self

    # -- construction helpers -------------------------------------------------------------------

    @staticmethod
    def _hub_file(filename: str, cache_dir: str | None, local_files_only: bool) -> str:
        from huggingface_hub import hf_hub_download

        try:
            return hf_hub_download(
                repo_id=REPO_ID, filename=filename, cache_dir=cache_dir, local_files_only=local_files_only
            )
        except Exception as err:  # noqa: BLE001 - offline, missing, network or auth: all "unavailable"
            raise _unavailable(f"{REPO_ID}/{filename}", local_files_only, err) from err

    @staticmethod
    def _build(package, med_config: str, load_tokenizer):
        from . import _image_reward_compat

        with _image_reward_compat.building_model(load_tokenizer):
            model = package.ImageReward(med_config=med_config, device="cpu")
        return model.eval()

    def _setup(self, model, *, model_name: str, device: Any, batch_size: int) -> None:
        import torch

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._model = model
        self.model_name = model_name
        self.batch_size = int(batch_size)
        self._model.requires_grad_(False)
        self.to(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))

    # -- QualityMetric ----------------------------------------------------------------------------

    @property
    def model(self):
        """The underlying ``ImageReward.ImageReward`` module."""
        return self._model

    def to(self, device) -> "ImageRewardMetric":
        import torch

        device = torch.device(device)
        self._model.to(device)
        self._model.device = device  # ImageReward.score/score_gard put their own tensors on .device
        self.device = device
        return self

    def describe(self) -> dict:
        return {"name": self.name, "model": self.model_name, "repo": REPO_ID}

    def preprocess(self, images):
        """:func:`preprocess` onto this metric's device."""
        return preprocess(images, self.device)

    def score(self, images, prompts: Sequence[str], reference_images=None) -> np.ndarray:
        import torch

        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, one per image")
        prompts = list(prompts)
        if len(prompts) != len(images):
            raise ValueError(f"got {len(images)} images but {len(prompts)} prompts")
        model = self._model
        out = []
        with torch.inference_mode():
            for start in range(0, len(prompts), self.batch_size):
                batch = slice(start, start + self.batch_size)
                pixels = self.preprocess(images[batch])
                # ImageReward.score's tokenisation, for a batch
                text = model.blip.tokenizer(
                    prompts[batch], padding="max_length", truncation=True,
                    max_length=MAX_PROMPT_TOKENS, return_tensors="pt",
                ).to(self.device)
                # ImageReward.score_gard: the package's batched forward (ViT -> BERT with cross-attention
                # -> [CLS] -> MLP -> (r - mean) / std); ImageReward.score is the same for one image.
                rewards = model.score_gard(text.input_ids, text.attention_mask, pixels)
                out.append(rewards.reshape(-1).double().cpu())
        if not out:
            return np.zeros(0, dtype=np.float64)
        return torch.cat(out).numpy().astype(np.float64)
