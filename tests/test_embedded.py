"""The embedded digit model: offline data, the trained pipeline and reward model shipped in the package.

Fast (well under a minute on 2 CPU cores): the pipeline is loaded once per module and generates
24 images of 32x32 at 20 steps.

Thresholds on small samples. The full evaluation (``scripts/train_embedded.py``, 400 held-out
prompt/seed pairs, 5,000 held-out real images; numbers in ``weights/training.json``) requires
>= 90% digit and >= 95% colour recognition for generated images and >= 97% per-attribute reward
accuracy on real images. Here, the assertions are set where a model meeting those rates fails
with probability < 1e-3 on the sample size used (binomial lower tails), so the tests catch a
broken model or loader without depending on the exact floating-point behaviour of the machine:

* 24 generated images, digit rate p >= 0.90: P(X <= 15) = 3.2e-4   -> require >= 16/24.
* 24 generated images, colour rate p >= 0.95: P(X <= 18) = 9.6e-4  -> require >= 19/24.
* 300 real images, attribute accuracy p >= 0.97: P(X <= 279) = 3.4e-4 -> require >= 280/300.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ecad_hub import embedded as E
from ecad_hub.embedded import data as D
from ecad_hub.embedded.reward import EmbeddedRewardMetric, attribute_accuracy, prompt_following

N_GEN = 24


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(2)
    return E.load_pipeline()


@pytest.fixture(scope="module")
def reward():
    return E.load_reward()


@pytest.fixture(scope="module")
def generated(pipe):
    pairs = E.heldout_prompt_seed_pairs(N_GEN, seed=7)
    prompts = [p for p, _ in pairs]
    images = E.generate(pipe, prompts, [s for _, s in pairs], batch_size=N_GEN)
    return prompts, [s for _, s in pairs], images


# ----------------------------------------------------------------------------- data


def test_dataset_is_deterministic():
    a, la, ca = D.make_dataset(64, seed=3)
    b, lb, cb = D.make_dataset(64, seed=3)
    c, _, cc = D.make_dataset(64, seed=4)
    assert a.shape == (64, 3, 32, 32) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, b) and ca == cb
    assert all(np.array_equal(la[k], lb[k]) for k in la)
    assert not np.array_equal(a, c) and ca != cc
    assert E.heldout_prompt_seed_pairs(10, 1) == E.heldout_prompt_seed_pairs(10, 1)
    assert E.default_prompts(5, 2) == E.default_prompts(5, 2) != E.default_prompts(5, 3)


def test_captions_parse_back():
    _, labels, captions = D.make_dataset(200, seed=0, split="test")
    for i, cap in enumerate(captions):
        attrs = D.parse_caption(cap, strict=True)
        assert attrs.as_dict() == {k: int(labels[k][i]) for k in D.ATTRIBUTE_NAMES}
        assert D.caption(attrs) == cap
    assert captions[0] != captions[1]
    a = D.parse_caption("A LARGE Cyan 7, centre, on a gray background")
    assert a.names() == {"digit": "seven", "colour": "cyan", "size": "large", "position": "center", "background": "gray"}
    assert D.parse_caption("a photo of a cat") == D.Attributes()
    with pytest.raises(ValueError, match="does not specify"):
        D.parse_caption("a red digit", strict=True)


def test_splits_hold_out_sources_and_combos():
    train, test = D.source_split()
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 1797
    _, target = D._digits()
    assert all(30 <= (target[test] == d).sum() <= 40 for d in range(10))  # stratified ~20%
    assert D.source_split()[1].tolist() == test.tolist()
    _, labels, _ = D.make_dataset(3000, seed=5, split="train")  # generator training data
    ids = D._combo_id(labels["digit"], labels["colour"], labels["size"], labels["position"])
    assert not set(ids.tolist()) & D.heldout_combos()
    pairs = E.heldout_prompt_seed_pairs(20, 0)
    held = [D.is_heldout_combo(D.parse_caption(p)) for p, _ in pairs]
    assert all(held[0::2])  # even positions: held-out combinations; odd ones: any (held out by chance or not)
    assert not all(held[1::2])
    assert min(s for _, s in pairs) >= D.HELDOUT_SEED_BASE


# ----------------------------------------------------------------------------- asset


def test_asset_is_small_and_safetensors_only():
    files = E._files()
    assert E.asset_size_bytes() < 20 * 1024 * 1024
    suffixes = {p.suffix for p in files}
    assert suffixes <= {".json", ".safetensors", ".txt", ".md"}, suffixes
    for part in ("transformer", "vae", "text_encoder"):
        assert list((E.EMBEDDED_PIPELINE_PATH / part).glob("*.safetensors")), part
    assert (E.REWARD_PATH / "model.safetensors").exists()


def test_tokenizer_round_trip(tmp_path):
    from transformers import AutoTokenizer, T5TokenizerFast

    built = D.build_tokenizer()
    built.save_pretrained(tmp_path)
    texts = D.generate_prompts(50, seed=1) + ["", "a large magenta digit three in the bottom right corner on a black background"]
    kw = dict(padding="max_length", max_length=E.MAX_SEQUENCE_LENGTH, truncation=True)
    ref = built(texts, **kw).input_ids
    for tok in (
        T5TokenizerFast.from_pretrained(tmp_path),
        AutoTokenizer.from_pretrained(tmp_path),
        AutoTokenizer.from_pretrained(E.EMBEDDED_PIPELINE_PATH / "tokenizer"),  # the shipped one
    ):
        assert tok(texts, **kw).input_ids == ref
    ids = ref[0]
    assert ids.count(built.unk_token_id) == 0 and ids.count(built.eos_token_id) == 1  # every word known
    assert len(built(texts[-1]).input_ids) <= E.MAX_SEQUENCE_LENGTH  # the longest caption fits
    assert built.decode(ids, skip_special_tokens=True) == texts[0]
    assert built("a purple digit").input_ids.count(built.unk_token_id) == 1


# ----------------------------------------------------------------------------- reward


def test_reward_accuracy_on_heldout_real_images(reward):
    images, labels, _ = D.make_dataset(300, seed=123, split="test")
    acc = attribute_accuracy(reward.model, torch.from_numpy(images), labels)
    assert set(acc) == set(D.ATTRIBUTE_NAMES)
    assert all(v >= 280 / 300 for v in acc.values()), acc


def test_reward_prefers_matching_prompts(reward):
    images, labels, captions = D.make_dataset(64, seed=9, split="test")
    x = torch.from_numpy(images)
    match = reward.score(x, captions)
    shuffled = captions[1:] + captions[:1]
    # one attribute changed at a time: digit, colour, position
    def change(i, key):
        a = D.parse_caption(captions[i]).as_dict()
        a[key] = (a[key] + 1) % len(D.ATTRIBUTES[key])
        return D.caption(D.Attributes(**a))

    assert match.dtype == np.float64 and match.shape == (64,)
    assert np.all(match <= 0)
    for wrong in (shuffled, [change(i, "digit") for i in range(64)], [change(i, "colour") for i in range(64)],
                  [change(i, "position") for i in range(64)]):
        mis = reward.score(x, wrong)
        assert (match > mis).mean() >= 0.9 and match.mean() > mis.mean() + 0.5
    # other resolutions are resized to 32x32
    big = torch.nn.functional.interpolate(x[:8], size=(64, 64), mode="nearest")
    assert np.allclose(reward.score(big, captions[:8]), match[:8], atol=0.5)
    with pytest.raises(ValueError):
        reward.score(x[:2], captions[:3])


def test_metric_registry_and_describe():
    from ecad_hub.metrics import available_metrics, get_metric

    assert "embedded-reward" in available_metrics()
    m = get_metric("embedded-reward")
    assert isinstance(m, EmbeddedRewardMetric) and m.name == "embedded-reward" and not m.needs_reference
    d = m.describe()
    assert d["name"] == "embedded-reward" and len(d["weights_sha256"]) == 64
    assert m.to("cpu") is m


# ----------------------------------------------------------------------------- pipeline


def test_pipeline_loads_offline_with_expected_components(pipe):
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

    assert isinstance(pipe, PixArtAlphaPipeline)
    assert isinstance(pipe.transformer, PixArtTransformer2DModel)
    assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler)
    assert pipe.transformer.dtype == torch.float32 and pipe.text_encoder.dtype == torch.float32
    cfg = pipe.transformer.config
    assert cfg.caption_channels == pipe.text_encoder.config.d_model
    assert cfg.sample_size * pipe.vae_scale_factor == D.IMAGE_SIZE
    assert pipe.scheduler.config.prediction_type in ("epsilon", "v_prediction")


def test_generated_images_follow_prompts(generated, reward):
    prompts, _, images = generated
    assert images.shape == (N_GEN, 3, 32, 32) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    acc = prompt_following(reward.model, images, prompts)
    assert acc["digit"] >= 16 / N_GEN, acc
    assert acc["colour"] >= 19 / N_GEN, acc
    # matching prompts score higher than the same images with another prompt's attributes
    match = reward.score(images, prompts)
    mis = reward.score(images, prompts[1:] + prompts[:1])
    assert match.mean() > mis.mean() + 0.5


def test_generation_is_deterministic_per_prompt_and_seed(pipe, generated):
    prompts, seeds, images = generated
    again = E.generate(pipe, prompts[:3][::-1], seeds[:3][::-1], batch_size=2)
    assert torch.allclose(again.flip(0), images[:3], atol=2e-3)
    direct = pipe(prompts[0], generator=torch.Generator().manual_seed(seeds[0]), output_type="pt",
                  **E.DEFAULT_CALL_KWARGS).images
    assert torch.allclose(direct[0], images[0], atol=2e-3)


def test_evaluate_pipeline_small_and_schedule_context(pipe, reward):
    entered = []

    class Ctx:
        def __enter__(self):
            entered.append("in")

        def __exit__(self, *exc):
            entered.append("out")

    res = E.evaluate_pipeline(pipe, reward, n=4, seed=3, schedule_context=lambda p: Ctx())
    assert entered == ["in", "out"]
    assert res["n"] == 4 and set(res["accuracy"]) == set(D.ATTRIBUTE_NAMES) | {"all"}
    assert res["scores"].shape == (4,) and np.isfinite(res["mean_reward"])
    assert res["call_kwargs"]["num_inference_steps"] == 20
    json.dumps({k: v for k, v in res.items() if k != "scores"})
