"""Milvus vector store against Milvus Lite (in-process, temporary folders): agreement with FAISS,
padding, errors, concurrency, reopening, the store abstraction and cleanup."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from engine.artifacts import ArtifactError  # noqa: E402
from engine.benchmark.vector_stores import (  # noqa: E402
    compare_with_faiss,
    exact_top_k,
    synthetic_vectors,
)
from engine.indexes import milvus  # noqa: E402
from engine.indexes.milvus import (  # noqa: E402
    PAD_SCORE,
    MilvusIndex,
    VectorStoreError,
    collection_name,
    parse_uri,
)
from engine.indexes.store import (  # noqa: E402
    VectorStoreConfig,
    lite_path,
    open_vector_index,
    release_vector_indexes,
    write_vector_index,
)
from engine.indexes.vector import VectorIndex  # noqa: E402

N, DIM, K = 1500, 32, 10
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    return synthetic_vectors(N, DIM, n_queries=60, clusters=40, seed=3)


@pytest.fixture(scope="module")
def lite(tmp_path_factory, data):
    """One Milvus Lite database with a flat, an HNSW and an IVF collection; closed afterwards."""
    uri = str(tmp_path_factory.mktemp("milvus") / "test.db")
    vectors, _ = data
    built = {
        kind: MilvusIndex.build(
            vectors, uri=uri, collection=collection_name("test", "vec", kind), kind=kind
        )
        for kind in ("flat", "hnsw", "ivf")
    }
    yield uri, built
    milvus.close(uri)
    assert not _locked_elsewhere(Path(uri)), "the Lite database is still locked after close()"


def _locked_elsewhere(path: Path) -> bool:
    with open(path / "LOCK", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def test_flat_equals_faiss_flat_and_scores_are_inner_products(lite, data):
    _, built = lite
    vectors, queries = data
    index = built["flat"]
    assert (index.kind, index.ntotal, index.dim) == ("flat", N, DIM)
    ids, scores = index.search(queries, K)
    f_ids, f_scores = VectorIndex.build(vectors, "flat").search(queries, K)
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (len(queries), K)
    np.testing.assert_array_equal(ids, f_ids)
    np.testing.assert_allclose(scores, f_scores, atol=1e-5)
    exact = np.einsum("qd,qkd->qk", queries, vectors[ids])
    np.testing.assert_allclose(scores, exact, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "best first"


def test_hnsw_overlaps_faiss_hnsw(lite, data):
    _, built = lite
    vectors, queries = data
    ids, _ = built["hnsw"].search(queries, K)
    f_ids, _ = VectorIndex.build(vectors, "hnsw").search(queries, K)
    overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, f_ids)])
    assert overlap >= 0.9
    exact_ids, _ = exact_top_k(vectors, queries, K)
    recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, exact_ids)])
    assert recall >= 0.9


def test_ivf_with_every_list_probed_is_exact(lite, data):
    _, built = lite
    vectors, queries = data
    ids, _ = built["ivf"].search(queries, K, nprobe=N)  # nprobe >= nlist: every list scanned
    exact_ids, _ = exact_top_k(vectors, queries, K)
    np.testing.assert_array_equal(ids, exact_ids)


def test_single_query_and_padding_when_k_exceeds_n(tmp_path, data):
    vectors, queries = data
    uri = str(tmp_path / "small.db")
    try:
        index = MilvusIndex.build(vectors[:7], uri=uri, collection="small", kind="flat")
        ids, scores = index.search(queries[0], 12)  # a (d,) query
        assert ids.shape == scores.shape == (1, 12)
        assert sorted(ids[0, :7]) == list(range(7))
        assert np.all(ids[0, 7:] == -1) and np.all(scores[0, 7:] == PAD_SCORE)
        # The FAISS wrapper clamps k to ntotal instead; the real results agree.
        f_ids, _ = VectorIndex.build(vectors[:7], "flat").search(queries[0], 12)
        np.testing.assert_array_equal(ids[0, :7], f_ids[0])
    finally:
        milvus.close(uri)


def test_custom_ids_are_returned(tmp_path, data):
    vectors, queries = data
    uri = str(tmp_path / "ids.db")
    try:
        index = MilvusIndex.build(
            vectors[:50],
            uri=uri,
            collection="ids",
            kind="flat",
            ids=np.arange(1000, 1050),
            batch=16,
        )
        ids, _ = index.search(queries[:3], 5)
        exact_ids, _ = exact_top_k(vectors[:50], queries[:3], 5)
        np.testing.assert_array_equal(ids, exact_ids + 1000)
    finally:
        milvus.close(uri)


def test_reopen_from_a_second_index_object(lite, data):
    uri, built = lite
    _, queries = data
    for kind in ("flat", "hnsw", "ivf"):
        again = MilvusIndex.open(uri, collection_name("test", "vec", kind), expect_rows=N)
        assert (again.kind, again.ntotal, again.dim) == (kind, N, DIM)
        for a, b in zip(again.search(queries, K), built[kind].search(queries, K)):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(VectorStoreError, match="expected 999"):
        MilvusIndex.open(uri, collection_name("test", "vec", "flat"), expect_rows=999)


def test_open_errors_are_clear(lite, tmp_path):
    uri, _ = lite
    with pytest.raises(VectorStoreError, match="does not exist") as missing:
        MilvusIndex.open(uri, "no_such_collection")
    assert isinstance(missing.value, ArtifactError) and missing.value.fix
    assert "\n" not in str(missing.value)

    absent = tmp_path / "absent.db"
    with pytest.raises(VectorStoreError, match="does not exist"):
        MilvusIndex.open(str(absent), "x")
    assert not absent.exists(), "open() must not create an empty database"

    a_file = tmp_path / "file.db"
    a_file.write_text("not a database")
    with pytest.raises(VectorStoreError, match="is a file"):
        MilvusIndex.open(str(a_file), "x")

    from pymilvus import DataType  # an interrupted build: the collection exists, no index yet

    client = milvus.client_for(uri)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("partial", schema=schema)
    with pytest.raises(VectorStoreError, match="no vector index"):
        MilvusIndex.open(uri, "partial")

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(VectorStoreError, match="Could not connect"):
        MilvusIndex.open(f"http://127.0.0.1:{port}", "x")


def test_concurrent_searches_from_four_threads(lite, data):
    _, built = lite
    _, queries = data
    index = built["hnsw"]
    expected = [index.search(q, K)[0] for q in queries]
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(offset, len(queries), 4):
                np.testing.assert_array_equal(index.search(queries[i], K)[0], expected[i])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors


def test_a_second_process_gets_the_lock_error(lite):
    uri, _ = lite
    code = textwrap.dedent(
        f"""
        from engine.indexes.milvus import MilvusIndex, VectorStoreError
        try:
            MilvusIndex.open({uri!r}, "x")
        except VectorStoreError as exc:
            print("ERR", exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert "open in another process" in out.stdout, out.stdout + out.stderr
    assert "milvus-lite server" in out.stdout


def test_collection_names_are_valid_and_distinct():
    names = {
        collection_name(cat, prefix, kind, version)
        for cat in ("demo", "demo-2k", "demo_2k", "Ünï cödé")
        for prefix in ("sbert", "clip")
        for kind in ("flat", "hnsw")
        for version in ("", "abc")
    }
    assert len(names) == 4 * 2 * 2 * 2
    assert all(n.replace("_", "a").isalnum() and n.isascii() and len(n) <= 255 for n in names)


def test_uri_parsing(monkeypatch):
    assert parse_uri("data/x.db").lite
    server = parse_uri("https://user:secret@milvus.example:19530")
    assert not server.lite and "secret" not in server.display
    for bad in ("data/x.sqlite", "ftp://host:1"):
        with pytest.raises(ValueError):
            parse_uri(bad)
    monkeypatch.setenv("PIXELMATCH_VECTOR_STORE", "milvus")
    monkeypatch.setenv("PIXELMATCH_MILVUS_URI", "http://milvus:19530")
    cfg = VectorStoreConfig.from_env()
    assert (cfg.kind, cfg.uri, cfg.lite) == ("milvus", "http://milvus:19530", False)
    assert VectorStoreConfig("milvus").lite and not VectorStoreConfig().is_milvus
    with pytest.raises(ValueError):
        VectorStoreConfig("faiss", "http://milvus:19530")
    with pytest.raises(ValueError):
        VectorStoreConfig("annoy")


def _sizes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def test_store_round_trip_survives_the_step_folder_rename(tmp_path, data):
    """Write into a temporary step folder, release, rename (as ArtifactStore.write_step does),
    then open from the final folder: the results agree with FAISS and reading changes no file
    (the artifact store checks recorded file sizes)."""
    vectors, queries = data
    cfg = VectorStoreConfig("milvus")
    tmp, final = tmp_path / ".tmp-sbert-x", tmp_path / "sbert-abc"
    tmp.mkdir()
    for kind in ("flat", "hnsw"):
        write_vector_index(cfg, vectors, tmp, "demo", "sbert", kind)
        write_vector_index(VectorStoreConfig(), vectors, tmp, "demo", "sbert", kind)
    release_vector_indexes(cfg, tmp)
    os.replace(tmp, final)
    before = _sizes(final)
    try:
        for kind in ("flat", "hnsw"):
            m = open_vector_index(cfg, final, "demo", "sbert", kind, expect_rows=N)
            f = open_vector_index(VectorStoreConfig(), final, "demo", "sbert", kind)
            assert isinstance(m, MilvusIndex) and isinstance(f, VectorIndex)
            overlap = np.mean(
                [
                    len(set(a) & set(b)) / K
                    for a, b in zip(m.search(queries, K)[0], f.search(queries, K)[0])
                ]
            )
            assert overlap >= (1.0 if kind == "flat" else 0.9)
    finally:
        release_vector_indexes(cfg, final)
    assert lite_path(final, "sbert").is_dir()
    assert _sizes(final) == before


def test_compare_with_faiss_reports_agreement(data):
    vectors, queries = data
    report = compare_with_faiss(
        vectors[:800], queries[:20], k=5, kinds=("flat",), latency_queries=10
    )
    flat = report["kinds"]["flat"]
    assert flat["overlap@k_milvus_vs_faiss"] == 1.0
    assert flat["recall@k_vs_exact"] == {"faiss": 1.0, "milvus": 1.0}
    assert flat["latency_ms"]["milvus"]["n"] == 10 and flat["max_score_error"]["milvus"] < 1e-4


def test_no_child_processes_and_no_open_clients_after_close(lite):
    milvus.close_all()
    assert not milvus._clients
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    if children.exists():  # other tests of the session may have children (worker pools): only
        for pid in children.read_text().split():  # a Milvus one would be this test's failure
            cmdline = Path(f"/proc/{pid}/cmdline")
            command = cmdline.read_bytes().replace(b"\0", b" ") if cmdline.exists() else b""
            assert b"milvus" not in command.lower(), f"Milvus Lite left a child: {command!r}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_uri_against_a_milvus_lite_server_process(tmp_path, data):
    """The http:// code path, against ``milvus-lite server`` (the Milvus protocol over gRPC), which
    is also the documented way to share one Lite database between the app and the CLI."""
    import time

    vectors, queries = data
    port = _free_port()
    exe = Path(sys.executable).with_name("milvus-lite")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "milvus_lite"]
    server = subprocess.Popen(
        [*cmd, "server", "--data-dir", str(tmp_path / "served.db"), "--host", "127.0.0.1"]
        + ["--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        cfg = VectorStoreConfig("milvus", uri)
        write_vector_index(cfg, vectors, tmp_path, "demo", "sbert", "hnsw", version="h1")
        milvus.close(uri)  # a fresh client, as another process would have
        index = open_vector_index(cfg, tmp_path, "demo", "sbert", "hnsw", version="h1")
        assert (index.kind, index.ntotal) == ("hnsw", N)
        ids, _ = index.search(queries, K)
        f_ids, _ = VectorIndex.build(vectors, "hnsw").search(queries, K)
        assert np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, f_ids)]) >= 0.9
        with pytest.raises(VectorStoreError, match="does not exist"):
            open_vector_index(cfg, tmp_path, "demo", "sbert", "hnsw", version="other")
    finally:
        milvus.close(uri)
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
    assert not list(tmp_path.glob("*.milvus.db")), "a server store writes no local file"
