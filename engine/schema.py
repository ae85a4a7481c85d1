"""The shape of a built catalog: its tables and the conventions every layer shares.

A catalog's world step (the synthetic generator or an ingested source) writes ``TABLES`` as
parquet files; every build step, retriever and page reads them through :class:`engine.catalog.
Catalog`. Relevance grades run from 0 to 3; binary metrics count ``RELEVANT_GRADE`` as relevant.

The wall between truth and catalog is in the tables themselves: ``items`` and ``users`` hold only
what a real catalog holds (text, merchant category, price, launch day, images; user ids).
What the synthetic world knows and a catalog does not (each item's true colour, pattern and
material, each user's latent tastes) is in ``truth`` and ``user_truth``, which only the
evaluation and pages that label it as ground truth read. The query sets' judgments
(``qrels``, ``image_qrels``) and their ``attributes`` are evaluation data too: methods may learn
from the train and validation splits' judgments, never from the test split's.
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
    "truth",
    "user_truth",
    "oracle",
)
#: What only the world knows: never read by a method (tests/test_layers.py checks the code).
TRUTH_TABLES = ("truth", "user_truth", "oracle")
TRUTH_COLUMNS = ("colour", "pattern", "material", "title_mentions")
USER_TRUTH_PREFIXES = ("pref_", "price_level", "activity", "top_")


def split_items(items):
    """(catalog view, truth) of an items frame: the truth columns move to their own table."""
    truth_cols = [c for c in TRUTH_COLUMNS if c in items]
    return items.drop(columns=truth_cols), items[["item_id", *truth_cols]].copy()


def split_users(users):
    """(catalog view, truth) of a users frame: only the user id is catalog data."""
    truth_cols = [c for c in users if c != "user_id" and c.startswith(USER_TRUTH_PREFIXES)]
    return users.drop(columns=truth_cols), users[["user_id", *truth_cols]].copy()

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


def items_with_truth(folder):
    """A world folder's items with their ground truth joined back (tests and evaluation only)."""
    import pandas as pd

    items = pd.read_parquet(folder / "items.parquet")
    return items.merge(pd.read_parquet(folder / "truth.parquet"), on="item_id", how="left")


def users_with_truth(folder):
    """A world folder's users with their latent tastes joined back (tests and evaluation only)."""
    import pandas as pd

    users = pd.read_parquet(folder / "users.parquet")
    return users.merge(pd.read_parquet(folder / "user_truth.parquet"), on="user_id", how="left")
