"""How good the vendor tagger is: accuracy and calibration per field, and how its tags overlap.

Evaluation only: these functions compare predictions with the true attributes (the tagger and the
search methods never read them). ECE is the expected calibration error over ten equal-width bins
of the top-1 confidence; the reliability table lists each non-empty bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.world import vocab

FIELDS = vocab.VISUAL_FIELDS


def field_quality(probs: np.ndarray, truth: np.ndarray, bins: int = 10) -> dict:
    """Top-1 and top-2 accuracy, ECE, mean top-1 confidence and a reliability table
    (per non-empty bin: its confidence range, count, mean confidence, accuracy)."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    conf = probs[np.arange(len(truth)), top[:, 0]]
    right = top[:, 0] == truth
    which = np.minimum((conf * bins).astype(int), bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        m = which == b
        if m.any():
            ece += float(m.mean()) * abs(float(conf[m].mean()) - float(right[m].mean()))
            table.append({
                "bin": [round(b / bins, 3), round((b + 1) / bins, 3)],
                "n": int(m.sum()),
                "confidence": round(float(conf[m].mean()), 4),
                "accuracy": round(float(right[m].mean()), 4),
            })
    return {
        "n": int(len(truth)),
        "accuracy": round(float(right.mean()), 4),
        "top2_accuracy": round(float((top == truth[:, None]).any(1).mean()), 4),
        "ece": round(ece, 4),
        "mean_confidence": round(float(conf.mean()), 4),
        "reliability": table,
    }


def quality(probs: dict[str, np.ndarray], truth: np.ndarray) -> dict:
    """:func:`field_quality` of every field; ``truth`` is (N, 3) label indices in FIELDS order."""
    return {f: field_quality(probs[f], truth[:, k]) for k, f in enumerate(FIELDS)}


def truth_indices(items: pd.DataFrame) -> np.ndarray:
    """(N, 3) label indices of the items' true attributes, in FIELDS order."""
    cols = [items[f].map({n: k for k, n in enumerate(vocab.names(f))}) for f in FIELDS]
    return np.stack([c.to_numpy(np.int64) for c in cols], 1)


def tag_overlap(tags: pd.DataFrame, items: pd.DataFrame, words: dict[str, dict[str, str]]) -> dict:
    """The emitted tagger rows against the truth: how many are wrong, and the confidence range of
    right and of wrong tags (per field and overall). ``words``: field -> value -> vendor word."""
    field_of = {w: (f, v) for f, m in words.items() for v, w in m.items()}
    tags = tags[tags["source"] == "tagger"]
    truth = items.set_index("item_id")
    fv = [field_of[w] for w in tags["keyword"]]
    fields = np.array([f for f, _ in fv])
    right = np.array(
        [truth.at[i, f] == v for i, (f, v) in zip(tags["item_id"], fv)], dtype=bool
    )
    conf = tags["confidence"].to_numpy(np.float64)

    def summary(m: np.ndarray) -> dict:
        ok, bad = conf[m & right], conf[m & ~right]
        return {
            "tags": int(m.sum()),
            "wrong": int((m & ~right).sum()),
            "right_confidence": [float(ok.min()), float(ok.max())] if len(ok) else None,
            "wrong_confidence": [float(bad.min()), float(bad.max())] if len(bad) else None,
        }

    return {"all": summary(np.ones(len(tags), bool)), **{f: summary(fields == f) for f in FIELDS}}
