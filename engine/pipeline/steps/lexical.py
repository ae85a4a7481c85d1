"""Lexical step: BM25, TF-IDF and keyword indexes over the catalog's text and tags."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from engine.pipeline.step import Step, StepContext, one_thread, register_step
from engine.schema import item_texts


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
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


STEP = register_step(
    Step(
        "lexical",
        3,
        ("world",),
        ("text",),
        run,
        "BM25, TF-IDF, keywords",
        ("indexes/bm25.py", "indexes/tfidf.py", "indexes/keywords.py", "indexes/tokenize.py"),
        threads=one_thread,
        quick=True,
    )
)
