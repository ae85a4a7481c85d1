"""The build steps. Each reads its inputs' folders and writes its outputs into ``out``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import BuildConfig


@dataclass
class StepContext:
    """What a step gets: the config, its dependencies' folders, progress and log callbacks."""

    cfg: BuildConfig
    inputs: dict[str, Path]
    progress: Callable[[Iterable, int, str], Iterable]
    log: Callable[[str], None]


def needs_queries(
    *, train: int = 0, val: int = 0, image_val: int = 0
) -> Callable[[StepContext], str | None]:
    """A step precondition: enough judged queries in each split of the catalog."""

    def check(ctx: StepContext) -> str | None:
        world = ctx.inputs["world"]
        text = pd.read_parquet(world / "queries.parquet", columns=["split"])["split"]
        image = pd.read_parquet(world / "image_queries.parquet", columns=["split"])["split"]
        have = {
            "training queries": ((text == "train").sum(), train),
            "validation queries": ((text == "val").sum(), val),
            "validation image queries": ((image == "val").sum(), image_val),
        }
        short = [f"{n} {what} (needs {need})" for what, (n, need) in have.items() if n < need]
        return f"the catalog has only {', '.join(short)}" if short else None

    return check


def needs_interactions(ctx: StepContext) -> str | None:
    """A step precondition: interactions both before and after the chronological cutoff."""
    split = pd.read_parquet(ctx.inputs["world"] / "interactions.parquet", columns=["split"])
    counts = split["split"].value_counts()
    if counts.get("train", 0) == 0 or counts.get("test", 0) == 0:
        return "the catalog has no interactions before and after the cutoff (ingest an events file)"
    return None


def item_texts(items: pd.DataFrame) -> list[str]:
    """The text every text method indexes: title, description, brand and category."""
    return [
        f"{t}. {d} {b}. {c}."
        for t, d, b, c in zip(
            items["title"], items["description"], items["brand"], items["category"]
        )
    ]


def build_world(ctx: StepContext, out: Path) -> dict[str, Any]:
    if ctx.cfg.source is not None:
        from engine.ingest.source import import_source

        return import_source(ctx.cfg.source.name, ctx.cfg.source.fingerprint, out)
    from engine.world.generate import generate_world

    t0 = time.perf_counter()
    info = generate_world(ctx.cfg, out, ctx.progress)
    info["generate_seconds"] = round(time.perf_counter() - t0, 2)
    return info


def build_lexical(ctx: StepContext, out: Path) -> dict[str, Any]:
    from engine.indexes.bm25 import BM25Index
    from engine.indexes.keywords import KeywordIndex
    from engine.indexes.tfidf import TfidfIndex

    items = pd.read_parquet(ctx.inputs["world"] / "items.parquet")
    texts = item_texts(items)
    t0 = time.perf_counter()
    bm25 = BM25Index(k1=ctx.cfg.text.bm25_k1, b=ctx.cfg.text.bm25_b).fit(texts)
    bm25.save(out)
    t1 = time.perf_counter()
    tfidf = TfidfIndex().fit(texts)
    tfidf.save(out)
    t2 = time.perf_counter()
    keywords = KeywordIndex().fit(
        pd.read_parquet(ctx.inputs["world"] / "keywords.parquet"), items["item_id"].to_numpy()
    )
    keywords.save(out)
    return {
        "keywords_vocab": len(keywords.vocab),
        "bm25_vocab": len(bm25.vocab),
        "tfidf_vocab": len(tfidf.vectorizer.vocabulary_),
        "bm25_seconds": round(t1 - t0, 2),
        "tfidf_seconds": round(t2 - t1, 2),
    }


def build_vector_indexes(
    vectors: np.ndarray, queries: np.ndarray, out: Path, prefix: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """Build flat, HNSW and IVF indexes over ``vectors``; report build time and recall@10."""
    from engine.indexes.vector import INDEX_KINDS, VectorIndex, recall_vs_exact
    from engine.runtime import set_threads

    info: dict[str, Any] = {}
    built = {}
    for kind in INDEX_KINDS:
        t0 = time.perf_counter()
        built[kind] = VectorIndex.build(vectors, kind)
        built[kind].save(out / f"{prefix}_{kind}.faiss")
        info[f"{kind}_build_seconds"] = round(time.perf_counter() - t0, 3)
    set_threads(1)
    for kind in ("hnsw", "ivf"):
        info[f"{kind}_recall@10"] = recall_vs_exact(built[kind], built["flat"], queries, k=10)
        recall = info[f"{kind}_recall@10"]["recall_at_k"]
        log(f"  {prefix} {kind}: recall@10 vs exact = {recall:.3f}")
    return info


def build_sbert(ctx: StepContext, out: Path) -> dict[str, Any]:
    from engine.encoders.text import create_text_encoder
    from engine.runtime import set_threads

    items = pd.read_parquet(ctx.inputs["world"] / "items.parquet")
    queries = pd.read_parquet(ctx.inputs["world"] / "queries.parquet")
    set_threads(ctx.cfg.build_threads)
    t0 = time.perf_counter()
    encoder = create_text_encoder(ctx.cfg.text.sbert_model)
    texts = item_texts(items)
    bs = ctx.cfg.text.encode_batch_size
    chunks = [texts[i : i + bs * 8] for i in range(0, len(texts), bs * 8)]
    vectors = np.concatenate(
        [
            encoder.encode(c, batch_size=bs)
            for c in ctx.progress(chunks, len(chunks), "encode items")
        ]
    ).astype(np.float32)
    encode_s = time.perf_counter() - t0
    np.save(out / "sbert_items.npy", vectors)
    q_vecs = encoder.encode(queries["query"].tolist()[:300], batch_size=bs)
    info = build_vector_indexes(vectors, q_vecs, out, "sbert", ctx.log)
    info.update(
        model=encoder.name,
        dim=int(vectors.shape[1]),
        n=int(vectors.shape[0]),
        encode_seconds=round(encode_s, 2),
        items_per_second=round(len(texts) / max(encode_s, 1e-9), 1),
    )
    return info
