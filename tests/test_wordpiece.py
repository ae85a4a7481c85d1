"""The word-piece tokenizer read straight from tokenizer.json gives transformers' ids, masks and
pieces, so serving can drop transformers (and torch) without changing a single vector."""

from __future__ import annotations

import numpy as np
import pytest

from engine.encoders.text import minilm_path
from engine.encoders.wordpiece import WordPieces, word_pieces

TEXTS = [
    "navy polka dot sneakers",
    "",
    "  Red LEATHER handbag, gold clasp!  ",
    "Café crème — naïve façade",
    "čeština, 日本語 and emoji 👟",
    "a cosy woollen hat for long winter walks by the sea " * 30,  # past 256 tokens
]
WORDS = ["knapsack", "zzqx", "blorp", "polka-dot", "Crème", "sneakers", "覚"]


@pytest.fixture(scope="module")
def reference():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()))


def test_ids_and_masks_equal_transformers(reference) -> None:
    ours = word_pieces()
    assert ours.max_len == 256
    for batch in (TEXTS, TEXTS[:1], TEXTS[2:4]):
        want = reference(batch, padding=True, truncation=True, max_length=256, return_tensors="np")
        got = ours.encode(batch)
        assert got["input_ids"].dtype == np.int64
        np.testing.assert_array_equal(got["input_ids"], want["input_ids"])
        np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])
    assert ours.encode(TEXTS)["input_ids"].shape[1] == 256  # the long text was truncated


def test_word_pieces_equal_transformers(reference) -> None:
    ours = word_pieces()
    for word in WORDS:
        assert ours.pieces(word) == reference.tokenize(word), word


def test_a_folder_without_tokenizer_json_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        WordPieces(tmp_path)
