"""Quality metrics for schedule search: a small interface users can implement.

A metric scores generated images, one float per image, **higher is better**. Images are
given as a float tensor ``[N, 3, H, W]`` with values in ``[0, 1]`` (what
``pipe(..., output_type="pt").images`` returns), with the prompt of each image. Metrics
that judge a cached image against the all-compute image of the same prompt and seed
(``needs_reference = True``) also get those reference images.

Write your own::

    from ecad_hub.metrics import QualityMetric, register_metric

    class Sharpness(QualityMetric):
        name = "sharpness"

        def score(self, images, prompts, reference_images=None):
            gray = images.mean(dim=1)
            return (gray[:, 1:, :] - gray[:, :-1, :]).abs().mean(dim=(1, 2)).cpu().numpy()

    register_metric("sharpness", Sharpness)

and run ``ecad-hub search --metric sharpness`` (after importing the module that registers
it, e.g. with ``--plugin mymodule``; :func:`load_metric` imports the plugins, then builds the
metric on a device: what the search does in-process and in each Ray actor).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import MetricUnavailableError, SearchError


class QualityMetric:
    """Base class of quality metrics. Subclasses set ``name`` and implement :meth:`score`."""

    #: Short name used on the command line and recorded in schedule metrics.
    name: str = "metric"
    #: Whether :meth:`score` needs the all-compute image of the same prompt and seed.
    needs_reference: bool = False

    def score(self, images, prompts: Sequence[str], reference_images=None) -> np.ndarray:
        """Return one score per image (numpy float64 array of length ``len(images)``)."""
        raise NotImplementedError

    def to(self, device) -> "QualityMetric":
        """Move any model the metric holds to ``device``; returns ``self``."""
        return self

    def describe(self) -> dict:
        """What is recorded as the metric's identity in schedule metrics and search provenance."""
        return {"name": self.name}


_REGISTRY: dict[str, Callable[..., QualityMetric]] = {}


def register_metric(name: str, factory: Callable[..., QualityMetric]) -> None:
    """Make ``factory(**kwargs)`` available as ``get_metric(name)`` and ``--metric name``."""
    _REGISTRY[name] = factory


def available_metrics() -> list[str]:
    _register_builtins()
    return sorted(_REGISTRY)


def get_metric(name: str, **kwargs) -> QualityMetric:
    """Instantiate a registered metric by name; unknown names give a clear error."""
    _register_builtins()
    if name not in _REGISTRY:
        raise MetricUnavailableError(
            f"unknown metric {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name](**kwargs)


def import_plugins(plugins: Sequence[str] | None) -> None:
    """Import the modules ``plugins`` (``--plugin``), which may call :func:`register_metric`."""
    import importlib

    for module in plugins or ():
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise SearchError(f"cannot import plugin {module!r}: {err}") from None


def load_metric(name: str, kwargs: dict | None = None, plugins: Sequence[str] | None = None,
                device=None) -> QualityMetric:
    """``get_metric(name, **kwargs)`` after importing ``plugins``, moved to ``device`` (a metric
    without device support stays where it is)."""
    import_plugins(plugins)
    metric = get_metric(name, **(kwargs or {}))
    try:
        metric.to(device)
    except Exception:  # noqa: BLE001 - a metric without device support stays where it is
        pass
    return metric


_BUILTINS_DONE = False


def _register_builtins() -> None:
    """Register the metrics that ship with ecad-hub (imports are lazy: nothing heavy until used)."""
    global _BUILTINS_DONE
    if _BUILTINS_DONE:
        return
    _BUILTINS_DONE = True
    import importlib

    for module, attr, name in _BUILTIN_METRICS:
        def factory(_module=module, _attr=attr, **kwargs):
            mod = importlib.import_module(_module, __name__)
            return getattr(mod, _attr)(**kwargs)

        _REGISTRY.setdefault(name, factory)


#: (module relative to this package, class name, metric name). Modules are imported on use.
_BUILTIN_METRICS: list[tuple[str, str, str]] = [
    (".fidelity", "FidelityMetric", "fidelity"),
    (".clip_score", "ClipScoreMetric", "clip"),
    (".image_reward", "ImageRewardMetric", "image-reward"),
    ("ecad_hub.embedded.reward", "EmbeddedRewardMetric", "embedded-reward"),
]
