"""The shape of a built catalog: its tables and the conventions every layer shares.

A catalog's world step (the synthetic generator or an ingested source) writes ``TABLES`` as
parquet files; every build step, retriever and page reads them through :class:`engine.catalog.
Catalog`. Relevance grades run from 0 to 3; binary metrics count ``RELEVANT_GRADE`` as relevant.
"""

from __future__ import annotations

TABLES = (
    "items",
    "users",
    "interactions",
    "sessions",
    "queries",
    "qrels",
    "image_queries",
    "image_qrels",
    "keywords",
)

#: Grade 3 = matches everything the query asks for; recall, precision, MRR and MAP count it.
RELEVANT_GRADE = 3
GRADES = (0, 1, 2, 3)


def qrels_dict(query_ids, item_ids, grades) -> dict[str, dict[str, int]]:
    """Judgments ``{query_id: {item_id: grade}}`` from three parallel columns."""
    out: dict[str, dict[str, int]] = {}
    for qid, item, grade in zip(query_ids, item_ids, grades):
        out.setdefault(str(qid), {})[str(item)] = int(grade)
    return out


def item_texts(items) -> list[str]:
    """The text every text method indexes: title, description, brand and category."""
    return [
        f"{t}. {d} {b}. {c}."
        for t, d, b, c in zip(
            items["title"], items["description"], items["brand"], items["category"]
        )
    ]
