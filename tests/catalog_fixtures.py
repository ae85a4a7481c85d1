"""Small input files for the ingest tests: a user's catalog and an Unsplash Lite folder.

Both are generated (seeded) by the tests themselves, in exactly the input formats: a products
CSV + images folder + events CSV, and Unsplash Lite's ``*.tsv000`` files with their own columns.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (200, 30, 40), "blue": (30, 60, 200), "green": (40, 160, 60),
           "yellow": (230, 210, 40), "black": (20, 20, 20), "white": (240, 240, 240)}
CATEGORIES = ("mug", "lamp", "chair", "vase")
EVENTS = ("view", "click", "add_to_cart", "purchase")


def draw(category: str, colour: str, size: int = 96, seed: int = 0) -> Image.Image:
    """A simple product picture: a coloured shape per category on a light background."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(x) for x in rng.integers(215, 250, 3)))
    d, rgb, m = ImageDraw.Draw(img), COLOURS[colour], size // 6
    if category == "mug":
        d.rectangle((m, 2 * m, 4 * m, 5 * m), fill=rgb)
    elif category == "lamp":
        d.polygon([(3 * m, m), (m, 3 * m), (5 * m, 3 * m)], fill=rgb)
    elif category == "chair":
        d.rectangle((m, m, 2 * m, 5 * m), fill=rgb)
        d.rectangle((m, 3 * m, 5 * m, 4 * m), fill=rgb)
    else:
        d.ellipse((2 * m, m, 4 * m, 5 * m), fill=rgb)
    return img


def write_user_catalog(folder: Path, n_items: int = 160, n_users: int = 40,
                       n_events: int = 1500, seed: int = 0) -> dict[str, Path]:
    """A clean products.csv + images/ + events.csv (with search queries) under ``folder``."""
    rng = np.random.default_rng(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_items):
        cat, col = CATEGORIES[i % len(CATEGORIES)], list(COLOURS)[(i // 4) % len(COLOURS)]
        draw(cat, col, seed=i).save(images / f"img{i:04d}.jpg", quality=90)
        rows.append({"id": f"sku{i:04d}", "title": f"{col.title()} {cat} model {i}",
                     "description": f"A {col} {cat} for the home.", "category": cat,
                     "price": f"{10 + i % 40}.99", "brand": f"Brand{i % 5}", "colour": col,
                     "keywords": f"{cat};{col}", "image": f"img{i:04d}.jpg"})
    _write_csv(folder / "products.csv", rows)
    events, t0 = [], 1_700_000_000
    for e in range(n_events):
        i = int(rng.integers(n_items))
        cat, col = rows[i]["category"], rows[i]["colour"]
        query = f"{col} {cat}" if rng.random() < 0.5 else ""
        events.append({"user": f"user{int(rng.integers(n_users)):03d}", "item": rows[i]["id"],
                       "event": EVENTS[int(rng.integers(len(EVENTS)))],
                       "timestamp": t0 + e * 600, "query": query})
    _write_csv(folder / "events.csv", events)
    return {"catalog": folder / "products.csv", "images": images,
            "interactions": folder / "events.csv"}


def _write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)


PHOTO_COLUMNS = (
    "photo_id", "photo_url", "photo_image_url", "photo_submitted_at", "photo_featured",
    "photo_width", "photo_height", "photo_aspect_ratio", "photo_description",
    "photographer_username", "photographer_first_name", "photographer_last_name",
    "exif_camera_make", "exif_camera_model", "exif_iso", "exif_aperture_value",
    "exif_focal_length", "exif_exposure_time", "photo_location_name",
    "photo_location_latitude", "photo_location_longitude", "photo_location_country",
    "photo_location_city", "stats_views", "stats_downloads", "ai_description",
    "ai_primary_landmark_name", "ai_primary_landmark_latitude",
    "ai_primary_landmark_longitude", "ai_primary_landmark_confidence", "blur_hash",
)


def write_unsplash(folder: Path, n_photos: int = 120, n_users: int = 30,
                   n_conversions: int = 900, seed: int = 0) -> dict[str, Path]:
    """An Unsplash Lite folder (``*.tsv000`` with the dataset's columns) and an images folder.

    Two photos have no downloaded image (as when a user fetched only part of the dataset).
    """
    rng = np.random.default_rng(seed)
    data, images = folder / "unsplash-lite", folder / "unsplash-images"
    data.mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    photos, keywords, colors, collections, conversions = [], [], [], [], []
    for i in range(n_photos):
        pid = f"Ph{i:05d}xYz"
        cat, col = CATEGORIES[i % 4], list(COLOURS)[(i // 4) % len(COLOURS)]
        if i not in (7, 8):
            draw(cat, col, size=160, seed=100 + i).save(images / f"{pid}.jpg", quality=90)
        photo = dict.fromkeys(PHOTO_COLUMNS, "")
        photo.update(photo_id=pid, photo_url=f"https://unsplash.com/photos/{pid}",
                     photo_image_url=f"https://images.unsplash.com/photo-{pid}",
                     photo_submitted_at="2020-01-01 00:00:00", photo_featured="t",
                     photo_width="4000", photo_height="3000", photo_aspect_ratio="1.33",
                     photo_description="" if i % 3 == 0 else f"a {col} {cat} on a table",
                     photographer_username=f"shooter{i % 7}",
                     photographer_first_name=f"Ann{i % 7}", photographer_last_name="Lee",
                     stats_views=str(1000 + 13 * i), stats_downloads=str(10 + i),
                     ai_description=f"{col} {cat} indoors",
                     photo_location_name="Oslo, Norway" if i % 5 == 0 else "")
        photos.append(photo)
        keywords += [
            {"photo_id": pid, "keyword": cat, "ai_service_1_confidence": "97.5",
             "ai_service_2_confidence": "", "suggested_by_user": "f"},
            {"photo_id": pid, "keyword": col, "ai_service_1_confidence": "",
             "ai_service_2_confidence": "88.25", "suggested_by_user": "f"},
            {"photo_id": pid, "keyword": "home", "ai_service_1_confidence": "",
             "ai_service_2_confidence": "", "suggested_by_user": "t"},
        ]
        colors.append({"photo_id": pid, "hex": "#000000", "red": "0", "green": "0",
                       "blue": "0", "keyword": col, "ai_coverage": "0.6", "ai_score": "0.9"})
        colors.append({"photo_id": pid, "hex": "#ffffff", "red": "255", "green": "255",
                       "blue": "255", "keyword": "white", "ai_coverage": "0.3",
                       "ai_score": "0.1"})
        collections.append({"photo_id": pid, "collection_id": f"c{i % 4}",
                            "collection_title": f"{cat.title()}s",
                            "photo_collected_at": "2020-02-01 00:00:00"})
    for e in range(n_conversions):
        i = int(rng.integers(n_photos))
        cat, col = CATEGORIES[i % 4], list(COLOURS)[(i // 4) % len(COLOURS)]
        query = [cat, col, f"{col} {cat}"][int(rng.integers(3))]
        day, sec = divmod(e * 3000, 86400)
        hh, rem = divmod(sec, 3600)
        conversions.append({
            "converted_at": f"2021-{1 + day // 28:02d}-{1 + day % 28:02d} "
                            f"{hh:02d}:{rem // 60:02d}:{rem % 60:02d}.000",
            "conversion_type": "download", "keyword": query, "photo_id": photos[i]["photo_id"],
            "anonymous_user_id": f"anon-{int(rng.integers(n_users)):04d}",
            "conversion_country": "NO"})
    for name, rows in (("photos", photos), ("keywords", keywords), ("colors", colors),
                       ("collections", collections), ("conversions", conversions)):
        _write_csv(data / f"{name}.tsv000", rows, delimiter="\t")
    return {"folder": data, "images": images}


def copy_catalog(data_dir: Path, dest_data: Path, name: str = "tiny", source: str = "tiny") -> Path:
    """A private copy of the session's built ``source`` catalog as ``dest_data/artifacts/name``."""
    root = dest_data / "artifacts" / name
    shutil.copytree(data_dir / "artifacts" / source, root,
                    ignore=shutil.ignore_patterns(".build.lock"))
    return root


def app_page(catalog: str, page: str | None = None, timeout: float = 180):
    """An AppTest of the app on ``catalog`` (then switched to ``page``), run with no exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"),
                           default_timeout=timeout)
    at.session_state["catalog_name"] = catalog
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def with_truth(catalog):
    """A catalog's items with their ground-truth attributes joined back (tests grade with it)."""
    return catalog.items.merge(catalog.truth, on="item_id", how="left")
