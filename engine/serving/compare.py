"""Comparing methods on one query: overlap, rank moves, per-query quality and "why this result".

The Compare page lays these out; the logic lives here so the CLI, the API and tests share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from engine.catalog import Catalog
from engine.evaluation.metrics import jaccard_at_k, ndcg_at_k, rank_biased_overlap, recall_at_k
from engine.retrieval.registry import available_retrievers, retriever_class
from engine.schema import RELEVANT_GRADE
from engine.search import QueryError, get_retriever, search

WHY_DEPTH = 100  # how deep each retriever is searched for "why this result"


def overlap_table(ids: Mapping[str, Sequence[str]], k: int) -> pd.DataFrame:
    """Jaccard@k and rank-biased overlap for every pair of methods."""
    names = list(ids)
    return pd.DataFrame(
        [
            {
                "pair": f"{a} vs {b}",
                f"Jaccard@{k}": jaccard_at_k(ids[a], ids[b], k=k),
                "RBO (p=0.9)": rank_biased_overlap(ids[a], ids[b], p=0.9),
            }
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        ]
    )


def quality_table(
    ids: Mapping[str, Sequence[str]], qrels: Mapping[str, int], k: int
) -> pd.DataFrame:
    """Each method's NDCG@k and recall@k on a judged query, and its NDCG change vs the first."""
    df = pd.DataFrame(
        [
            {
                "method": m,
                f"NDCG@{k}": ndcg_at_k(ranked, qrels, k=k),
                f"recall@{k}": recall_at_k(ranked, qrels, k=k, threshold=RELEVANT_GRADE),
            }
            for m, ranked in ids.items()
        ]
    )
    if len(df):
        df[f"Δ NDCG vs {df['method'].iat[0]}"] = df[f"NDCG@{k}"] - df[f"NDCG@{k}"].iat[0]
    return df


def rank_moves(base: Sequence[str], other: Sequence[str]) -> list[int | None]:
    """For each result of ``other``: how many places it moved up (+) or down (-) against
    ``base``, or None when ``base`` does not have it."""
    where = {item: i for i, item in enumerate(base)}
    return [None if item not in where else where[item] - i for i, item in enumerate(other)]


def why_ranks(
    catalog: Catalog, row: int, *, text: str | None = None, image=None, depth: int = WHY_DEPTH
) -> pd.DataFrame:
    """Each single retriever's rank and score for catalog ``row`` on this query.

    Methods that fuse other methods are left out (their members are listed instead); a method
    that cannot take the query is skipped and one that fails is shown as unavailable.
    """
    modality = "image" if image is not None and not (text or "").strip() else "text"
    rows: list[dict[str, Any]] = []
    for name in available_retrievers(catalog, modality):
        if retriever_class(name).fuses:
            continue
        try:
            result = search(catalog, name, text=text, image=image, k=depth)
        except QueryError:
            continue
        except Exception:  # a broken method: shown, the others still answer
            rows.append({"retriever": name, "rank": "unavailable", "score": None})
            continue
        hit = [i for i, r in enumerate(result.rows) if int(r) == row]
        rows.append(
            {
                "retriever": name,
                "rank": str(hit[0] + 1) if hit else f"> {depth}",
                "score": round(float(result.scores[hit[0]]), 4) if hit else None,
            }
        )
    return pd.DataFrame(rows)


def explanation(catalog: Catalog, method: str, text: str, row: int) -> pd.DataFrame | None:
    """The method's own explanation of ``row`` (largest feature contributions), if it has one."""
    if not text.strip() or not retriever_class(method).explains:
        return None
    why = get_retriever(catalog, method).explain(text, row)
    return pd.DataFrame(why["contributions"])
