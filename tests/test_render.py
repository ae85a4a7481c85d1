"""Tests for engine.world.render: the image must truly show the product's attributes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from engine.world import vocab
from engine.world.render import measured_colour, render_product

CATEGORIES = vocab.names("category")
COLOURS = vocab.names("colour")
PATTERNS = vocab.names("pattern")
RGB = {t.name: t.rgb for t in vocab.COLOURS}


def _grid() -> list[tuple[str, str, str]]:
    """Every category x every colour; patterns rotate so each colour meets every pattern."""
    return [(c, col, PATTERNS[(i + j) % len(PATTERNS)])
            for i, c in enumerate(CATEGORIES) for j, col in enumerate(COLOURS)]


def _nearest_fraction(img: Image.Image, mask: np.ndarray, colour: str) -> float:
    """Fraction of masked pixels whose nearest vocab colour is ``colour``."""
    palette = np.array([RGB[n] for n in COLOURS], np.int64)
    px = np.asarray(img, np.int64)[mask]
    nearest = ((px[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1)
    return float((nearest == COLOURS.index(colour)).mean())


def test_grid_covers_everything() -> None:
    grid = _grid()
    assert {c for c, _, _ in grid} == set(CATEGORIES)
    assert {(col, p) for _, col, p in grid} == set(itertools.product(COLOURS, PATTERNS))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rendered_colour_is_the_attribute(seed: int) -> None:
    failures, fractions = [], []
    for k, (cat, col, pat) in enumerate(_grid()):
        img, mask = render_product(category=cat, colour=col, pattern=pat,
                                   seed=1000 * seed + k, difficulty=1.0)
        got = measured_colour(img, mask)
        if got != col:
            failures.append((cat, col, pat, got))
        fractions.append((_nearest_fraction(img, mask, col), cat, col, pat))
    assert not failures, failures
    # The main colour dominates the object, whatever the pattern.
    assert min(fractions)[0] >= 0.5, min(fractions)


def test_measured_colour_detects_a_wrong_colour() -> None:
    img, mask = render_product(category="mug", colour="red", pattern="solid", seed=3)
    assert measured_colour(img, mask) == "red"
    blue = Image.new("RGB", img.size, RGB["blue"])
    assert measured_colour(blue, mask) == "blue"
    # Recolouring only the object pixels changes the answer.
    arr = np.asarray(img).copy()
    arr[mask] = RGB["green"]
    assert measured_colour(Image.fromarray(arr), mask) == "green"
    with pytest.raises(ValueError):
        measured_colour(img, np.zeros_like(mask))


@pytest.mark.parametrize("difficulty", [0.0, 1.0, 1.5])
def test_deterministic(difficulty: float) -> None:
    kw = dict(category="backpack", colour="teal", pattern="checked", difficulty=difficulty)
    a, ma = render_product(seed=42, **kw)
    b, mb = render_product(seed=42, **kw)
    assert a.tobytes() == b.tobytes()
    assert np.array_equal(ma, mb)
    c, _ = render_product(seed=43, **kw)
    assert a.tobytes() != c.tobytes()


@pytest.mark.parametrize("size", [64, 128, 160])
def test_image_and_mask_shape(size: int) -> None:
    for k, cat in enumerate(CATEGORIES):
        img, mask = render_product(category=cat, colour=COLOURS[k], pattern=PATTERNS[k % 5],
                                   seed=k, size=size, difficulty=1.0)
        assert img.mode == "RGB" and img.size == (size, size)
        assert mask.dtype == bool and mask.shape == (size, size)
        assert 0.05 < mask.mean() < 0.75, (cat, mask.mean())


def test_clean_render_is_centred_on_white() -> None:
    img, mask = render_product(category="hat", colour="navy", pattern="solid", seed=5,
                               difficulty=0.0)
    arr = np.asarray(img)
    assert (arr[0, 0] == 255).all() and (arr[-1, -1] == 255).all()
    ys, xs = np.nonzero(mask)
    assert abs((xs.min() + xs.max()) / 2 - 63.5) <= 2 and abs((ys.min() + ys.max()) / 2 - 63.5) <= 2
    # Without a pattern or nuisances, the object is the exact named colour.
    inner = arr[mask]
    assert (np.abs(inner.astype(int) - RGB["navy"]).max(1) <= 2).mean() > 0.85


def test_background_differs_from_light_objects() -> None:
    for col in ("white", "beige", "grey", "yellow"):
        for seed in range(20):
            img, mask = render_product(category="vase", colour=col, pattern="solid", seed=seed,
                                       difficulty=1.0)
            arr = np.asarray(img, float)
            for corner in (arr[:4, :4], arr[-4:, -4:]):
                mean = corner.reshape(-1, 3).mean(0)
                assert np.linalg.norm(mean - RGB[col]) > 60, (col, seed, mean)


def test_silhouettes_differ() -> None:
    masks = {c: render_product(category=c, colour="red", pattern="solid", seed=0,
                               difficulty=0.0)[1] for c in CATEGORIES}
    ious = {}
    for a, b in itertools.combinations(CATEGORIES, 2):
        ious[a, b] = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
    worst = max(ious, key=ious.get)
    assert ious[worst] < 0.85, (worst, ious[worst])
    assert np.mean(list(ious.values())) < 0.6


def test_occluders_are_not_in_the_mask() -> None:
    """At high difficulty some renders carry a neutral occluder; the mask must exclude it."""
    occluded = 0
    for seed in range(30):
        img, mask = render_product(category="handbag", colour="red", pattern="solid", seed=seed,
                                   difficulty=1.5)
        arr = np.asarray(img).astype(int)
        neutral = (np.ptp(arr, axis=2) < 25) & (arr.max(2) < 170)  # darker grey than any bg
        if (neutral & ~mask).sum() > 30:
            occluded += 1
            assert (neutral & mask).sum() <= 0.02 * mask.sum(), seed
        assert _nearest_fraction(img, mask, "red") > 0.75, seed
    assert occluded >= 3


@pytest.mark.parametrize("field,kwargs", [
    ("category", dict(category="sofa", colour="red", pattern="solid")),
    ("colour", dict(category="mug", colour="mauve", pattern="solid")),
    ("pattern", dict(category="mug", colour="red", pattern="paisley")),
])
def test_invalid_names_raise(field: str, kwargs: dict) -> None:
    with pytest.raises(ValueError) as err:
        render_product(seed=0, **kwargs)
    message = str(err.value)
    assert all(name in message for name in vocab.names(field))


def test_out_of_range_difficulty_or_size_raises() -> None:
    for kw in (dict(difficulty=-0.1), dict(difficulty=2.0), dict(size=8)):
        with pytest.raises(ValueError):
            render_product(category="mug", colour="red", pattern="solid", seed=0, **kw)
