"""The encoder contract, run against every registered encoder: one L2-normalised float32 row per
input, of the declared dimension, the same rows for the same inputs, through the interface of
each modality it declares (``encode_texts``, ``encode_images``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.encoders.base import (
    ENCODERS,
    ImageEncoder,
    TextEncoder,
    create_encoder,
    distinct_longest_first,
    list_encoders,
)

TEXTS = ["navy polka dot backpack", "leather boots", "", "赤いスニーカー 🥾"]


@pytest.fixture(scope="module")
def encoders(tiny_catalog) -> dict:
    """Every registered encoder; those that need a build's artifacts get the tiny catalog's."""
    out = {}
    for spec in ENCODERS:
        kwargs = {"artifacts_dir": tiny_catalog.step_dir("clip")} if spec.name == "clip" else {}
        out[spec.name] = create_encoder(spec.name, **kwargs)
    return out


@pytest.fixture(scope="module")
def images(tiny_catalog) -> list[Image.Image]:
    out = []
    for row in (0, 1, 2):
        with Image.open(tiny_catalog.image_path(row)) as im:
            out.append(im.convert("RGB"))
    out.append(Image.new("RGB", (300, 80), (200, 30, 30)))  # not square, not catalog-sized
    return out


def _check(rows: np.ndarray, n: int, dim: int) -> None:
    assert rows.shape == (n, dim) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-4)


@pytest.mark.parametrize("name", list_encoders())
def test_contract(name, encoders, images) -> None:
    spec, enc = ENCODERS.get(name), encoders[name]
    assert spec.modalities and set(spec.modalities) <= {"text", "image"}
    if "text" in spec.modalities:
        assert isinstance(enc, TextEncoder)
        rows = enc.encode_texts(TEXTS)
        _check(rows, len(TEXTS), enc.dim)
        np.testing.assert_allclose(enc.encode_texts(TEXTS[:1]), rows[:1], rtol=1e-4, atol=1e-5)
        assert enc.encode_texts([]).shape == (0, enc.dim)
    if "image" in spec.modalities:
        assert isinstance(enc, ImageEncoder)
        rows = enc.encode_images(images)
        _check(rows, len(images), enc.dim)
        np.testing.assert_allclose(enc.encode_images(images[:2]), rows[:2], rtol=1e-4, atol=1e-5)


def test_unknown_encoder_and_wrong_modality_list_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown encoder 'nope'; valid: .*hashing"):
        create_encoder("nope")
    with pytest.raises(ValueError, match="does not encode text; valid: .*hashing"):
        create_encoder("colour", modality="text")


def test_distinct_longest_first_puts_every_text_back_in_place() -> None:
    texts = ["mug", "red wool hat", "mug", "lamp", "hat", "red wool hat", ""]
    distinct, rows = distinct_longest_first(texts)
    assert distinct == ["red wool hat", "lamp", "hat", "mug", ""]  # longest first, ties by text
    assert [distinct[r] for r in rows] == texts
    empty, no_rows = distinct_longest_first([])
    assert empty == [] and no_rows.shape == (0,)
