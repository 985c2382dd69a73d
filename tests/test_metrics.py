"""The ``fidelity`` and ``clip`` quality metrics (no downloads: CLIP is a random tiny model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecad_hub.errors import MetricUnavailableError
from ecad_hub.metrics import QualityMetric, available_metrics, get_metric
from ecad_hub.metrics.fidelity import FidelityMetric, psnr, ssim


def _images(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth, structured test images in [0, 1] (SSIM needs structure, not flat noise)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for i in range(n):
        f = torch.rand(3, 2, generator=g) * 6 + 1
        chans = [0.5 + 0.4 * torch.sin(f[c, 0] * 6.28 * xx + i) * torch.cos(f[c, 1] * 6.28 * yy - c) for c in range(3)]
        out.append(torch.stack(chans))
    return torch.stack(out).clamp(0, 1)


def _noisy(images: torch.Tensor, std: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (images + std * torch.randn(images.shape, generator=g)).clamp(0, 1)


# --------------------------------------------------------------------------------------------
# fidelity
# --------------------------------------------------------------------------------------------

def test_builtin_metrics_registered():
    assert {"fidelity", "clip", "embedded-reward"} <= set(available_metrics())
    m = get_metric("fidelity")
    assert isinstance(m, FidelityMetric) and isinstance(m, QualityMetric)
    assert m.needs_reference and m.name == "fidelity"
    assert m.describe() == {"name": "fidelity", "measure": "psnr", "max_psnr": 60.0}


def test_identical_images_get_the_maximum_score():
    ref = _images()
    assert torch.equal(psnr(ref, ref), torch.full((4,), 60.0, dtype=torch.float64))
    assert torch.allclose(ssim(ref, ref), torch.ones(4, dtype=torch.float64), atol=1e-12)
    np.testing.assert_array_equal(FidelityMetric().score(ref, ["p"] * 4, ref), np.full(4, 60.0))
    np.testing.assert_allclose(FidelityMetric(measure="ssim").score(ref, ["p"] * 4, ref), np.ones(4), atol=1e-12)
    assert torch.isinf(psnr(ref, ref, max_psnr=None)).all()


def test_noise_lowers_psnr_and_ssim_monotonically():
    ref = _images()
    levels = [0.005, 0.02, 0.05, 0.2]
    p = [psnr(_noisy(ref, s), ref) for s in levels]
    q = [ssim(_noisy(ref, s), ref) for s in levels]
    for a, b in zip(p, p[1:]):
        assert (a > b).all()
    for a, b in zip(q, q[1:]):
        assert (a > b).all()
    assert (q[0] < 1).all() and (q[-1] > -1).all()
    # PSNR is 10 log10(1 / MSE): check against the definition for one image
    x, r = _noisy(ref, 0.05)[0].double(), ref[0].double()
    expected = 10 * torch.log10(1 / ((x - r) ** 2).mean())
    assert torch.isclose(psnr(x[None], r[None])[0], expected)


def test_ssim_properties():
    ref = _images(2)
    # symmetric
    a = _noisy(ref, 0.1)
    assert torch.allclose(ssim(a, ref), ssim(ref, a))
    # flat images: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1)
    x, y = torch.full((1, 3, 16, 16), 0.3), torch.full((1, 3, 16, 16), 0.6)
    c1 = 0.01 ** 2
    assert float(ssim(x, y)[0]) == pytest.approx((2 * 0.3 * 0.6 + c1) / (0.3 ** 2 + 0.6 ** 2 + c1), rel=1e-6)
    # images smaller than the window still work (the window shrinks)
    tiny = _images(2, size=6)
    assert torch.allclose(ssim(tiny, tiny), torch.ones(2, dtype=torch.float64))


def test_fidelity_errors():
    ref = _images(2)
    with pytest.raises(ValueError, match="reference"):
        FidelityMetric().score(ref, ["a", "b"], None)
    with pytest.raises(ValueError, match="shape"):
        psnr(ref, ref[:, :, :16])
    with pytest.raises(MetricUnavailableError, match="unknown measure"):
        FidelityMetric(measure="lpips")


# --------------------------------------------------------------------------------------------
# clip
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_clip():
    from tiny_models import tiny_clip_tokenizer
    from transformers import CLIPConfig, CLIPModel

    tok = tiny_clip_tokenizer()
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIPModel(config).eval()
    return model, tok


def test_clip_score_with_a_random_tiny_model(tiny_clip):
    from ecad_hub.metrics.clip_score import ClipScoreMetric

    model, tok = tiny_clip
    metric = ClipScoreMetric.from_model(model, tok, model_id="tiny-random-clip", batch_size=3)
    images = _images(5, size=48)
    prompts = ["a photo of a cat", "a red car on a road at night", "a dog", "a blue sky", "an astronaut riding a horse"]
    scores = metric.score(images, prompts)
    assert scores.shape == (5,) and scores.dtype == np.float64
    assert ((scores >= 0) & (scores <= 100)).all()
    # deterministic and independent of batching
    big = ClipScoreMetric.from_model(model, tok, batch_size=16).score(images, prompts)
    np.testing.assert_allclose(scores, big, rtol=1e-5, atol=1e-4)
    # the definition: 100 * max(cos(image, text), 0) of CLIP's projected embeddings
    pix = metric.preprocess(images[:1])
    assert pix.shape == (1, 3, 32, 32)
    with torch.no_grad():
        t = tok(prompts[:1], return_tensors="pt", padding=True)
        img = metric._features(model.get_image_features(pixel_values=pix))
        txt = metric._features(model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]))
    expected = 100 * max(float(torch.nn.functional.cosine_similarity(img, txt)[0]), 0.0)
    assert scores[0] == pytest.approx(expected, abs=1e-4)
    assert metric.describe() == {"name": "clip", "model": "tiny-random-clip"}
    with pytest.raises(ValueError, match="prompts"):
        metric.score(images, prompts[:2])


def test_clip_without_weights_offline_names_the_model_and_suggests_fidelity(tmp_path):
    with pytest.raises(MetricUnavailableError) as err:
        get_metric("clip", local_files_only=True, cache_dir=str(tmp_path))
    message = str(err.value)
    assert "openai/clip-vit-large-patch14" in message and "--metric fidelity" in message
    assert "\n" not in message
