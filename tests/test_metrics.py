"""Tests for engine.evaluation.metrics: hand-computed values and cross-checks.

Cross-checks use trec_eval (via ``pytrec_eval``, package ``pytrec-eval-terrier``) and
scikit-learn's ``ndcg_score`` / ``average_precision_score`` on seeded random runs.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, ndcg_score

from engine.evaluation.metrics import (
    average_precision_at_k,
    dcg_at_k,
    evaluate_run,
    index_recall_at_k,
    jaccard_at_k,
    latency_percentiles,
    ndcg_at_k,
    per_query,
    precision_at_k,
    rank_biased_overlap,
    recall_at_k,
    reciprocal_rank,
)

LOG2_3 = math.log2(3)
LOG2_5 = math.log2(5)

# Shared hand example. Grades: a=3, b=2, c=0 (judged non-relevant), d=1; "x" is unjudged.
QRELS = {"a": 3, "b": 2, "c": 0, "d": 1}
RANKING = ["b", "x", "a", "d"]


# --------------------------------------------------------------------------- hand values


def test_dcg_hand():
    # gains 2**g - 1: b -> 3, x -> 0, a -> 7, d -> 1; discounts log2(rank + 1)
    # DCG@1 = 3/log2(2) = 3
    assert dcg_at_k(RANKING, QRELS, k=1) == pytest.approx(3.0)
    # DCG@3 = 3/1 + 0/log2(3) + 7/log2(4) = 3 + 0 + 3.5 = 6.5
    assert dcg_at_k(RANKING, QRELS, k=3) == pytest.approx(6.5)
    # DCG@4 = 6.5 + 1/log2(5) = 6.5 + 0.4306765 = 6.9306765
    assert dcg_at_k(RANKING, QRELS, k=4) == pytest.approx(6.5 + 1 / LOG2_5)
    assert dcg_at_k(RANKING, QRELS, k=4) == pytest.approx(6.9306765, abs=1e-6)
    # k beyond the ranking length: same as DCG@4
    assert dcg_at_k(RANKING, QRELS, k=50) == pytest.approx(6.5 + 1 / LOG2_5)


def test_ndcg_hand():
    # ideal order from ALL judged grades: 3, 2, 1, 0 -> gains 7, 3, 1, 0
    # IDCG@3 = 7/1 + 3/log2(3) + 1/log2(4) = 7 + 1.8927893 + 0.5 = 9.3927893
    idcg3 = 7 + 3 / LOG2_3 + 0.5
    # nDCG@3 = 6.5 / 9.3927893 = 0.6920208
    assert ndcg_at_k(RANKING, QRELS, k=3) == pytest.approx(6.5 / idcg3)
    assert ndcg_at_k(RANKING, QRELS, k=3) == pytest.approx(0.6920208, abs=1e-6)
    # nDCG@1 = 3 / 7 (b is first, ideal puts a first)
    assert ndcg_at_k(RANKING, QRELS, k=1) == pytest.approx(3 / 7)
    # IDCG@4 = IDCG@3 + 0/log2(5); nDCG@4 = (6.5 + 1/log2 5) / IDCG@3
    assert ndcg_at_k(RANKING, QRELS, k=4) == pytest.approx((6.5 + 1 / LOG2_5) / idcg3)
    # perfect ranking -> 1.0, even with the unjudged/zero tail
    assert ndcg_at_k(["a", "b", "d", "c", "x"], QRELS, k=10) == pytest.approx(1.0)
    # the ideal counts judged items that were never retrieved:
    # ranking ["a"] @2: DCG = 7; IDCG@2 = 7 + 3/log2(3); nDCG = 7 / 8.8927893
    assert ndcg_at_k(["a"], QRELS, k=2) == pytest.approx(7 / (7 + 3 / LOG2_3))


def test_ndcg_no_relevant_is_zero():
    assert ndcg_at_k(["a", "b"], {"a": 0, "b": 0}, k=2) == 0.0
    assert ndcg_at_k(["a", "b"], {}, k=2) == 0.0
    assert ndcg_at_k([], {"a": 2}, k=5) == 0.0


def test_recall_hand():
    # relevant (grade >= 1) = {a, b, d}: R = 3; top-3 = b, x, a -> 2 hits -> 2/3
    assert recall_at_k(RANKING, QRELS, k=3) == pytest.approx(2 / 3)
    # threshold 2: relevant = {a, b}: R = 2; both in top-3 -> 1.0
    assert recall_at_k(RANKING, QRELS, k=3, threshold=2) == pytest.approx(1.0)
    # threshold 3: relevant = {a}; top-2 = b, x -> 0 / 1
    assert recall_at_k(RANKING, QRELS, k=2, threshold=3) == 0.0
    # k = 10 > len(ranking): all 3 relevant found -> 1.0
    assert recall_at_k(RANKING, QRELS, k=10) == pytest.approx(1.0)
    # no relevant items -> 0.0
    assert recall_at_k(RANKING, {"a": 0}, k=3) == 0.0


def test_precision_hand():
    # top-3 = b, x, a -> 2 relevant / 3
    assert precision_at_k(RANKING, QRELS, k=3) == pytest.approx(2 / 3)
    # k = 10 with only 4 results: 3 relevant / 10 (divide by k, not by len)
    assert precision_at_k(RANKING, QRELS, k=10) == pytest.approx(0.3)
    # threshold 2: top-4 has b, a -> 2 / 4
    assert precision_at_k(RANKING, QRELS, k=4, threshold=2) == pytest.approx(0.5)
    assert precision_at_k([], QRELS, k=5) == 0.0


def test_reciprocal_rank_hand():
    # first relevant (>= 1) is b at rank 1 -> 1/1
    assert reciprocal_rank(RANKING, QRELS) == 1.0
    # threshold 3: first grade-3 item is a at rank 3 -> 1/3
    assert reciprocal_rank(RANKING, QRELS, threshold=3) == pytest.approx(1 / 3)
    # ... but cut at k=2 it is not found -> 0
    assert reciprocal_rank(RANKING, QRELS, threshold=3, k=2) == 0.0
    assert reciprocal_rank(RANKING, QRELS, threshold=3, k=3) == pytest.approx(1 / 3)
    # nothing relevant retrieved -> 0
    assert reciprocal_rank(["x", "c"], QRELS) == 0.0


def test_average_precision_hand():
    # threshold 1: R = 3, relevant hits at ranks 1 (b), 3 (a), 4 (d)
    # AP@3 = (P@1 + P@3) / min(3, 3) = (1/1 + 2/3) / 3 = 5/9
    assert average_precision_at_k(RANKING, QRELS, k=3) == pytest.approx(5 / 9)
    # AP@4 = (1 + 2/3 + 3/4) / 3 = (29/12) / 3 = 29/36
    assert average_precision_at_k(RANKING, QRELS, k=4) == pytest.approx(29 / 36)
    # AP@2: only the hit at rank 1 -> 1 / min(3, 2) = 1/2
    assert average_precision_at_k(RANKING, QRELS, k=2) == pytest.approx(0.5)
    # AP@1: 1 / min(3, 1) = 1 (perfect top-1)
    assert average_precision_at_k(RANKING, QRELS, k=1) == pytest.approx(1.0)
    # threshold 3: R = 1, hit a at rank 3 -> (1/3) / min(1, 3) = 1/3
    assert average_precision_at_k(RANKING, QRELS, k=3, threshold=3) == pytest.approx(1 / 3)
    # no relevant -> 0
    assert average_precision_at_k(RANKING, {"a": 0, "b": 0}, k=3) == 0.0


def test_evaluate_run_and_per_query_hand():
    qrels = {"q1": QRELS, "q2": {"z": 1}, "q3": {"y": 0}}
    # q2 missing from the run -> empty ranking; "extra" is not in qrels -> ignored
    run = {"q1": RANKING, "q3": ["y"], "extra": ["a"]}
    rows = per_query(run, qrels, ks=(1, 3))
    assert set(rows) == {"q1", "q2", "q3"}
    expected_keys = {
        "ndcg@1", "recall@1", "precision@1", "map@1",
        "ndcg@3", "recall@3", "precision@3", "map@3", "mrr",
    }
    assert set(rows["q1"]) == expected_keys
    # q1: values from the hand tests above
    q1 = rows["q1"]
    assert q1["ndcg@1"] == pytest.approx(3 / 7)
    assert q1["ndcg@3"] == pytest.approx(6.5 / (7 + 3 / LOG2_3 + 0.5))
    assert q1["recall@1"] == pytest.approx(1 / 3)  # b found, R = 3
    assert q1["recall@3"] == pytest.approx(2 / 3)
    assert q1["precision@1"] == 1.0
    assert q1["precision@3"] == pytest.approx(2 / 3)
    assert q1["map@1"] == pytest.approx(1.0)
    assert q1["map@3"] == pytest.approx(5 / 9)
    assert q1["mrr"] == 1.0
    assert all(v == 0.0 for v in rows["q2"].values())
    assert all(v == 0.0 for v in rows["q3"].values())
    # means over the 3 qrels queries: q1 / 3
    means = evaluate_run(run, qrels, ks=(1, 3))
    assert set(means) == expected_keys
    for key in expected_keys:
        assert means[key] == pytest.approx(q1[key] / 3)
    # mrr = (1 + 0 + 0) / 3
    assert means["mrr"] == pytest.approx(1 / 3)
    # default ks=(10,)
    assert set(evaluate_run(run, qrels)) == {
        "ndcg@10", "recall@10", "precision@10", "map@10", "mrr"
    }
    # threshold is passed through: with threshold 3, q1 recall@3 = 1 (a at rank 3)
    assert per_query(run, qrels, ks=(3,), threshold=3)["q1"]["recall@3"] == 1.0


def test_numpy_rankings_and_int_ids():
    qrels = {10: 2, 20: 1, 30: 0}
    ranking = np.array([20, 40, 10], dtype=np.int64)
    # DCG@3 = 1/1 + 0/log2(3) + 3/log2(4) = 2.5; IDCG@3 = 3 + 1/log2(3) = 3.6309298
    assert ndcg_at_k(ranking, qrels, k=3) == pytest.approx(2.5 / (3 + 1 / LOG2_3))
    assert recall_at_k(ranking, qrels, k=1) == pytest.approx(0.5)
    s_rank = np.array(["b", "x", "a", "d"])
    assert average_precision_at_k(s_rank, QRELS, k=4) == pytest.approx(29 / 36)
    assert evaluate_run({"q": ranking}, {"q": qrels}, ks=(3,))["mrr"] == 1.0


def test_validation_errors():
    with pytest.raises(ValueError):
        ndcg_at_k(["a", "b", "a"], QRELS, k=3)
    with pytest.raises(ValueError):
        recall_at_k(np.array([1, 2, 2]), {1: 1}, k=3)
    with pytest.raises(ValueError):
        reciprocal_rank(["a", "a"], QRELS)
    with pytest.raises(ValueError):
        jaccard_at_k(["a", "a"], ["b"], k=2)
    with pytest.raises(ValueError):
        rank_biased_overlap(["a", "a"], ["b"])
    for fn in (dcg_at_k, ndcg_at_k, recall_at_k, precision_at_k, average_precision_at_k):
        with pytest.raises(ValueError):
            fn(RANKING, QRELS, k=0)
        with pytest.raises(ValueError):
            fn(RANKING, QRELS, k=-1)
    with pytest.raises(ValueError):
        reciprocal_rank(RANKING, QRELS, k=0)
    with pytest.raises(ValueError):
        jaccard_at_k(["a"], ["b"], k=0)
    with pytest.raises(ValueError):
        rank_biased_overlap(["a"], ["b"], k=0)
    with pytest.raises(ValueError):
        evaluate_run({}, {"q": QRELS}, ks=(0,))
    with pytest.raises(ValueError):
        evaluate_run({}, {"q": QRELS}, ks=())
    with pytest.raises(ValueError):
        evaluate_run({}, {})
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a": -1}, k=1)
    with pytest.raises(TypeError):
        ndcg_at_k(["a"], QRELS, k=2.5)
    with pytest.raises(ValueError):
        rank_biased_overlap(["a"], ["a"], p=1.0)
    with pytest.raises(ValueError):
        rank_biased_overlap(["a"], ["a"], p=0.0)


# --------------------------------------------------------------------------- overlap


def test_jaccard_hand():
    a, b = [1, 2, 3, 4], [3, 4, 5, 6]
    # k=4: {1,2,3,4} & {3,4,5,6} = {3,4}; union has 6 -> 2/6
    assert jaccard_at_k(a, b, k=4) == pytest.approx(1 / 3)
    # k=3: {1,2,3} & {3,4,5} = {3}; union {1,2,3,4,5} -> 1/5
    assert jaccard_at_k(a, b, k=3) == pytest.approx(0.2)
    # k=2: {1,2} vs {3,4} -> 0
    assert jaccard_at_k(a, b, k=2) == 0.0
    assert jaccard_at_k(a, a, k=3) == 1.0
    # order inside the top-k does not matter
    assert jaccard_at_k([1, 2, 3], [3, 2, 1], k=3) == 1.0
    # shorter list: {1,2} vs {1,2,3} -> 2/3
    assert jaccard_at_k([1, 2], [1, 2, 3], k=5) == pytest.approx(2 / 3)
    assert jaccard_at_k([], [], k=3) == 1.0
    assert jaccard_at_k([], [1], k=3) == 0.0


def test_rbo_hand_even():
    # S = 1 2 3 4 5, L = 2 3 4 1 5, p = 0.9 (even lists, depth 5)
    # X_d: d=1 {1}&{2}=0; d=2 {1,2}&{2,3}=1; d=3 {1,2,3}&{2,3,4}=2; d=4 -> 4; d=5 -> 5
    # A_d = X_d/d: 0, 1/2, 2/3, 1, 1
    # RBO_ext = (1-p)/p * sum A_d p^d + X_5/5 p^5
    #   = (1/9) * (0.5*0.81 + (2/3)*0.729 + 0.6561 + 0.59049) + 0.59049
    #   = (1/9) * 2.13759 + 0.59049 = 0.23751 + 0.59049 = 0.828
    expected = (1 / 9) * (0.5 * 0.81 + (2 / 3) * 0.729 + 0.6561 + 0.59049) + 0.59049
    got = rank_biased_overlap([1, 2, 3, 4, 5], [2, 3, 4, 1, 5], p=0.9)
    assert got == pytest.approx(expected)
    assert got == pytest.approx(0.828, abs=1e-9)


def test_rbo_hand_uneven():
    # S = a b (s=2), L = a c b (l=3), p = 0.5 -> (1-p)/p = 1
    # X_1 = |{a}&{a}| = 1; X_2 = |{a,b}&{a,c}| = 1; X_3 = |{a,b}&{a,c,b}| = 2
    # sum1 = 1/1*0.5 + 1/2*0.25 + 2/3*0.125 = 0.5 + 0.125 + 0.0833333 = 0.7083333
    # sum2 = (d=3) X_s*(d-s)/(s*d)*p^d = 1*1/6*0.125 = 0.0208333
    # tail = ((X_l - X_s)/l + X_s/s) * p^l = (1/3 + 1/2) * 0.125 = 0.1041667
    # total = 0.7083333 + 0.0208333 + 0.1041667 = 0.8333333 = 5/6
    assert rank_biased_overlap(["a", "b"], ["a", "c", "b"], p=0.5) == pytest.approx(5 / 6)
    assert rank_biased_overlap(["a", "c", "b"], ["a", "b"], p=0.5) == pytest.approx(5 / 6)


def test_rbo_properties():
    a = list(range(20))
    assert rank_biased_overlap(a, a) == pytest.approx(1.0)
    assert rank_biased_overlap(a, a, p=0.5, k=7) == pytest.approx(1.0)
    assert rank_biased_overlap(a, list(range(100, 120))) == 0.0
    assert rank_biased_overlap(a, list(range(100, 103))) == 0.0
    assert rank_biased_overlap([], []) == 1.0
    assert rank_biased_overlap([], [1]) == 0.0
    # k truncation: the lists agree on their top 3 only
    assert rank_biased_overlap([1, 2, 3, 9], [1, 2, 3, 8], k=3) == pytest.approx(1.0)
    assert rank_biased_overlap([1, 2, 3, 9], [1, 2, 3, 8]) < 1.0
    rng = random.Random(7)
    for _ in range(200):
        u = list(range(30))
        x = rng.sample(u, rng.randint(1, 15))
        y = rng.sample(u, rng.randint(1, 15))
        p = rng.choice([0.5, 0.8, 0.9, 0.98])
        v = rank_biased_overlap(x, y, p=p)
        assert 0.0 <= v <= 1.0 + 1e-12
        assert v == pytest.approx(rank_biased_overlap(y, x, p=p))
        assert v == pytest.approx(_rbo_series_reference(x, y, p))


def _rbo_series_reference(x: list, y: list, p: float) -> float:
    """Independent RBO_ext: the infinite series (1-p) sum_d p^(d-1) A_d, summed far out.

    Agreement per depth (Webber et al. 2010, sec. 4.3, eqs. 30-32), with overlaps taken
    directly by set intersection:
      d <= l: A_d = (|S[:d] & L[:d]| + max(0, d - s) * X_s / s) / d
      d >  l: A_d = (X_l - X_s) / l + X_s / s   (the constant the paper's tail assumes)
    """
    short, long_ = (x, y) if len(x) <= len(y) else (y, x)
    s, ln = len(short), len(long_)

    def overlap(d: int) -> int:
        return len(set(short[:d]) & set(long_[:d]))

    x_s, x_l = overlap(s), overlap(ln)
    total = 0.0
    for d in range(1, 5000):
        if d <= ln:
            a_d = (overlap(d) + max(0, d - s) * x_s / s) / d
        else:
            a_d = (x_l - x_s) / ln + x_s / s
        total += (1 - p) * p ** (d - 1) * a_d
    return total


# --------------------------------------------------------------------------- ANN / latency


def test_index_recall_hand():
    approx = np.array([[1, 2, 3], [4, 5, -1], [7, 8, 9]])
    exact = np.array([[1, 3, 9], [4, 6, -1], [-1, -1, -1]])
    # q1: {1,3} of {1,3,9} -> 2/3; q2: {4} of {4,6} (padding ignored) -> 1/2;
    # q3: exact is all padding -> skipped. mean = (2/3 + 1/2) / 2 = 7/12
    assert index_recall_at_k(approx, exact, k=3) == pytest.approx(7 / 12)
    # k=2: q1 approx {1,2} vs exact {1,3} -> 1/2; q2 {4,5} vs {4,6} -> 1/2 -> 0.5
    assert index_recall_at_k(approx, exact, k=2) == pytest.approx(0.5)
    # approx with fewer columns than k: missing results count as misses
    # q1 {1} of {1,3,9} -> 1/3; q2 {4} of {4,6} -> 1/2 -> (1/3 + 1/2)/2 = 5/12
    assert index_recall_at_k(approx[:, :1], exact, k=3) == pytest.approx(5 / 12)
    # -1 in approx never matches -1 in exact
    assert index_recall_at_k(np.array([[-1, 5]]), np.array([[5, -1]]), k=2) == 1.0
    assert index_recall_at_k(exact, exact, k=3) == 1.0
    with pytest.raises(ValueError):
        index_recall_at_k(approx, exact, k=4)  # exact has only 3 columns
    with pytest.raises(ValueError):
        index_recall_at_k(approx[:2], exact, k=3)
    with pytest.raises(ValueError):
        index_recall_at_k(approx[0], exact[0], k=3)


def test_latency_percentiles_hand():
    out = latency_percentiles([4.0, 1.0, 3.0, 2.0])
    # sorted 1,2,3,4; linear interpolation at position q*(n-1):
    # p50 -> 1.5 -> 2.5; p95 -> 2.85 -> 3 + 0.85 = 3.85; p99 -> 2.97 -> 3.97
    assert out["p50"] == pytest.approx(2.5)
    assert out["p95"] == pytest.approx(3.85)
    assert out["p99"] == pytest.approx(3.97)
    assert out["mean"] == pytest.approx(2.5)
    assert out["n"] == 4
    assert set(out) == {"p50", "p95", "p99", "mean", "n"}
    one = latency_percentiles(np.array([7.0]))
    assert one["p50"] == one["p99"] == one["mean"] == 7.0
    assert latency_percentiles(x for x in (1.0, 3.0))["p50"] == 2.0
    with pytest.raises(ValueError):
        latency_percentiles([])
    with pytest.raises(ValueError):
        latency_percentiles([1.0, float("nan")])


# --------------------------------------------------------------------------- cross-checks

KS = (1, 3, 5, 10, 20)


def _random_query(rng: random.Random) -> tuple[list[str], dict[str, int]]:
    """A random ranking and graded judgments over a small universe.

    Covers: ties in grades, all-zero judgments, empty judgments, rankings shorter than k
    (including empty), unjudged retrieved items, and judged items never retrieved.
    """
    universe = [f"d{i}" for i in range(25)]
    judged = rng.sample(universe, rng.randint(0, 15))
    mode = rng.random()
    if mode < 0.1:
        grades = [0] * len(judged)  # no relevant item
    else:
        grades = [rng.choice([0, 0, 1, 1, 2, 3]) for _ in judged]
    qrels = dict(zip(judged, grades, strict=True))
    ranking = rng.sample(universe, rng.choice([0, 1, 2, 4, 8, 15, 25]))
    return ranking, qrels


def _random_collection(seed: int, n: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    run, qrels = {}, {}
    for i in range(n):
        ranking, judged = _random_query(rng)
        if not judged:  # trec_eval drops queries without judgments; tested separately
            judged = {"d0": 0}
        qid = f"q{i}"
        qrels[qid] = judged
        if ranking or rng.random() < 0.5:  # sometimes leave an empty query out of the run
            run[qid] = ranking
    return run, qrels


def _trec_run(run: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    # strictly decreasing scores so trec_eval's tie-breaking (docno) never applies
    return {q: {doc: float(len(r) - i) for i, doc in enumerate(r)} for q, r in run.items()}


def test_cross_check_trec_eval():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    run, qrels = _random_collection(seed=1234, n=300)
    trec_run = _trec_run(run)
    cut = ",".join(str(k) for k in KS)

    # nDCG: trec_eval uses the qrels value as a linear gain, so give it 2**g - 1.
    gain_qrels = {q: {d: 2**g - 1 for d, g in j.items()} for q, j in qrels.items()}
    ndcg_ev = pytrec_eval.RelevanceEvaluator(gain_qrels, {f"ndcg_cut.{cut}"})
    trec_ndcg = ndcg_ev.evaluate(trec_run)

    for threshold in (1, 2, 3):
        ev = pytrec_eval.RelevanceEvaluator(
            qrels, {f"recall.{cut}", f"P.{cut}", f"map_cut.{cut}", "recip_rank"},
            relevance_level=threshold,
        )
        trec = ev.evaluate(trec_run)
        ours = per_query(run, qrels, ks=KS, threshold=threshold)
        sums: dict[str, float] = {}
        for qid, judged in qrels.items():
            ranking = run.get(qid, [])
            t = trec.get(qid)
            n_rel = sum(1 for g in judged.values() if g >= threshold)
            for k in KS:
                o = ours[qid]
                exp = {
                    f"recall@{k}": t[f"recall_{k}"] if t else 0.0,
                    f"precision@{k}": t[f"P_{k}"] if t else 0.0,
                    f"ndcg@{k}": trec_ndcg[qid][f"ndcg_cut_{k}"] if qid in trec_ndcg else 0.0,
                }
                for key, val in exp.items():
                    assert o[key] == pytest.approx(val, abs=1e-9), (qid, threshold, key)
                # trec_eval's map_cut divides by R; ours by min(R, k)
                trec_map = t[f"map_cut_{k}"] if t else 0.0
                rescaled = o[f"map@{k}"] * min(n_rel, k) / n_rel if n_rel else 0.0
                assert rescaled == pytest.approx(trec_map, abs=1e-9), (qid, threshold, k)
                assert o[f"map@{k}"] == pytest.approx(
                    average_precision_at_k(ranking, judged, k=k, threshold=threshold)
                )
                # RR@k: the uncut reciprocal rank if the first hit is within k, else 0
                rr = t["recip_rank"] if t else 0.0
                rr_k = rr if rr >= 1.0 / k - 1e-12 else 0.0
                got = reciprocal_rank(ranking, judged, threshold=threshold, k=k)
                assert got == pytest.approx(rr_k, abs=1e-9), (qid, threshold, k)
            assert ours[qid]["mrr"] == pytest.approx(t["recip_rank"] if t else 0.0, abs=1e-9)
            for key, val in ours[qid].items():
                sums[key] = sums.get(key, 0.0) + val
        means = evaluate_run(run, qrels, ks=KS, threshold=threshold)
        assert set(means) == set(sums)
        for key, total in sums.items():
            assert means[key] == pytest.approx(total / len(qrels))


def test_cross_check_sklearn_ndcg():
    rng = random.Random(99)
    checked = 0
    for _ in range(400):
        ranking, qrels = _random_query(rng)
        k = rng.choice(KS)
        # Universe: ranked items, then >= k zero-gain padding items scored below them, then
        # judged-but-unretrieved items scored lowest. With strictly decreasing scores on
        # ranked + padding, sklearn's top-k is exactly our top-k (padded with zero gain),
        # while its ideal DCG still sees every judged grade.
        unretrieved = [d for d in qrels if d not in set(ranking)]
        n_pad = max(k, 2)
        gains = [2 ** qrels.get(d, 0) - 1 for d in ranking]
        gains += [0] * n_pad
        gains += [2 ** qrels[d] - 1 for d in unretrieved]
        n_scored = len(ranking) + n_pad
        scores = [float(n_scored - i) for i in range(n_scored)] + [0.0] * len(unretrieved)
        ref = ndcg_score([gains], [scores], k=k)
        assert ndcg_at_k(ranking, qrels, k=k) == pytest.approx(ref, abs=1e-9)
        checked += 1
    assert checked == 400


def test_cross_check_sklearn_average_precision():
    # When the ranking lists every judged item and k >= its length, AP@k = sum / min(R, k)
    # = sum / R, i.e. plain (non-interpolated) AP as computed by scikit-learn.
    rng = random.Random(5)
    checked = 0
    for _ in range(300):
        _, qrels = _random_query(rng)
        threshold = rng.choice([1, 2, 3])
        y_rel = [d for d, g in qrels.items() if g >= threshold]
        if not y_rel:
            continue
        extra = [f"u{i}" for i in range(rng.randint(0, 5))]  # unjudged items
        ranking = list(qrels) + extra
        rng.shuffle(ranking)
        y_true = [int(qrels.get(d, 0) >= threshold) for d in ranking]
        y_score = [float(len(ranking) - i) for i in range(len(ranking))]
        ref = average_precision_score(y_true, y_score)
        k = len(ranking) + rng.randint(0, 3)
        got = average_precision_at_k(ranking, qrels, k=k, threshold=threshold)
        assert got == pytest.approx(ref, abs=1e-9)
        checked += 1
    assert checked > 100
