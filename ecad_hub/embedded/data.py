"""Synthetic captioned digit images built offline from scikit-learn's ``load_digits``.

Each image is 32x32 RGB: one hand-written digit (an 8x8, 16-level image from the UCI
digits set, upscaled) drawn at a chosen *size*, *position* and *colour* on a plain
*background*, captioned like::

    "a small red digit seven in the top left corner on a black background"

The five attributes are categorical, so whether a generated image follows its prompt is
measurable with a classifier (:mod:`ecad_hub.embedded.reward`):

==========  ==============================================================
attribute   values
==========  ==============================================================
digit       zero .. nine (10)
colour      red, green, blue, yellow, magenta, cyan (6)
size        small (~12 px), large (~20 px) (2)
position    top left, top right, bottom left, bottom right corner, center (5)
background  black, gray (2)
==========  ==============================================================

The reward model is trained on every training-split handwriting; the generator only on the few
most typical ones per digit (:func:`typical_exemplars`), drawn at fixed placements, which a
2M-parameter transformer learns on 2 CPU cores in half an hour.

Everything is deterministic given a seed. Two things are held out for evaluation:

* the digit *source images*: a fixed, class-stratified 20% of the 1,797 UCI digits
  (:func:`source_split`) is never drawn into training images of the generator or of the
  reward model;
* prompt/seed *pairs*: :func:`heldout_prompt_seed_pairs` draws prompts from a dedicated
  random stream and seeds from a range (``>= 1_000_000``) that training never uses; a fixed
  ~10% of the (digit, colour, size, position) combinations (:func:`heldout_combos`) never
  appears in a generator training caption, and half of the held-out prompts use them, so the
  evaluation also measures compositional generalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, astuple
from functools import lru_cache
import re

import numpy as np

IMAGE_SIZE = 32

DIGITS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: colour name -> RGB in [0, 1]: saturated primaries and secondaries, pairwise clearly distinct.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.95, 0.10, 0.10),
    "green": (0.10, 0.85, 0.15),
    "blue": (0.15, 0.30, 1.00),
    "yellow": (0.95, 0.90, 0.10),
    "magenta": (0.90, 0.10, 0.90),
    "cyan": (0.10, 0.90, 0.90),
}
#: size name -> nominal edge length of the digit box in pixels (jittered by +-1).
SIZES: dict[str, int] = {"small": 12, "large": 20}
POSITIONS: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right", "center")
#: background name -> RGB in [0, 1].
BACKGROUNDS: dict[str, tuple[float, float, float]] = {"black": (0.0, 0.0, 0.0), "gray": (0.45, 0.45, 0.45)}

COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
SIZE_NAMES: tuple[str, ...] = tuple(SIZES)
BACKGROUND_NAMES: tuple[str, ...] = tuple(BACKGROUNDS)

#: attribute -> its class names, in the order used by label arrays and the reward model.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "digit": DIGITS,
    "colour": COLOUR_NAMES,
    "size": SIZE_NAMES,
    "position": POSITIONS,
    "background": BACKGROUND_NAMES,
}
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(ATTRIBUTES)

#: Every word a caption can contain (the tokenizer's vocabulary).
VOCABULARY: tuple[str, ...] = tuple(
    dict.fromkeys(
        "a digit in the corner on background".split()
        + list(DIGITS)
        + list(COLOUR_NAMES)
        + list(SIZE_NAMES)
        + " ".join(POSITIONS).split()
        + list(BACKGROUND_NAMES)
    )
)

#: Seeds of held-out prompt/seed pairs start here; training never uses seeds this large.
HELDOUT_SEED_BASE = 1_000_000
_SPLIT_SEED = 20240607


@dataclass(frozen=True)
class Attributes:
    """The attributes of one image / prompt, as class indices (``None`` = unspecified)."""

    digit: int | None = None
    colour: int | None = None
    size: int | None = None
    position: int | None = None
    background: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return dict(zip(ATTRIBUTE_NAMES, astuple(self)))

    def names(self) -> dict[str, str | None]:
        return {k: (None if v is None else ATTRIBUTES[k][v]) for k, v in self.as_dict().items()}


def caption(attrs: Attributes) -> str:
    """The caption of fully specified attributes."""
    d = attrs.names()
    where = "in the center" if d["position"] == "center" else f"in the {d['position']} corner"
    return f"a {d['size']} {d['colour']} digit {d['digit']} {where} on a {d['background']} background"


_POSITION_RE = re.compile(r"\b(top left|top right|bottom left|bottom right|center|centre)\b")


def parse_caption(prompt: str, strict: bool = False) -> Attributes:
    """Parse a prompt into :class:`Attributes`; attributes it does not mention are ``None``.

    Matching is by whole words, case-insensitive; the digit may be a word ("seven") or a
    numeral ("7"). The background is the colour word directly before "background"; the
    digit colour is any other colour word. With ``strict=True`` a prompt missing any
    attribute raises :class:`ValueError`.
    """
    text = " ".join(prompt.lower().replace(",", " ").split())
    words = text.split()
    digit = colour = size = position = background = None

    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w in BACKGROUNDS and nxt == "background":
            background = BACKGROUND_NAMES.index(w)
        elif w in COLOURS and nxt != "background" and colour is None:
            colour = COLOUR_NAMES.index(w)
        elif w in SIZES and size is None:
            size = SIZE_NAMES.index(w)
        elif w in DIGITS and digit is None:
            digit = DIGITS.index(w)
        elif w.isdigit() and len(w) == 1 and digit is None:
            digit = int(w)
    m = _POSITION_RE.search(text)
    if m:
        position = POSITIONS.index("center" if m.group(1) == "centre" else m.group(1))
    attrs = Attributes(digit, colour, size, position, background)
    if strict:
        missing = [k for k, v in attrs.as_dict().items() if v is None]
        if missing:
            raise ValueError(f"prompt {prompt!r} does not specify: {', '.join(missing)}")
    return attrs


# --------------------------------------------------------------------------- sources


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)  # [1797, 8, 8] in [0, 1]
    images.setflags(write=False)
    target = d.target.astype(np.int64)
    target.setflags(write=False)
    return images, target


@lru_cache(maxsize=1)
def source_split() -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices) into the UCI digits: a fixed, class-stratified 80/20 split."""
    _, target = _digits()
    rng = np.random.default_rng(_SPLIT_SEED)
    train, test = [], []
    for cls in range(10):
        idx = np.flatnonzero(target == cls)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(0.2 * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
    train_idx.setflags(write=False)
    test_idx.setflags(write=False)
    return train_idx, test_idx


def _sources(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, target = _digits()
    train_idx, test_idx = source_split()
    if split == "train":
        idx = train_idx
    elif split in ("test", "heldout", "eval"):
        idx = test_idx
    elif split == "all":
        idx = np.arange(len(target))
    else:
        raise ValueError(f"unknown split {split!r}; use 'train', 'test' or 'all'")
    return images[idx], target[idx]


# --------------------------------------------------------------------------- combos


def _combo_id(digit, colour, size, position) -> np.ndarray:
    return ((np.asarray(digit) * len(COLOURS) + np.asarray(colour)) * len(SIZES) + np.asarray(size)) * len(
        POSITIONS
    ) + np.asarray(position)


@lru_cache(maxsize=1)
def heldout_combos() -> frozenset[int]:
    """Ids of the ~10% (digit, colour, size, position) combinations no generator training caption uses.

    Chosen so that every digit, colour, size and position value still appears in training
    in many other combinations (60 of the 600 combinations, 6 per digit).
    """
    rng = np.random.default_rng(_SPLIT_SEED + 1)
    held = []
    n_other = len(COLOURS) * len(SIZES) * len(POSITIONS)
    for d in range(10):
        pick = rng.choice(n_other, size=6, replace=False)
        held.extend(d * n_other + int(p) for p in pick)
    return frozenset(held)


def is_heldout_combo(attrs: Attributes) -> bool:
    return int(_combo_id(attrs.digit, attrs.colour, attrs.size, attrs.position)) in heldout_combos()


# --------------------------------------------------------------------------- sampling


def random_labels(n: int, rng: np.random.Generator, combos: str = "any") -> dict[str, np.ndarray]:
    """``n`` uniformly random attribute label vectors (``combos``: 'any', 'train' or 'heldout')."""
    labels = {k: rng.integers(0, len(v), size=n) for k, v in ATTRIBUTES.items()}
    if combos == "any":
        return labels
    held = np.array(sorted(heldout_combos()))
    ids = _combo_id(labels["digit"], labels["colour"], labels["size"], labels["position"])
    if combos == "train":
        bad = np.isin(ids, held)
        while bad.any():  # resample the few held-out combinations
            for k, v in ATTRIBUTES.items():
                if k != "background":
                    labels[k][bad] = rng.integers(0, len(v), size=int(bad.sum()))
            ids = _combo_id(labels["digit"], labels["colour"], labels["size"], labels["position"])
            bad = np.isin(ids, held)
        return labels
    if combos == "heldout":
        pick = held[rng.integers(0, len(held), size=n)]
        rest, labels["position"] = np.divmod(pick, len(POSITIONS))
        rest, labels["size"] = np.divmod(rest, len(SIZES))
        labels["digit"], labels["colour"] = np.divmod(rest, len(COLOURS))
        return labels
    raise ValueError(f"combos must be 'any', 'train' or 'heldout', not {combos!r}")


def labels_to_attributes(labels: dict[str, np.ndarray]) -> list[Attributes]:
    n = len(labels["digit"])
    return [Attributes(*(int(labels[k][i]) for k in ATTRIBUTE_NAMES)) for i in range(n)]


def captions_of(labels: dict[str, np.ndarray]) -> list[str]:
    return [caption(a) for a in labels_to_attributes(labels)]


def render(
    sources: np.ndarray, labels: dict[str, np.ndarray], rng: np.random.Generator, jitter: bool = True
) -> np.ndarray:
    """Draw ``sources[i]`` (8x8 in [0, 1]) with ``labels`` -> float32 images ``[N, 3, 32, 32]`` in [0, 1].

    The digit box is ``SIZES[size]`` px square with a 2 px margin in the corners (centred for
    "center"); the digit intensity is the alpha of the colour over the background; upscaling
    is bilinear. With ``jitter`` the box edge varies by +-1 px and its position by +-1 px.
    """
    import torch
    import torch.nn.functional as F

    n = len(sources)
    out = np.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    size_px = np.array([SIZES[SIZE_NAMES[s]] for s in labels["size"]]) + rng.integers(-1, 2, size=n) * jitter
    shift = rng.integers(-1, 2, size=(n, 2)) * jitter
    colours = np.array([COLOURS[c] for c in COLOUR_NAMES], dtype=np.float32)[labels["colour"]]
    bgs = np.array([BACKGROUNDS[b] for b in BACKGROUND_NAMES], dtype=np.float32)[labels["background"]]
    alpha = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    src = torch.from_numpy(np.ascontiguousarray(sources, dtype=np.float32))[:, None]
    for s in np.unique(size_px):
        sel = np.flatnonzero(size_px == s)
        up = F.interpolate(src[sel], size=(int(s), int(s)), mode="bilinear", align_corners=False)
        up = up.clamp(0, 1)[:, 0].numpy()
        for j, i in enumerate(sel):
            pos = POSITIONS[labels["position"][i]]
            free = IMAGE_SIZE - s
            if pos == "center":
                y, x = free // 2 + shift[i, 0], free // 2 + shift[i, 1]
            else:
                y = 2 + shift[i, 0] if pos.startswith("top") else free - 2 + shift[i, 0]
                x = 2 + shift[i, 1] if pos.endswith("left") else free - 2 + shift[i, 1]
            alpha[i, y : y + s, x : x + s] = up[j]
    a = alpha[:, None]
    out[:] = bgs[:, :, None, None] * (1 - a) + colours[:, :, None, None] * a
    return out


def typical_exemplars(k: int, split: str = "train") -> np.ndarray:
    """Indices (into the ``split`` sources) of the ``k`` images per digit closest to their class mean.

    The generator is trained on these well-formed hand-written digits only (the reward model
    sees every source image): a 5M-parameter model on 2 CPU cores cannot learn the full
    variability of 1,400 handwritings in a few thousand steps, and mush that averages them is
    not recognisable.
    """
    sources, target = _sources(split)
    flat = sources.reshape(len(sources), -1)
    keep = []
    for d in range(10):
        idx = np.flatnonzero(target == d)
        dist = ((flat[idx] - flat[idx].mean(0)) ** 2).sum(1)
        keep.append(idx[np.argsort(dist, kind="stable")[:k]])
    return np.sort(np.concatenate(keep))


def make_dataset(
    n: int,
    seed: int = 0,
    split: str = "train",
    combos: str | None = None,
    jitter: bool = True,
    exemplars: int | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """``n`` images drawn from the ``split`` digit sources: (images ``[N,3,32,32]`` float32 in [0,1], labels, captions).

    ``combos`` defaults to 'train' for the train split (held-out combinations excluded) and
    'any' otherwise; ``jitter``: see :func:`render`; ``exemplars``: draw only from the
    :func:`typical_exemplars` of each digit. Deterministic given the arguments.
    """
    if combos is None:
        combos = "train" if split == "train" else "any"
    rng = np.random.default_rng([seed, 7])
    labels = random_labels(n, rng, combos)
    sources, target = _sources(split)
    if exemplars:
        keep = typical_exemplars(exemplars, split)
        sources, target = sources[keep], target[keep]
    pick = np.empty(n, dtype=np.int64)
    for d in range(10):  # a random source image of the requested digit
        sel = np.flatnonzero(labels["digit"] == d)
        pool = np.flatnonzero(target == d)
        pick[sel] = pool[rng.integers(0, len(pool), size=len(sel))]
    images = render(sources[pick], labels, rng, jitter=jitter)
    return images, labels, captions_of(labels)


def generate_prompts(n: int, seed: int = 0, combos: str = "any") -> list[str]:
    """``n`` random, fully specified prompts (deterministic given ``seed``)."""
    rng = np.random.default_rng([seed, 11])
    return captions_of(random_labels(n, rng, combos))


def heldout_prompt_seed_pairs(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """``n`` held-out (prompt, seed) pairs for evaluating a generator.

    Even positions use held-out attribute combinations (never in a training caption), odd
    positions uniformly random combinations; seeds are ``HELDOUT_SEED_BASE + seed*100_000 + i``.
    """
    rng = np.random.default_rng([seed, 13])
    held = captions_of(random_labels((n + 1) // 2, rng, "heldout"))
    anyp = captions_of(random_labels(n // 2, rng, "any"))
    prompts = [held[i // 2] if i % 2 == 0 else anyp[i // 2] for i in range(n)]
    return [(p, HELDOUT_SEED_BASE + seed * 100_000 + i) for i, p in enumerate(prompts)]


def calibration_prompts(n: int = 16, seed: int = 0) -> list[str]:
    """A small prompt set for schedule search/calibration, covering every attribute value evenly."""
    rng = np.random.default_rng([seed, 17])
    labels = {}
    for k, v in ATTRIBUTES.items():  # balanced: each value appears ~n/len(v) times
        vals = np.resize(np.arange(len(v)), n)
        labels[k] = vals[rng.permutation(n)]
    return captions_of(labels)


# --------------------------------------------------------------------------- tokenizer

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "</s>", "<unk>")


def build_tokenizer():
    """A ``T5TokenizerFast`` over :data:`VOCABULARY`: a ``tokenizers`` Unigram model, one piece per word.

    Pieces are ``"▁word"`` (SentencePiece/T5 convention, Metaspace pre-tokenizer); ids 0, 1, 2
    are ``<pad>``, ``</s>`` (appended to every sequence, like T5) and ``<unk>``. Unknown words
    map to ``<unk>``. Survives ``save_pretrained`` / ``from_pretrained`` (transformers 5 rebuilds
    the normalizer of T5 tokenizers on load, so none is set: prompts are lower-cased by the
    PixArt pipeline and by :func:`parse_caption`).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    vocab = [(t, 0.0) for t in SPECIAL_TOKENS] + [("▁" + w, -2.0) for w in VOCABULARY] + [("▁", -10.0)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=SPECIAL_TOKENS.index("<unk>"), byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", SPECIAL_TOKENS.index("</s>"))]
    )
    return T5TokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", extra_ids=0, model_max_length=32
    )
