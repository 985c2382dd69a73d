"""The ``clip`` metric: CLIP score (Hessel et al., 2021; the torchmetrics convention).

``score = 100 * max(cos(image_embedding, text_embedding), 0)`` per image, with a transformers
``CLIPModel`` (default ``openai/clip-vit-large-patch14``) read from the Hugging Face cache.
Images are float ``[N, 3, H, W]`` tensors in ``[0, 1]``; they are resized (bicubic, antialiased)
so that the short side matches the vision tower's input size, centre-cropped and normalised
with CLIP's mean and std in torch (no PIL round trip). Prompts are tokenised with the model's
``CLIPTokenizer`` (truncated to its maximum length).

Without the weights (offline and not cached, or no network) the constructor raises
:class:`~ecad_hub.errors.MetricUnavailableError` naming the model and suggesting
``--metric fidelity``, which needs no weights.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import MetricUnavailableError
from . import QualityMetric

DEFAULT_MODEL = "openai/clip-vit-large-patch14"
#: OpenAI CLIP's normalisation (the ``image_mean``/``image_std`` of every openai/clip-* preprocessor).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _offline_default() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


class ClipScoreMetric(QualityMetric):
    """CLIP score of each image with its prompt (``--metric clip``), higher is better (0..100).

    Args:
        model: Hub id or local folder of a ``CLIPModel`` checkpoint with its tokenizer.
        device: where the model runs.
        local_files_only: only read the Hugging Face cache (default: ``HF_HUB_OFFLINE``).
        batch_size: images per CLIP forward.
        revision, cache_dir: passed to ``from_pretrained``.

    Use :meth:`from_model` to wrap an already loaded model and tokenizer (tests build a tiny
    random CLIP that way).
    """

    name = "clip"
    needs_reference = False

    def __init__(self, model: str = DEFAULT_MODEL, device: Any = "cpu", local_files_only: bool | None = None,
                 batch_size: int = 32, revision: str | None = None, cache_dir: str | None = None):
        if local_files_only is None:
            local_files_only = _offline_default()
        try:
            from transformers import CLIPModel, CLIPTokenizer
        except ImportError as err:  # pragma: no cover - transformers is a dependency
            raise MetricUnavailableError(f"metric 'clip' needs transformers ({err})") from err
        kw = dict(local_files_only=local_files_only, revision=revision, cache_dir=cache_dir)
        try:
            tokenizer = CLIPTokenizer.from_pretrained(model, **kw)
            clip = CLIPModel.from_pretrained(model, **kw)
        except (OSError, ValueError) as err:  # transformers raises OSError for missing files/repos
            where = ("is not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE / local_files_only)"
                     if local_files_only else f"could not be loaded ({type(err).__name__})")
            raise MetricUnavailableError(
                f"metric 'clip': model {model} {where}; download it once online "
                f"(e.g. `huggingface-cli download {model}`), or use --metric fidelity"
            ) from err
        self._setup(clip, tokenizer, model_id=model, device=device, batch_size=batch_size)

    @classmethod
    def from_model(cls, model, tokenizer, *, model_id: str = "custom", device: Any = "cpu",
                   batch_size: int = 32) -> "ClipScoreMetric":
        """Wrap a loaded ``CLIPModel`` and ``CLIPTokenizer`` (no download)."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer, model_id=model_id, device=device, batch_size=batch_size)
        return self

    def _setup(self, model, tokenizer, *, model_id: str, device: Any, batch_size: int) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.device = device
        self.batch_size = int(batch_size)
        self.image_size = int(model.config.vision_config.image_size)
        self.max_length = int(getattr(model.config.text_config, "max_position_embeddings", 77))

    def to(self, device) -> "ClipScoreMetric":
        self.model.to(device)
        self.device = device
        return self

    def describe(self) -> dict:
        return {"name": self.name, "model": self.model_id}

    # --- scoring ----------------------------------------------------------------------------
    def preprocess(self, images):
        """``[N, 3, H, W]`` in [0, 1] -> normalised pixel values ``[N, 3, S, S]`` (S = the vision input size)."""
        import torch
        import torch.nn.functional as F

        x = torch.as_tensor(images).float()
        if x.ndim == 3:
            x = x.unsqueeze(0)
        s = self.image_size
        h, w = x.shape[-2:]
        scale = s / min(h, w)
        nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
        top, left = (nh - s) // 2, (nw - s) // 2
        x = x[..., top:top + s, left:left + s].clamp(0, 1)
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    @staticmethod
    def _features(out):
        return out if hasattr(out, "norm") else out.pooler_output

    def score(self, images, prompts: Sequence[str], reference_images=None) -> np.ndarray:
        import torch

        prompts = list(prompts)
        if len(prompts) != len(images):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        dtype = next(self.model.parameters()).dtype
        out = []
        with torch.no_grad():
            for i in range(0, len(prompts), self.batch_size):
                pix = self.preprocess(images[i:i + self.batch_size]).to(self.device, dtype)
                tok = self.tokenizer(prompts[i:i + self.batch_size], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                img = self._features(self.model.get_image_features(pixel_values=pix)).float()
                txt = self._features(self.model.get_text_features(
                    input_ids=tok["input_ids"], attention_mask=tok.get("attention_mask"))).float()
                cos = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
                out.append((100.0 * cos.clamp(min=0)).double().cpu())
        return torch.cat(out).numpy() if out else np.zeros(0)
