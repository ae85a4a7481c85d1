"""Browsing the catalog: the rows that match the explorer's filters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def filter_rows(
    items: pd.DataFrame,
    *,
    truth: pd.DataFrame | None = None,
    facets: Mapping[str, Sequence[object]] | None = None,
    price: tuple[float, float] | None = None,
    launch: str = "all",
    title_contains: str = "",
) -> np.ndarray:
    """Catalog rows matching every filter: facet values (column -> allowed values; empty = any),
    a price range, ``launch`` ("all", "existing" or "new") and a case-insensitive title text.
    A facet column missing from ``items`` is looked up in ``truth`` (ground truth, row-aligned)."""
    mask = pd.Series(True, index=items.index)
    if price is not None:
        mask &= items["price"].between(*price)
    for column, chosen in (facets or {}).items():
        if chosen:
            source = items if column in items or truth is None else truth
            mask &= source[column].astype(str).isin([str(c) for c in chosen]).to_numpy()
    if launch not in ("all", "existing", "new"):
        raise ValueError(f"unknown launch filter {launch!r}; valid: all, existing, new")
    if launch != "all":
        mask &= items["is_new"] == (launch == "new")
    if title_contains.strip():
        mask &= items["title"].str.contains(title_contains.strip(), case=False, regex=False)
    return np.flatnonzero(mask.to_numpy())
