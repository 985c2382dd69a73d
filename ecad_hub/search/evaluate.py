"""Evaluating one schedule: generate the calibration images with it applied, score them.

:class:`Evaluator` holds a loaded pipeline, the calibration prompts' embeddings (computed once,
with ``pipe.encode_prompt``, and passed as ``prompt_embeds`` to every call), the fixed image
seeds and the quality metric. The same class runs in-process and inside Ray actors, so both
give identical values for identical settings (fixed generators, dtype and thread count).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import SearchError
from ..schedule import CacheSchedule


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with ``torch.set_num_threads(n)`` and restore the previous count after."""
    import torch

    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def is_all_compute(schedule: CacheSchedule) -> bool:
    """Whether ``schedule`` computes everything (step 0 and absent bits do not count)."""
    return all(bool(m.all()) for m in schedule.effective_masks().values())


def _as_images(result):
    """A pipeline output as images ``[N, 3, H, W]``: a video ``[N, F, 3, H, W]`` (``.frames``)
    becomes one image per video, its frames side by side, so any image metric scores all frames."""
    import torch

    images = getattr(result, "images", None)
    if images is None:
        images = getattr(result, "frames", None)
    if images is None:
        raise SearchError(f"the pipeline returned {type(result).__name__} with neither images nor frames")
    images = torch.as_tensor(images) if not isinstance(images, torch.Tensor) else images
    if images.ndim == 5:
        n, f, c, h, w = images.shape
        images = images.permute(0, 2, 3, 1, 4).reshape(n, c, h, f * w)
    return images


def _detach(value):
    """Prompt embeddings without autograd history (a tensor, or a list of per-prompt tensors)."""
    if isinstance(value, (list, tuple)):
        return [v.detach() if hasattr(v, "detach") else v for v in value]
    return value.detach() if hasattr(value, "detach") else value


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class Evaluator:
    """Generates a schedule's calibration images and scores them with a metric.

    Args:
        pipe: a loaded diffusers pipeline whose transformer has an adapter; the adapter
            (:mod:`ecad_hub.adapters`) encodes the prompts and adds the family's call arguments.
        settings: ``height``, ``width``, ``num_inference_steps``, ``guidance_scale``, ``max_sequence_length``.
        prompts: the calibration prompts.
        images_per_prompt: images per prompt; image ``k`` (prompt-major) uses seed ``image_seed + k``.
        metric: a :class:`~ecad_hub.metrics.QualityMetric`.
        batch_size: images per pipeline call (``None``: all at once).
        latency_runs: how many timed generations :meth:`evaluate` does when ``measure_latency``.
    """

    def __init__(self, pipe, settings: dict, prompts: Sequence[str], *, images_per_prompt: int = 1,
                 image_seed: int = 0, metric=None, batch_size: int | None = None, latency_runs: int = 1):
        from ..adapters import adapter_for

        self.pipe = pipe
        self.adapter = adapter_for(pipe.transformer)
        self.settings = dict(settings)
        self.prompts = list(prompts)
        self.images_per_prompt = int(images_per_prompt)
        self.prompt_index = [i for i in range(len(self.prompts)) for _ in range(self.images_per_prompt)]
        self.image_prompts = [self.prompts[i] for i in self.prompt_index]
        self.seeds = [int(image_seed) + k for k in range(len(self.prompt_index))]
        self.metric = metric
        self.batch_size = int(batch_size) if batch_size else len(self.seeds)
        self.latency_runs = max(1, int(latency_runs))
        self.reference = None  # all-compute images, float32 [N, 3, H, W] (fidelity-style metrics)
        self.device = getattr(pipe, "_execution_device", None) or pipe.device
        self._embeds = self._encode()

    @property
    def num_images(self) -> int:
        return len(self.seeds)

    # --- prompt embeddings (once) -----------------------------------------------------------
    def _encode(self) -> dict:
        import torch

        s = self.settings
        with torch.no_grad():
            out = self.adapter.encode_prompts(self.pipe, self.prompts, guidance_scale=s["guidance_scale"],
                                              max_sequence_length=s["max_sequence_length"], device=self.device)
        return {k: _detach(v) for k, v in out.items() if v is not None}

    def _call_kwargs(self, start: int, stop: int) -> dict:
        import torch

        kw = self.adapter.select_prompt_rows(self._embeds, self.prompt_index[start:stop])
        s = self.settings
        generic = dict(height=s["height"], width=s["width"], num_inference_steps=s["num_inference_steps"],
                       guidance_scale=s["guidance_scale"], output_type="pt")
        if "num_frames" in s:
            generic["num_frames"] = s["num_frames"]
        # only what this pipeline takes (DiT has no height/width; a guider-driven pipeline no guidance_scale)
        kw.update({k: v for k, v in generic.items() if self._accepts(k)})
        kw.update(self.adapter.call_kwargs(s, prompt_embeds=True))
        return kw

    def _accepts(self, name: str) -> bool:
        import inspect

        params = getattr(self, "_call_params", None)
        if params is None:
            sig = inspect.signature(type(self.pipe).__call__).parameters
            any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values())
            params = self._call_params = (set(sig), any_kw)
        return params[1] or name in params[0]

    # --- generation -------------------------------------------------------------------------
    def generate(self, schedule: CacheSchedule | None = None, progress: Callable[[int], Any] | None = None):
        """The calibration images (float32 CPU ``[N, 3, H, W]`` in [0, 1]) with ``schedule`` applied
        (``None``: no schedule, the all-compute images)."""
        import torch

        from ..hooks import apply_schedule

        out = []
        ctx = apply_schedule(self.pipe, schedule) if schedule is not None else contextlib.nullcontext()
        with ctx, torch.no_grad():
            for start in range(0, self.num_images, self.batch_size):
                stop = min(start + self.batch_size, self.num_images)
                gens = [torch.Generator(device="cpu").manual_seed(seed) for seed in self.seeds[start:stop]]
                res = self.pipe(generator=gens, **self._call_kwargs(start, stop))
                out.append(_as_images(res).detach().float().cpu())
                if progress is not None:
                    progress(stop - start)
        return torch.cat(out)

    def _sync(self) -> None:
        import torch

        if str(self.device).startswith("cuda") and torch.cuda.is_available():
            torch.cuda.synchronize()

    def timed_generate(self, schedule: CacheSchedule | None, progress=None, runs: int = 1):
        """(images, milliseconds per image: the fastest of ``runs`` timed generations)."""
        best = math.inf
        images = None
        for r in range(max(1, runs)):
            self._sync()
            t0 = time.perf_counter()
            images = self.generate(schedule, progress=progress if r == 0 else None)
            self._sync()
            best = min(best, (time.perf_counter() - t0) * 1000.0 / self.num_images)
        return images, best

    def make_reference(self, progress=None):
        """Generate (and keep) the all-compute images; returns them with ms per image."""
        images, ms = self.timed_generate(None, progress=progress)
        self.reference = images
        return images, ms

    def set_reference(self, images) -> None:
        import torch

        self.reference = torch.as_tensor(images).float()

    # --- scoring ----------------------------------------------------------------------------
    def score(self, images) -> float:
        """Mean metric score of the calibration images (the quality of a schedule)."""
        needs_ref = bool(getattr(self.metric, "needs_reference", False))
        if needs_ref and self.reference is None:
            raise SearchError(f"metric {self.metric.name!r} needs the all-compute reference images; none were generated")
        try:
            scores = self.metric.score(images, self.image_prompts, reference_images=self.reference if needs_ref else None)
        except SearchError:
            raise
        except Exception as err:  # noqa: BLE001 - a metric's failure is reported in one line
            raise SearchError(f"metric {self.metric.name!r} failed: {type(err).__name__}: {_first_line(err)}") from err
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if scores.size != self.num_images:
            raise SearchError(f"metric {self.metric.name!r} returned {scores.size} scores for {self.num_images} images")
        value = float(scores.mean())
        if not math.isfinite(value):
            raise SearchError(f"metric {self.metric.name!r} returned a non-finite score ({value})")
        return value

    def evaluate(self, schedule: CacheSchedule, *, measure_latency: bool = False, progress=None) -> dict:
        """``{"quality": mean score}`` (+ ``"latency_ms_per_image"`` when ``measure_latency``)."""
        if not measure_latency and self.reference is not None and is_all_compute(schedule):
            images = self.reference  # all-compute: exactly the reference images
            if progress is not None:
                progress(self.num_images)
            return {"quality": self.score(images)}
        if measure_latency:
            images, ms = self.timed_generate(schedule, progress=progress, runs=self.latency_runs)
            return {"quality": self.score(images), "latency_ms_per_image": ms}
        return {"quality": self.score(self.generate(schedule, progress=progress))}
