"""Query step: what the catalog's words and pictures mean, for understanding typed queries.

Mines the query lexicon from the catalog alone (titles, descriptions, merchant categories, the
image tagger's tags, the images' colours; see ``engine/query/``), the per-item evidence for each
term, and the text encoder's vectors of the words people may type (the encoder's vocabulary,
the colour table, the catalog's words and the training period's logged queries). Never the
judged query sets: their words stay unseen.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from engine.pipeline.step import Step, StepContext, one_thread, register_step


def run(ctx: StepContext, out: Path) -> dict[str, Any]:
    from engine.encoders.onnx_text import text_encoder_for
    from engine.query import (
        WordVectors,
        build_item_attributes,
        build_lexicon,
        compute_image_colour_stats,
        query_word_list,
        save_artifacts,
    )
    from engine.runtime import set_threads

    world = ctx.inputs["world"]
    items = pd.read_parquet(world / "items.parquet")
    keywords = pd.read_parquet(world / "keywords.parquet")
    sessions = pd.read_parquet(world / "sessions.parquet", columns=["query", "split"])
    logged = sessions.loc[sessions["split"] == "train", "query"].astype(str).tolist()
    set_threads(ctx.threads)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    stats = compute_image_colour_stats([world / p for p in items["image_path"]], ctx.progress)
    timings["image_colours_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    encoder = text_encoder_for(ctx.cfg.text, threads=ctx.threads)
    lexicon = build_lexicon(items, keywords, stats, encoder)
    attrs = build_item_attributes(items, keywords, lexicon, stats)
    timings["lexicon_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    word_list = query_word_list(
        lexicon, logged, include_encoder_vocabulary=ctx.cfg.text.query_vocabulary
    )
    words = WordVectors.build(encoder, word_list, progress=ctx.progress)
    timings["word_vectors_s"] = round(time.perf_counter() - t0, 2)
    save_artifacts(out, lexicon, stats, attrs, words)
    terms = {
        slot: sorted(t.value for t in lexicon.slot_terms(slot))
        for slot in ("category", "colour", "pattern", "material")
    }
    for slot, values in terms.items():
        more = "…" if len(values) > 8 else ""
        ctx.log(f"  {slot}: {len(values)} terms ({', '.join(values[:8])}{more})")
    return {"terms": terms, "n_words": len(words.words), "timings": timings}


STEP = register_step(
    Step(
        "query",
        1,
        ("world",),
        ("text",),
        run,
        "query understanding: the catalog's lexicon, item evidence and word vectors",
        ("query/*.py", "encoders/text.py", "encoders/onnx_text.py", "encoders/wordpiece.py"),
        threads=one_thread,
    )
)
