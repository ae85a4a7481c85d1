"""The catalog-mined query lexicon: what the catalog calls things, mined at build time.

Inputs are only what a real catalog holds: the items' ``title``, ``description``, ``brand``,
``category`` (merchant category), ``price`` and ``is_new``; the tagger's ``keywords`` table
(``item_id, keyword, confidence, source``); per-item image colour statistics
(:mod:`engine.query.image_colours`); and a text encoder. The items table's other columns are
dropped before anything is read (:data:`CATALOG_COLUMNS`).

Slots and how each is mined (:mod:`engine.query.mining` holds the heuristics):

* ``category`` — each merchant category, with the surface words titles use for it: title-final
  phrases (one to three words) whose items are almost all of one category (purity
  ``CATEGORY_PURITY``); a longer phrase must be a collocation (its first word is followed by the
  rest ``COLLOCATION`` of the time) so "eco frock" is not a surface of dress but "table lamp" is.
* ``colour`` — catalog phrases (title, description, tags) that are names in the colour table AND
  whose items' images agree on a colour: the densest cluster of the items' dominant Lab colours
  holds ``COLOUR_COHESION`` of them and at least ``COLOUR_LIFT`` times the share the whole
  catalog has near that colour, and that cluster lies within ``COLOUR_TABLE_DE`` (CIEDE2000) of
  the table's colour for the word. Each term's Lab is the cluster's mean: the colour the images
  show. Terms within ``COLOUR_MERGE_DE`` of each other are one colour (red + scarlet).
* ``material`` — title words seen directly before the category noun in at least
  ``MATERIAL_BEFORE_NOUN`` of their title uses, that are not colour, brand or category words.
* ``pattern`` — tag phrases that are not category, colour, material or brand words (an image
  tagger names category, colour and pattern), plus title words that mostly co-occur with them.
* ``brand`` — the brand column, recognised exactly so "Saffron" is never read as a colour.

Synonyms are grouped into one term when their items overlap (tags put on the same items:
"polka dot" + "dotted") or, for colours, when the images agree. Every surface gets an encoder
vector, stored next to the JSON (``.npy``, no pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.indexes.tokenize import STOPWORDS
from engine.query.text import compact

SLOTS = ("category", "colour", "pattern", "material", "brand")
CATALOG_COLUMNS = ("item_id", "title", "description", "brand", "category", "price", "is_new")
LEXICON_JSON, LEXICON_VECTORS = "query_lexicon.json", "query_lexicon_vectors.npy"
FORMAT_VERSION = 1


@dataclass
class Term:
    """One value of a slot and the catalog's surface phrases for it (best supported first)."""

    slot: str
    value: str  # the catalog's word for it ("red", "t-shirt")
    surfaces: list[str]  # normalised phrases ("red", "scarlet")
    support: list[float]  # weighted item counts of each surface
    lab: list[float] | None = None  # colours: the Lab the images show
    evidence: dict = field(default_factory=dict)  # how it was mined (for the report and docs)

    @property
    def key(self) -> str:
        return f"{self.slot}:{self.value}"


@dataclass
class QueryLexicon:
    """Catalog terms by slot, their surfaces' encoder vectors and price statistics."""

    terms: list[Term]
    price: dict  # {"all": {"q25":..,"q50":..,"q75":..}, "by_category": {value: {...}}}
    vocabulary: dict[str, int]  # catalog words and their document frequency (title + text)
    encoder_name: str | None = None
    vectors: np.ndarray | None = None  # (n_surfaces, d) in surface order, L2-normalised
    rejected: dict = field(default_factory=dict)  # candidates mined and rejected, with reasons
    n_items: int = 0

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the lookup tables after terms changed."""
        self.surface_rows: list[tuple[int, str]] = []  # vector row -> (term index, surface)
        self.exact: dict[str, int] = {}
        self.compact_index: dict[str, int] = {}
        for t_idx, term in enumerate(self.terms):
            for s in term.surfaces:
                self.surface_rows.append((t_idx, s))
                self.exact.setdefault(s, t_idx)
                self.compact_index.setdefault(compact(s), t_idx)
        self.slot_rows: dict[str, np.ndarray] = {
            slot: np.array([r for r, (t, _) in enumerate(self.surface_rows)
                            if self.terms[t].slot == slot], dtype=np.intp)
            for slot in SLOTS
        }
        self.by_key = {t.key: i for i, t in enumerate(self.terms)}
        # a word used only inside one term's multi-word surfaces ("tote" of "tote bag")
        owners: dict[str, set[int]] = {}
        for t_idx, term in enumerate(self.terms):
            for s in term.surfaces:
                if " " in s:
                    for w in s.split():
                        owners.setdefault(w, set()).add(t_idx)
        self.partial: dict[str, tuple[int, str]] = {}
        for w, ts in owners.items():
            if len(ts) == 1 and len(w) >= 3 and w not in self.exact and w not in STOPWORDS:
                t_idx = next(iter(ts))
                surface = next(s for s in self.terms[t_idx].surfaces if w in s.split())
                self.partial[w] = (t_idx, surface)

    # ------------------------------------------------------------- queries about the lexicon
    def slot_terms(self, slot: str) -> list[Term]:
        return [t for t in self.terms if t.slot == slot]

    def term(self, slot: str, value: str) -> Term | None:
        i = self.by_key.get(f"{slot}:{value}")
        return None if i is None else self.terms[i]

    def colour_labs(self) -> tuple[list[int], np.ndarray]:
        """Indices of the colour terms and their grounded Lab values (k, 3)."""
        idx = [i for i, t in enumerate(self.terms) if t.slot == "colour" and t.lab is not None]
        labs = np.array([self.terms[i].lab for i in idx], dtype=np.float64).reshape(-1, 3)
        return idx, labs

    def summary(self) -> dict[str, list[str]]:
        """``{slot: ["red (scarlet)", ...]}`` for reports."""
        out: dict[str, list[str]] = {}
        for t in self.terms:
            others = [s for s in t.surfaces if s != t.value]
            out.setdefault(t.slot, []).append(
                f"{t.value} ({', '.join(others)})" if others else t.value)
        return out

    # ------------------------------------------------------------- persistence (JSON + .npy)
    def to_json(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "n_items": self.n_items,
            "encoder": self.encoder_name,
            "terms": [asdict(t) for t in self.terms],
            "price": self.price,
            "vocabulary": self.vocabulary,
            "rejected": self.rejected,
        }

    @classmethod
    def from_json(cls, data: dict, vectors: np.ndarray | None = None) -> QueryLexicon:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"query lexicon format {data.get('format')!r} is not "
                             f"{FORMAT_VERSION}; rebuild the catalog")
        lex = cls(
            terms=[Term(**t) for t in data["terms"]],
            price=data["price"],
            vocabulary=data["vocabulary"],
            encoder_name=data.get("encoder"),
            vectors=vectors,
            rejected=data.get("rejected", {}),
            n_items=data.get("n_items", 0),
        )
        if vectors is not None and len(vectors) != len(lex.surface_rows):
            raise ValueError("query lexicon vectors do not match its surfaces; rebuild")
        return lex

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / LEXICON_JSON).write_text(json.dumps(self.to_json(), indent=1))
        if self.vectors is not None:
            np.save(folder / LEXICON_VECTORS, self.vectors.astype(np.float32))

    @classmethod
    def load(cls, folder: Path) -> QueryLexicon:
        data = json.loads((folder / LEXICON_JSON).read_text())
        vec_path = folder / LEXICON_VECTORS
        vectors = np.load(vec_path, allow_pickle=False) if vec_path.exists() else None
        return cls.from_json(data, vectors)

    def encode_surfaces(self, encoder) -> None:
        """Encoder vectors of every surface phrase, in :attr:`surface_rows` order."""
        texts = [s for _, s in self.surface_rows]
        self.encoder_name = getattr(encoder, "name", type(encoder).__name__)
        vectors = encoder.encode_texts(texts) if texts else np.zeros((0, encoder.dim))
        self.vectors = vectors.astype(np.float32)


def catalog_items(items: pd.DataFrame) -> pd.DataFrame:
    """Only the columns a real catalog holds (:data:`CATALOG_COLUMNS`); everything else, such
    as a synthetic world's ``colour``/``pattern``/``material`` truth, is dropped unread."""
    if "title" not in items.columns:
        raise ValueError("the items table has no 'title' column")
    keep = [c for c in CATALOG_COLUMNS if c in items.columns]
    out = items[keep].copy()
    for col in ("title", "description", "brand", "category"):
        if col not in out.columns:
            out[col] = ""
        out[col] = out[col].fillna("").astype(str)
    if "item_id" not in out.columns:
        out["item_id"] = [str(i) for i in range(len(out))]
    return out.reset_index(drop=True)


def price_stats(items: pd.DataFrame) -> dict:
    """Price quartiles overall and per merchant category (for "cheap" and "expensive")."""
    def quart(p: pd.Series) -> dict:
        p = pd.to_numeric(p, errors="coerce").dropna()
        if p.empty:
            return {}
        q = p.quantile([0.25, 0.5, 0.75]).round(2).tolist()
        return {"q25": q[0], "q50": q[1], "q75": q[2], "n": int(len(p))}

    if "price" not in items.columns:
        return {"all": {}, "by_category": {}}
    by_cat = {str(c): quart(g["price"]) for c, g in items.groupby("category") if str(c)}
    return {"all": quart(items["price"]), "by_category": by_cat}
