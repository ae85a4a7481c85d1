"""The embedding map shown on the catalog explorer: items in 2-D, a query and its results on top.

Selecting a point opens that product in the explorer (session key ``ex_open``).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.catalog import Catalog
from engine.components import embedding_spaces
from engine.projection import map_sample
from engine.search import QueryError, search
from pages.shared import catalog_key, embedding_projection, esc

# Embedding space -> (label, the method whose results are highlighted).
SPACES = {
    "clip": ("CLIP image embeddings", "clip"),
    "sbert": ("Sentence-BERT text embeddings", "sbert"),
}
def colour_swatch(name: str) -> str | None:
    """The CSS colour of a colour name (the catalog's colour names are CSS names), or None."""
    from matplotlib.colors import CSS4_COLORS

    return CSS4_COLORS.get(str(name).lower())


def embedding_map(catalog: Catalog) -> None:
    """Draw the map with its controls."""
    spaces = [s for s in SPACES if s in embedding_spaces(catalog)]
    if not spaces:  # a catalog still being built: no embeddings yet
        st.info("The embedding map appears when the catalog's text or image embeddings are "
                "built.")
        return
    c1, c2, c3 = st.columns([2, 1, 2], vertical_alignment="bottom")
    space = c1.selectbox(
        "Embeddings", spaces, key="map_space", format_func=lambda s: SPACES[s][0]
    )
    colour_by = c2.selectbox(
        "Colour by",
        ["category", "colour", "pattern", "is_new"],
        key="map_by",
        format_func=lambda c: f"{c} (ground truth)" if c in ("colour", "pattern") else c,
    )
    query = c3.text_input("Highlight a query", key="map_query", placeholder="e.g. red sneakers")
    label, method = SPACES[space]
    xy, explained = embedding_projection(*catalog_key(), space)
    hits = np.empty(0, dtype=int)
    if query.strip():
        try:
            hits = search(catalog, method, text=query, k=20).rows
        except QueryError as exc:
            st.warning(str(exc))
    rows = map_sample(len(xy), 4000, always=hits)
    source = catalog.items if colour_by in catalog.items else catalog.truth
    items = source.iloc[rows]
    fig = go.Figure()
    for value in sorted(items[colour_by].astype(str).unique()):
        sel = rows[(items[colour_by].astype(str) == value).to_numpy()]
        fig.add_trace(
            go.Scattergl(
                x=xy[sel, 0],
                y=xy[sel, 1],
                mode="markers",
                name=value,
                customdata=sel,
                text=catalog.items["title"].iloc[sel],
                hovertemplate="%{text}<extra>" + value + "</extra>",
                marker={
                    "size": 5,
                    "opacity": 0.55,
                    "color": colour_swatch(value) if colour_by == "colour" else None,
                    "line": {"width": 0.3, "color": "#555"} if colour_by == "colour" else None,
                },
            )
        )
    if len(hits):
        fig.add_trace(
            go.Scattergl(
                x=xy[hits, 0],
                y=xy[hits, 1],
                mode="markers",
                name=f"results: {query[:30]}",
                customdata=hits,
                text=catalog.items["title"].iloc[hits],
                hovertemplate="%{text}<extra>result</extra>",
                marker={
                    "size": 13,
                    "symbol": "star",
                    "color": "#ffd400",
                    "line": {"width": 1.2, "color": "#111"},
                },
            )
        )
    fig.update_layout(
        height=560,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"itemsizing": "constant"},
        dragmode="pan",
        title={
            "text": f"PCA of {label.lower()} ({explained[0]:.0%} + {explained[1]:.0%} of variance)",
            "font": {"size": 13},
        },
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    chart_key = f"map_chart_{st.session_state.get('map_version', 0)}"
    event = st.plotly_chart(fig, key=chart_key, on_select="rerun", selection_mode="points")
    points = event.get("selection", {}).get("points", []) if event else []
    if points and "customdata" in points[0]:
        row = int(points[0]["customdata"])
        if st.session_state.get("ex_open") != row:
            st.session_state["ex_open"] = row
            st.rerun()
    st.caption(
        f"Showing {len(rows):,} of {len(xy):,} products. Select a point to open it."
        + (f" Stars: the top {len(hits)} results for “{esc(query)}”." if len(hits) else "")
    )
