"""Ingest validation on deliberately broken fixtures: each problem counted, listed and handled as
documented in ``engine/ingest/tables.py``; malformed files refused with a clear message and
nothing written (a previous ingest of the same name survives)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catalog_fixtures import write_user_catalog

from engine.cli import main
from engine.ingest import ingest_catalog, read_source, source_dir
from engine.ingest.derive import event_grade, query_tables, split_interactions
from engine.ingest.source import sources_dir


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    """A private data folder per test, so ingests never meet."""
    monkeypatch.setenv("PIXELMATCH_DATA", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def clean(data) -> dict[str, Path]:
    return write_user_catalog(data / "in", n_items=40, n_users=10, n_events=300)


def rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def rewrite(path: Path, table: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_a_clean_catalog_is_ingested_whole_and_reproducibly(clean):
    res = ingest_catalog("shop", clean["catalog"], clean["images"], clean["interactions"])
    assert res.report.problems == []
    folder = source_dir("shop")
    items = pd.read_parquet(folder / "items.parquet")
    assert len(items) == 40 and items["item_id"].is_unique
    assert all((folder / p).is_file() for p in items["image_path"])
    inter = pd.read_parquet(folder / "interactions.parquet")
    assert len(inter) == 300 and set(inter["split"]) == {"train", "test"}
    first = res.record["fingerprint"]
    again = ingest_catalog("shop", clean["catalog"], clean["images"], clean["interactions"])
    assert again.record["fingerprint"] == first  # same input, same content hash
    assert not any(p.name.startswith(".") for p in sources_dir().iterdir())  # no temp folders


def test_catalog_row_problems_are_counted_listed_and_handled(clean):
    table = rows(clean["catalog"])
    table[1]["id"] = table[0]["id"]  # duplicate id: later row skipped
    table[2]["id"] = ""  # empty id: skipped
    table[3]["title"] = ""  # empty title with a description: fixed
    table[4]["title"], table[4]["description"] = "", ""  # nothing to show: skipped
    table[5]["price"], table[6]["price"], table[7]["price"] = "abc", "-5", "inf"  # fixed
    table[8]["price"] = ""  # missing: median
    table[9]["image"] = "nope.jpg"  # missing image: skipped
    table[10]["image"] = "../in/products.csv"  # escapes the image folder: skipped
    table[11]["image"] = "/etc/passwd"  # absolute: skipped
    (clean["images"] / "bad.jpg").write_bytes(b"this is not a picture")
    table[12]["image"] = "bad.jpg"  # unreadable: skipped
    rewrite(clean["catalog"], table)

    res = ingest_catalog("shop", clean["catalog"], clean["images"])
    r = res.report
    assert r.count("duplicate_id") == 1 and r.count("empty_id") == 1
    assert r.count("bad_price") == 3 and r.count("missing_price") == 1
    assert r.count("missing_image") == 1 and r.count("unsafe_image_path") == 2
    assert r.count("unreadable_image") == 1
    actions = {(p.code, p.action) for p in r.problems}
    assert ("empty_title", "fixed") in actions and ("empty_title", "skipped") in actions
    unreadable = next(p for p in r.problems if p.code == "unreadable_image")
    assert "sku0012" in unreadable.examples[0] and "not" in unreadable.examples[0].lower()

    items = pd.read_parquet(source_dir("shop") / "items.parquet").set_index("item_id")
    # 40 rows - duplicate - empty id - no title/description - 4 image problems = 33 kept
    assert len(items) == 33
    assert items.loc["sku0003", "title"] == table[3]["description"]  # from its description
    # The median of the valid prices of the rows that passed the row checks (not 1, 2 and 4).
    valid = [t["price"] for k, t in enumerate(table) if k not in (1, 2, 4)]
    median = float(np.median([float(v) for v in valid if _is_price(v)]))
    assert items.loc["sku0005", "price"] == pytest.approx(median)
    assert items.loc["sku0000", "title"] == table[0]["title"]  # first row of the duplicate won
    text = r.to_text()
    assert "[skipped] catalog: duplicate ids" in text and "[fixed] catalog: prices" in text
    stored = json.loads((source_dir("shop") / "validation.json").read_text())
    assert {p["code"] for p in stored["problems"]} >= {"duplicate_id", "unreadable_image"}


def _is_price(v: str) -> bool:
    try:
        return 0 <= float(v) < float("inf")
    except ValueError:
        return False


def test_examples_are_capped_and_the_rest_counted(clean):
    table = rows(clean["catalog"])
    for row in table[:25]:
        row["image"] = "missing/" + row["image"]
    rewrite(clean["catalog"], table)
    res = ingest_catalog("shop", clean["catalog"], clean["images"])
    p = next(p for p in res.report.problems if p.code == "missing_image")
    assert p.count == 25 and len(p.examples) == 10
    assert "and 15 more" in res.report.to_text()


def test_interaction_problems_are_counted_and_skipped(clean):
    events = rows(clean["interactions"])
    events[0]["item"] = "not-in-catalog"
    events[1]["item"] = "not-in-catalog"
    events[2]["timestamp"] = "yesterday-ish"
    events[3]["user"] = ""
    events[4]["timestamp"] = "2024-03-01T10:00:00Z"  # a date string is fine
    events[5]["event"], events[6]["event"] = "share", "share"  # unknown kind: counted as views
    table = rows(clean["catalog"])
    table[0]["image"] = "gone.jpg"  # its events are skipped with it
    rewrite(clean["catalog"], table)
    rewrite(clean["interactions"], events)
    n_on_gone = sum(e["item"] == table[0]["id"] for e in events[5:])
    shared_gone = sum(e["item"] == table[0]["id"] for e in events[5:7])

    res = ingest_catalog("shop", clean["catalog"], clean["images"], clean["interactions"])
    r = res.report
    assert r.count("unknown_item") == 2 and r.count("bad_timestamp") == 1
    assert r.count("empty_user") == 1 and r.count("skipped_item") == n_on_gone
    assert r.count("unknown_event") == 2 - shared_gone
    unknown = next(p for p in r.problems if p.code == "unknown_item")
    assert unknown.examples == ["not-in-catalog"]
    kept = pd.read_parquet(source_dir("shop") / "interactions.parquet")
    assert len(kept) == 300 - 4 - n_on_gone
    share = kept[kept["event_original"] == "share"]
    assert len(share) == 2 - shared_gone and (share["event"] == "view").all()
    assert set(kept["event"]) <= {"view", "click", "add_to_cart", "purchase"}
    assert r.counts["interaction rows kept"] == len(kept)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("products.csv", b"", "is empty"),
        ("products.csv", b"id,title,image\n1,a,b.jpg,extra,columns\n", "could not be read"),
        ("products.csv", b"\xff\xfe\x00garbage\x00\x81\x82", "could not be read"),
        ("products.parquet", b"PAR1 this is not parquet", "could not be read"),
        ("products.xlsx", b"whatever", "unsupported type"),
        ("products.csv", b"sku,name\n1,a\n", "missing required column"),
        ("products.csv", b"id,title,image\n", "has no rows"),
    ],
)
def test_malformed_catalog_files_are_refused_and_nothing_is_lost(
    clean, capsys, name, content, message
):
    ingest_catalog("shop", clean["catalog"], clean["images"])  # a good earlier ingest
    before = read_source("shop")["fingerprint"]
    bad = clean["catalog"].with_name(name)
    bad.write_bytes(content)
    code, out, err = cli(capsys, "ingest", "--catalog", str(bad), "--images",
                         str(clean["images"]), "--name", "shop", "--quiet")
    assert code == 2
    assert message in err and "Nothing was written" in err
    assert read_source("shop")["fingerprint"] == before  # the previous ingest is intact
    assert not any(p.name.startswith(".") for p in sources_dir().iterdir())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"user,item\nu1,sku0001\n", "missing required column"),
        (b"user,item,event,timestamp\nu1,sku0001,view\x00,1,2,3\n", "could not be read"),
        (b"user,item,event,timestamp\nu1,nope,view,1700000000\n", "No usable interactions"),
    ],
)
def test_malformed_interactions_files_are_refused(clean, capsys, content, message):
    bad = clean["interactions"].with_name("bad_events.csv")
    bad.write_bytes(content)
    code, out, err = cli(capsys, "ingest", "--catalog", str(clean["catalog"]), "--images",
                         str(clean["images"]), "--interactions", str(bad), "--name", "shop",
                         "--quiet")
    assert code == 2 and message in err
    assert not source_dir("shop").exists()


def test_cli_prints_the_report_and_the_next_command(clean, capsys):
    code, out, err = cli(capsys, "ingest", "--catalog", str(clean["catalog"]), "--images",
                         str(clean["images"]), "--interactions", str(clean["interactions"]),
                         "--name", "shop", "--quiet")
    assert code == 0
    assert "Ingested 'shop': 40 products, 300 events" in out
    assert "python -m engine build --catalog shop" in out


def test_missing_image_folder_and_bad_names_are_refused(clean, capsys):
    code, _, err = cli(capsys, "ingest", "--catalog", str(clean["catalog"]), "--images",
                       str(clean["images"] / "nope"), "--name", "shop", "--quiet")
    assert code == 2 and "does not exist" in err
    with pytest.raises(ValueError, match="invalid catalog name"):
        ingest_catalog("../evil", clean["catalog"], clean["images"])


def test_an_image_bomb_is_skipped_not_decoded(clean):
    from PIL import Image

    Image.MAX_IMAGE_PIXELS, saved = None, Image.MAX_IMAGE_PIXELS
    try:
        Image.new("L", (9000, 9000)).save(clean["images"] / "bomb.png")  # 81 MP > 40 MP bound
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    table = rows(clean["catalog"])
    table[0]["image"] = "bomb.png"
    rewrite(clean["catalog"], table)
    res = ingest_catalog("shop", clean["catalog"], clean["images"])
    p = next(p for p in res.report.problems if p.code == "unreadable_image")
    assert p.count == 1 and "megapixels" in p.examples[0]


def test_split_is_chronological_and_new_items_have_no_training_events(clean):
    ingest_catalog("shop", clean["catalog"], clean["images"], clean["interactions"])
    folder = source_dir("shop")
    inter = pd.read_parquet(folder / "interactions.parquet")
    assert inter.loc[inter["split"] == "train", "timestamp"].max() < inter.loc[
        inter["split"] == "test", "timestamp"].min()
    items = pd.read_parquet(folder / "items.parquet")
    new = set(items.loc[items["is_new"], "item_id"])
    assert not new & set(inter.loc[inter["split"] == "train", "item_id"])
    assert new <= set(inter.loc[inter["split"] == "test", "item_id"])


def test_logged_queries_become_graded_qrels_split_by_first_use():
    inter = pd.DataFrame({
        "user_id": ["a", "b", "c", "a", "b"],
        "item_id": ["i1", "i1", "i2", "i3", "i2"],
        "event": ["view", "purchase", "add_to_cart", "click", "view"],
        "timestamp": [1, 2, 3, 4, 5],
        "query": ["red mug", "red mug", "red mug", "lamp", ""],
    })
    inter, cutoff = split_interactions(inter)
    queries, qrels = query_tables(inter)
    assert queries["query"].tolist() == ["red mug", "lamp"]  # first seen at t=1, then t=4
    assert queries["split"].tolist() == ["train", "test"]
    got = {(q, i): g for q, i, g in zip(qrels["query_id"], qrels["item_id"], qrels["grade"])}
    # red mug: i1 viewed (1) then bought (3) -> 3; i2 added to cart -> 2. lamp: i3 clicked -> 1.
    assert got == {("q000000", "i1"): 3, ("q000000", "i2"): 2, ("q000001", "i3"): 1}
    assert event_grade("Add-To-Cart") == 2 and event_grade("download") == 3


def test_known_item_queries_fill_in_when_the_events_have_too_few(clean):
    ingest_catalog("shop", clean["catalog"], clean["images"])  # no events at all
    folder = source_dir("shop")
    queries = pd.read_parquet(folder / "queries.parquet")
    qrels = pd.read_parquet(folder / "qrels.parquet")
    assert set(queries["type"]) == {"known-item"} and set(queries["split"]) == {
        "train", "val", "test"}
    items = pd.read_parquet(folder / "items.parquet").set_index("item_id")
    for qid, text in zip(queries["query_id"][:10], queries["query"][:10]):
        best = qrels[(qrels["query_id"] == qid) & (qrels["grade"] == 3)]["item_id"].tolist()
        assert len(best) == 1
        assert set(text.split()) <= set(items.loc[best[0], "title"].lower().split())
    iq = pd.read_parquet(folder / "image_queries.parquet")
    assert len(iq) == 40 and set(iq["split"]) == {"val", "test"}
    assert all((folder / p).is_file() for p in iq["image_path"])


def test_interrupted_ingest_leaves_no_partial_folder(clean, monkeypatch):
    import engine.ingest as ingest

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest, "world_tables", boom)
    with pytest.raises(KeyboardInterrupt):
        ingest_catalog("shop", clean["catalog"], clean["images"])
    assert not source_dir("shop").exists()
    assert list(sources_dir().iterdir()) == []


def test_steps_a_catalog_cannot_support_record_why(clean):
    """Without events there are no recommenders; without enough queries, no re-ranker."""
    from engine.config import load_preset
    from engine.pipeline import STEPS
    from engine.pipeline.step import StepContext

    ingest_catalog("shop", clean["catalog"], clean["images"])  # no events
    folder = source_dir("shop")
    ctx = StepContext(load_preset("tiny"), {"world": folder}, lambda it, n, d: it, print)
    checks = {s.name: s.unavailable for s in STEPS if s.unavailable}
    assert "no interactions" in checks["recommend"](ctx)
    assert checks["ranker"](ctx) is None  # 40 known-item queries: 24 train, 6 validation
    queries = pd.read_parquet(folder / "queries.parquet")
    queries[queries["split"] != "train"].to_parquet(folder / "queries.parquet")
    assert "0 training queries (needs 10)" in checks["ranker"](ctx)


def test_methods_of_an_unavailable_step_are_hidden(tiny_catalog):
    import copy

    from engine.catalog import Catalog
    from engine.retrieval.registry import available_retrievers
    from engine.search import QueryError, get_retriever

    manifest = copy.deepcopy(tiny_catalog.manifest)
    manifest["steps"]["ranker"]["info"]["unavailable"] = "the catalog has only 3 training queries"
    catalog = Catalog(tiny_catalog.name, tiny_catalog.store, manifest)
    assert "hybrid" in available_retrievers(tiny_catalog)
    assert "hybrid" not in available_retrievers(catalog) and "bm25" in available_retrievers(catalog)
    assert catalog.unavailable("ranker") == "the catalog has only 3 training queries"
    with pytest.raises(QueryError, match="not built"):
        get_retriever(catalog, "hybrid")
