"""Fusion build step: tune early/late weights on validation queries, train the fusion MLP.

Only the validation query sets are used for tuning and only the catalog's own caption/image pairs
for training; test queries are never seen here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.evaluation.metrics import ndcg_at_k
from engine.pipeline.indexing import build_vector_indexes
from engine.pipeline.step import Step, StepContext, needs_queries, one_thread, register_step
from engine.schema import item_texts

GRID = tuple(round(x, 2) for x in np.linspace(0.0, 0.9, 10))
ATTR_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # weight of the attribute score (query understanding)
MLP_TEXT_PAIRS = 8000


def _qrels(df: pd.DataFrame) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for qid, item, grade in zip(df["query_id"], df["item_id"], df["grade"]):
        out.setdefault(qid, {})[item] = int(grade)
    return out


def _mean_ndcg(scores: np.ndarray, qids: list[str], qrels: dict, item_ids: np.ndarray) -> float:
    top = np.argsort(-scores, axis=1)[:, :10]
    return float(
        np.mean([ndcg_at_k(item_ids[t], qrels.get(q, {}), k=10) for t, q in zip(top, qids)])
    )


def _late_ndcg(sims: dict[str, np.ndarray], w: dict[str, float], qids, qrels, item_ids) -> float:
    from engine.retrieval.fusion import LATE_POOL, late_fuse
    from engine.vectors import top_k

    vals = []
    for j, q in enumerate(qids):
        signals = {n: top_k(s[j], LATE_POOL) for n, s in sims.items()}
        pool, fused = late_fuse(signals, w)
        order, _ = top_k(fused, 10)
        vals.append(ndcg_at_k(item_ids[pool[order]], qrels.get(q, {}), k=10))
    return float(np.mean(vals))


def _attr_ndcg(
    base: np.ndarray, attrs: list, w: float, qids, qrels, item_ids, pool: int
) -> float:
    """Mean NDCG@10 when each query's top ``pool`` by ``base`` is re-ranked by base + w x the
    attribute score (``engine.retrieval.fusion.attribute_rerank``, the same arithmetic)."""
    from engine.retrieval.fusion import blend_attributes
    from engine.vectors import top_k

    vals = []
    for j, q in enumerate(qids):
        rows, scores = top_k(base[j], pool)
        a = attrs[j][rows] if attrs[j] is not None else None
        rows, _ = blend_attributes(rows, scores, a, w)
        vals.append(ndcg_at_k(item_ids[rows[:10]], qrels.get(q, {}), k=10))
    return float(np.mean(vals))


def _tune_attr(name: str, base: np.ndarray, attrs: list, qids, qrels, item_ids, log):
    from engine.retrieval.fusion import ATTR_POOL

    curve = {
        str(w): round(_attr_ndcg(base, attrs, w, qids, qrels, item_ids, ATTR_POOL), 4)
        for w in ATTR_GRID
    }
    best = max(ATTR_GRID, key=lambda w: (curve[str(w)], -w))
    log(f"  {name}: attribute weight {best} (val NDCG@10 {curve[str(best)]:.3f})")
    return best, curve


def _tune(name: str, fn, log) -> tuple[float, dict[str, float]]:
    curve = {str(x): round(fn(x), 4) for x in GRID}
    best = max(GRID, key=lambda x: (curve[str(x)], -x))
    log(f"  {name}: best weight {best} (val NDCG@10 {curve[str(best)]:.3f})")
    return best, curve


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    from engine.encoders.clip import load_clip_step
    from engine.encoders.fusion_mlp import project, save_fusion_mlp, train_fusion_mlp
    from engine.encoders.onnx_text import text_encoder_for
    from engine.query import QueryUnderstanding, attribute_scores
    from engine.runtime import set_threads

    world, vis = ctx.inputs["world"], ctx.inputs["visual"]
    items = pd.read_parquet(world / "items.parquet")
    item_ids = items["item_id"].to_numpy()
    queries = pd.read_parquet(world / "queries.parquet")
    image_q = pd.read_parquet(world / "image_queries.parquet")
    sbert_items = np.load(ctx.inputs["sbert"] / "sbert_items.npy")
    clip_items = np.load(vis / "clip_items.npy")
    colour_items = np.load(vis / "colour_items.npy")
    dims = (sbert_items.shape[1], clip_items.shape[1], colour_items.shape[1])
    set_threads(ctx.threads)
    text_enc = text_encoder_for(ctx.cfg.text, threads=ctx.threads)
    clip = load_clip_step(ctx.inputs["clip"], text_enc)

    val = queries[queries["split"] == "val"]
    qids, texts = val["query_id"].tolist(), val["query"].tolist()
    qrels = _qrels(pd.read_parquet(world / "qrels.parquet"))
    # Validation queries are understood as a search understands them (engine.query): the dense
    # rewrite for SBERT and CLIP, and each item's attribute score for the attribute weight.
    qu = QueryUnderstanding.load(ctx.inputs["query"], text_enc)
    price, is_new = items["price"].to_numpy(), items["is_new"].to_numpy()
    understood = [qu.understand(t, price, is_new) for t in texts]
    dense = [rw.get("dense", t) for (_, rw, _), t in zip(understood, texts)]
    attrs = [attribute_scores(interp, qu.attributes) for interp, _, _ in understood]
    # Each validation query is encoded once per encoder and reused below.
    s_val = text_enc.encode_texts(dense)
    c_val = clip.encode_texts_with(dense, s_val)
    ss = s_val @ sbert_items.T
    sc = c_val @ clip_items.T
    ival = (image_q["split"] == "val").to_numpy()
    iqids = image_q.loc[ival, "query_id"].tolist()
    iqrels = _qrels(pd.read_parquet(world / "image_qrels.parquet"))
    ic = np.load(vis / "clip_image_queries.npy")[ival] @ clip_items.T
    ih = np.load(vis / "colour_image_queries.npy")[ival] @ colour_items.T

    def ratio(x: float) -> float:
        return x / (1 - x)

    a_e, early_text = _tune(
        "early/text", lambda x: _mean_ndcg(ratio(x) * ss + sc, qids, qrels, item_ids), ctx.log
    )
    c_e, early_img = _tune(
        "early/image", lambda x: _mean_ndcg(ic + ratio(x) * ih, iqids, iqrels, item_ids), ctx.log
    )
    a_l, late_text = _tune(
        "late/text",
        lambda x: _late_ndcg(
            {"sbert": ss, "clip": sc}, {"sbert": x, "clip": 1 - x}, qids, qrels, item_ids
        ),
        ctx.log,
    )
    c_l, late_img = _tune(
        "late/image",
        lambda x: _late_ndcg(
            {"clip": ic, "colour": ih}, {"clip": 1 - x, "colour": x}, iqids, iqrels, item_ids
        ),
        ctx.log,
    )

    w_early, attr_early = _tune_attr(
        "early/attributes", ratio(a_e) * ss + sc, attrs, qids, qrels, item_ids, ctx.log
    )
    early_items = np.concatenate(
        [np.sqrt(ratio(a_e)) * sbert_items, clip_items, np.sqrt(ratio(c_e)) * colour_items], axis=1
    ).astype(np.float32)
    info: dict[str, Any] = {
        "early_index": build_vector_indexes(
            early_items,
            np.concatenate(
                [
                    np.sqrt(ratio(a_e)) * s_val[:50],
                    c_val[:50],
                    np.zeros((min(50, len(texts)), dims[2]), np.float32),
                ],
                axis=1,
            ),
            out,
            "early",
            ctx.log,
            ctx.cfg.index,
        )
    }

    # The fusion MLP: caption -> item pairs (what the catalog says about an item: its title or
    # its full text, embedded once by the sbert step) and same-look image -> item pairs.
    rng = np.random.default_rng(np.random.SeedSequence([ctx.cfg.seed, 21]))
    pick = np.sort(rng.choice(len(items), size=min(MLP_TEXT_PAIRS, len(items)), replace=False))
    use_title = rng.random(len(pick)) < 0.5
    titles = np.load(ctx.inputs["sbert"] / "sbert_titles.npy")
    cap_vecs = np.where(use_title[:, None], titles[pick], sbert_items[pick]).astype(np.float32)
    cap_text = [
        t if u else x
        for t, x, u in zip(
            items["title"].to_numpy()[pick], np.asarray(item_texts(items))[pick], use_title
        )
    ]
    q_text = np.concatenate(
        [cap_vecs, clip.encode_texts_with(cap_text, cap_vecs), np.zeros((len(pick), dims[2]))],
        axis=1,
    ).astype(np.float32)
    # Same-look pairs: the same merchant category and the same top tagger colour and pattern.
    keywords = pd.read_parquet(world / "keywords.parquet")
    partner = _same_look_partners(look_keys(items, keywords), rng)
    has = partner >= 0
    q_img = np.concatenate(
        [
            np.zeros((has.sum(), dims[0]), np.float32),
            clip_items[partner[has]],
            colour_items[partner[has]],
        ],
        axis=1,
    )
    item_feats = np.concatenate([sbert_items, clip_items, colour_items], axis=1)
    model, stats = train_fusion_mlp(
        np.concatenate([q_text, q_img]),
        np.concatenate([pick, np.flatnonzero(has)]),
        item_feats,
        seed=ctx.cfg.seed,
    )
    ctx.log(f"  fusion MLP: loss {stats['initial_loss']} -> {stats['final_loss']}")
    save_fusion_mlp(model, out, stats)
    mlp_items = project(model, item_feats, side="item")
    val_q = np.concatenate(
        [
            s_val,
            c_val,
            np.zeros((len(texts), dims[2]), np.float32),
        ],
        axis=1,
    )
    mlp_val = project(model, val_q, side="query")
    stats["val_ndcg@10"] = round(_mean_ndcg(mlp_val @ mlp_items.T, qids, qrels, item_ids), 4)
    w_mlp, attr_mlp = _tune_attr(
        "mlp/attributes", mlp_val @ mlp_items.T, attrs, qids, qrels, item_ids, ctx.log
    )
    late_scores = _late_scores({"sbert": ss, "clip": sc}, {"sbert": a_l, "clip": 1 - a_l})
    w_late, attr_late = _tune_attr(
        "late/attributes", late_scores, attrs, qids, qrels, item_ids, ctx.log
    )
    info["mlp_index"] = build_vector_indexes(
        mlp_items, mlp_val, out, "mlp", ctx.log, ctx.cfg.index
    )
    params = {
        "dims": list(dims),
        "early": {
            "text": {"sbert": ratio(a_e), "colour": 0.0},
            "image": {"sbert": ratio(a_e), "colour": ratio(c_e)},
        },
        "late": {
            "text": {"sbert": a_l, "clip": 1 - a_l},
            "image": {"sbert": a_l, "clip": 1 - c_l, "colour": c_l},
        },
        "attributes": {"early": w_early, "late": w_late, "mlp": w_mlp},
        "tuning": {
            "grid": list(GRID),
            "attribute_grid": list(ATTR_GRID),
            "attributes_early": attr_early,
            "attributes_late": attr_late,
            "attributes_mlp": attr_mlp,
            "early_text": early_text,
            "early_image": early_img,
            "late_text": late_text,
            "late_image": late_img,
        },
        "mlp": stats,
    }
    (out / "fusion.json").write_text(json.dumps(params, indent=2))
    return {
        **info,
        "weights": {k: params[k] for k in ("early", "late", "attributes")},
        "mlp": stats,
    }


def _late_scores(sims: dict[str, np.ndarray], w: dict[str, float]) -> np.ndarray:
    """Late-fusion scores of every item (the pool's z-scores; -inf outside each pool)."""
    from engine.retrieval.fusion import LATE_POOL, late_fuse
    from engine.vectors import top_k

    n = next(iter(sims.values())).shape
    out = np.full(n, -np.inf, np.float32)
    for j in range(n[0]):
        signals = {name: top_k(s[j], LATE_POOL) for name, s in sims.items()}
        pool, fused = late_fuse(signals, w)
        out[j, pool] = fused
    return out


def look_keys(items: pd.DataFrame, keywords: pd.DataFrame) -> np.ndarray:
    """Each item's "look": its merchant category and its most confident colour and pattern tags
    from the image tagger. Items without both tags get a unique key (no same-look partner)."""
    key = items["category"].astype(str).to_numpy().astype(object)
    unique = items["item_id"].astype(str).to_numpy()
    if "field" not in keywords:
        return unique
    for field in ("colour", "pattern"):
        tags = keywords[keywords["field"] == field]
        best = tags.loc[tags.groupby("item_id")["confidence"].idxmax(), ["item_id", "keyword"]]
        top = items["item_id"].map(best.set_index("item_id")["keyword"])
        missing = top.isna().to_numpy()
        key = np.where(missing, unique, key + "|" + top.fillna("").to_numpy())
    return key.astype(str)


def _same_look_partners(look: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each item, another item with the same category, colour and pattern (-1 if none)."""
    partner = np.full(len(look), -1)
    order = np.argsort(look, kind="stable")
    groups = np.split(order, np.flatnonzero(look[order][1:] != look[order][:-1]) + 1)
    for g in groups:
        if len(g) > 1:
            shuffled = rng.permutation(g)
            partner[shuffled] = np.roll(shuffled, 1)
    return partner


STEP = register_step(
    Step(
        "fusion",
        1,
        ("world", "sbert", "clip", "visual", "query"),
        ("text", "index"),
        run,
        "fusion weights (tuned on validation) and the fusion MLP",
        (
            "encoders/fusion_mlp.py",
            "encoders/fusion_towers.py",
            "retrieval/fusion.py",
            "indexes/vector.py",
            "indexes/tuning.py",
            "pipeline/indexing.py",
        ),
        needs_queries(val=1, image_val=1),
        threads=one_thread,
    )
)
