"""``--vector-store milvus`` end to end on the tiny catalog: the build's ``vectorstore`` step
writes Milvus Lite collections, searches read them through the same retrievers and agree with
FAISS, the CLI and the benchmark use them, and a FAISS-only catalog refuses with the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from engine.artifacts import ArtifactError  # noqa: E402
from engine.serving import open_catalog  # noqa: E402

NAME = "tiny-milvus"
DENSE = ("sbert", "clip", "fusion-early")


@pytest.fixture(scope="module")
def milvus_manifest(tiny_manifest: dict, data_dir: Path) -> dict:
    """The tiny catalog copied and rebuilt with --vector-store milvus: only the new step runs."""
    from engine.config import load_preset
    from engine.indexes import milvus
    from engine.pipeline import run_build

    src, dst = data_dir / "artifacts" / "tiny", data_dir / "artifacts" / NAME
    shutil.copytree(src, dst)
    manifest = run_build(
        load_preset("tiny", vector_store={"kind": "milvus"}), name=NAME, log=lambda m: None
    )
    yield manifest
    milvus.close_all()


def test_only_the_vectorstore_step_runs_and_it_records_agreement(milvus_manifest) -> None:
    built = [s for s, r in milvus_manifest["steps"].items() if not r.get("skipped")]
    assert built == ["vectorstore"]
    info = milvus_manifest["steps"]["vectorstore"]["info"]
    assert info["vector_store"] == "milvus" and info["uri"] is None
    assert {"sbert", "clip", "colour"} <= set(info["indexes"])
    for prefix, rec in info["indexes"].items():
        assert rec["top10_overlap_with_faiss"] >= 0.9, prefix
        assert rec["hnsw_tuning"]["value"] > 0
    assert "--vector-store milvus" in milvus_manifest["rebuild_command"]


def test_the_default_build_writes_no_collection(tiny_manifest) -> None:
    info = tiny_manifest["steps"]["vectorstore"]["info"]
    assert info == {"vector_store": "faiss", "indexes": {}}


def test_dense_methods_read_milvus_and_agree_with_faiss(milvus_manifest) -> None:
    from engine.components import vector_index
    from engine.indexes.milvus import MilvusIndex
    from engine.search import search

    faiss_cat = open_catalog(NAME)
    milvus_cat = open_catalog(NAME, vector_store="milvus")
    assert isinstance(vector_index(milvus_cat, "sbert", "sbert", "ann"), MilvusIndex)
    assert not isinstance(vector_index(faiss_cat, "sbert", "sbert", "ann"), MilvusIndex)
    queries = faiss_cat.table("queries")["query"].head(12).tolist()
    for method in DENSE:
        overlaps = []
        for q in queries:
            a = search(faiss_cat, method, text=q, k=10, understand=False)
            b = search(milvus_cat, method, text=q, k=10, understand=False)
            overlaps.append(len(set(a.rows) & set(b.rows)) / max(len(a.rows), 1))
            assert np.all(np.diff(b.scores) <= 1e-6)  # best first
        assert np.mean(overlaps) >= 0.9, method


def test_a_faiss_only_catalog_refuses_milvus_with_the_fix(tiny_manifest) -> None:
    with pytest.raises(ArtifactError) as err:
        open_catalog("tiny", vector_store="milvus")
    assert "no Milvus collections" in err.value.reason
    assert "--vector-store milvus" in err.value.fix
    with pytest.raises(ValueError, match="valid: faiss, milvus"):
        open_catalog("tiny", vector_store="redis")


def test_cli_search_reads_milvus(milvus_manifest, capsys) -> None:
    from engine.cli import main

    assert main(["search", "--catalog", NAME, "--method", "sbert", "--query", "red backpack",
                 "--vector-store", "milvus", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["item_ids"]) == 10
    assert main(["search", "--catalog", "tiny", "--method", "sbert", "--query", "red",
                 "--vector-store", "milvus"]) == 2  # a clear error, no traceback
    assert "--vector-store milvus" in capsys.readouterr().err


def test_bench_stores_compares_both_stores(milvus_manifest, tmp_path) -> None:
    from engine.cli import main

    assert main(["bench-stores", "--catalog", NAME, "--limit", "8", "--out", str(tmp_path),
                 "--force"]) == 0
    report = json.loads((tmp_path / "vector_stores.json").read_text())
    assert report["n_queries"] == 8
    for method in DENSE:
        rec = report["methods"][method]
        assert 0.0 <= rec["top10_overlap"]["mean"] <= 1.0
        assert set(rec["latency_ms"]) == {"faiss", "milvus"}
        assert rec["ndcg@10"]["faiss"]["n"] == 8


def test_the_app_searches_milvus_when_picked(milvus_manifest, tiny_manifest) -> None:
    from engine.search import search
    from pages.shared import esc
    from tests.test_app import card_titles, new_app, no_exception, run_query

    at = new_app()
    at.session_state["catalog_name"] = "tiny"
    at.run()
    no_exception(at)
    assert not [r for r in at.radio if r.key == "vector_store"]  # a FAISS-only catalog: no choice
    at.selectbox(key="catalog_name").set_value(NAME).run()
    no_exception(at)
    assert at.radio(key="vector_store").value == "faiss"
    at.radio(key="vector_store").set_value("milvus").run()
    run_query(at, "red backpack", method="sbert", top_k=10)
    expected = search(open_catalog(NAME, vector_store="milvus"), "sbert", text="red backpack")
    titles = open_catalog(NAME).items["title"].to_numpy()
    assert card_titles(at) == [esc(titles[r]) for r in expected.rows]


def test_the_api_serves_milvus_when_started_with_it(milvus_manifest, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from engine.api import create_app
    from engine.indexes.store import STORE_ENV
    from engine.search import search

    monkeypatch.setenv(STORE_ENV, "milvus")  # what `serve --vector-store milvus` sets
    with TestClient(create_app(NAME)) as client:
        health = client.get("/health").json()
        assert health["ok"] and health["vector_store"].startswith("Milvus Lite")
        body = client.post("/search/text", json={"query": "red backpack", "method": "sbert",
                                                 "top_k": 10}).json()
        expected = search(open_catalog(NAME, vector_store="milvus"), "sbert", text="red backpack")
        ids = open_catalog(NAME).item_ids
        assert body["item_ids"] == [str(ids[r]) for r in expected.rows]
        # a catalog without collections cannot be served from Milvus: 503 with the fix
        resp = client.get("/health", params={"catalog": "tiny"})
        assert resp.status_code == 503 and "--vector-store milvus" in resp.text


def test_a_plain_rebuild_keeps_the_milvus_collections(milvus_manifest) -> None:
    from engine.cli import main

    assert main(["build", "--preset", "tiny", "--name", NAME, "--quiet"]) == 0
    manifest = open_catalog(NAME).manifest
    assert manifest["config"]["vector_store"]["kind"] == "milvus"
    assert manifest["steps"]["vectorstore"]["skipped"]  # nothing rebuilt, collections kept
