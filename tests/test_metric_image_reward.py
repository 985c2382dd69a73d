"""The ``image-reward`` metric (ImageReward through ``ecad_hub.metrics._image_reward_compat``).

Most tests need the optional ``image-reward`` package (``pip install 'ecad-hub[image-reward]'``)
and are skipped without it. The two marked ``slow`` build ImageReward's ViT-L + BERT-base with
random weights (~20-25 s on 2 CPU cores, once per module for the shared one) and run the ViT-L
(~5 s per image on 2 cores); no weights are downloaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys

import pytest

from ecad_hub.metrics import _image_reward_compat

# CI installs torchvision from PyPI (a CUDA build) next to the CPU-only torch wheel; this lets it
# import (it does nothing anywhere else). Must run before anything imports transformers/torchvision.
_image_reward_compat.allow_torchvision_without_ops()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ecad_hub.errors import MetricUnavailableError  # noqa: E402
from ecad_hub.metrics import get_metric  # noqa: E402
from ecad_hub.metrics import image_reward  # noqa: E402
from ecad_hub.metrics.image_reward import MED_CONFIG, ImageRewardMetric, _random_vocab  # noqa: E402

requires_package = pytest.mark.skipif(
    importlib.util.find_spec("ImageReward") is None,
    reason="optional package 'image-reward' is not installed (pip install 'ecad-hub[image-reward]')",
)

PROMPTS = ["a photo of a red cat on a mat", "a blue sky", "1 dog, 2 dogs: three?"]


def _pictures(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` different 8-bit RGB pictures (smooth patterns plus noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    out = []
    for i in range(n):
        f = rng.uniform(5, 40, size=(3, 2))
        base = np.stack([np.sin(xx / f[c, 0] + i) * np.cos(yy / f[c, 1] - c) for c in range(3)], -1)
        pic = 127.5 + 100 * base + rng.normal(0, 12, size=base.shape)
        out.append(np.clip(np.round(pic), 0, 255).astype(np.uint8))
    return out


def _as_tensor(pictures: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float() / 255.0


@pytest.fixture(scope="module")
def metric() -> ImageRewardMetric:
    return ImageRewardMetric.from_random(seed=0, device="cpu", batch_size=2)


def test_without_the_package_the_error_names_the_extra(monkeypatch):
    for missing, expected in [("ImageReward", "the 'image-reward' package"), ("timm.models", "module 'timm.models'")]:
        def fail(name=missing):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        monkeypatch.setattr(_image_reward_compat, "import_image_reward", fail)
        with pytest.raises(MetricUnavailableError) as info:
            get_metric("image-reward")
        message = str(info.value)
        assert expected in message and "pip install 'ecad-hub[image-reward]'" in message and "\n" not in message


@requires_package
@pytest.mark.parametrize("height,width", [(512, 512), (256, 320), (320, 256), (1024, 768), (128, 96), (224, 300)])
def test_preprocessing_matches_the_package_on_pil_images(height, width):
    from PIL import Image

    _image_reward_compat.import_image_reward()
    package_transform = importlib.import_module("ImageReward.ImageReward")._transform(224)  # = ImageReward.preprocess
    pictures = _pictures(2, height, width, seed=height + width)
    ours = image_reward.preprocess(_as_tensor(pictures))
    theirs = torch.stack([package_transform(Image.fromarray(p)) for p in pictures])
    assert ours.shape == theirs.shape == (2, 3, 224, 224)
    levels = (ours - theirs).abs() * torch.tensor(image_reward.CLIP_STD).view(1, 3, 1, 1) * 255
    # PIL resamples in fixed point: a few pixels may differ by one or two 8-bit levels
    assert levels.max().item() <= 2.01
    assert levels.mean().item() < 0.05


@requires_package
def test_missing_weights_say_which_model_and_suggest_fidelity(tmp_path):
    with pytest.raises(MetricUnavailableError) as info:
        ImageRewardMetric(cache_dir=tmp_path, local_files_only=True)
    message = str(info.value)
    assert "\n" not in message
    assert "THUDM/ImageReward/ImageReward.pt" in message and "--metric fidelity" in message
    with pytest.raises(MetricUnavailableError, match="--metric fidelity"):
        get_metric("image-reward", cache_dir=tmp_path, local_files_only=True)


@requires_package
def test_import_shims_do_not_outlive_the_import(monkeypatch):
    import warnings

    import transformers
    import transformers.modeling_utils as modeling_utils

    for name in [n for n in sys.modules if n == "ImageReward" or n.startswith("ImageReward.")]:
        monkeypatch.delitem(sys.modules, name)  # a first import again (restored afterwards)
    filters, verbosity = list(warnings.filters), transformers.logging.get_verbosity()
    package = _image_reward_compat.import_image_reward()
    assert package is sys.modules["ImageReward"]
    # blip.py's warnings.filterwarnings("ignore") and blip_pretrain.py's set_verbosity_error() are undone
    assert warnings.filters == filters and transformers.logging.get_verbosity() == verbosity
    assert not isinstance(sys.modules.get("clip"), _image_reward_compat._UnavailableClip)
    if int(transformers.__version__.split(".")[0]) >= 5:
        for name in ("apply_chunking_to_forward", "find_pruneable_heads_and_indices", "prune_linear_layer"):
            assert not hasattr(modeling_utils, name), name
    clip_score = importlib.import_module("ImageReward.models.CLIPScore")
    if isinstance(clip_score.clip, _image_reward_compat._UnavailableClip):
        with pytest.raises(ImportError, match="OpenAI CLIP is not installed"):
            clip_score.clip.load("ViT-L/14")


@requires_package
@pytest.mark.slow
def test_scores_match_the_package_and_are_deterministic(metric):
    """Batched scores on tensors = the package's own ImageReward.score(prompt, PIL image), one by one."""
    from PIL import Image

    pictures = _pictures(2, 300, 400, seed=7)  # non-square: downscaled, then centre-cropped
    images = _as_tensor(pictures)
    ours = metric.score(images, PROMPTS[:2])  # one batch of 2
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float64 and ours.shape == (2,)
    assert np.all(np.isfinite(ours))
    assert abs(ours[0] - ours[1]) > 1e-3, "a random model should still tell these images apart"
    theirs = np.array([metric.model.score(p, Image.fromarray(pic)) for p, pic in zip(PROMPTS, pictures)])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-3 * max(1.0, np.abs(theirs).max()))
    np.testing.assert_array_equal(metric.score(images, PROMPTS[:2]), ours)
    assert metric.score(images[:0], []).shape == (0,)
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        metric.score(images, PROMPTS[:1])
    assert metric.describe() == {"name": "image-reward", "model": "random(seed=0)", "repo": "THUDM/ImageReward"}


@requires_package
@pytest.mark.slow
def test_loads_a_checkpoint_from_the_hub_cache_offline(metric, hub, tmp_path):
    """The real loading path: THUDM/ImageReward (ImageReward.pt, med_config.json) and the
    (google-bert/)bert-base-uncased tokenizer from a Hugging Face cache (filled from the test Hub),
    offline. The checkpoint holds one constant per tensor (stride-0 tensors: a few KB), checked
    value by value after loading with weights_only=True."""
    from huggingface_hub import hf_hub_download

    state = metric.model.state_dict()
    checkpoint = {}
    for i, (key, value) in enumerate(state.items()):
        if value.is_floating_point():
            checkpoint[key] = torch.full((1,), (i % 97) / 1000.0).expand(value.shape)
        else:
            checkpoint[key] = value.clone()  # position_ids
    checkpoint["blip.not_in_the_scoring_model.weight"] = torch.zeros(2)  # ignored, as ImageReward.load does
    path = tmp_path / "ImageReward.pt"
    torch.save(checkpoint, path)
    vocab = _random_vocab()
    files = {
        "THUDM/ImageReward": {"ImageReward.pt": path.read_bytes(), "med_config.json": json.dumps(MED_CONFIG)},
        "google-bert/bert-base-uncased": {  # the test Hub only knows namespaced repo ids
            "vocab.txt": "\n".join(sorted(vocab, key=vocab.get)) + "\n",
            "tokenizer_config.json": json.dumps({"do_lower_case": True}),
        },
    }
    cache = tmp_path / "cache"
    for repo_id, repo_files in files.items():
        hub.seed(repo_id, repo_files)
        for filename in repo_files:
            hf_hub_download(repo_id, filename, cache_dir=cache)
    hub.clear_requests()

    loaded = ImageRewardMetric(
        cache_dir=cache, local_files_only=True, device="cpu", tokenizer="google-bert/bert-base-uncased"
    )
    assert not hub.requests
    params = dict(loaded.model.named_parameters())
    for i, key in enumerate(state):
        if key in params:
            assert torch.all(params[key] == (i % 97) / 1000.0), key
    assert loaded.model.blip.tokenizer("a cat").input_ids[0] == vocab["[CLS]"]
    assert loaded.model.blip.tokenizer.enc_token_id == len(vocab) + 1  # [DEC], then [ENC]: init_tokenizer ran

    with pytest.raises(MetricUnavailableError, match="lacks"):
        image_reward._load_checkpoint(loaded.model, {"something.else": torch.zeros(3)}, "other.pt")
