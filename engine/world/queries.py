"""Evaluation query sets and their graded relevance, computed from attributes (never from titles).

Grading (the same for text and image queries). A query asks for a set A of attribute values
(``{"category": "sneakers", "colour": "red"}``). For an item matching m of them:

* grade 3 — the item matches every attribute in A (m = |A|);
* grade 2 — |A| >= 3 and the item misses exactly one attribute, which is not the category;
* grade 1 — |A| = 2 and the item misses exactly one attribute, which is not the category;
* grade 0 — anything else (including any item of another category when A names one).

Binary metrics (recall, precision, MRR, MAP) count an item as relevant when its grade is 3
(``RELEVANT_GRADE``); NDCG uses the grades. Price is never part of A, so no query names a price.

Query sets. Every split (train / val / test) holds ``1-attr``, ``2-attr`` and ``3-attr`` queries;
an attribute combination appears at most once in a split and in one split only (combinations are
dealt to the splits disjointly, in proportion to their sizes, *before* any is drawn, so a learned
re-ranker never sees a test combination), so no query text repeats. With the world's 37
one-attribute combinations there are few 1-attr queries; the 2- and 3-attr types fill the rest.
Each query has a ``wording``:

* ``catalog`` — the catalog's own words (``vocab`` ``words``) in plain templates;
* ``paraphrase`` — held-out synonyms (``vocab`` ``paraphrase``) in templates no catalog text uses;
* ``wild`` — what people type (``vocab`` ``wild``, ``typos`` and ``modifiers``): colour-table names
  ("mustard", "charcoal"), other names and spellings ("daypack", "tshirt"), pattern slang
  ("stripy", "tartan"), misspellings ("sneakres"), and constraint phrases that do not change
  relevance ("for my sister", "as a present"; never a price, which the grading ignores). The
  ``subtype`` column says which: ``synonym`` (wild words only), ``typo`` (at least one misspelt
  attribute) or ``modifier`` (the colour as a colour-table phrase made of a modifier and the
  colour's catalog word, "hot pink": the one wild wording that contains a catalog word). Wild
  queries name category, colour and pattern only (materials have no wild words).

Train and validation queries draw paraphrase and wild words (and wild templates) from the
``train`` half of each vocab list, test queries from the ``test`` half only. ``visual`` is true for
a query that names a colour or a pattern.

Title-silent judgments: ``qrels.title_silent`` is true for a judged item of a query naming a colour
or pattern when the item's title and description name none of the asked colour and pattern values
(no word of their ``vocab`` ``words``) — the items text search cannot find by the visual words.
It is false for every item of a query that names neither. Evaluation code may read it; no search
method may.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from engine.config import WorldConfig
from engine.world import vocab

RELEVANT_GRADE = 3
WORDINGS = ("catalog", "paraphrase", "wild")
WILD_SUBTYPES = ("synonym", "typo", "modifier")
TYPES = ("1-attr", "2-attr", "3-attr")
SPLITS = ("train", "val", "test")

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
_TOP_UP_ORDER = ("3-attr", "2-attr", "1-attr")  # who takes the queries a small type cannot
_WORD_ORDER = ("colour", "pattern", "material", "category")
_TEMPLATES = ("{x}", "{x}", "{x}", "show me {x}", "{x} for sale", "looking for {x}")
_NO_CATEGORY = ("{x} items", "something {x}", "{x} products")
_PARAPHRASE_TEMPLATES = ("i'd like {x}", "any {x} please", "in search of {x}")
_PARAPHRASE_NO_CATEGORY = ("anything {x}", "stuff that is {x}")
# What people add around the attribute words; none changes relevance (no price, no size).
_WILD_TEMPLATES = vocab.Split(
    train=("{x}", "{x}", "{x} for my sister", "{x} please", "need {x}"),
    test=("{x}", "{x}", "{x} as a present", "gift idea {x}", "{x} pls"),
)
_WILD_FIELDS = frozenset(vocab.VISUAL_FIELDS)
_TYPO_SHARE = 0.25  # of a split's wild queries
_MODIFIER_SHARE = 0.15  # of a split's wild queries (those naming a colour that has modifiers)
_VISUAL_ASKED = ("colour", "pattern")


def grade_items(attrs: dict[str, str], items) -> np.ndarray:
    """Relevance grade (0-3) of every item for a query asking for ``attrs``; see module doc.

    ``items`` is a DataFrame or a mapping of field name to an array of values (plain object
    arrays compare far quicker than Arrow-backed columns when many queries are graded).
    """
    matches = np.stack([np.asarray(items[f]) == v for f, v in attrs.items()])
    m = matches.sum(0)
    n = len(attrs)
    category = np.asarray(items["category"])
    category_ok = category == attrs["category"] if "category" in attrs else True
    grades = np.zeros(matches.shape[1], dtype=np.int8)
    grades[(m == n - 1) & category_ok & (n == 2)] = 1
    grades[(m == n - 1) & category_ok & (n >= 3)] = 2
    grades[m == n] = 3
    return grades


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def query_text(
    attrs: dict[str, str],
    rng: np.random.Generator,
    *,
    wording: str = "catalog",
    split: str = "test",
    subtype: str = "synonym",
) -> tuple[str, str]:
    """Phrase a query for ``attrs``; returns the text and the wild subtype actually used.

    ``catalog`` uses vocab ``words``; ``paraphrase`` the split's paraphrase words; ``wild`` the
    split's wild words, with one misspelt attribute for ``subtype="typo"`` and the colour as a
    modifier phrase for ``subtype="modifier"`` (an attribute without a wild word of this split is
    misspelt instead, so the subtype returned may be ``typo`` where ``synonym`` was asked). The
    subtype returned is "" for catalog and paraphrase wording.
    """
    fields = [f for f in _WORD_ORDER if f in attrs]
    terms = {f: vocab.term(f, attrs[f]) for f in fields}
    if wording == "catalog":
        x = " ".join(_pick(rng, terms[f].words) for f in fields)
        templates = _TEMPLATES if "category" in attrs else _NO_CATEGORY
        return _pick(rng, templates).format(x=x), ""
    if wording == "paraphrase":
        x = " ".join(_pick(rng, terms[f].paraphrase.for_split(split)) for f in fields)
        templates = _PARAPHRASE_TEMPLATES if "category" in attrs else _PARAPHRASE_NO_CATEGORY
        return _pick(rng, templates).format(x=x), ""
    if wording != "wild":
        raise ValueError(f"unknown wording {wording!r}; valid: {', '.join(WORDINGS)}")
    if not set(fields) <= _WILD_FIELDS:
        raise ValueError(f"wild queries name only {sorted(_WILD_FIELDS)}, not {fields}")
    kind = dict.fromkeys(fields, "wild")
    if subtype == "modifier" and terms.get("colour") and terms["colour"].modifiers.for_split(split):
        kind["colour"] = "modifiers"
    elif subtype == "typo":
        kind[fields[int(rng.integers(len(fields)))]] = "typos"
    for f in fields:
        if kind[f] == "wild" and not terms[f].wild.for_split(split):
            kind[f] = "typos"
    words = [_pick(rng, getattr(terms[f], kind[f]).for_split(split)) for f in fields]
    used = set(kind.values())
    actual = "modifier" if "modifiers" in used else "typo" if "typos" in used else "synonym"
    return _pick(rng, _WILD_TEMPLATES.for_split(split)).format(x=" ".join(words)), actual


def _all_combinations(qtype: str) -> list[dict[str, str]]:
    result = []
    for fields in _COMBOS[qtype]:
        out: list[dict[str, str]] = [{}]
        for f in fields:
            out = [{**o, f: v} for o in out for v in vocab.names(f)]
        result.extend(out)
    return result


def _present_combinations(qtype: str, items: pd.DataFrame) -> list[dict[str, str]]:
    """The combinations of ``qtype`` that at least one item has, in canonical order."""
    present = {
        fields: set(zip(*(items[f].to_numpy() for f in fields))) for fields in _COMBOS[qtype]
    }
    return [c for c in _all_combinations(qtype) if tuple(c.values()) in present[tuple(c)]]


def _type_counts(n: int, available: dict[str, int]) -> dict[str, int]:
    """Queries per type in a split of ``n``: the target shares, capped by the combinations the
    split has (no combination twice); what a type cannot take goes to 3-attr, then 2-attr."""
    counts = {t: min(round(n * _TYPE_SHARE[t]), available[t]) for t in TYPES}
    for t in _TOP_UP_ORDER:
        counts[t] += min(max(0, n - sum(counts.values())), available[t] - counts[t])
    return counts


def _assign_wordings(
    combos: list[dict[str, str]], cfg: WorldConfig, rng: np.random.Generator
) -> list[str]:
    """Exact shares of wild and paraphrase wording among ``combos`` (wild: visual fields only)."""
    n = len(combos)
    order = rng.permutation(n)
    wording = ["catalog"] * n
    eligible = [int(i) for i in order if set(combos[i]) <= _WILD_FIELDS]
    n_wild = min(round(n * cfg.wild_rate), len(eligible))
    for i in eligible[:n_wild]:
        wording[i] = "wild"
    rest = [int(i) for i in order if wording[i] == "catalog"]
    for i in rest[: min(round(n * cfg.paraphrase_rate), len(rest))]:
        wording[i] = "paraphrase"
    return wording


def _wild_subtypes(combos: list[dict[str, str]], split: str, rng: np.random.Generator) -> list:
    """Asked subtypes of a split's wild queries: exact typo and modifier shares."""
    n = len(combos)
    asked = ["synonym"] * n
    order = [int(i) for i in rng.permutation(n)]
    can_modify = [
        i
        for i in order
        if "colour" in combos[i]
        and vocab.term("colour", combos[i]["colour"]).modifiers.for_split(split)
    ]
    for i in can_modify[: round(n * _MODIFIER_SHARE)]:
        asked[i] = "modifier"
    rest = [i for i in order if asked[i] == "synonym"]
    for i in rest[: round(n * _TYPO_SHARE)]:
        asked[i] = "typo"
    return asked


def text_mentions(items: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """(field, value) -> whether each item's title or description names that colour/pattern.

    A value is named by any of its ``vocab`` ``words``, whole words, longest first ("navy blue"
    names navy, not blue).
    """
    texts = [
        f"{t} {d}".lower()
        for t, d in zip(items["title"].fillna(""), items["description"].fillna(""))
    ]
    out = {}
    for f in _VISUAL_ASKED:
        value_of = {w.lower(): t.name for t in vocab.FIELDS[f] for w in t.words}
        alts = "|".join(re.escape(w) for w in sorted(value_of, key=len, reverse=True))
        pattern = re.compile(rf"(?<![a-z0-9])(?:{alts})(?![a-z0-9])")
        for t in vocab.FIELDS[f]:
            out[f, t.name] = np.zeros(len(texts), dtype=bool)
        for k, text in enumerate(texts):
            for word in pattern.findall(text):
                out[f, value_of[word]][k] = True
    return out


def title_silent(attrs: dict[str, str], mentions: dict[tuple[str, str], np.ndarray]) -> np.ndarray:
    """Per item: the query asks a colour or pattern and the item's text names none of them.

    ``mentions`` comes from :func:`text_mentions`; all False for a query naming neither.
    """
    asked = [f for f in _VISUAL_ASKED if f in attrs]
    if not asked:
        return np.zeros(len(next(iter(mentions.values()))), dtype=bool)
    named = np.logical_or.reduce([mentions[f, attrs[f]] for f in asked])
    return ~named


def generate_text_queries(
    cfg: WorldConfig, items: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/val/test text queries and their qrels (only grades > 0 are stored); see module doc.

    ``queries``: ``query_id, split, type, wording, subtype, visual, attributes, query``;
    ``qrels``: ``query_id, item_id, grade, title_silent``.
    """
    sizes = {"train": cfg.n_queries_train, "val": cfg.n_queries_val, "test": cfg.n_queries_test}
    total = sum(sizes.values())
    pools: dict[str, dict[str, list[dict[str, str]]]] = {s: {} for s in SPLITS}
    for qtype in TYPES:
        combos = _present_combinations(qtype, items)
        rng.shuffle(combos)
        # Disjoint pools of combinations per split, in proportion to the split sizes.
        bounds = np.cumsum([0] + [round(len(combos) * sizes[s] / total) for s in SPLITS])
        bounds[-1] = len(combos)
        for split, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:]):
            pools[split][qtype] = combos[lo:hi]
    mentions = text_mentions(items)
    # Plain object arrays: comparing them is far quicker than Arrow-backed columns, once per query.
    attr_frame = {f: items[f].to_numpy(dtype=object) for f in vocab.FIELDS}
    rows: list[dict] = []
    qrel_parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    for split in SPLITS:
        counts = _type_counts(sizes[split], {t: len(pools[split][t]) for t in TYPES})
        picked = [(t, c) for t in TYPES for c in pools[split][t][: counts[t]]]
        wordings: list[str] = []
        for t in TYPES:
            wordings += _assign_wordings([c for q, c in picked if q == t], cfg, rng)
        wild_idx = [i for i, w in enumerate(wordings) if w == "wild"]
        asked = dict(zip(wild_idx, _wild_subtypes([picked[i][1] for i in wild_idx], split, rng)))
        texts: set[str] = set()
        split_rows = []
        for i, ((qtype, attrs), wording) in enumerate(zip(picked, wordings)):
            for _ in range(20):  # distinct attributes give distinct words; a guard all the same
                text, subtype = query_text(
                    attrs, rng, wording=wording, split=split, subtype=asked.get(i, "synonym")
                )
                if text not in texts:
                    break
            else:
                raise RuntimeError(f"could not phrase a new query for {attrs} in {split}")
            texts.add(text)
            split_rows.append((qtype, wording, subtype, attrs, text))
        # Shuffled within the split, so the first n queries (``bench --limit``) are a fair sample.
        for k in rng.permutation(len(split_rows)):
            qtype, wording, subtype, attrs, text = split_rows[int(k)]
            qid = f"q{len(rows):05d}"
            asked_visual = [f for f in _VISUAL_ASKED if f in attrs]
            rows.append(
                {
                    "query_id": qid,
                    "split": split,
                    "type": qtype,
                    "wording": wording,
                    "subtype": subtype,
                    "visual": bool(asked_visual),
                    "attributes": json.dumps(attrs, sort_keys=True),
                    "query": text,
                }
            )
            grades = grade_items(attrs, attr_frame)
            nz = np.flatnonzero(grades)
            qrel_parts.append((qid, nz, grades[nz], title_silent(attrs, mentions)[nz]))
    columns = ["query_id", "split", "type", "wording", "subtype", "visual", "attributes", "query"]
    queries = pd.DataFrame(rows, columns=columns)
    nz_all = np.concatenate([p[1] for p in qrel_parts])
    qrels = pd.DataFrame(
        {
            "query_id": np.repeat([p[0] for p in qrel_parts], [len(p[1]) for p in qrel_parts]),
            "item_id": items["item_id"].to_numpy()[nz_all],
            "grade": np.concatenate([p[2] for p in qrel_parts]).astype(np.int8),
            "title_silent": np.concatenate([p[3] for p in qrel_parts]),
        }
    )
    return queries, qrels


def query_set_summary(queries: pd.DataFrame) -> dict:
    """Distinct queries per split by type, wording, wild subtype and visual (for build info)."""
    out = {}
    for split, g in queries.groupby("split", sort=False):
        wild = g[g["wording"] == "wild"]
        out[split] = {
            "queries": len(g),
            "distinct_texts": int(g["query"].nunique()),
            "distinct_combinations": int(g["attributes"].nunique()),
            "type": {k: int(v) for k, v in g["type"].value_counts().sort_index().items()},
            "wording": {k: int(v) for k, v in g["wording"].value_counts().sort_index().items()},
            "wild_subtype": {
                k: int(v) for k, v in wild["subtype"].value_counts().sort_index().items()
            },
            "visual": int(g["visual"].sum()),
        }
    return out


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
    attr_frame = {f: items[f].to_numpy(dtype=object) for f in vocab.VISUAL_FIELDS}
    for row in image_queries.itertuples():
        grades = grade_items(json.loads(row.attributes), attr_frame)
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
