"""Measure query understanding on a built synthetic catalog (a dev tool, not part of engine).

``python -m bench.query_understanding --world DIR [--lexical DIR] [--out DIR] [--queries N]``

It may read the synthetic world's truth (``engine.world``) because it *grades*; the package it
measures (``engine.query``) never does. Reports, as JSON on stdout:

* mapping accuracy of held-out words (vocab's ``held_out``) and extra out-of-vocabulary words;
* NDCG@10 of BM25 on the original query vs the interpreted lexical rewrite, of the attribute
  score alone (tie-broken by BM25), and of both, on paraphrase / in-vocabulary test queries
  freshly generated from the world (``--queries`` per split);
* interpretation latency p50 / p95 (one thread), cold (empty caches) and warm, with the load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

EXTRA_WORDS = {  # word -> (slot, expected world value or None = should stay free text)
    "burgundy": ("colour", "red"), "mustard": ("colour", "yellow"), "sage": ("colour", "green"),
    "salmon": ("colour", "pink"), "charcoal": ("colour", "black"),
    "dark green": ("colour", "green"), "light blue": ("colour", "blue"),
    "fuchsia": ("colour", "pink"), "camel": ("colour", "beige"), "onyx": ("colour", "black"),
    "pearl": ("colour", "white"), "graphite": ("colour", "grey"), "ruby": ("colour", "red"),
    "sapphire": ("colour", "blue"), "jade": ("colour", "green"), "lilac": ("colour", "purple"),
    "daypack": ("category", "backpack"), "tshirt": ("category", "t-shirt"),
    "t shirt": ("category", "t-shirt"), "sneakres": ("category", "sneakers"),
    "bakcpack": ("category", "backpack"), "fedora": ("category", "hat"),
    "tote": ("category", "handbag"), "loafers": ("category", None),
    "jacket": ("category", None), "stripy": ("pattern", "striped"),
    "polka": ("pattern", "dotted"), "tartan": ("pattern", "checked"),
    "houndstooth": ("pattern", "checked"), "spots": ("pattern", "dotted"),
    "floral": ("pattern", None), "suede": ("material", "leather"),
    "linen": ("material", None), "silk": ("material", None),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--lexical", type=Path, help="a lexical step folder (else BM25 is fitted)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/query-understanding"))
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--no-words", action="store_true", help="skip the precomputed word table")
    args = ap.parse_args(argv)

    from engine.encoders.text import create_text_encoder
    from engine.evaluation.metrics import ndcg_at_k
    from engine.indexes.bm25 import BM25Index
    from engine.query.image_colours import ImageColourStats, compute_image_colour_stats
    from engine.query.interpret import Interpreter
    from engine.query.lexicon import QueryLexicon
    from engine.query.mining import build_lexicon
    from engine.query.rewrite import (
        ItemAttributes,
        attribute_scores,
        build_item_attributes,
        filter_mask,
        lexical_query,
    )
    from engine.query.semantic import WordVectors, query_word_list
    from engine.runtime import set_threads
    from engine.world import vocab
    from engine.world.queries import generate_text_queries, grade_items

    set_threads(1)
    truth = pd.read_parquet(args.world / "items.parquet")
    items = truth.drop(columns=["colour", "pattern", "material", "title_mentions"])
    keywords = pd.read_parquet(args.world / "keywords.parquet")
    encoder = create_text_encoder("all-MiniLM-L6-v2")
    out = args.out
    t0 = time.perf_counter()
    if (out / "query_lexicon.json").exists():
        lex, stats = QueryLexicon.load(out), ImageColourStats.load(out)
        attrs = ItemAttributes.load(out)
    else:
        stats = compute_image_colour_stats([args.world / p for p in items["image_path"]])
        t_img = time.perf_counter() - t0
        lex = build_lexicon(items, keywords, stats, encoder)
        attrs = build_item_attributes(items, keywords, lex, stats)
        lex.save(out)
        stats.save(out)
        attrs.save(out)
        print(json.dumps({"image_stats_s": round(t_img, 2), "items": len(items),
                          "lexicon_s": round(time.perf_counter() - t0 - t_img, 2)}))
    words = None
    if not args.no_words:
        if (out / "query_words.json").exists():
            words = WordVectors.load(out)
        else:
            sessions = pd.read_parquet(args.world / "sessions.parquet")
            words = WordVectors.build(encoder, query_word_list(lex, sessions["query"].tolist()))
            words.save(out)

    # what a catalog value means in the world: the world value whose words name it
    def world_value(slot: str, value: str | None) -> str | None:
        if value is None:
            return None
        field = {"colour": "colour", "category": "category", "pattern": "pattern",
                 "material": "material"}.get(slot)
        if field is None:
            return value
        for t in vocab.FIELDS[field]:
            if value == t.name or value in t.words:
                return t.name
        return value

    report: dict = {"lexicon": lex.summary(), "rejected_colour_words": lex.rejected}

    # mapping accuracy
    interp = Interpreter(lex, encoder, words)
    cases = [(w, f, t.name) for f, terms in vocab.FIELDS.items() for t in terms
             for w in t.held_out]
    cases += [(w, s, v) for w, (s, v) in EXTRA_WORDS.items()]
    rows = []
    for word, slot, expected in cases:
        r = interp.interpret(word)
        got = [p for p in r.positive() if p.slot == slot]
        value = world_value(slot, got[0].value) if got else None
        other = [(p.slot, p.value) for p in r.positive() if p.slot != slot]
        rows.append({"word": word, "slot": slot, "expected": expected, "got": value,
                     "how": got[0].how if got else None,
                     "confidence": got[0].confidence if got else None,
                     "ok": value == expected and not other, "other": other})
    df = pd.DataFrame(rows)
    report["mapping"] = {
        "accuracy": round(float(df["ok"].mean()), 3),
        "by_slot": df.groupby("slot")["ok"].mean().round(3).to_dict(),
        "held_out_accuracy": round(float(df.iloc[: -len(EXTRA_WORDS)]["ok"].mean()), 3),
        "extra_accuracy": round(float(df.iloc[-len(EXTRA_WORDS):]["ok"].mean()), 3),
        "rows": rows,
    }

    # retrieval quality on freshly generated queries
    from engine.config import load_preset

    cfg = load_preset("tiny").world
    cfg = dataclasses.replace(cfg, n_queries_train=10, n_queries_val=10,
                              n_queries_test=args.queries, paraphrase_rate=0.5)
    queries, _ = generate_text_queries(cfg, truth, np.random.default_rng(7))
    queries = queries[queries["split"] == "test"]
    if args.lexical is not None:
        bm25 = BM25Index.load(args.lexical)
    else:
        from engine.build.steps import item_texts

        bm25 = BM25Index().fit(item_texts(truth))
    price, is_new = items["price"].to_numpy(), items["is_new"].to_numpy()
    ids = items["item_id"].to_numpy()
    res: dict[str, dict[str, list[float]]] = {}
    per_query: list[dict] = []
    for q in queries.itertuples():
        grades = grade_items(json.loads(q.attributes), truth)
        qrels = {ids[i]: int(g) for i, g in enumerate(grades) if g > 0}
        it = interp.interpret(q.query)
        base = bm25.scores(q.query)
        rew = bm25.scores(lexical_query(it, lex)) if it.positive() or it.free_text else base
        att = attribute_scores(it, attrs)
        mask = filter_mask(it, price, is_new, attrs)
        runs = {"bm25": base, "bm25_rewrite": rew}
        if att is not None:
            runs["attribute+bm25"] = att + 1e-3 * rew / max(float(rew.max()), 1e-9)
            runs["bm25_rewrite*attribute"] = (rew / max(float(rew.max()), 1e-9) + 0.1) * att
        else:
            runs["attribute+bm25"] = runs["bm25_rewrite*attribute"] = rew
        key = "paraphrase" if q.paraphrase else "in_vocabulary"
        per_query.append({"query": q.query, "attributes": json.loads(q.attributes),
                          "paraphrase": bool(q.paraphrase), "label": it.label()})
        for name, s in runs.items():
            s = s.astype(np.float64).copy()
            if mask is not None:
                s[~mask] = -np.inf
            top = ids[np.argsort(-s, kind="stable")[:10]]
            res.setdefault(name, {}).setdefault(key, []).append(ndcg_at_k(list(top), qrels, 10))
            per_query[-1][name] = round(res[name][key][-1], 3)
    report["ndcg@10"] = {name: {k: round(float(np.mean(v)), 4) for k, v in d.items()}
                         for name, d in res.items()}
    report["per_query"] = per_query
    report["n_queries"] = queries["paraphrase"].value_counts().rename(
        {True: "paraphrase", False: "in_vocabulary"}).to_dict()

    # latency: cold (fresh caches) and warm, one thread
    texts = queries["query"].tolist() + [w for w, _, _ in cases]
    texts += ["crimson knapsack with spots", "red trainers under $50", "cheap boots for my sister",
              "not black handbag", "new arrivals", "between 20 and 40", "🎒", "the",
              " ".join(["word"] * 500)]
    load = os.getloadavg()
    fresh = Interpreter(lex, encoder, words)
    cold = []
    for t in texts:
        t1 = time.perf_counter()
        fresh.interpret(t)
        cold.append((time.perf_counter() - t1) * 1e3)
    warm = []
    for t in texts:
        t1 = time.perf_counter()
        fresh.interpret(t)
        warm.append((time.perf_counter() - t1) * 1e3)
    report["latency_ms"] = {
        "n": len(texts), "loadavg": [round(x, 2) for x in load],
        "cold_p50": round(float(np.percentile(cold, 50)), 3),
        "cold_p95": round(float(np.percentile(cold, 95)), 3),
        "warm_p50": round(float(np.percentile(warm, 50)), 3),
        "warm_p95": round(float(np.percentile(warm, 95)), 3),
        "encoder_calls_cold": fresh.matcher.encoder_calls,
    }
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
