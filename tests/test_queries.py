"""Tests of the evaluation query sets (engine.world.queries) and their vocabulary (vocab).

Tables only — products and queries at the demo preset's sizes (20,000 items; 600 / 150 / 400
queries), no images — so the whole file runs in seconds. Each property is checked against an
independent computation: tokens of the generated titles and descriptions, string constants parsed
out of the shipped source, the colour table through CIEDE2000, and title-silent flags recomputed
by token matching.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config import load_preset
from engine.world import catalog as world_catalog
from engine.world import queries as wq
from engine.world import vocab
from engine.world.colour_names import ciede2000, distances, in_table, nearest_world_colour

ROOT = Path(__file__).resolve().parents[1]
_TOKEN = re.compile(r"[a-z0-9]+")
SPLIT_OF = {"train": "train", "val": "train", "test": "test"}  # which half of a vocab list
VISUAL = ("category", "colour", "pattern")
WORLD_RGB = {t.name: t.rgb for t in vocab.COLOURS}


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def phrase_re(words) -> re.Pattern:
    alts = sorted({w.lower() for w in words}, key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, alts)) + r")(?![a-z0-9])")


def all_terms():
    return [(f, t) for f, terms in vocab.FIELDS.items() for t in terms]


def eval_lists():
    """(field, term, kind, half, words) for every evaluation-only list."""
    for f, t in all_terms():
        for kind in vocab.EVAL_KINDS:
            split = getattr(t, kind)
            yield f, t, kind, "train", split.train
            yield f, t, kind, "test", split.test


CATALOG_WORD_TOKENS = {tk for _, t in all_terms() for w in (t.name, *t.words) for tk in tokens(w)}


def own_tokens(t) -> set[str]:
    return {tk for w in t.words for tk in tokens(w)}


def new_tokens(f: str, t, kind: str, word: str) -> set[str]:
    """The tokens a word adds: a modifier phrase's own catalog colour word does not count."""
    return set(tokens(word)) - (own_tokens(t) if kind == "modifiers" else set())


# -- fixtures ----------------------------------------------------------------------------------
def _generate(seed: int, **world):
    wcfg = dataclasses.replace(load_preset("demo").world, **world)
    streams = np.random.SeedSequence(seed).spawn(7)  # the streams generate_world uses
    items = world_catalog.generate_products(wcfg, np.random.default_rng(streams[0]))
    q, qrels = wq.generate_text_queries(wcfg, items, np.random.default_rng(streams[4]))
    return wcfg, items, q, qrels


@pytest.fixture(scope="module")
def demo():
    """The demo world's items, queries and qrels (seed 42), as the build generates them."""
    wcfg, items, q, qrels = _generate(42)
    return {"cfg": wcfg, "items": items, "queries": q, "qrels": qrels}


@pytest.fixture(scope="module")
def item_tokens(demo) -> set[str]:
    items = demo["items"]
    out: set[str] = set()
    for text in items["title"] + " " + items["description"]:
        out.update(tokens(text))
    return out


# -- vocabulary --------------------------------------------------------------------------------
def test_no_word_is_in_two_lists():
    owner: dict[str, list] = {}
    for f, t in all_terms():
        for w in t.words:
            owner.setdefault(w.lower(), []).append((f, t.name, "words"))
    for f, t, kind, half, words in eval_lists():
        for w in words:
            owner.setdefault(w.lower(), []).append((f, t.name, kind, half))
    dups = {w: o for w, o in owner.items() if len(o) > 1}
    assert not dups


def test_test_words_share_no_token_with_train_or_val_words():
    train, test = Counter(), Counter()
    for f, t, kind, half, words in eval_lists():
        for w in words:
            (train if half == "train" else test).update(new_tokens(f, t, kind, w))
    overlap = set(train) & set(test)
    assert not overlap, overlap
    # Wild templates too: no test template token in a train/val template.
    tmpl = {
        h: {tk for s in getattr(wq._WILD_TEMPLATES, h) for tk in tokens(s.replace("{x}", ""))}
        for h in ("train", "test")
    }
    assert not tmpl["test"] & tmpl["train"]


def test_every_value_has_enough_held_out_words():
    for f, t in all_terms():
        assert len(t.held_out_test) >= 2, (f, t.name)
        assert len(t.held_out_train) >= 1, (f, t.name)
        if f in VISUAL:
            # a wild query can always be phrased: a wild word or else a typo, in every split
            assert t.typos.train and t.typos.test, (f, t.name)
        else:
            assert not (t.wild.train or t.wild.test or t.typos.train or t.modifiers.train)


def test_wild_and_typo_words_are_in_no_item_text_nor_catalog_words(item_tokens):
    assert {"backpack", "sneakers", "red", "striped"} <= item_tokens  # the scan sees the text
    for f, t, kind, _half, words in eval_lists():
        if kind == "paraphrase":
            continue
        for w in words:
            clash = new_tokens(f, t, kind, w) & (item_tokens | CATALOG_WORD_TOKENS)
            assert not clash, (f, t.name, kind, w, clash)


def test_paraphrase_words_are_in_no_item_text(item_tokens):
    for f, t, kind, _half, words in eval_lists():
        if kind == "paraphrase":
            for w in words:
                assert not set(tokens(w)) & (item_tokens | CATALOG_WORD_TOKENS), (f, t.name, w)


def _code_strings() -> list[str]:
    """Every string constant of the shipped code but docstrings (vocab's own lists excepted)."""
    files = [*(ROOT / "engine").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]
    out = []
    for path in files:
        if path == ROOT / "engine" / "world" / "vocab.py":
            continue
        tree = ast.parse(path.read_text())
        docs = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        out += [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
        ]
    return out


def text_of(strings: list[str]) -> str:
    return "\n".join(strings)


def test_wild_words_are_in_no_lexicon_the_code_ships():
    """No string the code ships (a lexicon, a caption phrase, a stop list) holds a wild, typo or
    modifier word; the generic colour table (matplotlib's, not shipped here) is the one source a
    method may use to read wild colour words."""
    strings = [" ".join(tokens(s)) for s in _code_strings()]
    assert "understood as" in text_of(strings)  # the scan sees the engine's own strings
    text = "\n".join(strings)
    for f, t, kind, _half, words in eval_lists():
        if kind == "paraphrase":
            continue
        for w in words:
            assert not phrase_re([" ".join(tokens(w))]).search(text), (f, t.name, kind, w)


def test_only_the_query_generator_reads_the_held_out_lists():
    """Inside the world, only the query generator reads a list but ``words`` (see vocab's
    doc); outside it, nothing may import the vocabulary at all (tests/test_layers.py)."""
    allowed = {"vocab.py", "queries.py", "colour_names.py"}
    pattern = re.compile(
        r"\.(held_out\w*|paraphrase|wild|typos|modifiers|evaluation_words)\b(?!\s*=)"
    )
    offenders = []
    for path in (ROOT / "engine" / "world").rglob("*.py"):
        if path.name in allowed:
            continue
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    assert not offenders, offenders


# -- colours -----------------------------------------------------------------------------------
def test_ciede2000_matches_the_published_test_data():
    """Pairs from Sharma, Wu & Dalal (2005), Table 1."""
    pairs = [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((2.0776, 0.0795, -1.135), (0.9033, -0.0636, -0.5514), 0.9082),
    ]
    for a, b, expected in pairs:
        assert float(ciede2000(a, b)) == pytest.approx(expected, abs=1e-4)
        assert float(ciede2000(b, a)) == pytest.approx(expected, abs=1e-4)


def test_wild_colour_words_are_table_names_nearest_their_colour_by_a_margin():
    n = 0
    for t in vocab.COLOURS:
        for w in (*t.wild.train, *t.wild.test, *t.modifiers.train, *t.modifiers.test):
            assert in_table(w), (t.name, w)
            assert nearest_world_colour(w, WORLD_RGB) == t.name, (t.name, w)
            n += 1
        for w in (*t.modifiers.train, *t.modifiers.test):
            assert set(tokens(w)) & own_tokens(t), (t.name, w)  # a modifier + the colour's word
    assert n >= 40
    # The check can fail: the names left out on purpose do not pass it.
    assert nearest_world_colour("burgundy", WORLD_RGB) is None
    assert nearest_world_colour("dark green", WORLD_RGB) != "green"
    assert nearest_world_colour("light blue", WORLD_RGB) != "blue"


def test_paraphrase_colour_words_in_the_table_are_nearest_their_colour():
    for t in vocab.COLOURS:
        for w in t.held_out:
            if in_table(w):
                nearest = {list(WORLD_RGB)[i] for i in distances(w, WORLD_RGB).argmin(1)}
                assert nearest == {t.name}, (t.name, w, nearest)


# -- the query sets ----------------------------------------------------------------------------
def test_no_duplicate_text_or_combination_within_a_split(demo):
    q = demo["queries"]
    for split, g in q.groupby("split"):
        assert not g["query"].duplicated().any(), split
        assert not g["attributes"].duplicated().any(), split
    assert q["query_id"].is_unique


def test_combinations_are_disjoint_across_splits(demo):
    combos = {s: set(g["attributes"]) for s, g in demo["queries"].groupby("split")}
    assert not combos["train"] & combos["val"]
    assert not combos["train"] & combos["test"]
    assert not combos["val"] & combos["test"]


def test_split_sizes_types_and_wordings_at_demo_settings(demo):
    q, cfg = demo["queries"], demo["cfg"]
    sizes = {"train": cfg.n_queries_train, "val": cfg.n_queries_val, "test": cfg.n_queries_test}
    assert q["split"].value_counts().to_dict() == sizes
    n_one = q[q["type"] == "1-attr"]
    # All 37 one-attribute combinations are used, each once, dealt to the splits.
    assert n_one["attributes"].nunique() == len(n_one) == 12 + 14 + 5 + 6
    for split, g in q.groupby("split"):
        assert set(g["type"]) == set(wq.TYPES)
        assert set(g["wording"]) == set(wq.WORDINGS)
        for qtype, h in g.groupby("type"):
            n = len(h)
            wild = int((h["wording"] == "wild").sum())
            para = int((h["wording"] == "paraphrase").sum())
            assert wild == round(n * cfg.wild_rate), (split, qtype)
            assert para == round(n * cfg.paraphrase_rate), (split, qtype)
        wild = g[g["wording"] == "wild"]
        assert set(wild["subtype"]) == set(wq.WILD_SUBTYPES), split
        assert (g.loc[g["wording"] != "wild", "subtype"] == "").all()
    assert (
        q["visual"]
        == q["attributes"].map(lambda a: bool({"colour", "pattern"} & set(json.loads(a))))
    ).all()


def test_wild_queries_name_no_material(demo):
    wild = demo["queries"][demo["queries"]["wording"] == "wild"]
    assert not wild["attributes"].str.contains("material").any()


def _template_tokens() -> set[str]:
    return {
        tk
        for s in (*wq._WILD_TEMPLATES.train, *wq._WILD_TEMPLATES.test)
        for tk in tokens(s.replace("{x}", ""))
    }


def test_wild_queries_share_no_attribute_token_with_item_text(demo, item_tokens):
    """End to end: apart from the constraint phrase, no token of a wild query (synonym or typo)
    occurs in any item's title or description or in vocab ``words``."""
    q = demo["queries"]
    wild = q[(q["wording"] == "wild") & (q["subtype"] != "modifier")]
    assert len(wild) > 100
    template = _template_tokens()
    for rec in wild.itertuples():
        clash = (set(tokens(rec.query)) - template) & (item_tokens | CATALOG_WORD_TOKENS)
        assert not clash, (rec.query, clash)
    mod = q[q["subtype"] == "modifier"]
    assert len(mod) > 10
    for rec in mod.itertuples():
        colour = vocab.term("colour", json.loads(rec.attributes)["colour"])
        rest = set(tokens(rec.query)) - template - own_tokens(colour)
        assert not rest & (item_tokens | CATALOG_WORD_TOKENS), rec.query


def test_queries_use_the_words_of_their_own_split(demo):
    q = demo["queries"]
    test_words = phrase_re([w for *_, half, ws in eval_lists() if half == "test" for w in ws])
    train_words = phrase_re([w for *_, half, ws in eval_lists() if half == "train" for w in ws])
    for rec in q[q["wording"] != "catalog"].itertuples():
        half = SPLIT_OF[rec.split]
        other = train_words if half == "test" else test_words
        assert not other.search(rec.query), (rec.split, rec.query)
        for f, v in json.loads(rec.attributes).items():
            t = vocab.term(f, v)
            kinds = (
                ("paraphrase",) if rec.wording == "paraphrase" else ("wild", "typos", "modifiers")
            )
            words = [w for k in kinds for w in getattr(t, k).for_split(rec.split)]
            assert phrase_re(words).search(rec.query), (rec.query, f, v)
        if rec.wording == "wild":  # and the other half's constraint phrases never
            phrases = getattr(wq._WILD_TEMPLATES, "train" if half == "test" else "test")
            for p in {s.replace("{x}", "").strip() for s in phrases} - {""}:
                assert not phrase_re([p]).search(rec.query), (rec.split, rec.query)


def test_typo_queries_misspell_a_catalog_word(demo):
    q = demo["queries"]
    typo = q[q["subtype"] == "typo"]
    assert len(typo) > 0 and set(typo["split"]) == set(wq.SPLITS)
    all_typos = phrase_re([w for _, t in all_terms() for w in (*t.typos.train, *t.typos.test)])
    assert all(all_typos.search(x) for x in typo["query"])
    synonym = q[q["subtype"] == "synonym"]
    assert not any(all_typos.search(x) for x in synonym["query"])
    assert "sneakres" in vocab.term("category", "sneakers").typos.test


def test_grades_of_wild_queries_follow_the_attribute_rule(demo):
    """Wild wording changes the words, never the grading: spot-check against grade_items."""
    q, qrels, items = demo["queries"], demo["qrels"], demo["items"]
    sample = q[q["wording"] == "wild"].groupby("type").head(3)
    for rec in sample.itertuples():
        grades = wq.grade_items(json.loads(rec.attributes), items)
        stored = qrels[qrels["query_id"] == rec.query_id]
        assert dict(zip(stored["item_id"], stored["grade"])) == {
            i: int(g) for i, g in zip(items["item_id"], grades) if g
        }


def test_generation_is_deterministic_for_a_seed():
    small = {"n_items": 2000, "n_queries_train": 120, "n_queries_val": 40, "n_queries_test": 90}
    _, _, qa, ra = _generate(7, **small)
    _, _, qb, rb = _generate(7, **small)
    pd.testing.assert_frame_equal(qa, qb)
    pd.testing.assert_frame_equal(ra, rb)
    _, _, qc, _ = _generate(8, **small)
    assert not qa["query"].equals(qc["query"])


# -- title-silent judgments --------------------------------------------------------------------
def _hand_items() -> pd.DataFrame:
    rows = [  # item_id, colour, pattern, title, description
        ("h0", "red", "striped", "Acme Scarlet cotton tee", "A classic tee made from cotton."),
        ("h1", "red", "striped", "Acme Urban cotton t-shirt", "Our t-shirt. Available in red."),
        ("h2", "red", "striped", "Acme Stripes cotton shirt", "A tee made from cotton."),
        ("h3", "red", "striped", "Acme cotton tee", "A tee made from cotton. Designed to last."),
        ("h4", "navy", "solid", "Acme Navy blue wool t-shirt", "A tee made from wool."),
        ("h5", "blue", "solid", "Acme Plain wool t-shirt", "A tee made from wool."),
    ]
    df = pd.DataFrame(rows, columns=["item_id", "colour", "pattern", "title", "description"])
    return df.assign(category="t-shirt", material="cotton")


@pytest.mark.parametrize(
    "attrs, expected",
    [
        ({"colour": "red"}, [False, False, True, True, True, True]),
        ({"pattern": "striped"}, [True, True, False, True, True, True]),
        ({"colour": "red", "pattern": "striped", "category": "t-shirt"}, [0, 0, 0, 1, 1, 1]),
        ({"colour": "blue"}, [True, True, True, True, True, True]),  # "navy blue" names navy
        ({"colour": "navy"}, [True, True, True, True, False, True]),
        ({"pattern": "solid", "category": "t-shirt"}, [True] * 5 + [False]),
        ({"category": "t-shirt"}, [False] * 6),  # asks no colour or pattern
        ({"material": "cotton"}, [False] * 6),
    ],
)
def test_title_silent_on_hand_checked_items(attrs, expected):
    mentions = wq.text_mentions(_hand_items())
    assert wq.title_silent(attrs, mentions).tolist() == [bool(x) for x in expected]


def test_title_silent_flags_agree_with_a_token_scan(demo):
    """Every grade-3 judgment of 60 visual test queries, recomputed by token matching."""
    q, qrels, items = demo["queries"], demo["qrels"], demo["items"]
    assert qrels["title_silent"].dtype == bool
    text_of = dict(zip(items["item_id"], (items["title"] + " " + items["description"]).map(tokens)))
    visual = q[(q["split"] == "test") & q["visual"]].head(60)
    checked = silent = 0
    for rec in visual.itertuples():
        attrs = json.loads(rec.attributes)
        phrases = [
            tokens(w)
            for f in ("colour", "pattern")
            if f in attrs
            for w in vocab.term(f, attrs[f]).words
        ]
        judged = qrels[(qrels["query_id"] == rec.query_id) & (qrels["grade"] == 3)]
        for item_id, flag in zip(judged["item_id"], judged["title_silent"]):
            toks = text_of[item_id]
            named = any(
                toks[i : i + len(p)] == p for p in phrases for i in range(len(toks) - len(p) + 1)
            )
            assert flag == (not named), (rec.query, item_id)
            checked += 1
            silent += flag
    assert checked > 1000 and 0.4 < silent / checked < 0.95
    non_visual = q.loc[~q["visual"], "query_id"]
    assert not qrels.loc[qrels["query_id"].isin(non_visual), "title_silent"].any()
