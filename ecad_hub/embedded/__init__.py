"""The embedded model: a small trained text-to-image pipeline and reward model, shipped in the package.

ecad-hub's offline default. Everything loads from the package folder (no network)::

    from ecad_hub import embedded

    pipe = embedded.load_pipeline()                 # diffusers PixArtAlphaPipeline, 32x32 images
    reward = embedded.load_reward()                 # EmbeddedRewardMetric ("embedded-reward")
    prompts = embedded.default_prompts(8, seed=0)   # "a small red digit seven in the top left corner ..."
    images = embedded.generate(pipe, prompts, seeds=range(8))   # float [8, 3, 32, 32] in [0, 1]
    reward.score(images, prompts)                   # mean log-prob of the prompted attributes

    embedded.evaluate_pipeline(pipe, reward, n=200, seed=0)    # prompt-following accuracy

Call the pipeline with :data:`DEFAULT_CALL_KWARGS` (``use_resolution_binning=False``,
``clean_caption=False``, ``max_sequence_length=16``, 20 steps, guidance 4.5) when calling it
directly. The data, model sizes and training are described in ``scripts/train_embedded.py``
and :mod:`ecad_hub.embedded.data`.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable, Sequence

import numpy as np

from ..utils.compat import dtype_kwargs
from . import data
from .data import calibration_prompts, generate_prompts, heldout_prompt_seed_pairs, parse_caption

#: The name searches, frontiers and ``ecad-hub quickstart`` give this model (``base_model="embedded"``);
#: not a Hub id, so model cards carry no ``base_model`` metadata for it.
MODEL_ID = "embedded"
#: The license of the embedded weights: trained by ecad-hub's own script, shipped under the package's license.
LICENSE = "apache-2.0"
#: What the embedded model is (the model card's description of the base model).
CARD_DESCRIPTION = ("The embedded digits model is a small text-to-image model (a diffusers `PixArtAlphaPipeline` "
                    "with a 2.3M-parameter transformer drawing 32x32 images of one coloured digit), trained by "
                    "`scripts/train_embedded.py` and shipped inside the ecad-hub package as `ecad_hub.embedded` "
                    "(not a Hub model).")
#: The quality metric of the embedded reward model (``ecad_hub.embedded.reward.EmbeddedRewardMetric.name``).
REWARD_METRIC = "embedded-reward"
#: The largest drop of the embedded reward (a mean log-probability of the prompted attributes) that
#: still counts as no visible quality loss: about 2% lower probability. The quickstart's default
#: schedule is the fastest within it of all-compute (``ecad_hub.frontier.frontier.quality_default``).
REWARD_TOLERANCE = 0.02

#: Folder of all embedded weights (pipeline/ and reward/), inside the installed package.
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights"
#: ``DiffusionPipeline.from_pretrained(EMBEDDED_PIPELINE_PATH)`` loads the pipeline.
EMBEDDED_PIPELINE_PATH = WEIGHTS_PATH / "pipeline"
REWARD_PATH = WEIGHTS_PATH / "reward"

#: Image side length in pixels (latents are 16x16x4).
IMAGE_SIZE = data.IMAGE_SIZE
#: T5 tokens per prompt: covers every caption of the vocabulary (at most 15 tokens with ``</s>``).
MAX_SEQUENCE_LENGTH = 16
NUM_INFERENCE_STEPS = 20
DEFAULT_GUIDANCE_SCALE = 4.5
#: Keyword arguments to call the embedded pipeline with (the tiny sample size has no resolution bins).
DEFAULT_CALL_KWARGS: dict[str, Any] = {
    "num_inference_steps": NUM_INFERENCE_STEPS,
    "guidance_scale": DEFAULT_GUIDANCE_SCALE,
    "use_resolution_binning": False,
    "clean_caption": False,
    "max_sequence_length": MAX_SEQUENCE_LENGTH,
}

__all__ = [
    "MODEL_ID",
    "LICENSE",
    "CARD_DESCRIPTION",
    "REWARD_METRIC",
    "REWARD_TOLERANCE",
    "WEIGHTS_PATH",
    "EMBEDDED_PIPELINE_PATH",
    "REWARD_PATH",
    "DEFAULT_CALL_KWARGS",
    "load_pipeline",
    "load_reward",
    "default_prompts",
    "calibration_prompts",
    "heldout_prompt_seed_pairs",
    "parse_caption",
    "generate",
    "evaluate_pipeline",
    "asset_size_bytes",
    "asset_fingerprint",
]


def _require(path: Path, what: str) -> None:
    if not path.exists():
        from ..errors import EcadError

        raise EcadError(
            f"embedded {what} weights not found at {path}; run `python scripts/train_embedded.py` to create them",
            path=str(path),
        )


def load_pipeline(device="cpu", dtype=None, path: str | Path | None = None):
    """The embedded ``PixArtAlphaPipeline`` from the package folder (never downloads).

    ``dtype`` defaults to ``torch.float32`` (the transformer is stored in float16 and upcast).
    """
    import torch
    from diffusers import DiffusionPipeline

    path = Path(path) if path is not None else EMBEDDED_PIPELINE_PATH
    _require(path / "model_index.json", "pipeline")
    dtype = dtype or torch.float32
    pipe = DiffusionPipeline.from_pretrained(str(path), local_files_only=True, **dtype_kwargs(dtype))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_reward(device="cpu", path: str | Path | None = None):
    """The embedded reward model as an :class:`~ecad_hub.embedded.reward.EmbeddedRewardMetric`."""
    from .reward import EmbeddedRewardMetric

    path = Path(path) if path is not None else REWARD_PATH
    if not (path / "model.safetensors").exists():
        from ..errors import MetricUnavailableError

        raise MetricUnavailableError(
            f"embedded reward weights not found at {path}; run `python scripts/train_embedded.py`", path=str(path)
        )
    return EmbeddedRewardMetric(device=device, path=None if path == REWARD_PATH else path)


def default_prompts(n: int, seed: int = 0) -> list[str]:
    """``n`` random fully specified prompts of the embedded model's vocabulary (deterministic)."""
    return generate_prompts(n, seed)


def _enter(stack: contextlib.ExitStack, pipe, schedule_context) -> None:
    if schedule_context is None:
        return
    ctx = schedule_context(pipe) if callable(schedule_context) and not hasattr(schedule_context, "__enter__") else schedule_context
    if ctx is not None and hasattr(ctx, "__enter__"):
        stack.enter_context(ctx)


def generate(
    pipe,
    prompts: Sequence[str],
    seeds: Iterable[int],
    batch_size: int = 50,
    schedule_context: Callable[[Any], ContextManager | None] | ContextManager | None = None,
    **call_kwargs,
):
    """Images for ``prompts`` (float tensor ``[N, 3, 32, 32]`` in [0, 1]), one seed per prompt.

    Each image's initial noise comes from ``torch.Generator().manual_seed(seed)`` alone, so a
    (prompt, seed) pair gives the same image whatever the batching. ``call_kwargs`` override
    :data:`DEFAULT_CALL_KWARGS`. ``schedule_context``: see :func:`evaluate_pipeline`.
    """
    import torch

    prompts = list(prompts)
    seeds = [int(s) for s in seeds]
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    kwargs = dict(DEFAULT_CALL_KWARGS)
    kwargs.update(call_kwargs)
    device = getattr(pipe, "_execution_device", None) or getattr(pipe, "device", "cpu")
    out = []
    with contextlib.ExitStack() as stack:
        _enter(stack, pipe, schedule_context)
        for i in range(0, len(prompts), batch_size):
            gens = [torch.Generator(device=device).manual_seed(s) for s in seeds[i : i + batch_size]]
            with torch.no_grad():
                res = pipe(prompt=prompts[i : i + batch_size], generator=gens, output_type="pt", **kwargs)
            out.append(res.images.float().cpu())
    if not out:
        return torch.empty(0, 3, IMAGE_SIZE, IMAGE_SIZE)
    return torch.cat(out)


def evaluate_pipeline(
    pipe,
    reward=None,
    n: int = 200,
    seed: int = 0,
    *,
    pairs: Sequence[tuple[str, int]] | None = None,
    batch_size: int = 50,
    schedule_context: Callable[[Any], ContextManager | None] | ContextManager | None = None,
    return_images: bool = False,
    **call_kwargs,
) -> dict:
    """Prompt following of ``pipe`` on held-out (prompt, seed) pairs, judged by the embedded reward model.

    ``pairs`` defaults to :func:`~ecad_hub.embedded.data.heldout_prompt_seed_pairs` ``(n, seed)``
    (half of them attribute combinations never seen in training). ``schedule_context`` applies a
    caching schedule during generation: a context manager, or a callable ``f(pipe)`` returning
    one (e.g. ``lambda p: apply_schedule(p, schedule)``); a callable returning ``None`` is assumed
    to have changed ``pipe`` in place. ``call_kwargs`` override :data:`DEFAULT_CALL_KWARGS`
    (all-compute sampling, 20 steps, guidance 4.5).

    Returns a dict with ``n``; ``accuracy`` (attribute -> fraction of images in which the reward
    model recognises the prompted value, plus ``"all"``); ``heldout_combos`` / ``seen_combos``
    (the same, split by whether the prompt's attribute combination was held out of training);
    ``mean_reward`` and ``scores`` (:class:`EmbeddedRewardMetric` per image); ``seconds``;
    ``call_kwargs``; and ``images`` if ``return_images``.
    """
    from .reward import prompt_following

    if reward is None:
        reward = load_reward()
    if pairs is None:
        pairs = heldout_prompt_seed_pairs(n, seed)
    prompts = [p for p, _ in pairs]
    seeds = [s for _, s in pairs]
    kwargs = dict(DEFAULT_CALL_KWARGS)
    kwargs.update(call_kwargs)
    t0 = time.time()
    images = generate(pipe, prompts, seeds, batch_size=batch_size, schedule_context=schedule_context, **kwargs)
    seconds = time.time() - t0
    scores = reward.score(images, prompts)
    model = reward.model
    held = np.array([data.is_heldout_combo(parse_caption(p)) for p in prompts], dtype=bool)
    res = {
        "n": len(prompts),
        "accuracy": prompt_following(model, images, prompts),
        "heldout_combos": prompt_following(model, images[torch_index(held)], [p for p, h in zip(prompts, held) if h]),
        "seen_combos": prompt_following(model, images[torch_index(~held)], [p for p, h in zip(prompts, held) if not h]),
        "mean_reward": float(np.mean(scores)) if len(scores) else float("nan"),
        "scores": scores,
        "seconds": seconds,
        "call_kwargs": {k: v for k, v in kwargs.items()},
    }
    if return_images:
        res["images"] = images
    return res


def torch_index(mask: np.ndarray):
    import torch

    return torch.from_numpy(np.flatnonzero(mask))


def _files(part: str | None = None) -> list[Path]:
    root = WEIGHTS_PATH if part is None else WEIGHTS_PATH / part
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith("."))


def asset_size_bytes() -> int:
    """Total size of the embedded weights and configs (must stay under 20 MB)."""
    return sum(p.stat().st_size for p in _files())


def asset_fingerprint(part: str | None = None) -> str:
    """SHA-256 over the file names and contents of the embedded weights (``part``: 'pipeline', 'reward')."""
    h = hashlib.sha256()
    root = WEIGHTS_PATH if part is None else WEIGHTS_PATH / part
    for p in _files(part):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()
