"""Tests for the synthetic world generator (engine.world).

Every property is checked against an independent computation: file hashes, pixel colours, a
regex scan of the text against the vocabulary, and relevance grades recomputed from the
item attributes with a second implementation of the grading rule of ``engine.world.queries``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.config import load_preset
from engine.schema import TABLES, items_with_truth, users_with_truth
from engine.world import catalog as world_catalog
from engine.world import vocab
from engine.world.generate import generate_world, item_render_seed
from engine.world.render import measured_colour, render_product
from engine.world.users import EPOCH

DAY = 86_400
# A world small enough to generate in a few seconds (fewer than 200 catalog render jobs: no
# pool; the tagger's 500 photos do use one).
SMALL_WORLD = {
    "n_items": 150,
    "n_users": 40,
    "n_interactions": 800,
    "n_sessions": 40,
    "n_queries_train": 30,
    "n_queries_val": 10,
    "n_queries_test": 30,
    "n_image_queries": 8,
    # a deliberately weak vendor tagger (tests/test_tagger.py tests the real one)
    "tagger_train_images": 300,
    "tagger_calibration_images": 100,
    "tagger_test_images": 100,
    "tagger_epochs": 1,
}


# -- helpers -----------------------------------------------------------------------------------
def sha256_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def phrase_re(words: list[str] | tuple[str, ...]) -> re.Pattern:
    """Whole-word/phrase matcher (case-insensitive), longest phrases first."""
    alts = sorted({w.lower() for w in words}, key=len, reverse=True)
    return re.compile(
        r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in alts) + r")(?![a-z0-9])", re.I
    )


def all_words(field: str) -> list[str]:
    return [w for t in vocab.FIELDS[field] for w in (*t.words, *t.held_out)]


COLOUR_RE = phrase_re(all_words("colour"))
PATTERN_RE = phrase_re(all_words("pattern"))
HELD_OUT_RE = phrase_re([w for terms in vocab.FIELDS.values() for t in terms for w in t.held_out])
# Every evaluation-only word: paraphrase, wild, typo and modifier phrases.
EVAL_RE = phrase_re(
    [w for terms in vocab.FIELDS.values() for t in terms for w in t.evaluation_words()]
)
TRAIN_WORDS_RE = phrase_re([w for terms in vocab.FIELDS.values() for t in terms for w in t.words])


def colour_of_word(word: str) -> set[str]:
    return {t.name for t in vocab.COLOURS if word.lower() in (*t.words, *t.held_out)}


def title_body(title: str, brand: str) -> str:
    """The title without its leading brand name (a proper name, not a description)."""
    assert title.startswith(brand), (title, brand)
    return title[len(brand) :]


def expected_grades(attrs: dict[str, str], items: pd.DataFrame) -> dict[str, int]:
    """Second implementation of the documented grading rule, row by row (grades > 0 only)."""
    out = {}
    n = len(attrs)
    for rec in items[["item_id", "category", "colour", "pattern", "material"]].itertuples():
        missed = [f for f, v in attrs.items() if getattr(rec, f) != v]
        if not missed:
            grade = 3
        elif len(missed) == 1 and missed[0] != "category" and n >= 3:
            grade = 2
        elif len(missed) == 1 and missed[0] != "category" and n == 2:
            grade = 1
        else:
            grade = 0
        if grade:
            out[rec.item_id] = grade
    return out


# -- fixtures ----------------------------------------------------------------------------------
def _shifted(clock, shift):
    """A clock that runs ``shift`` units ahead of ``clock``."""
    return lambda: clock() + shift


@pytest.fixture(scope="module")
def small_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same small world twice (the second with the wall clock 10 years ahead), + seed 7."""
    cfg = load_preset("tiny", world=SMALL_WORLD)
    out = {}
    for name, seed, clock_shift in (("a", 42, 0), ("b", 42, 10 * 365 * DAY), ("c", 7, 0)):
        folder = tmp_path_factory.mktemp(f"world-{name}")
        with pytest.MonkeyPatch.context() as mp:
            if clock_shift:
                mp.setattr(time, "time", _shifted(time.time, clock_shift))
                mp.setattr(time, "time_ns", _shifted(time.time_ns, clock_shift * 10**9))
            generate_world(dataclasses.replace(cfg, seed=seed), folder)
        out[name] = folder
    return out


@pytest.fixture(scope="module")
def world(tiny_catalog) -> dict:
    """The session's tiny world: its folder, config and tables."""
    folder = tiny_catalog.world_dir
    tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
    tables["items"], tables["users"] = items_with_truth(folder), users_with_truth(folder)
    return {"dir": folder, "config": tiny_catalog.config, **tables}


# -- determinism -------------------------------------------------------------------------------
def test_same_seed_gives_byte_identical_files(small_worlds):
    a, b = sha256_tree(small_worlds["a"]), sha256_tree(small_worlds["b"])
    assert any(p.endswith(".parquet") for p in a) and any(p.endswith(".jpg") for p in a)
    n_images = SMALL_WORLD["n_items"] + SMALL_WORLD["n_image_queries"]
    assert sum(p.endswith(".jpg") for p in a) == n_images
    assert a.keys() == b.keys()
    differing = [p for p in a if a[p] != b[p]]
    assert not differing, f"files differ between two runs with the same seed: {differing[:5]}"


def test_different_seed_gives_different_world(small_worlds):
    a, c = sha256_tree(small_worlds["a"]), sha256_tree(small_worlds["c"])
    for table in ("items", "truth", "user_truth", "interactions", "queries", "qrels"):
        assert a[f"{table}.parquet"] != c[f"{table}.parquet"], table
    common_images = [p for p in a if p.endswith(".jpg") and p in c]
    assert common_images
    same = sum(a[p] == c[p] for p in common_images)
    assert same / len(common_images) < 0.05


def test_timestamps_do_not_depend_on_the_wall_clock(small_worlds):
    """Run "b" had time.time() ten years ahead; its timestamps equal run "a"'s and lie in the
    world's own calendar, which starts at a fixed epoch (2025-01-01), not at "now"."""
    ta = pd.read_parquet(small_worlds["a"] / "interactions.parquet")["timestamp"]
    tb = pd.read_parquet(small_worlds["b"] / "interactions.parquet")["timestamp"]
    assert ta.tolist() == tb.tolist()
    assert EPOCH == 1_735_689_600
    days = load_preset("tiny").world.days
    assert ta.min() >= EPOCH and ta.max() <= EPOCH + days * DAY
    sessions = pd.read_parquet(small_worlds["b"] / "sessions.parquet")
    assert sessions["timestamp"].between(EPOCH, EPOCH + days * DAY).all()


def test_parallel_rendering_gives_the_same_files_as_serial(tmp_path):
    """>= 200 render jobs with build_threads=2 use a process pool; the bytes must not change."""
    cfg = load_preset("tiny", world={**SMALL_WORLD, "n_items": 210})
    serial, pooled = tmp_path / "serial", tmp_path / "pooled"
    serial.mkdir()
    pooled.mkdir()
    generate_world(dataclasses.replace(cfg, build_threads=1), serial)
    generate_world(dataclasses.replace(cfg, build_threads=2), pooled)
    assert sha256_tree(serial) == sha256_tree(pooled)


# -- images ------------------------------------------------------------------------------------
def _palette_vote(pixels: np.ndarray) -> str:
    """Independent nearest-colour vote over RGB pixels (n, 3) against vocab's palette."""
    palette = np.array([t.rgb for t in vocab.COLOURS], dtype=np.float64)
    d = ((pixels[:, None, :].astype(np.float64) - palette[None]) ** 2).sum(-1)
    votes = np.bincount(d.argmin(1), minlength=len(palette))
    return vocab.COLOURS[int(votes.argmax())].name


def test_image_pixels_show_the_items_colour(world):
    """Measured on the stored JPEGs: pixels under the object's mask (the renderer re-run with
    the item's seed gives the mask) vote for the item's colour attribute."""
    items, folder, wcfg = world["items"], world["dir"], world["config"]["world"]
    seed = world["config"]["seed"]
    own, engine_votes, shuffled_hits, close = 0, 0, 0, 0
    shuffled = items["colour"].sample(frac=1.0, random_state=0).to_numpy()
    for k, rec in enumerate(items.itertuples()):
        if k % 2:  # every other item keeps this test quick; 300 images are plenty
            continue
        rendered, mask = render_product(
            category=rec.category,
            colour=rec.colour,
            pattern=rec.pattern,
            seed=item_render_seed(seed, k),
            size=wcfg["image_size"],
            difficulty=wcfg["image_difficulty"],
        )
        stored = Image.open(folder / rec.image_path).convert("RGB")
        assert stored.size == (wcfg["image_size"],) * 2
        a, b = np.asarray(stored, np.float32), np.asarray(rendered, np.float32)
        close += float(np.abs(a - b).mean()) < 10.0  # JPEG noise only: it is this item's image
        measured = _palette_vote(np.asarray(stored)[mask])
        own += measured == rec.colour
        shuffled_hits += measured == shuffled[k]
        engine_votes += measured_colour(stored, mask) == rec.colour
    n = len(range(0, len(items), 2))
    assert close / n >= 0.99, "stored images do not match their items' renders"
    assert own / n >= 0.97, f"only {own}/{n} images show their item's colour"
    assert engine_votes / n >= 0.97
    assert shuffled_hits / n < 0.3  # the check can fail: a wrong colour column is caught


def test_render_is_deterministic_and_validates_names():
    a, ma = render_product(category="mug", colour="red", pattern="striped", seed=5, size=64)
    b, mb = render_product(category="mug", colour="red", pattern="striped", seed=5, size=64)
    assert a.tobytes() == b.tobytes() and (ma == mb).all()
    c, _ = render_product(category="mug", colour="red", pattern="striped", seed=6, size=64)
    assert a.tobytes() != c.tobytes()
    with pytest.raises(ValueError, match="valid"):
        render_product(category="spaceship", colour="red", pattern="solid", seed=1, size=64)
    with pytest.raises(ValueError, match="teal"):
        render_product(category="mug", colour="magenta", pattern="solid", seed=1, size=64)


# -- text --------------------------------------------------------------------------------------
def _products(rate: float, n: int = 4000, seed: int = 3) -> pd.DataFrame:
    cfg = dataclasses.replace(load_preset("tiny").world, n_items=n, title_omit_visual_rate=rate)
    return world_catalog.generate_products(cfg, np.random.default_rng(seed))


def _omits_visual(items: pd.DataFrame) -> np.ndarray:
    bodies = [title_body(t, b) for t, b in zip(items["title"], items["brand"])]
    return np.array([not COLOUR_RE.search(s) and not PATTERN_RE.search(s) for s in bodies])


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.65, 1.0])
def test_titles_omit_colour_and_pattern_at_the_configured_rate(rate):
    items = _products(rate)
    measured = _omits_visual(items).mean()
    assert abs(measured - rate) < 0.03, (rate, measured)


def test_changing_the_omit_rate_changes_the_titles():
    low, high = _omits_visual(_products(0.2)).mean(), _omits_visual(_products(0.8)).mean()
    assert high - low > 0.5


def test_tiny_world_titles_omit_visual_words_at_the_preset_rate(world):
    rate = world["config"]["world"]["title_omit_visual_rate"]
    measured = _omits_visual(world["items"]).mean()
    assert abs(measured - rate) < 0.06  # 600 items: ~3 standard deviations
    # The build's own summary agrees with the scan.
    info = json.loads((world["dir"] / "step.json").read_text())["info"]
    assert abs(info["title_omits_visual"] - measured) < 0.02


def test_title_mentions_column_matches_the_title_text():
    items = _products(0.65, n=1500)
    for rec in items.itertuples():
        body = title_body(rec.title, rec.brand)
        colours = {c for m in COLOUR_RE.findall(body) for c in colour_of_word(m)}
        patterns = PATTERN_RE.findall(body)
        named = {"colour"} if colours else set()
        named |= {"pattern"} if patterns else set()
        assert named == (set(rec.title_mentions.split("+")) - {""}), rec.title
        if colours:
            assert rec.colour in colours, rec.title  # a named colour is the item's colour
        for word in patterns:
            assert word.lower() in vocab.term("pattern", rec.pattern).words, rec.title


def test_no_title_names_a_colour_the_item_does_not_have():
    items = _products(1.0)  # titles name no colour at all by design
    wrong = [t for t in items["title"] if COLOUR_RE.search(t)]
    assert not wrong, f"{len(wrong)} titles name a colour, e.g. {wrong[:3]}"


def test_held_out_words_never_appear_in_product_text_or_sessions(world):
    items = world["items"]
    for column in ("title", "description"):
        hits = [s for s in items[column] if EVAL_RE.search(s)]
        assert not hits, f"evaluation-only words in {column}: {hits[:3]}"
    session_hits = [s for s in world["sessions"]["query"] if EVAL_RE.search(s)]
    assert not session_hits
    # The scan works: it does find held-out words where they belong.
    q = world["queries"]
    para = q[q["wording"] == "paraphrase"]
    assert len(para) > 0 and all(HELD_OUT_RE.search(x) for x in para["query"])
    wild = q[q["wording"] == "wild"]
    assert len(wild) > 0 and all(EVAL_RE.search(x) for x in wild["query"])


def test_held_out_words_never_appear_in_a_larger_catalog():
    items = _products(0.3, n=5000, seed=11)
    text = items["title"] + " " + items["description"]
    assert not text.str.contains(EVAL_RE).any()


# -- items, users and interactions -------------------------------------------------------------
def test_about_ten_percent_of_items_are_new(world):
    items, wcfg = world["items"], world["config"]["world"]
    frac = items["is_new"].mean()
    assert abs(frac - wcfg["new_item_fraction"]) < 0.01
    new, old = items[items["is_new"]], items[~items["is_new"]]
    assert (new["launch_day"] >= wcfg["cutoff_day"]).all()
    assert (old["launch_day"] < wcfg["cutoff_day"]).all()


def test_new_items_have_no_training_interactions_but_some_test_ones(world):
    items, inter = world["items"], world["interactions"]
    new_ids = set(items.loc[items["is_new"], "item_id"])
    train = inter[inter["split"] == "train"]
    test = inter[inter["split"] == "test"]
    assert not train["item_id"].isin(new_ids).any()
    n_test_new = int(test["item_id"].isin(new_ids).sum())
    assert n_test_new > 0
    assert test.loc[test["item_id"].isin(new_ids), "item_id"].nunique() >= 0.2 * len(new_ids)


def test_interactions_happen_after_launch_and_respect_the_cutoff(world):
    items, inter, wcfg = world["items"], world["interactions"], world["config"]["world"]
    m = inter.merge(items[["item_id", "launch_day"]], on="item_id", validate="many_to_one")
    assert len(m) == len(inter)
    # launch_day is stored rounded to 3 decimals (+-43.2 s); timestamps to the second.
    launch_ts = EPOCH + m["launch_day"] * DAY
    assert (m["timestamp"] >= launch_ts - 44).all()
    day = (m["timestamp"] - EPOCH) / DAY
    cutoff = wcfg["cutoff_day"]
    assert (day[m["split"] == "train"] <= cutoff).all()
    assert (day[m["split"] == "test"] >= cutoff - 1 / DAY).all()
    assert (day <= wcfg["days"]).all()
    assert set(inter["event"]) <= {"view", "click", "add_to_cart", "purchase"}
    assert inter["user_id"].isin(world["users"]["user_id"]).all()


def test_one_row_per_user_item_pair(world):
    dup = world["interactions"].duplicated(["user_id", "item_id"])
    assert not dup.any(), f"{int(dup.sum())} repeated (user, item) pairs"


def test_users_have_real_preferences(world):
    """A user's training interactions concentrate in their top category far above the share
    that category has in the catalog (what a taste-free, popularity-only world would give)."""
    items, users, inter = world["items"], world["users"], world["interactions"]
    train = inter[inter["split"] == "train"].merge(items[["item_id", "category"]], on="item_id")
    train = train.merge(users[["user_id", "top_category"]], on="user_id")
    share = (train["category"] == train["top_category"]).groupby(train["user_id"]).mean()
    base = items["category"].value_counts(normalize=True)
    base_of_user = users.set_index("user_id")["top_category"].map(base).loc[share.index]
    assert share.mean() > 3 * base_of_user.mean(), (share.mean(), base_of_user.mean())
    assert (share > base_of_user).mean() > 0.8
    # Control: against another user's top category the concentration disappears.
    other = users["top_category"].to_numpy()[np.roll(np.arange(len(users)), 1)]
    other_of = dict(zip(users["user_id"], other))
    control = (train["category"] == train["user_id"].map(other_of)).groupby(train["user_id"])
    assert control.mean().mean() < 1.7 * base_of_user.mean()


# -- queries and relevance ---------------------------------------------------------------------
def test_relevance_grades_agree_with_attributes(world):
    items, queries, qrels = world["items"], world["queries"], world["qrels"]
    assert len(queries) > 50
    assert qrels["grade"].between(1, 3).all()
    assert not qrels.duplicated(["query_id", "item_id"]).any()
    stored = {
        qid: dict(zip(g["item_id"], g["grade"].astype(int))) for qid, g in qrels.groupby("query_id")
    }
    for rec in queries.itertuples():
        attrs = json.loads(rec.attributes)
        assert len(attrs) == int(rec.type[0])
        expected = expected_grades(attrs, items)
        assert stored.get(rec.query_id, {}) == expected, (rec.query_id, attrs)
        assert 3 in expected.values(), "every query has at least one fully relevant item"
    # Grade 3 items match every attribute (checked directly on the merged table too).
    g3 = qrels[qrels["grade"] == 3].merge(queries[["query_id", "attributes"]], on="query_id")
    g3 = g3.merge(items, on="item_id")
    for rec in g3.itertuples():
        for f, v in json.loads(rec.attributes).items():
            assert getattr(rec, f) == v


def test_image_query_grades_agree_with_attributes(world):
    items, iq, qrels = world["items"], world["image_queries"], world["image_qrels"]
    stored = {
        qid: dict(zip(g["item_id"], g["grade"].astype(int))) for qid, g in qrels.groupby("query_id")
    }
    for rec in iq.itertuples():
        attrs = json.loads(rec.attributes)
        assert set(attrs) == set(vocab.VISUAL_FIELDS)
        assert stored.get(rec.query_id, {}) == expected_grades(attrs, items)
        assert (world["dir"] / rec.image_path).is_file()


def test_query_splits_use_disjoint_attribute_combinations(world):
    q = world["queries"]
    assert set(q["split"]) == {"train", "val", "test"}
    combos = {s: set(g["attributes"]) for s, g in q.groupby("split")}
    assert not combos["train"] & combos["val"]
    assert not combos["train"] & combos["test"]
    assert not combos["val"] & combos["test"]


@pytest.fixture(scope="module")
def demo_scale_queries() -> tuple[dict, pd.DataFrame]:
    """The demo preset's query counts over a 1,000-item catalog (tables only, no images)."""
    from engine.world import queries as world_queries

    wcfg = dataclasses.replace(load_preset("demo").world, n_items=1000)
    items = world_catalog.generate_products(wcfg, np.random.default_rng(1))
    q, _ = world_queries.generate_text_queries(wcfg, items, np.random.default_rng(2))
    return dataclasses.asdict(wcfg), q


def test_query_splits_disjoint_at_demo_query_counts(demo_scale_queries):
    _, q = demo_scale_queries
    assert len(q) > 800
    combos = {s: set(g["attributes"]) for s, g in q.groupby("split")}
    assert len(combos) == 3
    assert not (combos["train"] & combos["val"] or combos["train"] & combos["test"])
    assert not combos["val"] & combos["test"]


def _words_of_attribute(field: str, value: str, split: str | None) -> tuple[str, ...]:
    """The catalog words of a value (split None), or its paraphrase words for ``split``."""
    t = vocab.term(field, value)
    return t.words if split is None else t.paraphrase.for_split(split)


def test_paraphrase_queries_use_held_out_words(world):
    q = world["queries"]
    para = q[q["wording"] == "paraphrase"]
    plain = q[q["wording"] == "catalog"]
    assert len(para) > 0 and len(plain) > 0
    for rec in para.itertuples():
        text = rec.query.lower()
        for f, v in json.loads(rec.attributes).items():
            assert phrase_re(_words_of_attribute(f, v, rec.split)).search(text), (rec.query, f)
        rest = HELD_OUT_RE.sub(" ", text)
        assert not TRAIN_WORDS_RE.search(rest), f"training word in paraphrase {rec.query!r}"
    for rec in plain.itertuples():
        text = rec.query.lower()
        for f, v in json.loads(rec.attributes).items():
            assert phrase_re(_words_of_attribute(f, v, None)).search(text), (rec.query, f)
        assert not EVAL_RE.search(text), rec.query


def test_wording_rates_are_roughly_the_configured_ones(demo_scale_queries):
    wcfg, q = demo_scale_queries
    assert abs((q["wording"] == "paraphrase").mean() - wcfg["paraphrase_rate"]) < 0.05
    assert abs((q["wording"] == "wild").mean() - wcfg["wild_rate"]) < 0.05


# -- worlds too large to score every (user, item) pair -------------------------------------------
def _tables(**world):
    """Items, users, interactions and prior of a small world (no images), seed 42."""
    from engine.world import users as world_users

    w = dataclasses.replace(load_preset("tiny").world, **world)
    rng = [np.random.default_rng(s) for s in np.random.SeedSequence(42).spawn(3)]
    items = world_catalog.generate_products(w, rng[0])
    people = world_users.generate_users(w, rng[1])
    inter, prior = world_users.interactions_and_prior(w, items, people, rng[2])
    return w, items, people, inter, prior


SAMPLED = {"n_items": 3000, "n_users": 300, "n_interactions": 6000}


def test_candidate_sampled_interactions_keep_the_worlds_rules():
    w, items, people, inter, _ = _tables(**SAMPLED, interaction_candidates=600)
    assert not inter.duplicated(["user_id", "item_id"]).any()
    new_ids = set(items.loc[items["is_new"], "item_id"])
    train = inter[inter["split"] == "train"]
    assert not train["item_id"].isin(new_ids).any()
    assert inter.loc[inter["split"] == "test", "item_id"].isin(new_ids).any()
    assert abs(len(inter) - w.n_interactions) < 0.05 * w.n_interactions
    # Users still follow their tastes: their top category's share is far above its catalog share.
    t = train.merge(items[["item_id", "category"]], on="item_id")
    t = t.merge(people[["user_id", "top_category"]], on="user_id")
    share = (t["category"] == t["top_category"]).mean()
    base = items["category"].value_counts(normalize=True)
    assert share > 3 * people["top_category"].map(base).mean()
    # Items are spread over the catalog, not confined to one shared candidate block.
    assert inter["item_id"].nunique() > 0.5 * len(items)


def test_candidates_change_the_sample_and_a_full_candidate_set_is_the_exact_world():
    exact = _tables(**SAMPLED)[3]
    assert exact.equals(_tables(**SAMPLED, interaction_candidates=SAMPLED["n_items"])[3])
    assert not exact.equals(_tables(**SAMPLED, interaction_candidates=600)[3])


def test_oracle_is_the_top_of_a_full_sort_of_true_utility():
    """The oracle (argpartition over cell scores) against a direct full sort per user."""
    from engine.world import users as world_users

    _, items, people, inter, prior = _tables(n_items=500, n_users=60, n_interactions=1500)
    oracle = world_users.oracle_rankings(items, people, inter, prior, n=10)
    codes = {f: items[f].map({n: i for i, n in enumerate(vocab.names(f))}).to_numpy()
             for f in ("category", "colour", "pattern")}
    seen = inter[inter["split"] == "train"].groupby("user_id")["item_id"].agg(set)
    test_users = set(inter.loc[inter["split"] == "test", "user_id"])
    assert set(oracle["user_id"]) == test_users
    for _, u in people[people["user_id"].isin(test_users)].iterrows():
        util = (
            1.6 * np.log(u["pref_category"][codes["category"]] + 1e-4)
            + 1.2 * np.log(u["pref_colour"][codes["colour"]] + 1e-4)
            + 0.6 * np.log(u["pref_pattern"][codes["pattern"]] + 1e-4)
            - 0.6 * (np.log(items["price"].to_numpy()) - u["price_level"]) ** 2
            + prior
            + 0.4 * items["is_new"].to_numpy()
        )
        util[items["item_id"].isin(seen.get(u["user_id"], set())).to_numpy()] = -np.inf
        expected = items["item_id"].to_numpy()[np.argsort(-util, kind="stable")[:10]]
        got = oracle.loc[oracle["user_id"] == u["user_id"]].sort_values("rank")["item_id"]
        assert list(got) == list(expected), u["user_id"]
