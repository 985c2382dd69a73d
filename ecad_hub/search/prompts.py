"""Calibration prompt sets: a txt/JSON file or the embedded model's calibration prompts, with a sha256."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import SearchError

#: Calibration prompts used with the embedded model when no file is given.
EMBEDDED_DEFAULT_NUM_PROMPTS = 8

#: A small general-purpose prompt set for other models when no file is given (pass
#: ``--prompts`` with your own, e.g. a few hundred captions, for a search that counts).
GENERIC_PROMPTS = (
    "a photo of a cat sitting on a windowsill in the afternoon sun",
    "a red sports car driving along a coastal road at sunset",
    "a watercolor painting of a mountain lake surrounded by pine trees",
    "an astronaut riding a horse on the moon, digital art",
    "a bowl of fresh fruit on a wooden kitchen table",
    "a busy city street at night with neon signs reflected in puddles",
    "a portrait of an old fisherman with a white beard, studio lighting",
    "a cozy living room with a fireplace and a bookshelf",
)


@dataclass(frozen=True)
class PromptSet:
    """An ordered list of prompts with a name and a content hash (recorded with every result)."""

    name: str
    prompts: tuple[str, ...]

    @property
    def sha256(self) -> str:
        """SHA-256 of the prompts as a compact JSON list (order matters)."""
        text = json.dumps(list(self.prompts), ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self.prompts)

    def head(self, n: int | None) -> "PromptSet":
        if n is None or n >= len(self.prompts):
            return self
        if n < 1:
            raise SearchError(f"num_prompts must be >= 1, got {n}")
        return PromptSet(f"{self.name}[:{n}]", self.prompts[:n])

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "PromptSet":
        """A ``.txt`` file (one prompt per line, blank lines and ``#`` comments skipped) or a
        ``.json`` file (a list of strings or ``{"prompts": [...]}``)."""
        path = Path(path)
        if not path.is_file():
            raise SearchError(f"{path}: no such prompt file", path=str(path))
        if path.suffix.lower() == ".json":
            from ..utils.io import read_json

            doc = read_json(path, error_cls=SearchError)
            items = doc.get("prompts") if isinstance(doc, dict) else doc
            if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
                raise SearchError(f"{path}: expected a JSON list of strings or {{\"prompts\": [...]}}", path=str(path))
            prompts = [p.strip() for p in items if p.strip()]
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise SearchError(f"{path}: not UTF-8 text", path=str(path)) from None
            prompts = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if not prompts:
            raise SearchError(f"{path}: no prompts", path=str(path))
        return cls(path.name, tuple(prompts))

    @classmethod
    def embedded(cls, n: int = EMBEDDED_DEFAULT_NUM_PROMPTS, seed: int = 0) -> "PromptSet":
        """The embedded model's calibration prompts (every attribute value covered evenly)."""
        from ..embedded import calibration_prompts

        return cls(f"embedded-calibration-{n}-seed{seed}", tuple(calibration_prompts(n, seed)))

    def describe(self, images_per_prompt: int, image_seed: int) -> dict:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "num_prompts": len(self.prompts),
            "images_per_prompt": images_per_prompt,
            "image_seeds": f"{image_seed} + image index (prompt-major)",
        }


def resolve_prompts(prompts: str | None, num_prompts: int | None, *, embedded_model: bool = True) -> PromptSet:
    """The prompt file, else the embedded calibration prompts (embedded model) or :data:`GENERIC_PROMPTS`."""
    if prompts is None:
        if embedded_model:
            return PromptSet.embedded(num_prompts or EMBEDDED_DEFAULT_NUM_PROMPTS)
        return PromptSet("ecad-hub-generic-8", GENERIC_PROMPTS).head(num_prompts)
    return PromptSet.from_file(prompts).head(num_prompts)
