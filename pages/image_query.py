"""The image-query picker shared by the image and multimodal pages.

Three sources: an uploaded file (decoded safely by ``engine.imageio``), a catalog product's image,
or one of the sample images shipped in ``assets/samples``. "More like this" on any result switches
the picker to that product's image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from engine.catalog import Catalog
from engine.imageio import DecodedImage, ImageInputError, load_image
from engine.serving.thumbnails import image_uri
from pages.card_html import figure_html
from pages.shared import esc

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"
SOURCES = ("Upload", "Catalog image", "Sample")
QUERY_PX = 440  # the query image's longest side as sent: sharp at 220 px on a 2x screen
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"]


def sample_images() -> list[Path]:
    """Sample query images shipped with the app."""
    return sorted(p for p in SAMPLES_DIR.glob("*") if p.suffix.lower() in (".jpg", ".png"))


def more_like_this(prefix: str, item_id: str) -> None:
    """Callback: use a catalog product's image as the query of the page with ``prefix``."""
    st.session_state[f"{prefix}_source"] = "Catalog image"
    st.session_state[f"{prefix}_item"] = item_id


def _random_item(prefix: str, ids: np.ndarray) -> None:
    rng = np.random.default_rng()
    st.session_state[f"{prefix}_item"] = str(ids[int(rng.integers(len(ids)))])


def image_query_picker(catalog: Catalog, prefix: str) -> DecodedImage | None:
    """Widgets to choose a query image; returns it decoded, or None (with a message shown)."""
    source = st.radio("Image source", SOURCES, horizontal=True, key=f"{prefix}_source")
    try:
        if source == "Upload":
            up = st.file_uploader("Upload an image", type=UPLOAD_TYPES, key=f"{prefix}_upload")
            if up is None:
                st.caption("JPEG, PNG, WebP, GIF, BMP or TIFF; at most 20 MB.")
                return None
            return load_image(up.getvalue())
        if source == "Catalog image":
            ids = catalog.item_ids
            st.session_state.setdefault(f"{prefix}_item", str(ids[0]))
            cols = st.columns([3, 1], vertical_alignment="bottom")
            item_id = cols[0].text_input("Product id", key=f"{prefix}_item").strip()
            cols[1].button(
                "Random", key=f"{prefix}_random", on_click=_random_item, args=(prefix, ids)
            )
            row = catalog.row_of.get(item_id)
            if row is None:
                st.warning(f"No product has the id “{esc(item_id)}” (ids look like {ids[0]}).")
                return None
            return load_image(catalog.image_path(row))
        samples = sample_images()
        if not samples:
            st.info("No sample images are shipped with this copy of the app.")
            return None
        name = st.selectbox("Sample image", [p.name for p in samples], key=f"{prefix}_sample")
        return load_image(SAMPLES_DIR / name)
    except ImageInputError as exc:
        st.error(str(exc))
        return None


def show_query_image(decoded: DecodedImage) -> None:
    """The query image with its original size/mode and any conversion notes. Inline, like the
    result cards: ``st.image`` would encode the decoded image (up to 1024 px) and register a
    media file on every rerun, and the browser would fetch it in a request of its own."""
    st.html(figure_html(image_uri(decoded.image, QUERY_PX), "Query image", width_px=220))
    w, h = decoded.original_size
    st.caption(f"{w}×{h} {esc(decoded.original_mode)} {esc(decoded.format or '')}")
    for note in decoded.notes:
        st.caption(f"ℹ️ {esc(note)}")
