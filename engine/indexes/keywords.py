"""Keyword matching (the non-ML baseline): a query matches items through their tagged keywords.

An item's score is the sum of the confidences of its keywords that the query contains (as a
word or phrase, after the shared normalisation). Stored as a sparse item × keyword matrix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine.indexes.tokenize import tokenize

MAX_PHRASE = 3


def _key(text: str) -> str:
    return " ".join(tokenize(text))


class KeywordIndex:
    """Items × keywords confidence matrix; ``scores(query)`` sums matched confidences."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] | None = None
        self.matrix: sp.csr_matrix | None = None

    def fit(self, keywords: pd.DataFrame, item_ids: np.ndarray) -> KeywordIndex:
        row_of = {item: r for r, item in enumerate(item_ids)}
        keys = keywords["keyword"].map(_key)
        ok = keys.ne("") & keywords["item_id"].isin(row_of)
        keys, kw = keys[ok], keywords[ok]
        self.vocab = {k: j for j, k in enumerate(sorted(set(keys)))}
        best = (
            pd.DataFrame(
                {
                    "row": kw["item_id"].map(row_of),
                    "col": keys.map(self.vocab),
                    "conf": kw["confidence"].astype(np.float32),
                }
            )
            .groupby(["row", "col"], as_index=False)["conf"]
            .max()
        )  # the same keyword tagged twice counts once, at its highest confidence
        self.matrix = sp.csr_matrix(
            (best["conf"].to_numpy(), (best["row"].to_numpy(), best["col"].to_numpy())),
            shape=(len(item_ids), len(self.vocab)),
        )
        return self

    def matched(self, query: str) -> list[str]:
        """The keywords (phrases of up to three words) that the query contains."""
        tokens = tokenize(query)
        found = []
        for n in range(MAX_PHRASE, 0, -1):
            for i in range(len(tokens) - n + 1):
                phrase = " ".join(tokens[i : i + n])
                if phrase in self.vocab and phrase not in found:
                    found.append(phrase)
        return found

    def scores(self, query: str) -> np.ndarray:
        if self.matrix is None:
            raise RuntimeError("KeywordIndex is not fitted: call fit() or load() first")
        q = np.zeros(len(self.vocab), dtype=np.float32)
        for phrase in self.matched(query):
            q[self.vocab[phrase]] = 1.0
        return np.asarray(self.matrix @ q).ravel()

    def save(self, folder: Path) -> None:
        sp.save_npz(folder / "keyword_matrix.npz", self.matrix)
        (folder / "keywords.json").write_text(json.dumps(self.vocab))

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        index = cls()
        index.vocab = json.loads((folder / "keywords.json").read_text())
        index.matrix = sp.load_npz(folder / "keyword_matrix.npz").tocsr()
        return index
