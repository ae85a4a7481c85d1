"""Unsplash Lite round trip: the dataset's own TSV files (a small fixture in exactly that format)
-> ingest -> build -> search, recommendations, benchmark and the app, next to the tiny world."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from catalog_fixtures import write_unsplash
from streamlit.testing.v1 import AppTest

from engine.catalog import Catalog
from engine.config import SourceConfig, load_preset
from engine.ingest import read_source, source_dir
from engine.ingest.unsplash import ingest_unsplash, read_parts, unsplash_frames
from engine.pipeline import check, run_build
from engine.search import search
from engine.serving import open_catalog

NAME = "unsplash-fixture"
APP = str(Path(__file__).parents[1] / "app.py")


@pytest.fixture(scope="module")
def unsplash_files(tmp_path_factory) -> dict:
    return write_unsplash(tmp_path_factory.mktemp("unsplash"))


@pytest.fixture(scope="module")
def unsplash_catalog(unsplash_files, data_dir, tiny_catalog) -> Catalog:
    """Ingest and build the fixture once (tiny settings) into the session's data folder."""
    result = ingest_unsplash(NAME, unsplash_files["folder"], unsplash_files["images"])
    cfg = load_preset("tiny", source=SourceConfig(NAME, result.record["fingerprint"]))
    run_build(cfg, name=NAME, log=lambda m: None)
    return open_catalog(NAME)


def test_the_loader_reads_the_dataset_columns(unsplash_files):
    photos = read_parts(unsplash_files["folder"], "photos")
    assert {"photo_id", "ai_description", "stats_views", "stats_downloads"} <= set(photos)
    catalog, events, keywords = unsplash_frames(unsplash_files["folder"],
                                                unsplash_files["images"])
    row = catalog.set_index("id").loc["Ph00001xYz"]
    assert row["title"] == "a red lamp on a table"  # photo_description first
    assert row["description"] == "red lamp indoors"  # then the AI description
    assert row["brand"] == "shooter1" and row["photographer"] == "Ann1 Lee"
    assert row["category"] == "Lamps" and row["colour"] == "red"  # best ai_score colour
    no_desc = catalog.set_index("id").loc["Ph00000xYz"]
    assert no_desc["title"] == "red mug indoors"  # AI description when there is none
    assert "Taken in Oslo, Norway." in no_desc["description"]
    kw = keywords[keywords["item_id"] == "Ph00001xYz"].set_index("keyword")["confidence"]
    # ai_service_1 97.5 %, ai_service_2 88.25 % (percent -> 0-1), suggested_by_user -> 1.0
    assert kw.to_dict() == pytest.approx({"lamp": 0.975, "red": 0.8825, "home": 1.0})
    assert set(events.columns) == {"user", "item", "event", "timestamp", "query"}
    assert (events["event"] == "download").all() and len(events) == 900


def test_missing_files_and_foreign_tsvs_are_refused(tmp_path, unsplash_files):
    from engine.ingest import IngestError

    with pytest.raises(IngestError, match="no photos.tsv"):
        unsplash_frames(tmp_path, unsplash_files["images"])
    (tmp_path / "photos.tsv000").write_text("id\ttitle\n1\tx\n")
    with pytest.raises(IngestError, match="missing column"):
        unsplash_frames(tmp_path, unsplash_files["images"])


def test_ingest_reports_photos_without_downloaded_images(unsplash_catalog):
    report = read_source(NAME)
    assert report["problems"]["missing_image"] == 2  # photos 7 and 8 were not downloaded
    assert report["counts"]["items"] == 118
    assert len(unsplash_catalog.items) == 118


def test_conversions_become_a_chronological_split_and_judged_queries(unsplash_catalog):
    inter = unsplash_catalog.table("interactions")
    train, test = inter[inter["split"] == "train"], inter[inter["split"] == "test"]
    assert len(train) and len(test) and train["timestamp"].max() < test["timestamp"].min()
    queries = unsplash_catalog.table("queries")
    logged = queries[queries["type"] == "logged"]
    assert {"red", "lamp", "red lamp"} <= set(logged["query"])
    qrels = unsplash_catalog.qrels("text")
    qid = logged.set_index("query").loc["red lamp", "query_id"]
    truth = unsplash_catalog.truth  # the merchant's colour column (here: the photo's colour)
    assert set(qrels[qid]) <= set(truth.loc[truth["colour"] == "red", "item_id"])


def test_search_image_search_and_keyword_matching_work(unsplash_catalog):
    items = unsplash_catalog.items
    res = search(unsplash_catalog, "bm25", text="red lamp", k=5)
    assert any("red lamp" in t for t in items["title"].iloc[res.rows])
    kw = search(unsplash_catalog, "keyword", text="lamp", k=10)
    assert len(kw.rows) == 10 and (items["category"].iloc[kw.rows] == "Lamps").all()
    from engine.imageio import load_image

    img = load_image(unsplash_catalog.image_path(3)).image
    hit = search(unsplash_catalog, "clip", image=img, k=5)
    assert 3 in set(hit.rows.tolist())  # its own picture


def test_recommendations_and_benchmark_run_on_the_catalog(unsplash_catalog):
    from engine.benchmark.harness import run_benchmark
    from engine.recommend.service import RecommendationService

    service = RecommendationService.for_catalog(unsplash_catalog)
    user = unsplash_catalog.table("interactions")["user_id"].iat[0]
    rec = service.recommend(user, "hybrid", k=5)
    assert len(rec.item_ids) == 5
    report = run_benchmark(unsplash_catalog, limit=10)
    assert report["text"]["n_queries"] > 0 and "bm25" in report["text"]["methods"]
    assert report["image"]["n_queries"] > 0  # the known-item image queries


def test_the_app_switches_between_catalogs(unsplash_catalog, tiny_catalog):
    for name in (NAME, "tiny"):
        at = AppTest.from_file(APP, default_timeout=180)
        at.session_state["catalog_name"] = name
        at.run()
        assert not at.exception
        assert at.sidebar.selectbox[0].value == name
        assert f"{len(open_catalog(name).items):,} products" in at.sidebar.caption[0].value
        at.switch_page("pages/for_you.py").run()
        assert not at.exception and not at.error


def test_a_reingest_marks_the_build_stale_with_the_rebuild_command(unsplash_catalog,
                                                                   unsplash_files):
    assert check(NAME).ok
    ingest_unsplash(NAME, unsplash_files["folder"], unsplash_files["images"], limit=60)
    status = check(NAME)
    assert not status.ok
    assert any("ingested again" in p for p in status.problems)
    assert status.fix == f"python -m engine build --catalog {NAME} --preset tiny"
    assert len(pd.read_parquet(source_dir(NAME) / "items.parquet")) < 118
