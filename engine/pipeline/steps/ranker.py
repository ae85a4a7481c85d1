"""Ranker build step: train the Hybrid LambdaMART re-ranker on the *train* queries only.

Each training query goes through the same understanding and signals as a search
(``engine.retrieval.hybrid.query_signals``). Early stopping uses the validation queries; the
test queries are never touched here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.pipeline.step import Step, StepContext, needs_queries, one_thread, register_step
from engine.ranking.features import FEATURES, FeatureBuilder, QuerySignals


def _dataset(builder, signals, queries: pd.DataFrame, qrels: dict, item_ids):
    X, y, groups = [], [], []
    for qid, text in zip(queries["query_id"], queries["query"]):
        s = signals(str(text))
        rows, full = builder.candidates(s)
        judged = qrels.get(qid, {})
        X.append(builder.features(s, rows, full))
        y.append(np.array([judged.get(item_ids[r], 0) for r in rows]))
        groups.append(len(rows))
    return np.concatenate(X), np.concatenate(y), np.array(groups)


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    from engine.encoders.clip import CLIP_SPEC_FILE, COMPACT, load_clip_step
    from engine.encoders.onnx_text import text_encoder_for
    from engine.indexes.bm25 import BM25Index
    from engine.query import QueryUnderstanding
    from engine.ranking.ltr import LambdaMartRanker
    from engine.retrieval.base import Query
    from engine.retrieval.hybrid import query_signals
    from engine.runtime import set_threads

    world = ctx.inputs["world"]
    set_threads(ctx.threads)
    text_enc = text_encoder_for(ctx.cfg.text, threads=ctx.threads)
    qu = QueryUnderstanding.load(ctx.inputs["query"], text_enc)
    builder = FeatureBuilder.from_folders(
        world,
        ctx.inputs["lexical"],
        ctx.inputs["sbert"],
        ctx.inputs["visual"],
        attributes=qu.attributes,
    )
    bm25 = BM25Index.load(ctx.inputs["lexical"])
    clip = load_clip_step(ctx.inputs["clip"], text_enc)
    prompts = json.loads((ctx.inputs["clip"] / CLIP_SPEC_FILE).read_text())["spec"] != COMPACT
    items = pd.read_parquet(world / "items.parquet", columns=["price", "is_new"])
    price, is_new = items["price"].to_numpy(), items["is_new"].to_numpy()

    def signals(text: str) -> QuerySignals:
        """The same understanding and signals as a search of ``text`` (constraints aside)."""
        interp, rewrites, _ = qu.understand(text, price, is_new, clip_prompts=prompts)
        query = Query(text=text, rewrites=rewrites, understood=interp)
        return query_signals(
            query, bm25, builder.keyword_index, lambda t: text_enc.encode_texts([t])[0], clip
        )

    queries = pd.read_parquet(world / "queries.parquet")
    q = pd.read_parquet(world / "qrels.parquet")
    qrels: dict[str, dict[str, int]] = {}
    for qid, item, grade in zip(q["query_id"], q["item_id"], q["grade"]):
        qrels.setdefault(qid, {})[item] = int(grade)
    item_ids = pd.read_parquet(world / "items.parquet", columns=["item_id"])["item_id"].to_numpy()
    train = _dataset(builder, signals, queries[queries["split"] == "train"], qrels, item_ids)
    val = _dataset(builder, signals, queries[queries["split"] == "val"], qrels, item_ids)
    ranker = LambdaMartRanker(
        feature_names=FEATURES, seed=ctx.cfg.seed, threads=ctx.threads
    )
    ranker.fit(*train, X_val=val[0], y_val=val[1], groups_val=val[2])
    ranker.save(out)
    ctx.log(f"  LambdaMART: {ranker.best_iteration_} trees, val NDCG@10 {ranker.val_ndcg_:.3f}")
    return {
        "train_rows": int(len(train[1])),
        "train_queries": int(len(train[2])),
        "val_rows": int(len(val[1])),
        "val_queries": int(len(val[2])),
        "best_iteration": ranker.best_iteration_,
        "val_ndcg@10": round(ranker.val_ndcg_, 4),
        "importances": ranker.importances(),
    }


MIN_TRAIN_QUERIES = 10  # fewer judged training queries cannot train a re-ranker

STEP = register_step(
    Step(
        "ranker",
        1,
        ("world", "lexical", "sbert", "clip", "visual", "query"),
        (),
        run,
        "Hybrid LambdaMART re-ranker (train queries; early-stopped on validation)",
        ("ranking/*.py", "retrieval/hybrid.py"),
        needs_queries(train=MIN_TRAIN_QUERIES, val=1),
        threads=one_thread,
    )
)
