"""A small CNN that recognises the attributes of synthetic digit images, and the reward built on it.

:class:`AttributeClassifier` predicts, from a 32x32 RGB image, the digit, colour, size,
position and background (five softmax heads). It is trained on real synthetic images
(:mod:`ecad_hub.embedded.data`, held-out digit sources excluded) by
``scripts/train_embedded.py``.

:class:`EmbeddedRewardMetric` scores an (image, prompt) pair by the mean log-probability
the classifier gives to the attributes the prompt asks for (attributes a prompt does not
mention are skipped). Scores are <= 0; 0 means "certainly follows the prompt".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..metrics import QualityMetric
from . import data as D

HEAD_SIZES: dict[str, int] = {k: len(v) for k, v in D.ATTRIBUTES.items()}


class AttributeClassifier(nn.Module):
    """A small CNN with five softmax heads: digit, colour, size, position, background.

    conv(3->c1) @32x32 -> pool -> 2x conv(c2) @16 -> pool -> 2x conv(c3) @8 (BatchNorm + ReLU).
    The *what* heads (digit, colour, background) read translation-invariant global max+mean
    pooled features, so recognising a digit is learned once for every placement; the *where*
    heads (size, position) read the 4x4-pooled spatial map. Takes float images
    ``[N, 3, 32, 32]`` in [0, 1]; returns a dict attribute -> logits.
    """

    WHAT = ("digit", "colour", "background")
    WHERE = ("size", "position")

    def __init__(self, channels: Sequence[int] = (32, 64, 128), hidden: int = 128):
        super().__init__()
        c1, c2, c3 = channels
        self.config = {"channels": list(channels), "hidden": hidden}

        def conv(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(3, c1), nn.MaxPool2d(2),
            *conv(c1, c2), *conv(c2, c2), nn.MaxPool2d(2),
            *conv(c2, c3), *conv(c3, c3),
        )  # fmt: skip
        self.what = nn.Sequential(nn.Linear(2 * c3, hidden), nn.ReLU(inplace=True), nn.Dropout(0.1))
        self.where = nn.Sequential(
            nn.AvgPool2d(2), nn.Flatten(), nn.Linear(c3 * 16, hidden // 2), nn.ReLU(inplace=True)
        )
        self.heads = nn.ModuleDict(
            {k: nn.Linear(hidden if k in self.WHAT else hidden // 2, n) for k, n in HEAD_SIZES.items()}
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features((images - 0.5) / 0.5)
        what = self.what(torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1))
        where = self.where(f)
        return {k: head(what if k in self.WHAT else where) for k, head in self.heads.items()}

    # ------------------------------------------------------------------ io

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
        cfg = dict(self.config, attributes={k: list(v) for k, v in D.ATTRIBUTES.items()}, image_size=D.IMAGE_SIZE)
        (directory / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path, device="cpu") -> "AttributeClassifier":
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg = json.loads((directory / "config.json").read_text())
        if cfg.get("attributes") != {k: list(v) for k, v in D.ATTRIBUTES.items()}:
            raise ValueError(f"{directory}: reward model was trained for other attribute classes")
        model = cls(channels=cfg["channels"], hidden=cfg["hidden"])
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        return model.to(device).eval()


def _prepare(images, device) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if isinstance(images, (list, tuple)):
        images = torch.stack([torch.as_tensor(np.asarray(im)) if not torch.is_tensor(im) else im for im in images])
    x = images.to(device=device, dtype=torch.float32)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images [N, 3, H, W], got shape {tuple(x.shape)}")
    if x.shape[-2:] != (D.IMAGE_SIZE, D.IMAGE_SIZE):
        x = F.interpolate(x, size=(D.IMAGE_SIZE, D.IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1)


@torch.no_grad()
def predict_log_probs(model: AttributeClassifier, images, batch_size: int = 512) -> dict[str, torch.Tensor]:
    """attribute -> ``[N, n_classes]`` log-probabilities (images float ``[N,3,H,W]`` in [0, 1])."""
    device = next(model.parameters()).device
    x = _prepare(images, device)
    was_training = model.training
    model.eval()
    out: dict[str, list[torch.Tensor]] = {k: [] for k in HEAD_SIZES}
    for i in range(0, len(x), batch_size):
        logits = model(x[i : i + batch_size])
        for k, v in logits.items():
            out[k].append(F.log_softmax(v.float(), dim=-1).cpu())
    model.train(was_training)
    return {k: torch.cat(v) if v else torch.empty(0, HEAD_SIZES[k]) for k, v in out.items()}


def predict(model: AttributeClassifier, images, batch_size: int = 512) -> dict[str, np.ndarray]:
    """attribute -> predicted class index per image."""
    return {k: v.argmax(-1).numpy() for k, v in predict_log_probs(model, images, batch_size).items()}


def attribute_accuracy(model: AttributeClassifier, images, labels: dict[str, Sequence[int | None]]) -> dict[str, float]:
    """Per-attribute accuracy of ``model`` against ``labels`` (entries ``None`` are skipped)."""
    pred = predict(model, images)
    acc = {}
    for k in HEAD_SIZES:
        if k not in labels:
            continue
        lab = np.array([-1 if v is None else int(v) for v in labels[k]])
        ok = lab >= 0
        acc[k] = float((pred[k][ok] == lab[ok]).mean()) if ok.any() else float("nan")
    return acc


def prompt_following(model: AttributeClassifier, images, prompts: Sequence[str]) -> dict[str, float]:
    """Per-attribute fraction of images in which the classifier recognises what the prompt asked for.

    Also returns ``"all"``: the fraction of images with every specified attribute recognised.
    """
    attrs = [D.parse_caption(p) for p in prompts]
    labels = {k: [getattr(a, k) for a in attrs] for k in HEAD_SIZES}
    acc = attribute_accuracy(model, images, labels)
    pred = predict(model, images)
    all_ok = np.ones(len(attrs), dtype=bool)
    for k in HEAD_SIZES:
        lab = np.array([-1 if v is None else v for v in labels[k]])
        all_ok &= (lab < 0) | (pred[k] == lab)
    acc["all"] = float(all_ok.mean()) if len(attrs) else float("nan")
    return acc


def reward_scores(model: AttributeClassifier, images, prompts: Sequence[str]) -> np.ndarray:
    """Mean log-probability of the prompted attributes, one float64 per image."""
    if len(prompts) != len(images):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    logp = predict_log_probs(model, images)
    scores = np.zeros(len(prompts), dtype=np.float64)
    for i, p in enumerate(prompts):
        a = D.parse_caption(p).as_dict()
        terms = [float(logp[k][i, v]) for k, v in a.items() if v is not None]
        scores[i] = float(np.mean(terms)) if terms else 0.0
    return scores


class EmbeddedRewardMetric(QualityMetric):
    """Prompt-following reward of the embedded digit model (``--metric embedded-reward``).

    ``score(images, prompts)`` = mean log-probability, under the embedded attribute
    classifier, of the digit/colour/size/position/background the prompt asks for; higher is
    better, at most 0. Images are float ``[N, 3, H, W]`` in [0, 1]; other sizes are resized
    to 32x32. Loads the packaged weights (no network) unless ``model`` or ``path`` is given.
    """

    name = "embedded-reward"
    needs_reference = False

    def __init__(self, device="cpu", model: AttributeClassifier | None = None, path: str | Path | None = None):
        if model is None:
            from . import REWARD_PATH

            model = AttributeClassifier.load(path or REWARD_PATH, device=device)
        self.model = model.to(device).eval()
        self._path = str(path) if path is not None else None

    def score(self, images, prompts: Sequence[str], reference_images=None) -> np.ndarray:
        return reward_scores(self.model, images, list(prompts))

    def accuracy(self, images, prompts: Sequence[str]) -> dict[str, float]:
        """Per-attribute prompt-following accuracy (see :func:`prompt_following`)."""
        return prompt_following(self.model, images, list(prompts))

    def to(self, device) -> "EmbeddedRewardMetric":
        self.model.to(device)
        return self

    def describe(self) -> dict:
        from . import asset_fingerprint

        d = {"name": self.name, "model": "embedded-attribute-cnn"}
        if self._path is None:
            d["weights_sha256"] = asset_fingerprint("reward")
        return d
