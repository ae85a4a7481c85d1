"""Turn a validated catalog and its events into the tables every build step reads.

The tables have the synthetic world's shape (``engine/world/generate.py``), so every step and
page works on an ingested catalog unchanged:

* **Chronological split.** Events before the ``TEST_FRACTION`` quantile of time are ``train``,
  the rest ``test``. An item is **NEW** when all its events fall in the test period (it launched,
  as far as the data shows, after the cutoff): the cold-start slice.
* **Search queries.** Events that carry a query text become sessions, and each distinct query
  becomes a judged query: its qrels are the items acted on after it, graded by the strongest
  event (``EVENT_GRADES``: purchase/download 3, cart/like 2, click/view 1). Queries are split by
  the time they were first seen: the earliest 60 % train (the ranker), the next 15 % validation
  (fusion weights, early stopping), the last 25 % test (the benchmark).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from engine.ingest import known_item
from engine.schema import split_items

TEST_FRACTION = 0.2
QUERY_SPLITS = (("train", 0.60), ("val", 0.75), ("test", 1.0))
EVENT_GRADES = {
    "purchase": 3,
    "buy": 3,
    "order": 3,
    "conversion": 3,
    "download": 3,
    "checkout": 3,
    "add_to_cart": 2,
    "cart": 2,
    "like": 2,
    "favorite": 2,
    "favourite": 2,
    "save": 2,
    "wishlist": 2,
}


CANONICAL_EVENTS = {3: "purchase", 2: "add_to_cart"}  # the recommenders' event kinds
_CLICKS = frozenset({"click", "clicks", "tap", "select"})


def canonical_event(event: str) -> str:
    """The recommenders' event kind (view, click, add_to_cart, purchase) of any event name."""
    grade = event_grade(event)
    if grade in CANONICAL_EVENTS:
        return CANONICAL_EVENTS[grade]
    return "click" if event.lower() in _CLICKS else "view"


def known_event(event: str) -> bool:
    """True for event names with a documented meaning (others count as views)."""
    key = event.lower().replace("-", "_").replace(" ", "_")
    return key in EVENT_GRADES or key in _CLICKS or key == "view"


def event_grade(event: str) -> int:
    """The relevance grade an event gives its item for the query it followed."""
    return EVENT_GRADES.get(event.lower().replace("-", "_").replace(" ", "_"), 1)


def split_interactions(inter: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``inter`` with a ``split`` column, and the cutoff (Unix seconds)."""
    cutoff = int(np.quantile(inter["timestamp"], 1 - TEST_FRACTION)) if len(inter) else 0
    inter = inter.sort_values(["timestamp", "user_id", "item_id"], kind="stable")
    split = np.where(inter["timestamp"] < cutoff, "train", "test")
    return inter.assign(split=split).reset_index(drop=True), cutoff


def new_items(items: pd.DataFrame, inter: pd.DataFrame) -> np.ndarray:
    """True for items whose every event is in the test period (and that have one)."""
    train = set(inter.loc[inter["split"] == "train", "item_id"])
    test = set(inter.loc[inter["split"] == "test", "item_id"])
    return items["item_id"].map(lambda i: i in test and i not in train).to_numpy(bool)


def sessions_table(inter: pd.DataFrame) -> pd.DataFrame:
    """One row per event that followed a query."""
    s = inter[inter["query"] != ""]
    return pd.DataFrame(
        {
            "session_id": [f"s{i:07d}" for i in range(len(s))],
            "user_id": s["user_id"].to_numpy(),
            "query": s["query"].to_numpy(),
            "item_id": s["item_id"].to_numpy(),
            "timestamp": s["timestamp"].to_numpy(),
            "split": s["split"].to_numpy(),
        }
    )


def query_tables(inter: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The judged query set and its qrels, from the events that carry a query text."""
    s = inter[inter["query"] != ""].assign(grade=lambda d: d["event"].map(event_grade))
    if s.empty:
        return (
            pd.DataFrame(
                columns=[
                    "query_id",
                    "split",
                    "type",
                    "wording",
                    "subtype",
                    "visual",
                    "attributes",
                    "query",
                ]
            ),
            pd.DataFrame(
                {
                    "query_id": pd.Series(dtype=str),
                    "item_id": pd.Series(dtype=str),
                    "grade": pd.Series(dtype="int8"),
                }
            ),
        )
    first = s.groupby("query")["timestamp"].min().sort_values(kind="stable")
    texts = first.index.to_numpy()
    ids = {q: f"q{k:06d}" for k, q in enumerate(texts)}
    position = (np.arange(len(texts)) + 0.5) / len(texts)
    split = np.select([position < b for _, b in QUERY_SPLITS], [n for n, _ in QUERY_SPLITS], "test")
    queries = pd.DataFrame(
        {
            "query_id": [ids[q] for q in texts],
            "split": split,
            "type": "logged",
            "wording": "catalog",
            "subtype": "",
            "visual": False,
            "attributes": json.dumps({}),
            "query": texts,
        }
    )
    grades = s.groupby(["query", "item_id"])["grade"].max().reset_index()
    qrels = pd.DataFrame(
        {
            "query_id": grades["query"].map(ids).to_numpy(),
            "item_id": grades["item_id"].to_numpy(),
            "grade": grades["grade"].astype("int8").to_numpy(),
        }
    ).sort_values(["query_id", "item_id"], kind="stable")
    return queries, qrels.reset_index(drop=True)


ATTRIBUTE_FIELDS = ("colour", "pattern", "material")


def attribute_keywords(keywords: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The keywords with the merchant's colour, pattern and material values added as tags of
    that field (confidence 1): a method sees them the way it sees an image tagger's output."""
    rows = [keywords.assign(field=keywords.get("field", ""))]
    for field in ATTRIBUTE_FIELDS:
        if field not in truth:
            continue
        values = truth[["item_id", field]].rename(columns={field: "keyword"})
        values = values[values["keyword"].astype(str).str.strip() != ""]
        if len(values):
            rows.append(
                values.assign(
                    keyword=values["keyword"].astype(str).str.strip().str.lower(),
                    confidence=1.0,
                    source="catalog",
                    field=field,
                )
            )
    return pd.concat(rows, ignore_index=True).drop_duplicates(["item_id", "keyword", "field"])


def world_tables(
    items: pd.DataFrame,
    inter: pd.DataFrame | None,
    keywords: pd.DataFrame,
    folder: Path,
    seed: int = 42,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every table a build reads, in the synthetic world's shapes, and facts about the split.

    Known-item query sets (:mod:`engine.ingest.known_item`) are added to ``folder``: image
    queries always, text queries when the events carry too few distinct queries.
    """
    rng_text, rng_image = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if inter is None:
        inter = pd.DataFrame(
            {
                "user_id": pd.Series(dtype=str),
                "item_id": pd.Series(dtype=str),
                "event": pd.Series(dtype=str),
                "timestamp": pd.Series(dtype="int64"),
                "query": pd.Series(dtype=str),
            }
        )
    inter, cutoff = split_interactions(inter)
    items = items.assign(
        is_new=new_items(items, inter),
        launch_day=np.nan,
        title_mentions="",
    )
    queries, qrels = query_tables(inter)
    logged = len(queries)
    if logged < known_item.MIN_LOGGED_QUERIES:
        kq, kqrels = known_item.text_queries(items, rng_text)
        queries = pd.concat([queries, kq], ignore_index=True)
        qrels = pd.concat([qrels, kqrels], ignore_index=True)
    image_q, image_qrels = known_item.image_queries(items, folder, rng_image)
    users = pd.DataFrame({"user_id": np.sort(inter["user_id"].unique()).astype(str)})
    inter = inter.assign(event_original=inter["event"], event=inter["event"].map(canonical_event))
    catalog_items, truth = split_items(items.drop(columns=["keywords"], errors="ignore"))
    tables = {
        "items": catalog_items,
        "users": users,
        "interactions": inter[
            ["user_id", "item_id", "event", "timestamp", "split", "event_original"]
        ],
        "sessions": sessions_table(inter),
        "queries": queries,
        "qrels": qrels,
        "image_queries": image_q,
        "image_qrels": image_qrels,
        "keywords": attribute_keywords(keywords, truth),
        "truth": truth,
        "user_truth": users[["user_id"]].copy(),
        "oracle": pd.DataFrame({"user_id": [], "item_id": [], "rank": []}),
    }
    info = {
        "cutoff": cutoff,
        "new_items": int(items["is_new"].sum()),
        "logged_queries": logged,
        "queries": {
            f"{t}/{sp}": int(n) for (t, sp), n in queries.groupby(["type", "split"]).size().items()
        },
        "image_queries": {k: int(v) for k, v in image_q["split"].value_counts().items()},
    }
    return tables, info
