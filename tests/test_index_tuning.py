"""Vector indexes are tuned, not defaulted: efSearch / nprobe chosen by recall against exact
search, recorded beside the index and used when it is loaded; the compressed ``hnsw-sq8`` kind;
the catalog's ``index`` config section. Seeded synthetic data, no timing assertions."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from engine import config as config_mod
from engine.components import served_index_kind, vector_index
from engine.config import IndexConfig, config_from_dict, load_preset
from engine.index_kinds import INDEX_KINDS
from engine.indexes.store import VectorStoreConfig, open_vector_index, write_vector_index
from engine.indexes.tuning import EF_LADDER, tune_index, tune_search, tuning_sets
from engine.indexes.vector import IndexParams, VectorIndex, meta_path
from engine.pipeline.indexing import build_vector_indexes
from engine.pipeline.planner import plan

SEED = 42
TARGET = 0.98
SQ8_RECALL_BOUND = 0.95  # hnsw-sq8 recall@10 vs exact at efSearch=128 on the clustered set


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One OpenMP thread: HNSW graphs (and so the tuned values) are then reproducible."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int = 4000, d: int = 96, clusters: int = 40, n_q: int = 200):
    """Clustered unit vectors and queries near them (tight clusters make neighbours hard)."""
    rng = np.random.default_rng(SEED)
    centres = rng.normal(size=(clusters, d))
    x = _unit(centres[rng.integers(0, clusters, n)] + rng.normal(0, 0.7, (n, d)))
    q = _unit(x[rng.choice(n, n_q, replace=False)] + rng.normal(0, 0.15, (n_q, d)))
    return x, q


@pytest.fixture(scope="module")
def data():
    return clustered()


@pytest.fixture(scope="module")
def flat(data):
    return VectorIndex.build(data[0], "flat")


def exact_top(x: np.ndarray, q: np.ndarray, k: int = 10) -> np.ndarray:
    """Brute force in numpy: the reference the tuner's flat index must agree with."""
    return np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :k]


def id_recall(ids: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(ids, exact)]))


# -- the tuner ---------------------------------------------------------------------------------
def test_tuner_picks_the_smallest_ef_meeting_the_target(data, flat):
    x, q = data
    hnsw = VectorIndex.build(x, "hnsw")
    tuning = tune_index(hnsw, flat, x, q, target=TARGET)
    assert tuning.met and tuning.knob == "ef_search" and tuning.value in EF_LADDER
    assert set(tuning.recall) == {"items", "queries"}
    assert tuning.n_queries == {"items": 500, "queries": len(q)}
    assert min(tuning.recall.values()) >= TARGET
    assert hnsw.params.hnsw_ef_search == tuning.value  # applied: the default search uses it
    assert tuning.tried == list(EF_LADDER[: EF_LADDER.index(tuning.value) + 1])
    # Checked independently against numpy brute force (no ties in continuous data).
    sets = tuning_sets(x, q)
    for name, queries in sets.items():
        exact = exact_top(x, queries)
        assert id_recall(hnsw.search(queries, 10)[0], exact) >= TARGET, name
    # The rung below misses the target on some set: the choice is the smallest.
    i = EF_LADDER.index(tuning.value)
    if i > 0:
        below = min(
            id_recall(hnsw.search(qs, 10, ef_search=EF_LADDER[i - 1])[0], exact_top(x, qs))
            for qs in sets.values()
        )
        assert below < TARGET


def test_a_stricter_target_needs_a_wider_beam(data, flat):
    x, q = data
    hnsw = VectorIndex.build(x, "hnsw")
    sets = tuning_sets(x, q)
    loose = tune_search(hnsw, flat, x, sets, target=0.9)
    strict = tune_search(hnsw, flat, x, sets, target=0.999)
    assert loose.value <= strict.value
    assert tune_search(hnsw, flat, x, sets, target=TARGET).value == tune_search(
        hnsw, flat, x, sets, target=TARGET
    ).value  # deterministic


def test_an_unreachable_target_keeps_the_largest_rung_and_says_so(data, flat):
    x, q = data
    hnsw = VectorIndex.build(x, "hnsw")
    tuning = tune_search(hnsw, flat, x, tuning_sets(x, q), target=1.0, ladder=(4, 8))
    assert tuning.value == 8 and tuning.tried == [4, 8]
    assert tuning.met is (min(tuning.recall.values()) >= 1.0)


def test_ivf_nprobe_is_tuned_and_capped_at_nlist(data, flat):
    x, q = data
    ivf = VectorIndex.build(x, "ivf")
    tuning = tune_index(ivf, flat, x, q, target=TARGET)
    assert tuning.knob == "nprobe" and tuning.met
    assert 1 <= tuning.value <= ivf.nlist
    assert ivf.params.ivf_nprobe == tuning.value
    assert id_recall(ivf.search(q, 10)[0], exact_top(x, q)) >= TARGET


def test_ties_do_not_count_as_misses():
    """Duplicate vectors: exact search keeps an arbitrary copy; any copy is a correct answer."""
    rng = np.random.default_rng(SEED)
    base = _unit(rng.normal(size=(300, 16)))
    x = np.concatenate([base, base])  # every vector twice
    flat = VectorIndex.build(x, "flat")
    hnsw = VectorIndex.build(x, "hnsw")
    tuning = tune_index(hnsw, flat, x, target=TARGET)
    assert tuning.met and tuning.recall["items"] >= TARGET


# -- persistence -------------------------------------------------------------------------------
def test_the_tuned_value_is_saved_and_reloaded(tmp_path: Path, data, flat):
    x, q = data
    hnsw = VectorIndex.build(x, "hnsw")
    tuning = tune_index(hnsw, flat, x, q, target=TARGET)
    path = tmp_path / "sbert_hnsw.faiss"
    hnsw.save(path)
    meta = json.loads(meta_path(path).read_text())
    assert meta["kind"] == "hnsw"
    assert meta["params"]["hnsw_ef_search"] == tuning.value
    assert meta["tuning"]["recall"] == tuning.recall and meta["tuning"]["target"] == TARGET
    loaded = VectorIndex.load(path, "hnsw")
    assert loaded.params.hnsw_ef_search == tuning.value and loaded.tuning == tuning.to_dict()
    np.testing.assert_array_equal(loaded.search(q, 10)[0], hnsw.search(q, 10)[0])
    # An artifact written before tuning (no record) falls back to the default.
    meta_path(path).unlink()
    old = VectorIndex.load(path, "hnsw")
    assert old.params == IndexParams() and old.tuning is None


def test_the_faiss_store_records_and_reopens_the_tuned_value(tmp_path: Path, data):
    x, q = data
    store = VectorStoreConfig()
    written = write_vector_index(store, x, tmp_path, "demo", "sbert", "hnsw", queries=q)
    opened = open_vector_index(VectorStoreConfig(), tmp_path, "demo", "sbert", "hnsw")
    assert written.tuning["met"]
    assert opened.params.hnsw_ef_search == written.params.hnsw_ef_search
    assert opened.tuning == written.tuning


def test_build_step_indexes_record_tuning_and_serve_the_configured_kind(tmp_path: Path, data):
    x, q = data
    cfg = IndexConfig(kind="hnsw-sq8", recall_target=TARGET)
    info = build_vector_indexes(x, q, tmp_path, "sbert", lambda _: None, cfg)
    assert info["served_kind"] == "hnsw-sq8"
    for kind in INDEX_KINDS:
        assert (tmp_path / f"sbert_{kind}.faiss").is_file(), kind
    for kind in ("hnsw", "ivf", "hnsw-sq8"):
        t = info[f"{kind}_tuning"]
        assert t["met"] and min(t["recall"].values()) >= TARGET, kind
        assert info[f"{kind}_recall@10"]["recall_at_k"] >= 0.95, kind
    assert info["hnsw-sq8_bytes"] < info["hnsw_bytes"]

    class Stub:  # the two things components.vector_index needs from a Catalog
        config = {"index": cfg.__dict__}

        def step_dir(self, step: str) -> Path:
            return tmp_path

        def cached(self, key, make):
            return make()

    served = vector_index(Stub(), "sbert", "sbert", "ann")
    assert served.kind == "hnsw-sq8" == served_index_kind(Stub())
    assert served.params.hnsw_ef_search == info["hnsw-sq8_tuning"]["value"]

    class Old(Stub):  # a catalog built before the index section existed
        config: dict = {}

    assert served_index_kind(Old()) == "hnsw"


# -- the compressed kind -----------------------------------------------------------------------
def test_hnsw_sq8_is_close_to_exact_and_smaller_than_hnsw(data, flat):
    x, q = data
    hnsw, sq8 = VectorIndex.build(x, "hnsw"), VectorIndex.build(x, "hnsw-sq8")
    assert isinstance(sq8.index, faiss.IndexHNSWSQ)
    assert sq8.index.metric_type == faiss.METRIC_INNER_PRODUCT
    exact = exact_top(x, q)
    assert id_recall(sq8.search(q, 10, ef_search=128)[0], exact) >= SQ8_RECALL_BOUND
    # float32 vectors (4 bytes per dimension) become 1 byte per dimension; the graph is shared.
    assert sq8.serialized_bytes() < 0.75 * hnsw.serialized_bytes()
    tuning = tune_index(sq8, flat, x, q, target=TARGET)
    assert tuning.met


# -- errors and config -------------------------------------------------------------------------
def test_an_unknown_kind_lists_the_valid_kinds(data):
    x = data[0][:50]
    valid = "flat, hnsw, ivf, hnsw-sq8"
    with pytest.raises(ValueError, match=valid):
        VectorIndex.build(x, "ivf-pq")
    with pytest.raises(ValueError, match=valid):
        IndexConfig(kind="annoy")
    with pytest.raises(ValueError, match=valid):
        load_preset("tiny", index={"kind": "scann"})
    from engine.indexes.milvus import MilvusIndex

    with pytest.raises(ValueError, match="valid: flat, hnsw, ivf$"):
        MilvusIndex("/tmp/x.db", "c", "hnsw-sq8", 1, 1)


def test_the_index_section_selects_kind_and_target(tmp_path: Path, monkeypatch):
    assert load_preset("tiny").index == IndexConfig("hnsw", 0.98)
    preset = json.loads((config_mod.PRESET_DIR / "tiny.json").read_text())
    preset["index"] = {"kind": "hnsw-sq8", "recall_target": 0.99}
    (tmp_path / "small.json").write_text(json.dumps(preset))
    monkeypatch.setattr(config_mod, "PRESET_DIR", tmp_path)
    cfg = load_preset("small")
    assert cfg.index == IndexConfig("hnsw-sq8", 0.99)
    assert config_from_dict(cfg.to_dict()).index == cfg.index  # a manifest round trip
    assert load_preset("small", index={"kind": "hnsw"}).index.kind == "hnsw"
    with pytest.raises(ValueError, match="kind, recall_target"):
        load_preset("small", index={"ef": 10})
    with pytest.raises(ValueError, match="recall_target"):
        IndexConfig(recall_target=1.5)


def test_the_index_section_is_in_the_hash_of_the_steps_that_build_indexes():
    a = plan(load_preset("tiny"))
    b = plan(load_preset("tiny", index={"recall_target": 0.99}))
    changed = {s for s in a if a[s] != b[s]}
    assert {"sbert", "visual", "fusion"} <= changed
    assert "world" not in changed and "lexical" not in changed
