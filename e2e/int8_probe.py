"""Sentence-BERT int8 vs fp32 on catalog-like text, without a build: ``python -m e2e.int8_probe``.

Generates a synthetic 2,000-product world's texts and 200 judged test queries (seed 42, no
images), loads MiniLM at both precisions and measures, on one thread: encode speed (texts/s),
single-query latency p50/p95, cosine agreement of the two precisions' vectors, and NDCG@10 /
top-10 overlap of exact dense search. Writes ``reports/int8_probe.json`` (or ``--out``) with the
date, commit and load average.

When the 1-min load average is above 1.5 at the start it measures nothing: it prints a warning
and writes ``"machine_busy": true`` (``--force`` measures anyway, still flagged busy).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def synthetic_texts(n_items: int, n_queries: int, seed: int = 42):
    """Catalog-like item texts and judged test queries from the world generator (no images).

    The only use of the generator outside the world build step and the sample renderer: it
    makes text to time an encoder on, and its judgments stay inside this probe.
    """
    import numpy as np

    from engine.config import WorldConfig
    from engine.schema import item_texts
    from engine.world.catalog import generate_products
    from engine.world.queries import generate_text_queries

    cfg = WorldConfig(n_items=n_items)
    items = generate_products(cfg, np.random.default_rng(seed))
    queries, qrels_df = generate_text_queries(cfg, items, np.random.default_rng(seed + 1))
    queries = queries[queries["split"] == "test"].head(n_queries)
    qrels: dict[str, dict[str, int]] = {}
    for qid, item, grade in zip(qrels_df["query_id"], qrels_df["item_id"], qrels_df["grade"]):
        qrels.setdefault(qid, {})[item] = int(grade)
    pairs = list(zip(queries["query_id"], queries["query"].astype(str)))
    return item_texts(items), items["item_id"].to_numpy(), pairs, qrels


def main(argv: list[str] | None = None) -> int:
    """Command line: measure (unless the machine is busy) and write the JSON report."""
    from engine.benchmark.int8 import probe, write_probe
    from engine.paths import reports_dir

    p = argparse.ArgumentParser(
        prog="python -m e2e.int8_probe", description=__doc__.splitlines()[0]
    )
    p.add_argument("--items", type=int, default=2_000, help="catalog-like texts to encode")
    p.add_argument("--queries", type=int, default=200, help="single queries to time")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default=None, help="JSON file (default reports/int8_probe.json)")
    p.add_argument("--force", action="store_true", help="measure even on a busy machine")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else reports_dir() / "int8_probe.json"

    def measure():
        texts, item_ids, queries, qrels = synthetic_texts(args.items, args.queries, args.seed)
        return probe(texts, item_ids, queries, qrels)

    command = " ".join(["python -m e2e.int8_probe", *(argv or sys.argv[1:])])
    write_probe(command, out, measure, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
