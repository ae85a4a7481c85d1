"""TF-IDF cosine similarity with scikit-learn, saved as vocabulary + IDF + matrix (no pickles)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from engine.indexes.tokenize import tokenize


def _vectorizer(vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        tokenizer=tokenize,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        sublinear_tf=True,
        vocabulary=vocabulary,
    )


class TfidfIndex:
    """TF-IDF over a fixed corpus; ``scores(query)`` are cosine similarities."""

    def __init__(self) -> None:
        self.vectorizer: TfidfVectorizer | None = None
        self.matrix: sp.csr_matrix | None = None

    def fit(self, docs: list[str]) -> TfidfIndex:
        self.vectorizer = _vectorizer()
        self.matrix = self.vectorizer.fit_transform(docs).tocsr().astype(np.float32)
        return self

    def scores(self, query: str) -> np.ndarray:
        if self.vectorizer is None or self.matrix is None:
            raise RuntimeError("TfidfIndex is not fitted: call fit() or load() first")
        q = self.vectorizer.transform([query]).astype(np.float32)
        return np.asarray((self.matrix @ q.T).todense()).ravel()

    def save(self, folder: Path) -> None:
        vocab = {t: int(j) for t, j in self.vectorizer.vocabulary_.items()}
        (folder / "tfidf_vocab.json").write_text(json.dumps(vocab))
        np.save(folder / "tfidf_idf.npy", self.vectorizer.idf_.astype(np.float64))
        sp.save_npz(folder / "tfidf_matrix.npz", self.matrix)

    @classmethod
    def load(cls, folder: Path) -> TfidfIndex:
        index = cls()
        vocab = json.loads((folder / "tfidf_vocab.json").read_text())
        vec = _vectorizer(vocab)
        vec.idf_ = np.load(folder / "tfidf_idf.npy", allow_pickle=False)
        index.vectorizer = vec
        index.matrix = sp.load_npz(folder / "tfidf_matrix.npz").tocsr()
        return index
