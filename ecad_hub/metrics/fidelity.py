"""The ``fidelity`` metric: agreement of a cached image with the all-compute image of the same prompt and seed.

No model weights: works offline on any machine, and it is what a caching schedule should
preserve when nothing better is available. Per image, either

* PSNR in dB (``measure="psnr"``, the default), capped at ``max_psnr`` (60 dB: an image that
  differs by less than 8-bit quantisation noise, about 59 dB, counts as identical; identical
  images would otherwise score +inf), or
* SSIM (``measure="ssim"``; Wang et al. 2004, gaussian window 11 x 11, sigma 1.5, K1 = 0.01,
  K2 = 0.03, per channel then averaged; 1.0 for identical images).

Images are float ``[N, 3, H, W]`` tensors in ``[0, 1]``. ``psnr`` and ``ssim`` are also
usable on their own::

    >>> from ecad_hub.metrics.fidelity import psnr, ssim
    >>> psnr(images, reference).shape
    torch.Size([8])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import QualityMetric

MEASURES = ("psnr", "ssim")


def _as_float(t):
    import torch

    t = torch.as_tensor(t)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(t.shape)}")
    return t.detach().to(dtype=torch.float64, device="cpu")


def psnr(images, reference, *, data_range: float = 1.0, max_psnr: float | None = 60.0):
    """Per-image PSNR (dB, float64 tensor ``[N]``) of ``images`` against ``reference``.

    ``max_psnr`` caps the value (identical images give ``max_psnr`` instead of +inf);
    ``None`` disables the cap.
    """
    import torch

    x, y = _as_float(images), _as_float(reference)
    if x.shape != y.shape:
        raise ValueError(f"images {tuple(x.shape)} and reference {tuple(y.shape)} differ in shape")
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    value = 10.0 * torch.log10(data_range ** 2 / mse)  # mse 0 -> +inf (torch does not raise)
    if max_psnr is not None:
        value = value.clamp(max=max_psnr)
    return value


def _gaussian_window(size: int, sigma: float):
    import torch

    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g


def ssim(images, reference, *, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03):
    """Per-image SSIM (float64 tensor ``[N]``): gaussian-weighted local statistics, valid region.

    The window shrinks to the image size for images smaller than ``window_size`` pixels.
    """
    import torch.nn.functional as F

    x, y = _as_float(images), _as_float(reference)
    if x.shape != y.shape:
        raise ValueError(f"images {tuple(x.shape)} and reference {tuple(y.shape)} differ in shape")
    n, c, h, w = x.shape
    size = max(1, min(window_size, h, w))
    g = _gaussian_window(size, sigma)
    # separable gaussian filter, one group per channel
    kh = g.view(1, 1, size, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, size).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x ** 2
    syy = blur(y * y) - mu_y ** 2
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2)
    return (num / den).flatten(1).mean(dim=1)


class FidelityMetric(QualityMetric):
    """Agreement with the all-compute image of the same prompt and seed (``--metric fidelity``).

    Args:
        measure: ``"psnr"`` (dB, capped at ``max_psnr``) or ``"ssim"``.
        max_psnr: cap of the PSNR (default 60 dB, just above 8-bit quantisation noise).
        window_size, sigma: SSIM's gaussian window.
    """

    name = "fidelity"
    needs_reference = True

    def __init__(self, measure: str = "psnr", max_psnr: float = 60.0, window_size: int = 11, sigma: float = 1.5):
        if measure not in MEASURES:
            from ..errors import MetricUnavailableError

            raise MetricUnavailableError(f"metric 'fidelity': unknown measure {measure!r}; use one of {', '.join(MEASURES)}")
        self.measure = measure
        self.max_psnr = float(max_psnr)
        self.window_size = int(window_size)
        self.sigma = float(sigma)

    def score(self, images, prompts: Sequence[str], reference_images=None) -> np.ndarray:
        if reference_images is None:
            raise ValueError("the fidelity metric needs the all-compute reference images")
        if len(images) != len(reference_images):
            raise ValueError(f"{len(images)} images but {len(reference_images)} reference images")
        if self.measure == "psnr":
            out = psnr(images, reference_images, max_psnr=self.max_psnr)
        else:
            out = ssim(images, reference_images, window_size=self.window_size, sigma=self.sigma)
        return out.numpy().astype(np.float64)

    def describe(self) -> dict:
        d = {"name": self.name, "measure": self.measure}
        if self.measure == "psnr":
            d["max_psnr"] = self.max_psnr
        else:
            d.update(window_size=self.window_size, sigma=self.sigma)
        return d
