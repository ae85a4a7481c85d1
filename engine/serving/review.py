"""The Relevance review page's numbers: each method's metrics from human grades, next to the
generated grades, for one query and for a whole set of graded queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from engine.catalog import Catalog
from engine.judgments.metrics import generated_metrics, judged_metrics, query_metrics
from engine.progress import ProgressFn, no_progress
from engine.schema import RELEVANT_GRADE
from engine.search import QueryError, search


def catalog_qrels_by_text(catalog: Catalog) -> dict[str, dict[str, int]]:
    """The catalog's generated grades of its text queries, keyed by query text (built once)."""

    def build() -> dict[str, dict[str, int]]:
        qrels = catalog.qrels("text")
        queries = catalog.table("queries")
        out: dict[str, dict[str, int]] = {}
        for qid, text in zip(queries["query_id"], queries["query"]):
            out.setdefault(" ".join(str(text).split()), qrels.get(qid, {}))
        return out

    return catalog.cached("qrels:text-by-query", build)


def run_queries(
    catalog: Catalog,
    method: str,
    queries: Sequence[str],
    k: int = 10,
    progress: ProgressFn = no_progress,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Search each query with one method: ``({query: item ids}, {query: refusal message})``."""
    run: dict[str, list[str]] = {}
    refused: dict[str, str] = {}
    for q in progress(queries, len(queries), method):
        try:
            result = search(catalog, method, text=q, k=k)
        except QueryError as exc:
            refused[q] = str(exc)
            continue
        run[q] = [str(catalog.item_ids[r]) for r in result.rows]
    return run, refused


def query_summary(
    ids: Mapping[str, Sequence[str]],
    human: Mapping[str, int],
    generated: Mapping[str, int] | None,
    k: int,
) -> pd.DataFrame:
    """One row per method: NDCG, precision and MRR from the human grades (with how many results
    were judged), and NDCG and precision from the generated grades when the query has them."""
    rows = []
    for method, ranked in ids.items():
        q = query_metrics(ranked, human, k, RELEVANT_GRADE)
        row = {
            "method": method,
            f"NDCG@{k} (human)": q[f"ndcg@{k}"],
            f"P@{k} (human)": q[f"precision@{k}"],
            "MRR (human)": q["mrr"],
            "judged": q["judged"],
            "unjudged": q["unjudged"],
        }
        if generated:
            g = query_metrics(ranked, generated, k, RELEVANT_GRADE)
            row[f"NDCG@{k} (generated)"] = g[f"ndcg@{k}"]
            row[f"P@{k} (generated)"] = g[f"precision@{k}"]
        rows.append(row)
    return pd.DataFrame(rows)


def query_set_summary(
    catalog: Catalog,
    methods: Sequence[str],
    judged: Mapping[str, Mapping[str, int]],
    generated: Mapping[str, Mapping[str, int]],
    k: int,
) -> pd.DataFrame:
    """One row per method over every graded query of a set: human metrics and coverage, and the
    generated NDCG over the queries that have generated grades."""
    gen_set = {q: generated[q] for q in judged if generated.get(q)}
    rows = []
    for method in methods:
        run, _ = run_queries(catalog, method, list(judged), k)
        h = judged_metrics(run, judged, k)
        rec = {
            "method": method,
            "queries": h["queries"],
            f"NDCG@{k} (human)": h[f"ndcg@{k}"],
            f"P@{k} (human)": h[f"precision@{k}"],
            "MRR (human)": h["mrr"],
            "coverage": h["coverage"],
            "unjudged": h["unjudged"],
        }
        if gen := generated_metrics(run, gen_set, k):
            rec[f"NDCG@{k} (generated, {gen['queries']} q)"] = gen[f"ndcg@{k}"]
        rows.append(rec)
    return pd.DataFrame(rows)
