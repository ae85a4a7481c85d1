"""Tests of the benchmark harness, its reports, the live latency monitor and the background job.

One small benchmark of the ``tiny`` catalog (10 queries per set) is run once for the module and
written to a temporary folder; its figures are checked for consistency, and the prose written
from it is checked to follow the numbers (change a number, the sentence changes).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time

import numpy as np
import pytest

from engine.benchmark.comparisons import headline_comparisons
from engine.benchmark.harness import disagreement
from engine.benchmark.jobs import BenchmarkJob
from engine.benchmark.report import END, START, headline, load_report, to_markdown, write_reports
from engine.benchmark.tables import methods_table, slices_table
from engine.evaluation.metrics import ndcg_at_k
from engine.monitoring import LatencyMonitor
from engine.retrieval.base import SearchResult
from engine.retrieval.registry import available_retrievers
from engine.search import search

METRICS = ("ndcg@10", "mrr", "recall@10", "precision@10", "map@10")


@pytest.fixture(scope="module")
def report(tiny_catalog) -> dict:
    from engine.benchmark.harness import run_benchmark

    return run_benchmark(tiny_catalog, limit=10)


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    write_reports(report, folder)
    return folder


# -- the report --------------------------------------------------------------------------------
def test_report_json_has_the_expected_sections(written, report):
    data = json.loads((written / "benchmark.json").read_text())
    assert {"text", "image", "ann", "build", "measured_at", "commit", "machine"} <= set(data)
    assert data["machine"]["threads"] == 1
    assert data["catalog"]["name"] == "tiny" and data["catalog"]["items"] == 600
    assert data["k"] == 10 and data["split"] == "test"
    assert load_report(written) == data
    assert data["text"]["n_queries"] == 10 and data["image"]["n_queries"] == 10
    from engine.pipeline import STEPS

    assert set(data["build"]) == {step.name for step in STEPS} == {
        "world", "lexical", "query", "sbert", "clip", "visual", "fusion", "ranker", "recommend",
        "vectorstore",
    }
    assert data["format"] == 2 and data["catalog"]["step_hashes"]["world"]
    assert {"load_average_before", "load_average_after"} <= set(data["machine"])
    assert data["comparisons"]["text"] and data["comparisons"]["metric"] == "ndcg@10"


def test_every_text_and_image_method_is_measured(report, tiny_catalog):
    assert set(report["text"]["methods"]) == set(available_retrievers(tiny_catalog, "text"))
    assert set(report["image"]["methods"]) == set(available_retrievers(tiny_catalog, "image"))


@pytest.mark.parametrize("section", ["text", "image"])
def test_metrics_are_in_range_and_latencies_ordered(report, section):
    for method, r in report[section]["methods"].items():
        overall = r["overall"]
        assert set(METRICS) <= set(overall), method
        for name, v in overall.items():  # every figure with its 95 % bootstrap interval
            assert 0.0 <= v["low"] <= v["mean"] <= v["high"] <= 1.0, (method, name, v)
            assert v["n"] == report[section]["n_queries"]
        assert len(r["per_query"]["ndcg@10"]) == report[section]["n_queries"]
        for stage, lat in r["latency_ms"].items():
            assert 0 <= lat["p50"] <= lat["p95"] <= lat["p99"], (method, stage, lat)
            assert lat["n"] == report[section]["n_queries"], (method, stage)
        # the total is at least the sum of the median stages' ... median (every stage > 0)
        total = r["latency_ms"]["total"]
        assert total["p50"] >= max(v["p50"] for s, v in r["latency_ms"].items() if s != "total")
        for name, sl in r["slices"].items():
            assert all(0.0 <= v["low"] <= v["high"] <= 1.0 for v in sl.values()), (method, name)
            assert sl["ndcg@10"]["n"] == report[section]["slice_sizes"][name]
    sizes = report[section]["slice_sizes"]
    assert sizes and all(n > 0 for n in sizes.values()), sizes


def test_overall_ndcg_recomputed_for_one_method(report, tiny_catalog):
    c = tiny_catalog
    q = c.table("queries")
    test = q[q["split"] == "test"].head(10)
    qrels = c.qrels("text")
    vals = [
        ndcg_at_k(c.item_ids[search(c, "bm25", text=t, k=10).rows], qrels.get(qid, {}), k=10)
        for qid, t in zip(test["query_id"], test["query"])
    ]
    bm25 = report["text"]["methods"]["bm25"]
    assert bm25["overall"]["ndcg@10"]["mean"] == pytest.approx(np.mean(vals), abs=1e-4)
    assert bm25["per_query"]["ndcg@10"] == pytest.approx(vals, abs=1e-4)
    literal = [
        ndcg_at_k(
            c.item_ids[search(c, "bm25", text=t, k=10, understand=False).rows],
            qrels.get(qid, {}),
            k=10,
        )
        for qid, t in zip(test["query_id"], test["query"])
    ]
    assert bm25["literal"]["per_query"]["ndcg@10"] == pytest.approx(literal, abs=1e-4)


def test_slice_sizes_count_the_queries_of_each_type(report, tiny_catalog):
    q = tiny_catalog.table("queries")
    test = q[q["split"] == "test"].head(10)
    sizes = report["text"]["slice_sizes"]
    for t, n in test["type"].value_counts().items():
        assert sizes[f"type={t}"] == n
    for w, n in test["wording"].value_counts().items():
        assert sizes[f"wording={w}"] == n
    assert sum(n for s, n in sizes.items() if s.startswith("wording=")) == 10
    assert report["image"]["slice_sizes"]["type=image"] == 10


def test_ann_sweep_recall_rises_with_ef_search(report):
    for space in ("sbert", "clip"):
        sweep = report["ann"][space]
        recalls = [x["recall_at_k"] for x in sweep["hnsw"]]
        assert all(0.0 <= r <= 1.0 for r in recalls)
        assert recalls[-1] >= recalls[0]
        assert recalls[-1] >= 0.95
        ivf = [x["recall_at_k"] for x in sweep["ivf"]]
        assert ivf[-1] >= ivf[0]


def test_markdown_has_provenance_and_a_row_per_method(written, report):
    md = (written / "benchmark.md").read_text()
    assert md == to_markdown(report)
    prov = f"Measured {report['measured_at']} at commit `{report['commit']}`"
    assert prov in md
    assert "catalog `tiny` (600 products, preset `tiny`), test split, k=10" in md
    for section in ("text", "image"):
        for method, r in report[section]["methods"].items():
            v = r["overall"]["ndcg@10"]
            ndcg = f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"
            rows = [
                line for line in md.splitlines() if line.startswith(f"| {method} | {ndcg} |")
            ]
            assert len(rows) >= 1, (section, method)
    assert "## Text queries (10 queries)" in md and "## Image queries (10 queries)" in md
    for step in report["build"]:
        assert re.search(rf"^\| {step} \| [0-9.]+ \|$", md, re.M), step


def test_tables_have_one_row_per_method(report):
    mt = methods_table(report["text"])
    assert mt["method"].tolist() == list(report["text"]["methods"])
    for _, row in mt.iterrows():
        r = report["text"]["methods"][row["method"]]
        assert row["ndcg@10"] == r["overall"]["ndcg@10"]["mean"]
        assert row["p50 ms"] == r["latency_ms"]["total"]["p50"]
        assert row["p95 ms"] == r["latency_ms"]["total"]["p95"]
    st = slices_table(report["text"])
    assert st["method"].tolist() == list(report["text"]["methods"])


# -- README section ----------------------------------------------------------------------------
def test_write_reports_replaces_only_the_readme_section(report, tmp_path):
    head = "# PixelMatch\n\nIntro text with unicode — ✓.\n\n## Results\n\n"
    tail = "\n\n## Licence\n\nMIT\n"
    readme = tmp_path / "README.md"
    readme.write_bytes((head + START + "\nold numbers\n" + END + tail).encode())
    out = tmp_path / "out"
    out.mkdir()
    write_reports(report, out, readme)
    text = readme.read_bytes().decode()
    assert text.startswith(head + START)
    assert text.endswith(END + tail)
    assert "old numbers" not in text
    section = text[len(head) : len(text) - len(tail)]
    assert section.count(START) == 1 and section.count(END) == 1
    assert f"commit `{report['commit']}`" in section
    for method in report["text"]["methods"]:
        assert f"| {method} |" in section
    # writing again is idempotent
    before = readme.read_bytes()
    write_reports(report, out, readme)
    assert readme.read_bytes() == before


def test_readme_without_markers_is_left_alone(report, tmp_path):
    readme = tmp_path / "README.md"
    original = b"# Title\n\nNo markers here.\n"
    readme.write_bytes(original)
    write_reports(report, tmp_path, readme)
    assert readme.read_bytes() == original
    assert (tmp_path / "benchmark.json").exists()


# -- headline ----------------------------------------------------------------------------------
def test_headline_sentences_follow_the_numbers(report):
    lines = headline(report)
    best = report["comparisons"]["text"][0]
    assert best["slice"] == "all"
    assert any(line.startswith("All text queries (10 queries): best NDCG@10 `") for line in lines)
    assert any(f"`{best['best']}`" in line for line in lines)
    changed = copy.deepcopy(report)
    other = best["runner_up"]
    changed["text"]["methods"][other]["per_query"]["ndcg@10"] = [1.0] * 10
    changed["comparisons"] = headline_comparisons(changed)
    assert changed["comparisons"]["text"][0]["best"] == other
    assert changed["comparisons"]["text"][0]["significant"] == (
        changed["comparisons"]["text"][0]["difference"]["low"] > 0
    )
    assert headline(changed) != lines


def test_a_difference_inside_the_noise_is_not_called_a_win(report):
    """Two methods with the same per-query values: the headline says they cannot be told apart."""
    r = copy.deepcopy(report)
    a, b = list(r["text"]["methods"])[:2]
    r["text"]["methods"][b]["per_query"]["ndcg@10"] = list(
        r["text"]["methods"][a]["per_query"]["ndcg@10"]
    )
    for m in r["text"]["methods"]:
        if m not in (a, b):
            r["text"]["methods"][m]["per_query"]["ndcg@10"] = [0.0] * 10
    c = headline_comparisons(r)["text"][0]
    assert not c["significant"] and c["p_value"] == 1.0
    assert "not significant" in c["sentence"]


# -- disagreement ------------------------------------------------------------------------------
def test_disagreement_is_sorted_descending_and_correct(tiny_catalog):
    methods = ("bm25", "keyword")
    df = disagreement(tiny_catalog, methods)
    q = tiny_catalog.table("queries")
    assert len(df) == int((q["split"] == "test").sum())
    d = df["disagreement"].to_numpy()
    assert np.all(np.diff(d) <= 0)
    np.testing.assert_allclose(d, (df[list(methods)].max(axis=1) - df[list(methods)].min(axis=1)))
    assert d[0] > 0
    row = df.iloc[0]
    qrels = tiny_catalog.qrels("text").get(row["query_id"], {})
    for m in methods:
        rows = search(tiny_catalog, m, text=row["query"], k=10).rows
        assert row[m] == pytest.approx(ndcg_at_k(tiny_catalog.item_ids[rows], qrels, k=10))


# -- live latency monitor ----------------------------------------------------------------------
def _result(method: str, **timings: float) -> SearchResult:
    return SearchResult(method, np.empty(0, np.int64), np.empty(0, np.float32), dict(timings))


def test_latency_monitor_is_thread_safe():
    monitor = LatencyMonitor(window=100_000)
    per_thread, threads = 500, 8
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            monitor.record(_result(f"m{i % 2}", encode=1.0, search=float(j % 7)))

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert monitor.queries == threads * per_thread
    rows = {(r["method"], r["stage"]): r for r in monitor.summary()}
    assert set(rows) == {(m, s) for m in ("m0", "m1") for s in ("encode", "search", "total")}
    for (_, _), r in rows.items():
        assert r["n"] == threads // 2 * per_thread
    assert sum(r["n"] for (_, s), r in rows.items() if s == "total") == threads * per_thread


def test_latency_monitor_percentiles_on_known_samples():
    monitor = LatencyMonitor()
    for v in range(1, 101):
        monitor.record(_result("bm25", score=float(v), rank=1.0))
    rows = {r["stage"]: r for r in monitor.summary() if r["method"] == "bm25"}
    s = rows["score"]
    assert s["n"] == 100
    assert s["p50"] == pytest.approx(50.5)
    assert s["p95"] == pytest.approx(95.05)
    assert s["p99"] == pytest.approx(99.01)
    assert s["mean"] == pytest.approx(50.5)
    assert rows["total"]["p50"] == pytest.approx(51.5)
    assert rows["rank"]["p99"] == pytest.approx(1.0)


def test_latency_monitor_keeps_a_rolling_window():
    monitor = LatencyMonitor(window=10)
    for v in range(100):
        monitor.record(_result("x", s=float(v)))
    (row,) = [r for r in monitor.summary() if r["stage"] == "s"]
    assert row["n"] == 10
    assert row["p50"] == pytest.approx(94.5)  # the last ten samples, 90..99
    assert monitor.queries == 100


# -- background job ----------------------------------------------------------------------------
def test_benchmark_job_runs_once_at_a_time_and_reports(tiny_catalog):
    job = BenchmarkJob()
    assert not job.running and job.result is None
    assert job.start(tiny_catalog, limit=3) is True
    assert job.running
    assert job.start(tiny_catalog, limit=3) is False  # the first is still running
    job.thread.join(timeout=600)
    assert not job.running
    assert job.error is None, job.error
    assert job.result is not None
    assert job.result["text"]["n_queries"] == 3 and job.result["image"]["n_queries"] == 3
    assert job.total > 0 and job.done == job.total
    assert job.finished_at >= job.started_at
    # once finished, a new run may start
    assert job.start(tiny_catalog, limit=3) is True
    deadline = time.time() + 600
    while job.running and time.time() < deadline:
        time.sleep(0.2)
    assert job.result is not None and job.error is None


def test_benchmark_job_reports_errors_instead_of_raising():
    job = BenchmarkJob()
    assert job.start(object(), limit=3) is True  # not a catalog
    job.thread.join(timeout=60)
    assert job.result is None
    assert job.error and job.error.startswith(("AttributeError", "TypeError"))


def test_concurrent_starts_start_one_job(monkeypatch):
    import engine.benchmark.harness as benchmark
    import engine.benchmark.jobs as jobs

    class SlowThread(threading.Thread):
        """A thread that takes a moment to create (widens the window deterministically)."""

        def __init__(self, *args, **kwargs):
            time.sleep(0.3)
            super().__init__(*args, **kwargs)

    def fake_benchmark(catalog, *, limit, progress):
        time.sleep(1.0)
        return {"fake": True}

    monkeypatch.setattr(benchmark, "run_benchmark", fake_benchmark)
    job = BenchmarkJob()
    monkeypatch.setattr(jobs, "threading", type("T", (), {"Thread": SlowThread}))
    barrier = threading.Barrier(4)
    started: list[bool] = []

    def click() -> None:
        barrier.wait()
        started.append(job.start(object(), limit=3))

    clicks = [threading.Thread(target=click) for _ in range(4)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    job.thread.join(timeout=10)
    assert started.count(True) == 1, started


def test_readme_with_markers_in_the_wrong_order_is_left_alone(report, tmp_path):
    readme = tmp_path / "README.md"
    original = f"# Title\n\n{END}\n\nstuff\n\n{START}\n".encode()
    readme.write_bytes(original)
    write_reports(report, tmp_path, readme)
    assert readme.read_bytes() == original


def test_wait_for_idle_waits_until_the_load_falls_and_stops_at_the_cap() -> None:
    """The bench's settle wait: fake clock and load, no real sleeping."""
    from engine.benchmark.harness import wait_for_idle

    t = [0.0]
    loads = iter([3.0, 2.0, 1.4, 0.8, 0.5])

    def sleep(s: float) -> None:
        t[0] += s

    out = wait_for_idle(
        1.0, 60, poll_s=5, clock=lambda: t[0], sleep=sleep, load=lambda: next(loads)
    )
    assert out == {"settled": True, "waited_s": 15.0, "threshold": 1.0, "load_at_start": 3.0}

    t[0] = 0.0
    busy = wait_for_idle(1.0, 12, poll_s=5, clock=lambda: t[0], sleep=sleep, load=lambda: 4.0)
    assert busy["settled"] is False and busy["waited_s"] == 15.0


def test_query_runtimes_side_by_side(report, written):
    qr = report["query_runtime"]
    assert qr["n_queries"] == report["text"]["n_queries"] == 10
    for runtime in ("torch", "onnx"):
        assert 0.0 <= qr[runtime]["ndcg@10"] <= 1.0
        assert 0 < qr[runtime]["encode_ms"]["p50"] <= qr[runtime]["encode_ms"]["p95"]
        assert qr[runtime]["encode_ms"]["p95"] <= qr[runtime]["encode_search_ms"]["p95"] + 1e-6
    # the same weights: the runtimes agree, so the quality is the same
    assert qr["max_abs_diff"] < 1e-5 and qr["query_cosine"]["min"] > 0.9999
    assert qr["onnx"]["ndcg@10"] == qr["torch"]["ndcg@10"] and qr["top10_identical"] == 1.0
    assert qr["encode_p95_speedup"] > 0
    md = (written / "benchmark.md").read_text()
    assert "## Query encoder: PyTorch vs ONNX Runtime" in md
    assert any(line.startswith("SBERT query encoding, one thread: ONNX Runtime p95")
               for line in headline(report))


def test_image_query_runtimes_side_by_side(report, written):
    """The compact CLIP's image tower on PyTorch and on its ONNX export, the same image queries
    one at a time: the same vectors (to 1e-4), so the same quality."""
    ir = report["image_runtime"]
    assert ir["n_queries"] == report["image"]["n_queries"] > 0
    for runtime in ("torch", "onnx"):
        assert 0.0 <= ir[runtime]["ndcg@10"] <= 1.0
        assert 0 < ir[runtime]["encode_ms"]["p50"] <= ir[runtime]["encode_ms"]["p95"]
    assert ir["max_abs_diff"] < 1e-4 and ir["query_cosine"]["min"] > 0.9999
    assert abs(ir["onnx"]["ndcg@10"] - ir["torch"]["ndcg@10"]) < 0.01
    md = (written / "benchmark.md").read_text()
    assert "## Image query encoder (compact CLIP): PyTorch vs ONNX Runtime" in md
    assert any(line.startswith("CLIP image query encoding, one thread: ONNX Runtime p95")
               for line in headline(report))
