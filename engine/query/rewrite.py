"""What each search method gets from an :class:`Interpretation`.

* :func:`lexical_query` — BM25 / TF-IDF / keyword: catalog words plus the catalog's synonyms of
  each understood term ("red scarlet backpack rucksack polka dot dotted"), then free words;
* :func:`dense_query` — SBERT: the query in catalog words ("red polka dot backpack");
* :func:`clip_prompt` — CLIP text side: a caption-like prompt ("a red polka dot backpack");
* :func:`query_features` / :func:`item_features` — re-ranker features: which slots were
  understood and how surely, and per candidate how well it matches each understood part (the
  item's merchant category, its image's dominant colour vs the colour asked for, the tagger's
  and the title's evidence for pattern / material);
* :func:`attribute_scores` — one [0, 1] score per item from the same evidence, for the fusion
  methods to blend in (attribute-aware ranking);
* :func:`filter_mask` — price range, NEW and exclusions ("not black") as a boolean mask.

:class:`ItemAttributes` holds the per-item evidence (built once per catalog, next to the lexicon).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from engine.query.colours import ciede2000
from engine.query.image_colours import ImageColourStats
from engine.query.interpretation import Interpretation
from engine.query.lexicon import QueryLexicon, catalog_items
from engine.query.text import phrase, words

MAX_SYNONYMS = 3
COLOUR_SIGMA = 15.0  # CIEDE2000 scale of the pixel colour likelihood exp(-(dE / sigma)^2)
EXCLUDE_EVIDENCE = 0.5  # an item is excluded when its evidence for the term reaches this
MISMATCH = 0.05  # attribute score factor of an item of another category / brand
MAX_CACHED_TERMS = 256  # per-term vectors ItemAttributes keeps (n floats each)
ATTR_FILES = ("query_item_attributes.npz", "query_item_attributes.json")


# ----------------------------------------------------------------------------- text rewrites
def lexical_query(interp: Interpretation, lexicon: QueryLexicon,
                  max_synonyms: int = MAX_SYNONYMS) -> str:
    """The words BM25, TF-IDF and keyword matching should look for: a part typed in the
    catalog's own words stays as typed; a part understood from other words (a typo, a synonym,
    a colour name) becomes the catalog's words for it; free words stay. Constraints (price,
    "new", "not black") are filters, not words to match."""
    out: list[str] = []
    for p in interp.positive():
        if p.how == "exact":
            surfaces = [phrase(p.surface)]
        else:
            term = lexicon.term(p.slot, p.value)
            surfaces = term.surfaces[: max(1, max_synonyms)] if term else [phrase(p.value)]
        out.extend(s for s in surfaces if s not in out)
    out.extend(w for w in interp.free_text if w not in out)
    return " ".join(out)


def dense_query(interp: Interpretation) -> str:
    """The query in catalog words (for SBERT); falls back to the original text."""
    return interp.rewritten or " ".join(words(interp.query))


def clip_prompt(interp: Interpretation) -> str:
    """A caption-like prompt for the CLIP text tower ("a red polka dot backpack")."""
    return interp.clip_prompt


# ----------------------------------------------------------------------------- per-item evidence
@dataclass
class ItemAttributes:
    """Per-item evidence for every lexicon term, in the items table's row order."""

    item_ids: list[str]
    category: np.ndarray  # (n,) object: merchant category
    brand: np.ndarray  # (n,) object
    dominant_lab: np.ndarray | None  # (n, 3) float32, from the images
    evidence: sp.csr_matrix  # (n, n_terms) float32: max(tag confidence, 1.0 if named in text)
    term_keys: list[str]  # column order of ``evidence`` ("colour:red", ...)
    term_labs: dict[str, list[float]] | None = None  # colour terms' image-grounded Lab
    # Per-term vectors over all items, computed on first use: a query asks for a handful of
    # terms, and recomputing them (a sparse column, CIEDE2000 to every item) on each query
    # was most of the hybrid method's time. Bounded: query-typed shades can add entries.
    _cache: dict[tuple, np.ndarray] = field(default_factory=dict, init=False, repr=False,
                                            compare=False)
    # The app's sessions search from several threads: evicting and inserting are one step.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False,
                                  compare=False)

    def column(self, key: str) -> np.ndarray:
        """Every item's evidence for ``key`` (zeros for a term the catalog has no column for)."""
        return self._cached(("column", key), lambda: self._column(key))

    def _column(self, key: str) -> np.ndarray:
        try:
            j = self.term_keys.index(key)
        except ValueError:
            return np.zeros(len(self.item_ids), np.float32)
        return np.asarray(self.evidence[:, j].todense()).ravel()

    def pixel_evidence(self, lab: np.ndarray | list[float]) -> np.ndarray:
        """Every item's likelihood that its image's dominant colour is ``lab``:
        ``exp(-(dE / COLOUR_SIGMA)^2)`` with ``dE`` the CIEDE2000 distance (kL = 2)."""
        key = tuple(float(x) for x in np.asarray(lab, np.float64).ravel())
        return self._cached(("pixel", key), lambda: _pixel_likelihood(self.dominant_lab, key))

    def _cached(self, key: tuple, make) -> np.ndarray:
        out = self._cache.get(key)
        if out is None:
            out = make()  # outside the lock: two threads may both compute it, never corrupt
            out.setflags(write=False)
            with self._lock:
                while key not in self._cache and len(self._cache) >= MAX_CACHED_TERMS:
                    self._cache.pop(next(iter(self._cache)))
                out = self._cache.setdefault(key, out)
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        lab = self.dominant_lab if self.dominant_lab is not None else np.zeros((0, 3), np.float32)
        sp.save_npz(folder / "query_item_evidence.npz", self.evidence)
        np.savez(folder / ATTR_FILES[0], dominant_lab=lab)
        (folder / ATTR_FILES[1]).write_text(json.dumps({
            "item_ids": self.item_ids, "category": self.category.tolist(),
            "brand": self.brand.tolist(), "term_keys": self.term_keys,
            "term_labs": self.term_labs or {}}))

    @classmethod
    def load(cls, folder: Path) -> ItemAttributes:
        meta = json.loads((folder / ATTR_FILES[1]).read_text())
        lab = np.load(folder / ATTR_FILES[0], allow_pickle=False)["dominant_lab"]
        return cls(meta["item_ids"], np.array(meta["category"], dtype=object),
                   np.array(meta["brand"], dtype=object), lab if len(lab) else None,
                   sp.load_npz(folder / "query_item_evidence.npz").tocsr(), meta["term_keys"],
                   meta.get("term_labs") or None)


def build_item_attributes(items: pd.DataFrame, keywords: pd.DataFrame | None,
                          lexicon: QueryLexicon,
                          image_stats: ImageColourStats | None = None) -> ItemAttributes:
    """Evidence of each item for each lexicon term: the best confidence of a tag naming one of
    the term's surfaces, or 1.0 when the title or description names it."""
    items = catalog_items(items)
    n = len(items)
    row_of = {item: r for r, item in enumerate(items["item_id"])}
    term_keys = [t.key for t in lexicon.terms if t.slot in ("colour", "pattern", "material")]
    col_of: dict[str, int] = {}
    for j, key in enumerate(term_keys):
        t = lexicon.terms[lexicon.by_key[key]]
        for s in t.surfaces:
            col_of.setdefault(s, j)
    best: dict[tuple[int, int], float] = {}
    if keywords is not None and len(keywords):
        for item, kw, conf in zip(keywords["item_id"], keywords["keyword"],
                                  keywords["confidence"]):
            r, j = row_of.get(item), col_of.get(phrase(str(kw)))
            if r is not None and j is not None:
                c = float(conf) if pd.notna(conf) else 0.5
                best[r, j] = max(best.get((r, j), 0.0), c)
    max_n = max((len(s.split()) for s in col_of), default=1)
    for r, (title, desc) in enumerate(zip(items["title"], items["description"])):
        toks = words(f"{title} . {desc}")
        for k in range(1, max_n + 1):
            for i in range(len(toks) - k + 1):
                j = col_of.get(" ".join(toks[i : i + k]))
                if j is not None:
                    best[r, j] = 1.0
    keys = list(best)
    ev = sp.csr_matrix(
        (np.array([best[k] for k in keys], np.float32),
         (np.array([k[0] for k in keys], np.int32), np.array([k[1] for k in keys], np.int32))),
        shape=(n, len(term_keys)))
    lab = image_stats.dominant.astype(np.float32) if image_stats is not None else None
    term_labs = {t.key: t.lab for t in lexicon.slot_terms("colour") if t.lab is not None}
    return ItemAttributes(items["item_id"].astype(str).tolist(),
                          items["category"].to_numpy(dtype=object),
                          items["brand"].to_numpy(dtype=object), lab, ev, term_keys, term_labs)


def _part_evidence(p, attrs: ItemAttributes, rows: np.ndarray) -> np.ndarray:
    """How well each item (rows) matches one understood part, in [0, 1]."""
    if p.slot == "category":
        return (attrs.category[rows] == p.value).astype(np.float32)
    if p.slot == "brand":
        return (attrs.brand[rows] == p.value).astype(np.float32)
    key = f"{p.slot}:{p.value}"
    tag = attrs.column(key)[rows]
    # the colour the catalog's images show for the term (the query's own shade, e.g. "dark
    # green", is only a fallback: the catalog colour is what the items were matched to)
    lab = (attrs.term_labs or {}).get(key) or p.lab
    if p.slot == "colour" and attrs.dominant_lab is not None and lab is not None:
        return np.maximum(attrs.pixel_evidence(lab)[rows], tag)
    return tag


def _pixel_likelihood(dominant_lab: np.ndarray, lab: tuple[float, ...]) -> np.ndarray:
    de = ciede2000(dominant_lab.astype(np.float64), np.asarray(lab), kL=2.0)
    return np.exp(-((de / COLOUR_SIGMA) ** 2)).astype(np.float32)


def attribute_scores(interp: Interpretation, attrs: ItemAttributes,
                     rows: np.ndarray | None = None) -> np.ndarray | None:
    """Per-item [0, 1] agreement with the understood parts (None when nothing was understood).

    Each part contributes ``conf * e + (1 - conf) * 0.5`` for category and brand (``e`` is 1 or
    ``MISMATCH``) and ``conf * (0.2 + 0.8 * e) + (1 - conf) * 0.5`` for colour, pattern and
    material evidence ``e``; the score is their product."""
    parts = interp.positive()
    if not parts:
        return None
    rows = np.arange(len(attrs.item_ids)) if rows is None else np.asarray(rows)
    score = np.ones(len(rows), np.float32)
    for p in parts:
        e = _part_evidence(p, attrs, rows)
        if p.slot in ("category", "brand"):
            f = np.where(e > 0, 1.0, MISMATCH)
        else:
            f = 0.2 + 0.8 * e
        score *= p.confidence * f + (1 - p.confidence) * 0.5
    return score


def filter_mask(interp: Interpretation, price: np.ndarray, is_new: np.ndarray,
                attrs: ItemAttributes | None = None) -> np.ndarray | None:
    """Items allowed by the filters (price range, NEW, exclusions); None when nothing filters.

    Exclusions need ``attrs``: a category or brand excluded drops the items of it; an excluded
    colour, pattern or material drops items whose evidence for it is >= ``EXCLUDE_EVIDENCE``
    (tag confidence, text mention, or for colours the image's dominant colour)."""
    f = interp.filters
    mask = None

    def both(m: np.ndarray) -> np.ndarray:
        return m if mask is None else mask & m

    price = np.asarray(price, dtype=np.float64)
    if f.price_min is not None:
        mask = both(np.nan_to_num(price, nan=-np.inf) >= f.price_min)
    if f.price_max is not None:
        mask = both(np.nan_to_num(price, nan=np.inf) <= f.price_max)
    if f.new_only:
        mask = both(np.asarray(is_new, dtype=bool))
    if attrs is not None:
        rows = np.arange(len(attrs.item_ids))
        for p in interp.parts:
            if p.negated:
                mask = both(_part_evidence(p, attrs, rows) < EXCLUDE_EVIDENCE)
    return mask


# ----------------------------------------------------------------------------- re-ranker
QUERY_FEATURES = (
    "q_n_parts", "q_n_free", "q_semantic_share",
    "q_category_conf", "q_colour_conf", "q_pattern_conf", "q_material_conf", "q_brand_conf",
    "q_has_price", "q_new_only", "q_n_excluded",
)
ITEM_FEATURES = ("a_category", "a_colour", "a_pattern", "a_material", "a_brand", "a_score")


def query_features(interp: Interpretation) -> dict[str, float]:
    """Query-level features: what was understood and how surely (0 for a slot not asked)."""
    pos = interp.positive()
    out = {
        "q_n_parts": float(len(pos)),
        "q_n_free": float(len(interp.free_text)),
        "q_semantic_share": float(np.mean([p.how in ("semantic", "fuzzy") for p in pos]))
        if pos else 0.0,
        "q_has_price": float(interp.filters.price_min is not None
                             or interp.filters.price_max is not None),
        "q_new_only": float(interp.filters.new_only),
        "q_n_excluded": float(sum(p.negated for p in interp.parts) + len(interp.excluded_text)),
    }
    for slot in ("category", "colour", "pattern", "material", "brand"):
        ps = interp.positive(slot)
        out[f"q_{slot}_conf"] = max((p.confidence for p in ps), default=0.0)
    return out


def item_features(interp: Interpretation, attrs: ItemAttributes,
                  rows: np.ndarray) -> np.ndarray:
    """(len(rows), len(ITEM_FEATURES)) float32: per candidate, its evidence for the understood
    part of each slot (-1 when the query does not ask for that slot) and the attribute score."""
    rows = np.asarray(rows)
    out = np.full((len(rows), len(ITEM_FEATURES)), -1.0, np.float32)
    for k, slot in enumerate(("category", "colour", "pattern", "material", "brand")):
        ps = interp.positive(slot)
        if ps:
            out[:, k] = np.max([_part_evidence(p, attrs, rows) for p in ps], axis=0)
    s = attribute_scores(interp, attrs, rows)
    if s is not None:
        out[:, -1] = s
    return out
