"""Encoder similarity between query phrases and the lexicon's surfaces, fast at query time.

Query time never waits for the encoder when it can avoid it:

1. a phrase that is a lexicon surface reuses the surface's stored vector;
2. a word in the precomputed :class:`WordVectors` table (the text encoder's own whole-word
   vocabulary, the colour table's words, the catalog's vocabulary and the logged queries'
   words, encoded once per encoder) is a row lookup;
3. a phrase of several known words is the normalised mean of their vectors (checked against
   encoding the phrase: "light fixture" -> lamp, "organic fibre" -> cotton, "single tone" ->
   solid both ways);
4. anything else (a word the table lacks: "knapsack", "houndstooth") is encoded in ONE
   batched encoder call per query, and kept in an LRU cache.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.query.lexicon import QueryLexicon

WORDS_JSON, WORDS_VECTORS = "query_words.json", "query_words.npy"
_WORD = re.compile(r"[a-z]{2,}")


class WordVectors:
    """Encoder vectors of a fixed word list (float16 on disk and in memory)."""

    def __init__(self, words: list[str], vectors: np.ndarray, encoder_name: str):
        if len(words) != len(vectors):
            raise ValueError("word list and vectors differ in length")
        self.words = list(words)
        self.vectors = np.asarray(vectors, dtype=np.float16)
        self.encoder_name = encoder_name
        self.index = {w: i for i, w in enumerate(self.words)}

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def get(self, word: str) -> np.ndarray | None:
        i = self.index.get(word)
        return None if i is None else self.vectors[i].astype(np.float32)

    @classmethod
    def build(cls, encoder, words: list[str], batch_size: int = 512,
              progress=None) -> WordVectors:
        words = sorted(set(words))
        chunks = [words[i : i + batch_size * 4] for i in range(0, len(words), batch_size * 4)]
        it = (
            progress(chunks, len(words), "encode query words", unit="words", size=len)
            if progress
            else chunks
        )
        parts = [encoder.encode_texts(c, batch_size=batch_size) for c in it]
        dim = getattr(encoder, "dim", 0)
        vecs = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        return cls(words, vecs, getattr(encoder, "name", type(encoder).__name__))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / WORDS_JSON).write_text(json.dumps({"encoder": self.encoder_name,
                                                     "words": self.words}))
        np.save(folder / WORDS_VECTORS, self.vectors)

    @classmethod
    def load(cls, folder: Path) -> WordVectors:
        meta = json.loads((folder / WORDS_JSON).read_text())
        vecs = np.load(folder / WORDS_VECTORS, allow_pickle=False)
        return cls(meta["words"], vecs, meta["encoder"])


def encoder_vocabulary() -> list[str]:
    """Whole lower-case words (2+ letters) of the MiniLM tokenizer's vocabulary (~21,700)."""
    from engine.encoders.text import minilm_path

    path = minilm_path() / "vocab.txt"
    return [w for w in path.read_text(encoding="utf-8").split() if _WORD.fullmatch(w)]


def query_word_list(lexicon: QueryLexicon | None = None, logged_queries: list[str] = (),
                    include_encoder_vocabulary: bool = True) -> list[str]:
    """The words worth precomputing: encoder vocabulary + colour table + catalog + logs."""
    from engine.query.colours import colour_table
    from engine.query.text import words as split_words

    out: set[str] = set()
    if include_encoder_vocabulary:
        out.update(encoder_vocabulary())
    for name in colour_table().names:
        out.update(name.split())
        out.add(name)
    if lexicon is not None:
        out.update(lexicon.vocabulary)
    for q in logged_queries:
        out.update(split_words(q))
    return sorted(w for w in out if w and len(w) <= 40)


MIN_PIECE_CHARS = 2.5  # mean characters per word piece of a plausible unknown word


@lru_cache(maxsize=65536)
def plausible_word(word: str) -> bool:
    """Whether an unknown word looks like a word rather than noise ("zzqx", "blorp"): the
    encoder's word-piece tokenizer splits it into pieces of at least ``MIN_PIECE_CHARS``
    characters on average (noise falls apart into single letters, and an encoder maps those
    anywhere: "zzqx" is 0.74 from "zigzag")."""
    from engine.encoders.wordpiece import word_pieces

    pieces = [t.removeprefix("##") for t in word_pieces().pieces(word)]
    if len(pieces) <= 1:
        return True
    return sum(len(t) for t in pieces) / len(pieces) >= MIN_PIECE_CHARS


class SemanticMatcher:
    """Best lexicon term per slot for query phrases, by cosine similarity of encoder vectors."""

    def __init__(self, lexicon: QueryLexicon, words: WordVectors | None = None, encoder=None,
                 cache_size: int = 4096):
        self.lexicon = lexicon
        self.encoder = encoder
        self.enabled = lexicon.vectors is not None and len(lexicon.surface_rows) > 0
        if words is not None and words.encoder_name != lexicon.encoder_name:
            words = None  # vectors of another encoder are not comparable
        if encoder is not None and getattr(encoder, "name", None) != lexicon.encoder_name:
            encoder = self.encoder = None
        self.words = words
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        self.encoder_calls = 0
        if self.enabled:
            vecs = np.asarray(lexicon.vectors, dtype=np.float32)
            self.surface_vec = {s: vecs[r] for r, (_, s) in enumerate(lexicon.surface_rows)}
            self.slot_matrix = {slot: vecs[rows] for slot, rows in lexicon.slot_rows.items()}

    def _remember(self, p: str, v: np.ndarray) -> None:
        self.cache[p] = v
        self.cache.move_to_end(p)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

    def _known(self, p: str) -> np.ndarray | None:
        if p in self.surface_vec:
            return self.surface_vec[p]
        if p in self.cache:
            self.cache.move_to_end(p)
            return self.cache[p]
        if self.words is not None:
            return self.words.get(p)
        return None

    def vectors(self, phrases: list[str]) -> dict[str, tuple[np.ndarray, str]]:
        """``{phrase: (vector, source)}``; source is surface/table/cache/mean/encoder. Phrases
        nothing can embed are left out. At most one encoder call."""
        if not self.enabled:
            return {}
        out: dict[str, tuple[np.ndarray, str]] = {}
        todo: list[str] = []
        for p in dict.fromkeys(phrases):
            v = self._known(p)
            if v is not None:
                out[p] = (v, "table")
                continue
            parts = p.split()
            if len(parts) > 1:
                vs = [self._known(w) for w in parts]
                if all(x is not None for x in vs):
                    m = np.mean(vs, axis=0)
                    out[p] = (m / max(float(np.linalg.norm(m)), 1e-9), "mean")
                    continue
            todo.append(p)
        todo = [p for p in todo if all(plausible_word(w) for w in p.split())]
        if todo and self.encoder is not None:
            self.encoder_calls += 1
            vecs = np.asarray(self.encoder.encode_texts(todo), dtype=np.float32)
            for p, v in zip(todo, vecs):
                self._remember(p, v)
                out[p] = (v, "encoder")
        return out

    def best_other(self, vec: np.ndarray, slot: str) -> float:
        """The best similarity of ``vec`` to a surface of any other slot (brands excluded)."""
        sims = [float((m @ vec).max()) for s, m in self.slot_matrix.items()
                if s not in (slot, "brand") and len(m)]
        return max(sims, default=-1.0)

    def best(self, vec: np.ndarray, slot: str) -> tuple[int, str, float, float] | None:
        """(term index, surface, similarity, best similarity of another term) in ``slot``."""
        rows = self.lexicon.slot_rows.get(slot)
        if not self.enabled or rows is None or len(rows) == 0:
            return None
        sims = self.slot_matrix[slot] @ vec
        order = np.argsort(-sims)
        first = int(order[0])
        t_idx, surface = self.lexicon.surface_rows[int(rows[first])]
        second = 0.0
        for j in order[1:]:
            if self.lexicon.surface_rows[int(rows[int(j)])][0] != t_idx:
                second = float(sims[int(j)])
                break
        return t_idx, surface, float(sims[first]), second
