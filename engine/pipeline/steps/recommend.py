"""Recommenders build step: fit every recommender on the *train* interactions, evaluate on *test*.

Inputs: ``world`` (tables) and, when present, ``visual`` (``clip_items.npy``) and ``sbert``
(``sbert_items.npy``) for the item content features; ``lexical`` (BM25) for the personalised
search evaluation. Each model is saved under ``out/<name>/`` (npy/json/safetensors), sharing the
interaction data and item features saved once in ``out/data/``. The hybrid tunes its blend
weights on a chronological validation split of the train period only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.pipeline.step import Step, StepContext, needs_interactions, one_thread, register_step
from engine.recommend.base import RECOMMENDERS

#: The step's evaluation settings. Each recommender's hyper-parameters are its constructor's
#: defaults; the build only sets the seed and thread counts (``Recommender.build_params``).
SETTINGS: dict[str, Any] = {
    "eval_k": 10,
    "short_history_max": 5,
    "latency_users": 300,
    # At most this many test users (a seeded sample): at seed scale all 43,000 took ~10 min a
    # model (one user at a time over 100,000 items). The demo has 5,000 users: all of them.
    "eval_max_users": 5_000,
    "search_top_n": 50,
    "search_rerank_weight": 0.5,
}


def model_params(seed: int, threads: int) -> dict[str, dict[str, Any]]:
    """Constructor arguments of every registered recommender, in fit order.

    torch models train on one thread: on the shared 2-core box two OpenMP threads were 4-7x
    slower per step under load (measured), and results do not depend on it. A recommender that
    blends others gets their arguments too, so its components match the ones fitted alone.
    """
    from engine.recommend.registry import fit_order, recommender_class

    params: dict[str, dict[str, Any]] = {}
    for name in fit_order():
        cls = recommender_class(name)
        params[name] = cls.build_params(seed=seed, threads=threads)
        if cls.fuses:
            params[name]["params"] = {c: params[c] for c in cls.fuses}
    return params


def _optional(folder: Path | None, name: str) -> np.ndarray | None:
    if folder is None or not (folder / name).is_file():
        return None
    return np.load(folder / name, allow_pickle=False)


def bm25_search(lexical: Path, item_ids: np.ndarray, top_n: int):
    """``query -> (item ids, scores)``: the BM25 top ``top_n`` (for personalised search)."""
    from engine.indexes.bm25 import BM25Index

    bm25 = BM25Index.load(lexical)

    def search(query: str) -> tuple[np.ndarray, np.ndarray]:
        scores = bm25.scores(query)
        rows = np.argsort(-scores, kind="stable")[:top_n]
        return item_ids[rows], scores[rows]

    return search


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    from engine.recommend import InteractionData, content_features, create_recommender
    from engine.recommend.evaluate import evaluate_personalized_search, evaluate_recommenders

    s = SETTINGS
    world = ctx.inputs["world"]
    items = pd.read_parquet(world / "items.parquet")
    users = pd.read_parquet(world / "users.parquet", columns=["user_id"])
    inter = pd.read_parquet(world / "interactions.parquet")
    clip = _optional(ctx.inputs.get("visual"), "clip_items.npy")
    sbert = _optional(ctx.inputs.get("sbert"), "sbert_items.npy")
    keywords = pd.read_parquet(world / "keywords.parquet")
    features = content_features(items, clip, sbert, keywords=keywords)
    data = InteractionData.from_tables(
        items, inter, users=users, features=features, keywords=keywords
    )
    blocks = [n for n, a in (("clip", clip), ("sbert", sbert)) if a is not None]
    ctx.log(f"  features: {' + '.join([*blocks, 'category, tags, price'])} "
            f"({features.shape[1]} dims)")

    data.save(out / "data")  # shared by every model folder (see Recommender.save)
    params = model_params(ctx.cfg.seed, ctx.threads)
    models, fit_seconds = {}, {}
    for name in ctx.progress(list(params), len(params), "fit recommenders", unit="models"):
        t0 = time.perf_counter()
        model = create_recommender(name, **params[name])
        model.fit(data, fitted=models) if model.fuses else model.fit(data)
        fit_seconds[name] = round(time.perf_counter() - t0, 2)
        model.save(out / name, data_folder=out / "data")
        models[name] = model
        ctx.log(f"  {name}: fitted in {fit_seconds[name]:.1f} s")

    test = inter[inter["split"] == "test"]
    t0 = time.perf_counter()
    metrics = evaluate_recommenders(
        models,
        data,
        test,
        k=s["eval_k"],
        new_item_ids=set(items.loc[items["is_new"], "item_id"]),
        short_history_max=s["short_history_max"],
        latency_users=s["latency_users"],
        max_users=s["eval_max_users"],
        seed=ctx.cfg.seed,
    )
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    ctx.log(f"  evaluated {metrics['test_users']:,} test users × {len(models)} models in "
            f"{metrics['seconds']:.1f} s (batched scoring)")
    key = f"recall@{s['eval_k']}"
    for name, res in metrics["models"].items():
        res["fit_seconds"] = fit_seconds[name]
        ctx.log(
            f"  {name}: {key} {res[key]}, cold-start {res['cold_start'][key]}, "
            f"p95 {(res['latency_ms'] or {}).get('p95')} ms"
        )
    info: dict[str, Any] = {
        "features": {"blocks": [*blocks, "category", "tags", "price"],
                     "dim": int(features.shape[1])},
        "train_rows": int(data.matrix.nnz),
        "test_rows": int(len(test)),
        "hybrid": {
            "weights": getattr(models.get("hybrid"), "weights_", None),
            "validation": getattr(models.get("hybrid"), "validation_", None),
        },
        "evaluation": metrics,
    }
    if "lexical" in ctx.inputs and "hybrid" in models:
        sessions = pd.read_parquet(world / "sessions.parquet")
        held_out = sessions[sessions["split"] == "test"]
        info["personalized_search"] = evaluate_personalized_search(
            held_out,
            bm25_search(ctx.inputs["lexical"], data.item_ids, s["search_top_n"]),
            models["hybrid"],
            weight=s["search_rerank_weight"],
            k=s["eval_k"],
        )
    return info


STEP = register_step(
    Step(
        "recommend",
        1,
        ("world", "lexical", "sbert", "visual"),
        (),
        run,
        "every registered recommender, fitted on the train period and evaluated after it",
        RECOMMENDERS.source_patterns(),
        needs_interactions,
        threads=one_thread,
    )
)
