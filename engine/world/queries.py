"""Evaluation query sets and their graded relevance, computed from attributes (never from titles).

Grading (the same for text and image queries). A query asks for a set A of attribute values
(``{"category": "sneakers", "colour": "red"}``). For an item matching m of them:

* grade 3 — the item matches every attribute in A (m = |A|);
* grade 2 — |A| >= 3 and the item misses exactly one attribute, which is not the category;
* grade 1 — |A| = 2 and the item misses exactly one attribute, which is not the category;
* grade 0 — anything else (including any item of another category when A names one).

Binary metrics (recall, precision, MRR, MAP) count an item as relevant when its grade is 3
(``RELEVANT_GRADE``); NDCG uses the grades.

Query types: ``1-attr``, ``2-attr``, ``3-attr``; a share of each split are *paraphrases* whose
attribute words are vocab's held-out synonyms and whose phrasing uses templates that no title,
description or training caption uses. Attribute combinations are split into train / val / test
disjointly, so a learned re-ranker never sees a test combination during training.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from engine.config import WorldConfig
from engine.world import vocab

RELEVANT_GRADE = 3

# Field combinations per query type; the order of words in a query follows _WORD_ORDER.
_COMBOS = {
    "1-attr": (("category",), ("colour",), ("pattern",), ("material",)),
    "2-attr": (
        ("colour", "category"),
        ("pattern", "category"),
        ("material", "category"),
        ("colour", "pattern"),
    ),
    "3-attr": (("colour", "pattern", "category"), ("colour", "material", "category")),
}
_TYPE_SHARE = {"1-attr": 0.2, "2-attr": 0.4, "3-attr": 0.4}
_WORD_ORDER = ("colour", "pattern", "material", "category")
_TEMPLATES = ("{x}", "{x}", "{x}", "show me {x}", "{x} for sale", "looking for {x}")
_NO_CATEGORY = ("{x} items", "something {x}", "{x} products")
_PARAPHRASE_TEMPLATES = ("i'd like {x}", "any {x} please", "in search of {x}")
_PARAPHRASE_NO_CATEGORY = ("anything {x}", "stuff that is {x}")


def grade_items(attrs: dict[str, str], items: pd.DataFrame) -> np.ndarray:
    """Relevance grade (0-3) of every item for a query asking for ``attrs``; see module doc."""
    matches = np.stack([items[f].to_numpy() == v for f, v in attrs.items()])
    m = matches.sum(0)
    n = len(attrs)
    category_ok = items["category"].to_numpy() == attrs["category"] if "category" in attrs else True
    grades = np.zeros(len(items), dtype=np.int8)
    grades[(m == n - 1) & category_ok & (n == 2)] = 1
    grades[(m == n - 1) & category_ok & (n >= 3)] = 2
    grades[m == n] = 3
    return grades


def query_text(attrs: dict[str, str], rng: np.random.Generator, *, paraphrase: bool) -> str:
    """Phrase a query for ``attrs``; paraphrases use held-out words and templates only."""
    words = []
    for f in _WORD_ORDER:
        if f in attrs:
            t = vocab.term(f, attrs[f])
            pool = t.held_out if paraphrase else t.words
            words.append(pool[int(rng.integers(len(pool)))])
    x = " ".join(words)
    if "category" in attrs:
        templates = _PARAPHRASE_TEMPLATES if paraphrase else _TEMPLATES
    else:
        templates = _PARAPHRASE_NO_CATEGORY if paraphrase else _NO_CATEGORY
    return templates[int(rng.integers(len(templates)))].format(x=x)


def _all_combinations(qtype: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = [{}]
    result = []
    for fields in _COMBOS[qtype]:
        out = [{}]
        for f in fields:
            out = [{**o, f: v} for o in out for v in vocab.names(f)]
        result.extend(out)
    return result


def generate_text_queries(
    cfg: WorldConfig, items: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/val/test text queries and their qrels (only grades > 0 are stored)."""
    sizes = {"train": cfg.n_queries_train, "val": cfg.n_queries_val, "test": cfg.n_queries_test}
    total = sum(sizes.values())
    rows, qrels = [], []
    for qtype, share in _TYPE_SHARE.items():
        combos = _all_combinations(qtype)
        rng.shuffle(combos)
        # Disjoint pools of combinations per split, in proportion to the split sizes.
        bounds = np.cumsum([0] + [round(len(combos) * sizes[s] / total) for s in sizes])
        bounds[-1] = len(combos)
        for (split, n_split), lo, hi in zip(sizes.items(), bounds[:-1], bounds[1:]):
            pool = combos[lo:hi] or combos
            n_q = max(1, round(n_split * share))
            picks = rng.choice(len(pool), size=n_q, replace=n_q > len(pool))
            for j in picks:
                attrs = pool[int(j)]
                grades = grade_items(attrs, items)
                if not (grades == RELEVANT_GRADE).any():
                    continue  # a combination with no product in this catalog
                paraphrase = bool(rng.random() < cfg.paraphrase_rate)
                qid = f"q{len(rows):05d}"
                rows.append(
                    {
                        "query_id": qid,
                        "split": split,
                        "type": qtype,
                        "paraphrase": paraphrase,
                        "attributes": json.dumps(attrs, sort_keys=True),
                        "query": query_text(attrs, rng, paraphrase=paraphrase),
                    }
                )
                nz = np.flatnonzero(grades)
                qrels.append(pd.DataFrame({"query_id": qid, "row": nz, "grade": grades[nz]}))
    queries = pd.DataFrame(rows)
    qrels_df = pd.concat(qrels, ignore_index=True)
    qrels_df["item_id"] = items["item_id"].to_numpy()[qrels_df["row"].to_numpy()]
    return queries, qrels_df[["query_id", "item_id", "grade"]]


def sample_image_queries(cfg: WorldConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Attributes and render seeds of held-out query images (not catalog products)."""
    n = cfg.n_image_queries
    rows = []
    for i in range(n):
        attrs = {
            f: vocab.names(f)[int(rng.integers(len(vocab.names(f))))] for f in vocab.VISUAL_FIELDS
        }
        rows.append(
            {
                "query_id": f"iq{i:05d}",
                "split": "val" if i % 4 == 0 else "test",
                "type": "image",
                "attributes": json.dumps(attrs, sort_keys=True),
                "render_seed": int(rng.integers(2**31)),
            }
        )
    return pd.DataFrame(rows)


def image_query_qrels(image_queries: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Grades of catalog items for each image query (same grading as text queries)."""
    out = []
    for row in image_queries.itertuples():
        grades = grade_items(json.loads(row.attributes), items)
        nz = np.flatnonzero(grades)
        out.append(
            pd.DataFrame(
                {
                    "query_id": row.query_id,
                    "item_id": items["item_id"].to_numpy()[nz],
                    "grade": grades[nz],
                }
            )
        )
    return pd.concat(out, ignore_index=True)
