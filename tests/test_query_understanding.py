"""Query understanding (``engine/query``): colour science, the catalog-mined lexicon, the
interpreter, constraints, rewrites, bad input, and the wall between it and the synthetic world.

The lexicon is built from a small generated world with its truth columns DROPPED; most tests use
a deterministic fake encoder, a few the real MiniLM (session fixture).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.query.colours import ciede2000, colour_table, parse_colour, srgb_to_lab
from engine.query.constraints import parse_constraints
from engine.query.image_colours import ImageColourStats, compute_image_colour_stats, stats_of_images
from engine.query.interpret import Interpretation, Interpreter, interpret
from engine.query.lexicon import QueryLexicon
from engine.query.mining import build_lexicon
from engine.query.rewrite import (
    ITEM_FEATURES,
    ItemAttributes,
    attribute_scores,
    build_item_attributes,
    clip_prompt,
    dense_query,
    filter_mask,
    item_features,
    lexical_query,
    query_features,
)
from engine.query.semantic import WordVectors

QUERY_PKG = Path(__file__).resolve().parents[1] / "engine" / "query"
TRUTH = ["colour", "pattern", "material", "title_mentions"]

# Sharma, Wu & Dalal (2005), Table 1: L1 a1 b1 L2 a2 b2 deltaE00 (all 34 pairs).
SHARMA = """
50.0000 2.6772 -79.7751 50.0000 0.0000 -82.7485 2.0425
50.0000 3.1571 -77.2803 50.0000 0.0000 -82.7485 2.8615
50.0000 2.8361 -74.0200 50.0000 0.0000 -82.7485 3.4412
50.0000 -1.3802 -84.2814 50.0000 0.0000 -82.7485 1.0000
50.0000 -1.1848 -84.8006 50.0000 0.0000 -82.7485 1.0000
50.0000 -0.9009 -85.5211 50.0000 0.0000 -82.7485 1.0000
50.0000 0.0000 0.0000 50.0000 -1.0000 2.0000 2.3669
50.0000 -1.0000 2.0000 50.0000 0.0000 0.0000 2.3669
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0009 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0010 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0011 7.2195
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0012 7.2195
50.0000 -0.0010 2.4900 50.0000 0.0009 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0010 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0011 -2.4900 4.7461
50.0000 2.5000 0.0000 50.0000 0.0000 -2.5000 4.3065
50.0000 2.5000 0.0000 73.0000 25.0000 -18.0000 27.1492
50.0000 2.5000 0.0000 61.0000 -5.0000 29.0000 22.8977
50.0000 2.5000 0.0000 56.0000 -27.0000 -3.0000 31.9030
50.0000 2.5000 0.0000 58.0000 24.0000 15.0000 19.4535
50.0000 2.5000 0.0000 50.0000 3.1736 0.5854 1.0000
50.0000 2.5000 0.0000 50.0000 3.2972 0.0000 1.0000
50.0000 2.5000 0.0000 50.0000 1.8634 0.5757 1.0000
50.0000 2.5000 0.0000 50.0000 3.2592 0.3350 1.0000
60.2574 -34.0099 36.2677 60.4626 -34.1751 39.4387 1.2644
63.0109 -31.0961 -5.8663 62.8187 -29.7946 -4.0864 1.2630
61.2901 3.7196 -5.3901 61.4292 2.2480 -4.9620 1.8731
35.0831 -44.1164 3.7933 35.0232 -40.0716 1.5901 1.8645
22.7233 20.0904 -46.6940 23.0331 14.9730 -42.5619 2.0373
36.4612 47.8580 18.3852 36.2715 50.5065 21.2231 1.4146
90.8027 -2.0831 1.4410 91.1528 -1.6435 0.0447 1.4441
90.9257 -0.5406 -0.9208 88.6381 -0.8985 -0.7239 1.5381
6.7747 -0.2908 -2.4247 5.8714 -0.0985 -2.2286 0.6377
2.0776 0.0795 -1.1350 0.9033 -0.0636 -0.5514 0.9082
"""


class ConceptEncoder:
    """A deterministic fake text encoder: words of one listed concept share a direction, every
    other word gets its own pseudo-random direction; a phrase is the mean of its words."""

    CONCEPTS = (
        ("knapsack", "backpack", "rucksack", "daypack"),
        ("spots", "spotted", "dotted", "dot", "polka"),
        ("gown", "dress", "frock"),
        ("stripy", "striped", "stripes"),
        ("ebony", "black"),
    )

    def __init__(self, dim: int = 64):
        self.name, self.dim = "concepts", dim
        self.concept = {w: k for k, ws in enumerate(self.CONCEPTS) for w in ws}

    def _word(self, w: str) -> np.ndarray:
        seed = self.concept.get(w, None)
        key = f"concept{seed}" if seed is not None else f"word:{w}"
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8],
                                                   "little"))
        v = rng.standard_normal(self.dim)
        if seed is not None:  # a little per-word noise so synonyms are close, not identical
            v += 0.3 * np.random.default_rng(len(w)).standard_normal(self.dim)
        return v / np.linalg.norm(v)

    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        out = []
        for t in texts:
            ws = t.lower().replace("-", " ").split() or ["<empty>"]
            v = np.mean([self._word(w) for w in ws], axis=0)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A small generated world (2,000 items, 64-px images); the truth stays in ``truth``."""
    from engine.config import load_preset
    from engine.world.generate import generate_world

    cfg = load_preset("tiny", world={
        "n_items": 2000, "n_users": 40, "n_interactions": 400, "n_sessions": 50,
        "n_queries_train": 10, "n_queries_val": 5, "n_queries_test": 10, "n_image_queries": 4,
        "image_size": 64})
    folder = tmp_path_factory.mktemp("query-world")
    generate_world(dataclasses.replace(cfg, build_threads=1), folder)
    items = pd.read_parquet(folder / "items.parquet")  # the catalog view: no truth columns
    truth = items.merge(pd.read_parquet(folder / "truth.parquet"), on="item_id")
    keywords = pd.read_parquet(folder / "keywords.parquet")
    stats = compute_image_colour_stats([folder / p for p in items["image_path"]])
    return {"dir": folder, "truth": truth, "items": items, "keywords": keywords, "stats": stats}


@pytest.fixture(scope="module")
def lexicon(world) -> QueryLexicon:
    return build_lexicon(world["items"], world["keywords"], world["stats"], ConceptEncoder())


@pytest.fixture(scope="module")
def interp(lexicon) -> Interpreter:
    return Interpreter(lexicon, ConceptEncoder())


@pytest.fixture(scope="session")
def minilm():
    from engine.encoders.text import create_text_encoder
    from engine.runtime import set_threads

    set_threads(1)
    return create_text_encoder("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def minilm_interp(world, minilm) -> Interpreter:
    lex = build_lexicon(world["items"], world["keywords"], world["stats"], minilm)
    return Interpreter(lex, minilm)


def _parts(r: Interpretation) -> dict[str, str]:
    return {p.slot: p.value for p in r.positive()}


def _surfaces(lex: QueryLexicon, slot: str, value: str | None) -> list[str]:
    t = lex.term(slot, value) if value else None
    return t.surfaces if t else []


# ----------------------------------------------------------------------------- colour science
def test_ciede2000_matches_sharma_wu_dalal_pairs():
    d = np.array([[float(x) for x in line.split()] for line in SHARMA.strip().splitlines()])
    assert d.shape == (34, 7)
    np.testing.assert_allclose(ciede2000(d[:, :3], d[:, 3:6]), d[:, 6], atol=1e-4)
    np.testing.assert_allclose(ciede2000(d[:, 3:6], d[:, :3]), d[:, 6], atol=1e-4)
    assert float(ciede2000([50, 10, 10], [50, 10, 10])) == 0.0


def test_srgb_to_lab_reference_values():
    np.testing.assert_allclose(srgb_to_lab([255, 0, 0]), [53.2408, 80.0925, 67.2032], atol=1e-3)
    np.testing.assert_allclose(srgb_to_lab([255, 255, 255]), [100, 0, 0], atol=1e-3)
    np.testing.assert_allclose(srgb_to_lab([0, 0, 0]), [0, 0, 0], atol=1e-6)


def test_colour_table_has_xkcd_and_css_names():
    table = colour_table()
    assert len(table.names) > 1000
    for name in ("navy blue", "light blue", "dark green", "burgundy", "mustard", "crimson",
                 "rebeccapurple", "sage", "salmon", "charcoal"):
        assert name in table


@pytest.mark.parametrize("phrase, hue_range, n_words", [
    ("dark green", (100, 180), 2), ("light blue", (200, 280), 2), ("navy", (240, 310), 1),
    ("burgundy", (340, 400), 1), ("mustard", (70, 110), 1), ("crimson", (0, 60), 1),
])
def test_colour_phrases_parse_to_the_right_hue(phrase, hue_range, n_words):
    cp = parse_colour(phrase.split())
    assert cp is not None and cp.n_words == n_words
    lab = cp.labs[0]
    hue = np.degrees(np.arctan2(lab[2], lab[1])) % 360
    lo, hi = hue_range
    assert lo <= hue <= hi or lo <= hue + 360 <= hi, (phrase, hue)


def test_colour_modifiers_change_lightness_and_chroma():
    base = parse_colour(["mustard"]).labs[0]
    pale = parse_colour(["pale", "mustard"])
    assert pale.modifiers == ("pale",) and pale.labs[0][0] > base[0]
    assert np.hypot(*pale.labs[0][1:]) < np.hypot(*base[1:])
    dark = parse_colour(["dark", "red"]).labs[0]
    very = parse_colour(["very", "dark", "red"])
    assert very.n_words == 3 and very.labs[0][0] < dark[0]
    assert parse_colour(["reddish"]) is not None
    for not_colour in (["light"], ["dark"], ["light", "fixture"], ["backpack"], []):
        assert parse_colour(not_colour) is None


# ----------------------------------------------------------------------------- image colours
def _square(rgb, bg=(250, 250, 250), size=64):
    im = Image.new("RGB", (size, size), bg)
    im.paste(Image.new("RGB", (size // 2, size // 2), rgb), (size // 4, size // 4))
    return im


def test_image_dominant_colour_is_the_product_not_the_backdrop(tmp_path):
    stats = stats_of_images([_square((210, 30, 35)), _square((20, 30, 100)),
                             Image.new("RGB", (80, 60), (40, 160, 60))])  # a full-frame "photo"
    for row, rgb in enumerate([(210, 30, 35), (20, 30, 100), (40, 160, 60)]):
        assert float(ciede2000(stats.dominant[row], srgb_to_lab(rgb))) < 3
    assert np.allclose(np.asarray(stats.hist.sum(1)).ravel(), 1.0, atol=1e-5)
    stats.save(tmp_path)
    back = ImageColourStats.load(tmp_path)
    assert np.allclose(back.dominant, stats.dominant) and back.valid.all()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    assert not compute_image_colour_stats([bad]).valid[0]


# ----------------------------------------------------------------------------- lexicon
def test_lexicon_mines_categories_with_their_surface_words(lexicon):
    assert _surfaces(lexicon, "category", "backpack")[:1] == ["backpack"]
    assert "rucksack" in _surfaces(lexicon, "category", "backpack")
    assert {"t shirt", "tee", "shirt"} <= set(_surfaces(lexicon, "category", "t-shirt"))
    assert "trainers" in _surfaces(lexicon, "category", "sneakers")


def test_lexicon_colours_are_grounded_in_pixels(lexicon):
    colours = {t.value: t for t in lexicon.slot_terms("colour")}
    assert {"red", "navy", "black", "white", "beige", "teal"} <= set(colours)
    assert "scarlet" in colours["red"].surfaces  # synonyms merged by their images' colour
    assert "navy blue" in colours["navy"].surfaces
    red_lab = np.asarray(colours["red"].lab)
    assert float(ciede2000(red_lab, srgb_to_lab([210, 30, 35]))) < 8


def test_leather_and_brands_are_not_colours(lexicon):
    colour_words = {s for t in lexicon.slot_terms("colour") for s in t.surfaces}
    assert "leather" not in colour_words and "saffron" not in colour_words
    assert "coffee" not in colour_words
    assert "leather" in {t.value for t in lexicon.slot_terms("material")}
    assert "saffron" in lexicon.exact and lexicon.terms[lexicon.exact["saffron"]].slot == "brand"
    assert "leather" in lexicon.rejected


def test_lexicon_patterns_and_materials(lexicon):
    patterns = {s: t.value for t in lexicon.slot_terms("pattern") for s in t.surfaces}
    # The tagger names each pattern with one vendor word; title words whose items it mostly
    # tags with one pattern join that pattern (on this small 64-px world the tagger's pattern
    # accuracy is ~0.5, so only the clearest are mined: "polka dot" titles give "dot").
    assert {"polka dot", "striped", "checked", "zigzag", "solid"} <= set(patterns)
    assert patterns["dot"] == patterns["polka dot"] != patterns["striped"]
    assert any(t.evidence["from_titles"] for t in lexicon.slot_terms("pattern"))
    materials = {s: t.value for t in lexicon.slot_terms("material") for s in t.surfaces}
    # the tagger says nothing about materials (it cannot see them): each title word stands alone
    assert {"wool", "woollen"} <= set(materials)
    assert {"cotton", "canvas", "leather"} <= set(materials)
    assert not set(patterns) & set(materials)


def test_lexicon_never_reads_the_truth_columns(world, lexicon):
    """Scrambled truth columns give the very same lexicon: they are dropped unread."""
    rng = np.random.default_rng(0)
    noisy = world["truth"].copy()
    for col in TRUTH:
        noisy[col] = rng.permutation(noisy[col].to_numpy())
    again = build_lexicon(noisy, world["keywords"], world["stats"], ConceptEncoder())
    assert json.dumps(again.to_json(), sort_keys=True) == json.dumps(lexicon.to_json(),
                                                                     sort_keys=True)
    assert np.array_equal(again.vectors, lexicon.vectors)


def test_lexicon_saves_and_loads_without_pickle(lexicon, tmp_path):
    lexicon.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["query_lexicon.json",
                                                          "query_lexicon_vectors.npy"]
    back = QueryLexicon.load(tmp_path)
    assert back.summary() == lexicon.summary() and np.array_equal(back.vectors, lexicon.vectors)
    r1, r2 = interpret("scarlet rucksack", lexicon), interpret("scarlet rucksack", back)
    assert r1.to_dict() == r2.to_dict()


def test_package_never_imports_the_synthetic_world():
    """AST scan of every module of engine/query, imports inside functions included."""
    files = sorted(QUERY_PKG.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
                names = [getattr(a, "value", "") for a in node.args]
            for name in names:
                assert not str(name).startswith("engine.world"), f"{path.name} imports {name}"
        text = path.read_text()  # no dynamic imports that the scan above could miss
        assert "importlib" not in text and "__import__" not in text, path.name


# ----------------------------------------------------------------------------- interpretation
def test_crimson_knapsack_with_spots(interp, lexicon):
    r = interp.interpret("crimson knapsack with spots")
    got = _parts(r)
    assert got["colour"] == "red" and got["category"] == "backpack"
    assert "polka dot" in _surfaces(lexicon, "pattern", got["pattern"])
    how = {p.slot: p.how for p in r.parts}
    assert how == {"colour": "colour-table", "category": "semantic", "pattern": "semantic"}
    assert r.free_text == () and r.label().startswith("red · backpack · ")
    assert r.clip_prompt == f"a red {got['pattern']} backpack"


@pytest.mark.parametrize("query, value", [
    ("sneakres", "sneakers"), ("bakcpack", "backpack"), ("t shirt", "t-shirt"),
    ("tshirt", "t-shirt"), ("t-shirt", "t-shirt"), ("tee", "t-shirt"), ("trainers", "sneakers"),
    ("dresses", "dress"), ("boot", "boots"), ("tote", "handbag"),
])
def test_category_words_typos_and_variants(interp, query, value):
    r = interp.interpret(query)
    assert _parts(r) == {"category": value}, r.to_dict()
    if query in ("sneakres", "bakcpack"):
        assert r.parts[0].how == "fuzzy" and 0.8 < r.parts[0].confidence < 1


@pytest.mark.parametrize("query, slot, value", [
    ("vsae", "category", "vase"), ("wolo", "material", "wool"),
])
def test_two_neighbouring_letters_swapped(interp, query, slot, value):
    # Indel similarity gives a swap in a four-letter word 75 %, under the fuzzy cut-off.
    r = interp.interpret(query)
    assert _parts(r) == {slot: value}, r.to_dict()
    assert r.parts[0].how == "fuzzy" and "swapped" in r.parts[0].detail


def test_swapped_letters_only_next_to_each_other():
    from engine.query.interpret import swapped

    assert swapped("vsae", "vase") and swapped("wolo", "wool") and swapped("ab", "ba")
    assert not swapped("vase", "vase")  # nothing swapped
    assert not swapped("vesa", "vase")  # not neighbours
    assert not swapped("vasee", "vase") and not swapped("vsqe", "vase")


@pytest.mark.parametrize("query, colour", [
    ("burgundy", "red"), ("mustard", "yellow"), ("charcoal", "black"), ("dark green", "green"),
    ("light blue", "blue"), ("navy", "navy"), ("sky blue", "blue"), ("khaki", "beige"),
    ("burgandy", "red"),
])
def test_colour_words_map_to_catalog_colours(interp, query, colour):
    r = interp.interpret(query)
    assert _parts(r) == {"colour": colour}, r.to_dict()
    assert r.parts[0].lab is not None


def test_exact_catalog_words_beat_the_colour_table(interp):
    assert _parts(interp.interpret("saffron backpack")) == {"brand": "Saffron",
                                                            "category": "backpack"}
    assert _parts(interp.interpret("leather boots")) == {"material": "leather",
                                                         "category": "boots"}
    assert _parts(interp.interpret("coffee mug")) == {"category": "mug"}


def test_constraints_price_new_and_negation(interp, lexicon):
    r = interp.interpret("red trainers under $50")
    assert r.filters.price_max == 50 and r.filters.price_min is None
    assert r.label() == "red · sneakers · under $50"
    r = interp.interpret("backpack between 20 and 40")
    assert (r.filters.price_min, r.filters.price_max) == (20, 40)
    r = interp.interpret("cheap boots")
    assert r.filters.price_max == lexicon.price["by_category"]["boots"]["q25"]
    r = interp.interpret("cheap")
    assert r.filters.price_max == lexicon.price["all"]["q25"]
    r = interp.interpret("new arrivals")
    assert r.filters.new_only and not r.parts and not r.free_text
    r = interp.interpret("handbag not black")
    assert r.filters.exclude == {"colour": ["black"]} and _parts(r) == {"category": "handbag"}
    assert "not black" in r.label()
    r = interp.interpret("umbrella without a striped pattern")
    assert r.filters.exclude == {"pattern": ["striped"]}
    r = interp.interpret("non-leather boots")
    assert r.filters.exclude == {"material": ["leather"]}
    r = interp.interpret("no more than $30 mug")
    assert r.filters.price_max == 30 and not r.filters.exclude


@pytest.mark.parametrize("text, lo, hi", [
    ("under $50", None, 50), ("below 50 dollars", None, 50), ("less than €19.99", None, 19.99),
    ("over $100", 100, None), ("at least 20", 20, None), ("$20-$40", 20, 40),
    ("from 20 to 40", 20, 40), ("around $50", 40, 60), ("50 or less", None, 50),
    ("100+", 100, None), ("$30", None, 30), ("2 t shirts", None, None),
])
def test_price_forms(text, lo, hi):
    c = parse_constraints(text)
    assert (c.price_min, c.price_max) == (lo, hi)


def test_stop_phrases_are_not_free_text(interp):
    for q in ("for my sister", "i'd like", "show me something please", "in search of anything",
              "stuff that is"):
        r = interp.interpret(q)
        assert not r.parts and not r.free_text, q
        assert any("stop words" in n for n in r.notes), q
    r = interp.interpret("show me a backpack for my sister please")
    assert _parts(r) == {"category": "backpack"} and r.free_text == ()


def test_bad_inputs_never_raise(interp):
    r = interp.interpret("under $50")
    assert not r.parts and r.filters.price_max == 50
    assert any("Only filters" in n for n in r.notes)
    r = interp.interpret("🎒🎒🎒")
    assert r.is_empty and "no words" in r.notes[-1]
    r = interp.interpret("🎒 red backpack ✨")
    assert _parts(r) == {"colour": "red", "category": "backpack"}
    for bad in (None, "", "   ", 42, "\x00\x1b[31m", "a" * 5000, "$" * 300):
        r = interp.interpret(bad)
        assert isinstance(r.label(), str)
    long = " ".join(["glorp"] * 500)
    t0 = time.perf_counter()
    r = interp.interpret(long)
    assert time.perf_counter() - t0 < 1.0
    assert any("first" in n for n in r.notes) and r.free_text == ("glorp",)


def test_a_colour_the_catalog_lacks_stays_free_text_with_a_note(lexicon):
    only_red = QueryLexicon(
        terms=[t for t in lexicon.terms if t.slot != "colour" or t.value == "red"],
        price=lexicon.price, vocabulary=lexicon.vocabulary)
    r = Interpreter(only_red).interpret("navy backpack")
    assert _parts(r) == {"category": "backpack"} and r.free_text == ("navy",)
    assert any("does not carry" in n for n in r.notes)
    r = Interpreter(lexicon).interpret("onyx backpack")  # not in the table, no encoder
    assert r.free_text == ("onyx",) and _parts(r) == {"category": "backpack"}


def test_without_removes_one_piece(interp):
    r = interp.interpret("red dotted backpack under $50 new")
    ids = [i for i, _ in r.chips()]
    assert ids[:2] == ["colour:red", "category:backpack"] and "price" in ids and "new" in ids
    r2 = r.without("colour:red")
    assert "colour" not in _parts(r2) and r2.filters == r.filters
    assert r.value("colour") == "red"  # the original is unchanged
    r3 = r2.without("price").without("new")
    assert r3.filters.price_max is None and not r3.filters.new_only
    neg = interp.interpret("backpack not black")
    assert neg.without("not:colour:black").filters.exclude == {}
    with pytest.raises(KeyError):
        r.without("colour:purple")


def test_interpretation_round_trips_and_is_deterministic(world, interp):
    q = "crimson knapsack with spots under $50 not leather"
    a, b = interp.interpret(q), interp.interpret(q)
    assert a == b and a.to_dict() == b.to_dict()
    assert Interpretation.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    other = Interpreter(build_lexicon(world["items"], world["keywords"], world["stats"],
                                      ConceptEncoder()), ConceptEncoder())
    assert other.interpret(q).to_dict() == a.to_dict()


def test_exact_and_fuzzy_queries_never_call_the_encoder(lexicon):
    enc = ConceptEncoder()
    it = Interpreter(lexicon, enc)
    for q in ("red sneakers", "scarlet rucksack under $50", "sneakres", "tshirt", "burgundy mug",
              "new arrivals", "for my sister"):
        it.interpret(q)
    assert it.matcher.encoder_calls == 0
    it.interpret("spots knapsack glorp")
    it.interpret("spots knapsack glorp")  # cached
    assert it.matcher.encoder_calls == 1


def test_word_table_avoids_the_encoder(lexicon, tmp_path):
    enc = ConceptEncoder()
    words = WordVectors.build(enc, ["knapsack", "spots", "gown"])
    words.save(tmp_path)
    words = WordVectors.load(tmp_path)
    it = Interpreter(lexicon, enc, words)
    r = it.interpret("spots knapsack")
    assert _parts(r)["category"] == "backpack" and it.matcher.encoder_calls == 0


# ----------------------------------------------------------------------------- rewrites
@pytest.fixture(scope="module")
def attrs(world, lexicon) -> ItemAttributes:
    return build_item_attributes(world["items"], world["keywords"], lexicon, world["stats"])


def test_rewrites_for_each_method(interp, lexicon):
    r = interp.interpret("crimson knapsack with spots")
    lex_q = lexical_query(r, lexicon)
    assert {"red", "scarlet", "backpack", "rucksack", "polka", "dot"} <= set(lex_q.split())
    assert dense_query(r) == r.rewritten and "backpack" in dense_query(r)
    assert clip_prompt(r).startswith("a red ")
    assert dense_query(interp.interpret("glorp")) == "glorp"
    q = query_features(r)
    assert q["q_colour_conf"] > 0 and q["q_category_conf"] > 0 and q["q_material_conf"] == 0


def test_attribute_scores_and_filters_use_pixels_tags_and_categories(world, interp, attrs,
                                                                     tmp_path):
    truth = world["truth"]
    r = interp.interpret("crimson knapsack")
    s = attribute_scores(r, attrs)
    wanted = (truth["category"] == "backpack") & (truth["colour"] == "red")
    assert wanted.sum() >= 2
    top = np.argsort(-s, kind="stable")[: int(wanted.sum())]
    assert wanted.to_numpy()[top].mean() >= 0.75  # the red backpacks come first
    assert (truth["category"].to_numpy()[np.argsort(-s)[:10]] == "backpack").all()
    price, is_new = world["items"]["price"].to_numpy(), world["items"]["is_new"].to_numpy()
    r = interp.interpret("handbag not black under $80 new")
    mask = filter_mask(r, price, is_new, attrs)
    assert mask.any() and (price[mask] <= 80).all() and is_new[mask].all()
    assert (truth["colour"].to_numpy()[mask] != "black").mean() > 0.95
    assert filter_mask(interp.interpret("red backpack"), price, is_new, attrs) is None
    f = item_features(interp.interpret("red backpack"), attrs, np.arange(20))
    assert f.shape == (20, len(ITEM_FEATURES)) and (f[:, 2] == -1).all()
    attrs.save(tmp_path)
    back = ItemAttributes.load(tmp_path)
    assert np.allclose(attribute_scores(r, back), attribute_scores(r, attrs))


def test_per_term_evidence_is_computed_once_and_equals_the_direct_formula(attrs, interp):
    from engine.query.colours import ciede2000
    from engine.query.rewrite import COLOUR_SIGMA, MAX_CACHED_TERMS

    key = next(k for k in attrs.term_keys if k.startswith("colour:"))
    lab = (attrs.term_labs or {}).get(key) or [50.0, 40.0, 20.0]
    de = ciede2000(attrs.dominant_lab.astype(np.float64), np.asarray(lab), kL=2.0)
    direct = np.exp(-((de / COLOUR_SIGMA) ** 2)).astype(np.float32)
    first = attrs.pixel_evidence(lab)
    assert np.array_equal(first, direct)
    assert attrs.pixel_evidence(list(lab)) is first  # cached, and read-only
    assert not first.flags.writeable
    j = attrs.term_keys.index(key)
    assert np.array_equal(attrs.column(key), attrs.evidence[:, j].toarray().ravel())
    assert attrs.column(key) is attrs.column(key)
    assert not attrs.column("colour:no-such-term").any()
    rows = np.array([3, 1, 2])  # a subset of rows reads the same values
    r = interp.interpret(key.split(":", 1)[1] + " backpack")
    r_full = item_features(r, attrs, np.arange(5))
    r_rows = item_features(r, attrs, rows)
    assert np.array_equal(r_rows, r_full[rows])
    for i in range(MAX_CACHED_TERMS + 5):  # shades typed in queries cannot grow it without end
        attrs.pixel_evidence([float(i % 100), 1.0, 2.0 + i])
    assert len(attrs._cache) <= MAX_CACHED_TERMS

    def shades(t: int) -> None:  # sessions searching at once: evictions never collide
        for i in range(200):
            attrs.pixel_evidence([float(t), 3.0, float(i)])

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(shades, range(8)))  # re-raises any KeyError / RuntimeError
    assert len(attrs._cache) <= MAX_CACHED_TERMS
    assert np.array_equal(attrs.pixel_evidence(lab), direct)


# ----------------------------------------------------------------------------- real MiniLM
def test_minilm_maps_unseen_words(minilm_interp):
    lex = minilm_interp.lexicon
    for word, slot, value_surface in (("gown", "category", "dress"), ("seat", "category", "chair"),
                                      ("light fixture", "category", "lamp"),
                                      ("stripy", "pattern", "striped"),
                                      ("porcelain", "material", "ceramic"),
                                      ("ebony", "colour", "black")):
        r = minilm_interp.interpret(word)
        got = _parts(r)
        assert value_surface in _surfaces(lex, slot, got.get(slot)), (word, r.to_dict())
        assert r.parts[0].how == "semantic"


def test_minilm_crimson_knapsack_with_spots(minilm_interp):
    r = minilm_interp.interpret("crimson knapsack with spots")
    got = _parts(r)
    assert got["colour"] == "red"
    if "pattern" in got:  # "spots" may stay free text: MiniLM finds it far from "polka dot"
        assert "polka dot" in _surfaces(minilm_interp.lexicon, "pattern", got["pattern"])
    # MiniLM puts "knapsack" nearer "bag" than "backpack" (0.49 vs 0.41): a known limit,
    # reported in docs/query-understanding.md; the category is whatever it says, or nothing.
    assert set(got) <= {"colour", "pattern", "category"}


def test_minilm_rejects_words_that_name_nothing(minilm_interp):
    for q in ("for my sister", "the", "onyx", "pearl"):
        r = minilm_interp.interpret(q)
        assert not r.positive(), (q, r.to_dict())


def test_artifacts_load_for_serving_and_describe(world, lexicon, attrs, tmp_path):
    from engine.query import QueryUnderstanding, describe, save_artifacts

    enc = ConceptEncoder()
    save_artifacts(tmp_path, lexicon, world["stats"], attrs, WordVectors.build(enc, ["spots"]))
    qu = QueryUnderstanding.load(tmp_path, enc)
    r = qu.interpret("crimson knapsack with spots under $50")
    assert r.label().startswith("red · backpack") and r.label().endswith("under $50")
    text = describe(r)
    assert "colour-table" in text and "CLIP prompt: a red" in text
    assert qu.attributes is not None and len(qu.attributes.item_ids) == len(world["items"])
