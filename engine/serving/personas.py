"""Demo users for the For you page: a few users whose tastes are easy to recognise.

In the synthetic world they are picked from each user's GROUND-TRUTH tastes (``user_truth``:
the world's latent preferences, which no recommender sees) so a stakeholder can check that the
recommendations fit them. An ingested catalog has no such truth: its most active users are used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PERSONAS = (("red", "sneakers"), ("navy", "backpack"), ("pink", "dress"), ("black", "boots"))


def personas(user_truth: pd.DataFrame, interactions: pd.DataFrame, min_history: int = 5) -> dict:
    """``{"loves red sneakers": user_id, ...}``: the users whose true tastes fit best."""
    counts = interactions[interactions["split"] == "train"]["user_id"].value_counts()
    if "pref_category" not in user_truth:  # no latent tastes: the most active users
        top = counts[counts >= min_history].head(3)
        return {f"{n} interactions ({uid})": str(uid) for uid, n in top.items()}
    ok = user_truth["user_id"].map(counts).fillna(0).to_numpy() >= min_history
    pc = np.stack(user_truth["pref_category"].to_numpy())
    pcol = np.stack(user_truth["pref_colour"].to_numpy())
    categories = _levels(user_truth, "pref_category", "top_category", pc)
    colours = _levels(user_truth, "pref_colour", "top_colour", pcol)
    out = {}
    for colour, category in PERSONAS:
        if colour not in colours or category not in categories:
            continue
        fit = pcol[:, colours.index(colour)] * pc[:, categories.index(category)]
        fit[~ok] = -1
        out[f"loves {colour} {category}"] = str(user_truth["user_id"].iat[int(np.argmax(fit))])
    return out


def _levels(users: pd.DataFrame, pref: str, top: str, prefs: np.ndarray) -> list[str]:
    """The value names of a preference vector's columns, read off the users whose top value
    is known: column argmax -> name."""
    names: dict[int, str] = {}
    for vec, name in zip(prefs, users[top]):
        names.setdefault(int(np.argmax(vec)), str(name))
    return [names.get(i, f"#{i}") for i in range(prefs.shape[1])]
