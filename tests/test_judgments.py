"""Tests of engine.judgments: the SQLite store (restarts, threads, processes), agreement, qrels,
metrics from human judgments, CSV import/export, and ``python -m engine bench --judgments``."""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from engine.judgments import Judgment, JudgmentStore
from engine.judgments.agreement import cohen_kappa, mean_agreement, pairwise_agreement
from engine.judgments.csvio import COLUMNS, import_csv, read_csv, read_csv_text, to_csv_text
from engine.judgments.metrics import judged_metrics, query_metrics
from engine.judgments.qrels import aggregate_grade, build_qrels, latest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path) -> JudgmentStore:
    return JudgmentStore(tmp_path / "judgments.db")


def j(query: str, item: str, grade: int, reviewer: str, at: str = "2026-01-01T00:00:00Z"):
    return Judgment.make("demo", query, item, grade, reviewer, at)


# -- store -------------------------------------------------------------------------------------
def test_ratings_survive_reopening_the_database(tmp_path):
    path = tmp_path / "j.db"
    first = JudgmentStore(path)
    first.rate("demo", "red shoes", "i1", 3, "Ann")
    first.rate("demo", "red shoes", "i2", 0, "Ann")
    del first  # the app restarts: nothing is held open between calls
    again = JudgmentStore(path)
    assert again.grades("demo", "red shoes", "Ann") == {"i1": 3, "i2": 0}
    assert again.journal_mode() == "wal"
    # a plain sqlite3 reader sees the committed rows too
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == 2


def test_default_database_follows_pixelmatch_data(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELMATCH_DATA", str(tmp_path / "elsewhere"))
    store = JudgmentStore()
    assert store.path == (tmp_path / "elsewhere" / "judgments.db").resolve()
    store.rate("demo", "q", "i1", 1, "Ann")
    assert store.path.exists()


def test_rating_again_keeps_one_row_with_the_latest_grade_and_time(store):
    store.rate("demo", "red shoes", "i1", 1, "Ann", "2026-01-01T10:00:00Z")
    store.rate("demo", "red   shoes ", "i1", 3, " Ann", "2026-01-01T11:00:00+01:00")
    (only,) = store.judgments()
    assert (only.query, only.reviewer, only.grade) == ("red shoes", "Ann", 3)
    assert only.judged_at == "2026-01-01T10:00:00.000Z"  # +01:00 converted to UTC
    assert store.count() == 1


def test_an_older_grade_never_overwrites_a_newer_one(store):
    store.rate("demo", "q", "i1", 3, "Ann", "2026-05-01T00:00:00Z")
    store.add_many([j("q", "i1", 0, "Ann", "2026-04-01T00:00:00Z")])
    assert store.grades("demo", "q", "Ann") == {"i1": 3}


def test_ratings_get_the_current_utc_time(store):
    before = time.time()
    rated = store.rate("demo", "q", "i1", 2, "Ann")
    assert rated.judged_at.endswith("Z")
    stamp = time.mktime(time.strptime(rated.judged_at[:19], "%Y-%m-%dT%H:%M:%S"))
    stamp -= time.timezone  # mktime reads local time; the stamp is UTC
    assert abs(stamp - before) < 5


def test_reviewers_are_kept_apart(store):
    store.rate("demo", "q", "i1", 3, "Ann")
    store.rate("demo", "q", "i1", 0, "Bob")
    store.rate("other", "q", "i1", 1, "Cy")
    assert store.grades("demo", "q", "Ann") == {"i1": 3}
    assert store.grades("demo", "q", "Bob") == {"i1": 0}
    assert store.reviewers("demo") == ["Ann", "Bob"]
    assert store.reviewers() == ["Ann", "Bob", "Cy"]


@pytest.mark.parametrize(
    ("grade", "reviewer", "query", "message"),
    [
        (4, "Ann", "q", "from 0 to 3, got 4"),
        (-1, "Ann", "q", "from 0 to 3, got -1"),
        (2.5, "Ann", "q", "whole number from 0 to 3, got 2.5"),
        (True, "Ann", "q", "whole number"),
        ("3", "Ann", "q", "whole number"),
        (2, "", "q", "reviewer name is empty"),
        (2, "   ", "q", "reviewer name is empty"),
        (2, None, "q", "reviewer name must be text"),
        (2, "x" * 101, "q", "limit is 100"),
        (2, "Ann", " \n ", "the query is empty"),
    ],
)
def test_bad_ratings_are_refused_with_a_clear_message(store, grade, reviewer, query, message):
    with pytest.raises(ValueError, match=message):
        store.rate("demo", query, "i1", grade, reviewer)
    assert store.count() == 0


def test_delete_takes_a_rating_back(store):
    store.rate("demo", "q", "i1", 2, "Ann")
    assert store.delete("demo", "q", "i1", "Ann") is True
    assert store.delete("demo", "q", "i1", "Ann") is False
    assert store.count() == 0


def test_concurrent_writes_from_threads_lose_nothing(store):
    n_threads, per_thread = 8, 40

    def work(t: int) -> None:
        for i in range(per_thread):
            store.rate("demo", f"query {t}", f"i{i}", i % 4, f"reviewer {t}")
            store.rate("demo", "shared", "i0", i % 4, "everyone")  # same row, contended
            store.judgments("demo", query=f"query {t}")  # readers in between

    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(work, range(n_threads)))  # re-raises any 'database is locked'
    assert store.count() == n_threads * per_thread + 1
    for t in range(n_threads):
        assert store.grades("demo", f"query {t}", f"reviewer {t}") == {
            f"i{i}": i % 4 for i in range(per_thread)
        }


_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from engine.judgments import JudgmentStore
    path, worker, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    while time.time() < start:  # start together
        time.sleep(0.005)
    store = JudgmentStore(path)
    for i in range(n):
        store.rate("demo", f"query {worker}", f"i{i}", i % 4, f"proc {worker}")
        store.rate("demo", "shared", "i0", i % 4, "everyone")
    print("done", worker)
    """
)


def test_concurrent_writes_from_processes_lose_nothing(tmp_path):
    path = tmp_path / "shared.db"  # created by the racing processes themselves
    n_procs, per_proc = 4, 40
    start = time.time() + 3.0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), str(w), str(per_proc), str(start)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(n_procs)
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
        assert "locked" not in err and out.startswith("done")
    store = JudgmentStore(path)
    assert store.count() == n_procs * per_proc + 1
    for w in range(n_procs):
        assert len(store.grades("demo", f"query {w}", f"proc {w}")) == per_proc


# -- agreement ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matches_sklearn(seed, weights):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, size=40)
    b = np.where(rng.random(40) < 0.6, a, rng.integers(0, 4, size=40))  # mostly agree
    expected = cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights=weights)
    assert cohen_kappa(a.tolist(), b.tolist(), weights=weights) == pytest.approx(expected)


def test_kappa_fixed_scale_matters_for_weights():
    # Only grades 0 and 3 used: on the 0..3 scale a 0-vs-3 disagreement weighs 9, not 1.
    a, b = [0, 3, 3, 0, 3], [0, 3, 0, 0, 3]
    expected = cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights="quadratic")
    assert cohen_kappa(a, b, weights="quadratic") == pytest.approx(expected)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_kappa_edge_cases():
    assert cohen_kappa([0, 1, 2, 3], [0, 1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa([2, 2, 2], [2, 2, 2]))  # no chance disagreement: undefined
    with pytest.raises(ValueError, match="at least one result"):
        cohen_kappa([], [])
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError, match="grade 7"):
        cohen_kappa([1, 7], [1, 2])


def test_pairwise_kappa_of_three_reviewers_and_their_mean():
    rng = np.random.default_rng(3)
    items = [f"i{n}" for n in range(30)]
    truth = rng.integers(0, 4, size=30)
    grades = {
        "Ann": truth,
        "Bob": np.where(rng.random(30) < 0.7, truth, rng.integers(0, 4, size=30)),
        "Cy": np.where(rng.random(30) < 0.4, truth, rng.integers(0, 4, size=30)),
    }
    judgments = [
        j("q", item, int(g[n]), name)
        for name, g in grades.items()
        for n, item in enumerate(items)
        if not (name == "Cy" and n < 10)  # Cy skipped the first ten: pairs use shared items
    ]
    rows = pairwise_agreement(judgments)
    assert [(r["reviewer_a"], r["reviewer_b"], r["both_rated"]) for r in rows] == [
        ("Ann", "Bob", 30),
        ("Ann", "Cy", 20),
        ("Bob", "Cy", 20),
    ]
    for r in rows:
        start = 10 if r["reviewer_b"] == "Cy" else 0
        a, b = grades[r["reviewer_a"]][start:], grades[r["reviewer_b"]][start:]
        assert r["kappa"] == pytest.approx(cohen_kappa_score(a, b, labels=[0, 1, 2, 3]))
        assert r["kappa_quadratic"] == pytest.approx(
            cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights="quadratic")
        )
    summary = mean_agreement(rows)
    assert summary["pairs"] == summary["pairs_with_kappa"] == 3
    assert summary["kappa"] == pytest.approx(np.mean([r["kappa"] for r in rows]))


def test_reviewers_with_nothing_in_common_have_no_kappa():
    rows = pairwise_agreement([j("q", "i1", 3, "Ann"), j("q", "i2", 3, "Bob")])
    assert rows[0]["both_rated"] == 0 and math.isnan(rows[0]["kappa"])
    assert math.isnan(mean_agreement(rows)["kappa"])


# -- aggregation into qrels ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("grades", "expected"),
    [([2], 2), ([1, 2], 1), ([0, 3, 3], 3), ([3, 0, 0], 0), ([0, 1, 2, 3], 1), ([3, 3, 2, 3], 3)],
)
def test_aggregate_grade_is_the_lower_median(grades, expected):
    assert aggregate_grade(grades) == expected


def test_build_qrels_uses_each_reviewers_latest_grade():
    judgments = [
        j("q", "i1", 0, "Ann", "2026-01-01T00:00:00Z"),
        j("q", "i1", 3, "Ann", "2026-01-02T00:00:00Z"),  # Ann changed her mind
        j("q", "i1", 2, "Bob"),
        j("q", "i2", 1, "Bob"),
        Judgment.make("other", "q", "i9", 3, "Ann", "2026-01-01T00:00:00Z"),
    ]
    assert len(latest(judgments)) == 4
    assert build_qrels(judgments, catalog="demo") == {"q": {"i1": 2, "i2": 1}}


# -- metrics from judgments ----------------------------------------------------------------------
def test_metrics_from_judgments_match_a_hand_computed_example():
    run = {"q": ["a", "b", "c"], "r": ["x", "y"]}  # "s" was judged but the method returned nothing
    qrels = {"q": {"a": 3, "c": 1, "d": 2}, "r": {"y": 3, "z": 3}, "s": {"w": 2}}
    m = judged_metrics(run, qrels, k=3, threshold=3)
    # q: DCG = (2^3-1)/log2(2) + 0 + (2^1-1)/log2(4) = 7 + 0.5 = 7.5 (b is unjudged: gain 0)
    #    ideal = 7/1 + 3/log2(3) + 1/2 = 7 + 1.892789 + 0.5 = 9.392789; NDCG = 0.798485
    #    precision@3 = 1/3 (only a has grade 3), recall@3 = 1/1, RR = 1
    # r: DCG = 7/log2(3) = 4.416508; ideal = 7 + 4.416508 = 11.416508; NDCG = 0.386853
    #    precision@3 = 1/3 (k=3 even though 2 returned), recall@3 = 1/2, RR = 1/2
    # s: nothing returned: all 0
    # means: NDCG (0.798485 + 0.386853 + 0) / 3 = 0.395113; P (1/3 + 1/3 + 0) / 3 = 0.222222
    #        recall (1 + 0.5 + 0) / 3 = 0.5; MRR (1 + 0.5 + 0) / 3 = 0.5
    # coverage: returned 3 + 2 + 0 = 5, judged a, c, y = 3, unjudged b, x = 2: 3/5 = 0.6
    assert m["queries"] == 3
    assert m["ndcg@3"] == pytest.approx(0.395113, abs=1e-6)
    assert m["precision@3"] == pytest.approx(0.222222, abs=1e-6)
    assert m["recall@3"] == pytest.approx(0.5)
    assert m["mrr"] == pytest.approx(0.5)
    assert (m["returned"], m["judged"], m["unjudged"]) == (5, 3, 2)
    assert m["coverage"] == pytest.approx(0.6)
    q = query_metrics(run["q"], qrels["q"], k=3, threshold=3)
    assert q["ndcg@3"] == pytest.approx(0.798485, abs=1e-6)


def test_metrics_need_judged_queries():
    with pytest.raises(ValueError, match="no judged queries"):
        judged_metrics({"q": ["a"]}, {})


# -- CSV -----------------------------------------------------------------------------------------
def test_csv_round_trip(store, tmp_path):
    store.rate("demo", 'red, "navy" shoes', "i1", 3, "Ann Ø", "2026-01-01T00:00:00Z")
    store.rate("demo", "q2", "i2", 0, "Bob", "2026-01-02T03:04:05.678Z")
    store.rate("tiny", "q2", "i2", 1, "Bob", "2026-01-02T03:04:05Z")
    text = to_csv_text(store.judgments())
    assert text.splitlines()[0] == ",".join(COLUMNS)
    path = tmp_path / "out.csv"
    path.write_text(text, encoding="utf-8")
    read = read_csv(path)
    assert read.bad == []
    assert read.judgments == store.judgments()
    other = JudgmentStore(tmp_path / "other.db")
    assert import_csv(other, text).written == 3
    assert other.judgments() == store.judgments()


def test_csv_import_reports_every_bad_row(store):
    good = "demo,red shoes,i1,3,Ann,2026-01-01T00:00:00Z"
    bad = [
        ("demo,red shoes,i2,4,Ann,2026-01-01T00:00:00Z", "from 0 to 3, got 4"),
        ("demo,red shoes,i2,high,Ann,2026-01-01T00:00:00Z", "'high' is not a number"),
        ("demo,red shoes,i2,2.5,Ann,2026-01-01T00:00:00Z", "not a whole number"),
        ("demo,red shoes,i2,2,,2026-01-01T00:00:00Z", "reviewer name is empty"),
        ("demo,,i2,2,Ann,2026-01-01T00:00:00Z", "the query is empty"),
        ("demo,red shoes,,2,Ann,2026-01-01T00:00:00Z", "the item id is empty"),
        ("demo,red shoes,i2,2,Ann,yesterday", "'yesterday' is not an ISO 8601 time"),
        ("demo,red shoes,i2,2,Ann,", "judged_at is empty"),
        ("demo,red shoes,i2", "has 3 field(s), expected 6"),
        ("demo,red shoes,i2,2,Ann,2026-01-01T00:00:00Z,extra", "has 7 field(s), expected 6"),
        (",,,,,", "the row is empty"),
        ("demo,red shoes,i2,-1,Ann,2026-01-01T00:00:00Z", "got -1"),
    ]
    lines = [",".join(COLUMNS), good] + [b for b, _ in bad] + ["demo,q,i3,2.0,Bob,2026-01-01"]
    result = import_csv(store, "\ufeff" + "\n".join(lines) + "\n")  # with a byte-order mark
    assert [b.line for b in result.bad] == list(range(3, 3 + len(bad)))
    for row, (_, reason) in zip(result.bad, bad):
        assert reason in row.reason
    assert len(result.judgments) == 2 and result.written == 2
    assert store.grades("demo", "q", "Bob") == {"i3": 2}
    summary = result.summary(listed=10)
    assert summary.startswith("14 row(s): 2 valid, 12 refused, 2 stored. Refused: line 3:")
    assert "line 12:" in summary and "line 13:" not in summary and "… and 2 more" in summary


def test_csv_without_a_required_column_is_refused_whole():
    with pytest.raises(ValueError, match="lacks column.*judged_at"):
        read_csv_text("catalog,query,item_id,grade,reviewer\ndemo,q,i1,3,Ann\n")


def test_csv_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((",".join(COLUMNS) + "\ndemo,caf\xe9,i1,3,Ann,2026-01-01\n").encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_csv(path)


# -- bench --judgments ---------------------------------------------------------------------------
@pytest.fixture
def cli(tiny_catalog, capsys):
    from engine.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    return run


def _bench_csv(tiny_catalog, path: Path) -> dict:
    """A judgments file over one catalog test query and one typed query, graded by hand."""
    from engine.search import search

    def top(query: str) -> list[str]:
        return tiny_catalog.item_ids[search(tiny_catalog, "bm25", text=query, k=10).rows].tolist()

    test = tiny_catalog.table("queries")
    q1 = next(q for q in test.loc[test["split"] == "test", "query"] if len(top(q)) >= 3)
    q2 = "navy polka dot backpack for the beach"
    top1 = top(q1)
    top2 = top(q2)
    assert len(top2) >= 1
    at = "2026-01-01T00:00:00Z"
    rows = [COLUMNS]
    for item, ann, bob in zip(top1[:3], (3, 0, 2), (3, 1, 2)):
        rows += [("tiny", q1, item, ann, "Ann", at), ("tiny", q1, item, bob, "Bob", at)]
    rows += [
        ("tiny", q2, top2[0], 3, "Ann", at),
        ("tiny", q2, "no-such-item", 3, "Ann", at),  # not in the catalog
        ("demo", q2, top2[0], 0, "Ann", at),  # another catalog
        ("tiny", q2, top2[0], 9, "Ann", at),  # bad grade
    ]
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return {"q1": q1, "q2": q2, "top1": top1, "top2": top2}


def test_bench_with_judgments_scores_methods_against_them(cli, tiny_catalog, tmp_path):
    from engine.evaluation.metrics import ndcg_at_k

    info = _bench_csv(tiny_catalog, tmp_path / "judgments.csv")
    out = tmp_path / "reports"
    code, stdout, err = cli(
        "bench", "--judgments", str(tmp_path / "judgments.csv"), "--catalog", "tiny",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert "1 refused" in err and "line 11: a grade must be from 0 to 3, got 9" in err
    assert sorted(p.name for p in out.iterdir()) == [
        "benchmark_judgments.json",
        "benchmark_judgments.md",
    ]
    report = json.loads((out / "benchmark_judgments.json").read_text())
    assert report["ground_truth"] == "human judgments"
    jd = report["judgments"]
    assert (jd["queries"], jd["used"], jd["reviewers"]) == (2, 7, ["Ann", "Bob"])
    assert (jd["bad_rows"], jd["other_catalogs"], jd["unknown_items"]) == (1, 1, 1)
    assert jd["queries_with_generated_grades"] == 1

    bm25 = report["methods"]["bm25"]["human"]
    # q1, lower median of Ann and Bob per item: ranks 1..3 graded 3, min(0, 1) = 0, 2
    #   DCG = 7/1 + 0/log2(3) + 3/log2(4) = 8.5; ideal = 7 + 3/log2(3) = 8.892789
    #   NDCG = 8.5 / 8.892789 = 0.955831
    # q2: bm25's top result graded 3, nothing else judged (the unknown item is dropped): 1.0
    # mean NDCG = (0.955831 + 1) / 2 = 0.977915; MRR = 1; precision@10 = (1/10 + 1/10) / 2
    assert bm25["ndcg@10"] == pytest.approx(0.977915, abs=1e-6)
    assert bm25["mrr"] == pytest.approx(1.0)
    assert bm25["precision@10"] == pytest.approx(0.1)
    assert bm25["judged"] == 4
    assert bm25["unjudged"] == len(info["top1"]) + len(info["top2"]) - 4
    assert bm25["coverage"] == pytest.approx(4 / (len(info["top1"]) + len(info["top2"])))

    qid = tiny_catalog.table("queries").set_index("query")["query_id"][info["q1"]]
    gen = report["methods"]["bm25"]["generated"]
    assert gen["queries"] == 1
    assert gen["ndcg@10"] == pytest.approx(
        ndcg_at_k(info["top1"], tiny_catalog.qrels("text")[qid], 10), abs=1e-9
    )
    from engine.retrieval.registry import available_retrievers

    assert sorted(report["methods"]) == sorted(available_retrievers(tiny_catalog, "text"))
    (pair,) = report["agreement"]["pairs"]
    assert pair["both_rated"] == 3
    assert pair["kappa"] == pytest.approx(
        cohen_kappa_score([3, 0, 2], [3, 1, 2], labels=[0, 1, 2, 3])
    )
    md = (out / "benchmark_judgments.md").read_text()
    assert md.startswith("# Benchmark against human relevance judgments")
    assert "Ground truth: **human judgments**" in md
    assert "| bm25 | 0.978 | 0.100 |" in md
    assert "Benchmark against human relevance judgments (2 queries" in stdout


def test_bench_with_judgments_leaves_the_main_report_and_readme_alone(
    cli, tiny_catalog, tmp_path, monkeypatch
):
    monkeypatch.setenv("PIXELMATCH_REPORTS", str(tmp_path / "reports"))
    _bench_csv(tiny_catalog, tmp_path / "j.csv")
    lines = (tmp_path / "j.csv").read_text().splitlines()
    (tmp_path / "j.csv").write_text("\n".join(r for r in lines if not r.startswith("demo,")))
    readme = (REPO / "README.md").read_bytes()
    code, _, err = cli("bench", "--judgments", str(tmp_path / "j.csv"))  # catalog from the file
    assert code == 0, err
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("benchmark*"))
    assert written == [  # a catalog other than the demo gets its own folder, as bench does
        "reports/catalogs/tiny/benchmark_judgments.json",
        "reports/catalogs/tiny/benchmark_judgments.md",
    ]
    assert (REPO / "README.md").read_bytes() == readme


def test_bench_with_judgments_of_another_catalog_exits_2(cli, tmp_path):
    path = tmp_path / "j.csv"
    path.write_text(",".join(COLUMNS) + "\ndemo,q,i1,3,Ann,2026-01-01\n", encoding="utf-8")
    code, _, err = cli("bench", "--judgments", str(path), "--catalog", "tiny")
    assert code == 2
    assert "no judgments for the 'tiny' catalog (catalogs in the file: demo)" in err
