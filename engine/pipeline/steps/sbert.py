"""SBERT step: Sentence-BERT embeddings of every item's text, and their FAISS indexes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.encoders.base import distinct_longest_first
from engine.pipeline.indexing import build_vector_indexes
from engine.pipeline.step import Step, StepContext, register_step
from engine.schema import item_texts


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    from engine.encoders.onnx_text import item_text_encoder
    from engine.runtime import set_threads

    items = pd.read_parquet(ctx.inputs["world"] / "items.parquet")
    queries = pd.read_parquet(ctx.inputs["world"] / "queries.parquet")
    set_threads(ctx.threads)
    t0 = time.perf_counter()
    encoder = item_text_encoder(ctx.cfg.text, threads=ctx.threads)
    texts = item_texts(items)
    # Each distinct text once, longest first, so that a batch's texts pad to similar lengths.
    unique, rows = distinct_longest_first(texts)
    bs = ctx.cfg.text.encode_batch_size
    chunks = [unique[i : i + bs * 8] for i in range(0, len(unique), bs * 8)]
    encoded = np.concatenate(
        [
            encoder.encode_texts(c, batch_size=bs)
            for c in ctx.progress(chunks, len(unique), "encode items", unit="texts", size=len)
        ]
    ).astype(np.float32)
    vectors = encoded[rows]
    encode_s = time.perf_counter() - t0
    np.save(out / "sbert_items.npy", vectors)
    # Titles too (each distinct title once): the compact CLIP's training captions reuse them.
    titles, title_rows = distinct_longest_first(
        items["title"].fillna("").astype(str).str.strip().tolist()
    )
    title_vecs = encoder.encode_texts(titles, batch_size=bs)
    np.save(out / "sbert_titles.npy", title_vecs[title_rows].astype(np.float32))
    q_vecs = encoder.encode_texts(queries["query"].tolist()[:300], batch_size=bs)
    info = build_vector_indexes(vectors, q_vecs, out, "sbert", ctx.log, ctx.cfg.index)
    info.update(
        model=encoder.name,
        precision=ctx.cfg.text.sbert_precision,
        runtime=getattr(encoder, "runtime", None),
        compute=getattr(encoder, "compute", "fp32"),
        distinct_texts=len(unique),
        dim=int(vectors.shape[1]),
        n=int(vectors.shape[0]),
        encode_seconds=round(encode_s, 2),
        items_per_second=round(len(texts) / max(encode_s, 1e-9), 1),
    )
    return info


STEP = register_step(
    Step(
        "sbert",
        1,
        ("world",),
        ("text", "index"),
        run,
        "Sentence-BERT embeddings + FAISS",
        (
            "encoders/text.py",
            "encoders/onnx_text.py",
            "encoders/wordpiece.py",
            "encoders/base.py",
            "compute.py",
            "indexes/vector.py",
            "indexes/tuning.py",
            "pipeline/indexing.py",
        ),
    )
)
