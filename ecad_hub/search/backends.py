"""Evaluation backends: what evaluates the search's candidates. :class:`Backend` is the interface
the runner uses; :class:`InProcessBackend` evaluates in this process, one candidate after the other
(:class:`~ecad_hub.search.ray_backend.RayBackend`: on a Ray cluster). ``run_search(backend=...)``
accepts any object with this interface (the search benchmark shares one cached evaluator)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol

import numpy as np

from .evaluate import Evaluator, torch_threads
from .genome import Genome


class Backend(Protocol):
    """The interface between the runner and whatever evaluates candidates."""

    #: Images generated per candidate (prompts x images per prompt).
    num_images: int

    def describe_metric(self) -> dict:
        """The metric's identity, as recorded in ``search.json``."""

    def needs_reference(self) -> bool:
        """Whether the metric compares against all-compute images (:meth:`make_reference`)."""

    def make_reference(self, progress: Callable[[int], Any] | None = None) -> tuple[Any, float | None]:
        """The all-compute images (a ``[N, 3, H, W]`` tensor) and their ms per image."""

    def set_reference(self, images) -> None:
        """Give the metric the reference images (made now, or read back from the run directory)."""

    def evaluate(self, items: Iterable[tuple[str, np.ndarray]], *, measure_latency: bool,
                 on_result: Callable[[str, dict], None], on_images: Callable[[int], None]) -> None:
        """Evaluate ``(key, genome vector)`` items; call ``on_result(key, result)`` for each (in any
        order; ``result`` has ``quality``, and ``latency_ms_per_image`` with ``measure_latency``)
        and ``on_images(n)`` as images are generated."""

    def close(self) -> None:
        """Release what the backend holds (actors, ...)."""


class InProcessBackend:
    """Evaluates candidates one after the other in this process."""

    def __init__(self, evaluator: Evaluator, genome: Genome, num_threads: int | None):
        self.evaluator = evaluator
        self.genome = genome
        self.num_threads = num_threads
        self.num_images = evaluator.num_images

    def describe_metric(self) -> dict:
        return self.evaluator.metric.describe()

    def needs_reference(self) -> bool:
        return bool(getattr(self.evaluator.metric, "needs_reference", False))

    def make_reference(self, progress=None):
        with torch_threads(self.num_threads):
            return self.evaluator.make_reference(progress=progress)

    def set_reference(self, images) -> None:
        self.evaluator.set_reference(images)

    def evaluate(self, items, *, measure_latency: bool, on_result: Callable, on_images: Callable) -> None:
        with torch_threads(self.num_threads):
            for key, x in items:
                schedule = self.genome.schedule(x)
                on_result(key, self.evaluator.evaluate(schedule, measure_latency=measure_latency, progress=on_images))

    def close(self) -> None:
        pass
