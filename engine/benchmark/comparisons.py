"""The benchmark's headline claims, each a paired comparison over the same queries.

"A beats B" is said only when the paired bootstrap interval of the difference excludes zero and
the sign-flip test agrees (``engine.evaluation.stats``); otherwise the headline says the two
cannot be told apart on these queries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.evaluation.stats import paired_test

METRIC = "ndcg@10"
HEADLINE_SLICES = ("wording=catalog", "wording=paraphrase", "wording=wild", "visual=True")


def _values(section: dict[str, Any], method: str, ids: list[str] | None) -> np.ndarray:
    values = np.asarray(section["methods"][method]["per_query"][METRIC], dtype=float)
    if ids is None:
        return values
    where = {q: i for i, q in enumerate(section["query_ids"])}
    return values[[where[q] for q in ids]]


def best_two(section: dict[str, Any], ids: list[str] | None) -> list[tuple[str, float]]:
    """Methods by mean NDCG@10 on the queries ``ids`` (all when None), best first."""
    means = {m: float(_values(section, m, ids).mean()) for m in section["methods"]}
    return sorted(means.items(), key=lambda kv: -kv[1])


def compare_best(section: dict[str, Any], name: str, ids: list[str] | None) -> dict | None:
    """The best method on a set of queries against the runner-up, paired."""
    ranked = best_two(section, ids)
    if len(ranked) < 2 or (ids is not None and len(ids) < 2):
        return None
    (a, _), (b, _) = ranked[:2]
    test = paired_test(_values(section, a, ids), _values(section, b, ids), names=(a, b))
    return {"slice": name, "best": a, "runner_up": b, **test.as_dict(), "sentence": test.sentence()}


def headline_comparisons(report: dict[str, Any]) -> dict[str, Any]:
    """Best-vs-runner-up per headline slice (text and image), understanding vs literal per text
    method, and where the overall best stands on wild wording."""
    out: dict[str, Any] = {"metric": METRIC, "text": [], "image": [], "understanding": []}
    text = report["text"]
    if len(text["methods"]) >= 2:
        out["text"].append(compare_best(text, "all", None))
        for name in HEADLINE_SLICES:
            ids = text.get("slice_members", {}).get(name)
            if ids:
                out["text"].append(compare_best(text, name, ids))
        overall_best = best_two(text, None)[0][0]
        wild = text.get("slice_members", {}).get("wording=wild")
        if wild:
            ranked = best_two(text, wild)
            top = ranked[0][0]
            test = paired_test(
                _values(text, overall_best, wild),
                _values(text, top, wild),
                names=(overall_best, top),
            )
            out["best_on_wild"] = {
                "overall_best": overall_best,
                "wild_best": top,
                "rank_on_wild": [m for m, _ in ranked].index(overall_best) + 1,
                "within_interval": overall_best == top or not test.significant,
                **test.as_dict(),
            }
    image = report.get("image", {})
    if len(image.get("methods", {})) >= 2:
        out["image"].append(compare_best(image, "all", None))
    for method, rec in text["methods"].items():
        lit = rec.get("literal")
        if not lit:
            continue
        for name in ("wording=catalog", "wording=wild", "wording=paraphrase"):
            ids = text.get("slice_members", {}).get(name)
            if not ids:
                continue
            where = {q: i for i, q in enumerate(text["query_ids"])}
            pick = [where[q] for q in ids]
            understood = np.asarray(rec["per_query"][METRIC], float)[pick]
            literal = np.asarray(lit["per_query"][METRIC], float)[pick]
            test = paired_test(understood, literal, names=(f"{method}", f"{method} (literal)"))
            out["understanding"].append({"method": method, "slice": name, **test.as_dict()})
    out["text"] = [c for c in out["text"] if c]
    out["image"] = [c for c in out["image"] if c]
    return out
