"""Load the Unsplash Lite dataset (https://unsplash.com/data) from its own TSV files.

Reads ``photos.tsv*``, ``keywords.tsv*``, ``conversions.tsv*``, ``colors.tsv*`` and
``collections.tsv*`` (each may be split into numbered parts, e.g. ``photos.tsv000``) from a
folder, and the images from a local folder the user downloaded (``<photo_id>.jpg`` or another
image extension): nothing is fetched from the network.

Mapping into a PixelMatch catalog:

* products: ``photo_id``; title = ``photo_description``, else ``ai_description``; description =
  ``ai_description`` (when it is not already the title) and the location; brand = the
  photographer's username; category = the photo's first collection title; colour = the colour
  keyword with the highest ``ai_score`` in ``colors``; ``photographer``, ``views``
  (``stats_views``), ``downloads`` (``stats_downloads``) and ``photo_image_url`` are kept as
  attributes.
* keywords: confidence = the larger of ``ai_service_1_confidence`` and
  ``ai_service_2_confidence`` (scaled to 0-1); keywords ``suggested_by_user`` get 1.0.
* conversions: ``anonymous_user_id`` downloads ``photo_id`` at ``converted_at`` after searching
  ``keyword``: each becomes an interaction (event = ``conversion_type``) with its query, so the
  chronological split, the sessions and the judged query set come from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.ingest import IngestResult, ProgressFn, ingest_frames
from engine.ingest.report import IngestError, ValidationReport

FILES = ("photos", "keywords", "conversions", "colors", "collections")
REQUIRED = {
    "photos": ("photo_id", "photo_description", "ai_description", "photographer_username"),
    "keywords": (
        "photo_id",
        "keyword",
        "ai_service_1_confidence",
        "ai_service_2_confidence",
        "suggested_by_user",
    ),
    "conversions": ("converted_at", "conversion_type", "keyword", "photo_id", "anonymous_user_id"),
    "colors": ("photo_id", "keyword", "ai_score"),
    "collections": ("photo_id", "collection_title"),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


def read_parts(folder: Path, name: str) -> pd.DataFrame | None:
    """All parts of ``<name>.tsv*`` concatenated (None when the dataset has no such file)."""
    parts = sorted(p for p in Path(folder).glob(f"{name}.tsv*") if p.is_file())
    if not parts:
        return None
    df = pd.concat([_read_tsv(part, name) for part in parts], ignore_index=True)
    missing = [c for c in REQUIRED[name] if c not in df.columns]
    if missing:
        raise IngestError(
            f"{parts[0].name} is not an Unsplash Lite {name} file: missing column(s) "
            f"{', '.join(missing)}."
        )
    return df


def _read_tsv(path: Path, label: str) -> pd.DataFrame:
    """One part (``photos.tsv000``, ...), read as TSV whatever its suffix."""
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:  # parser, encoding and I/O errors alike
        raise IngestError(
            f"{path.name} could not be read as Unsplash TSV ({label}): {exc}"
        ) from exc


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df else pd.Series("", index=df.index)


def _image_names(images: Path) -> dict[str, str]:
    names = {}
    for p in sorted(images.iterdir()) if images.is_dir() else []:
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.stem not in names:
            names[p.stem] = p.name
    return names


def _confidence(df: pd.DataFrame) -> np.ndarray:
    conf = np.fmax(
        pd.to_numeric(df["ai_service_1_confidence"], errors="coerce").to_numpy(float),
        pd.to_numeric(df["ai_service_2_confidence"], errors="coerce").to_numpy(float),
    )
    conf = np.where(conf > 1.0, conf / 100.0, conf)  # the dataset stores percentages
    user = df["suggested_by_user"].str.lower().isin(["t", "true", "1", "yes"]).to_numpy()
    return np.where(user, 1.0, np.nan_to_num(conf, nan=0.0)).clip(0.0, 1.0)


def unsplash_frames(
    folder: Path, images: Path, limit: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """The (catalog, interactions, keywords) frames of an Unsplash Lite folder."""
    photos = read_parts(folder, "photos")
    if photos is None:
        raise IngestError(f"{folder} has no photos.tsv* file: is it the Unsplash Lite folder?")
    if limit is not None:
        photos = photos.head(limit)
    ids = set(photos["photo_id"])
    names = _image_names(Path(images))
    desc, ai = photos["photo_description"].str.strip(), photos["ai_description"].str.strip()
    location = _column(photos, "photo_location_name").str.strip()
    second = np.where((desc != "") & (ai != desc), ai, "")
    catalog = pd.DataFrame(
        {
            "id": photos["photo_id"],
            "title": np.where(desc != "", desc, ai),
            "description": [
                " ".join(x for x in (s, f"Taken in {loc}." if loc else "") if x)
                for s, loc in zip(second, location)
            ],
            "brand": photos["photographer_username"],
            "image": photos["photo_id"].map(names).fillna(photos["photo_id"] + ".jpg"),
            "photographer": _column(photos, "photographer_first_name")
            .str.cat(_column(photos, "photographer_last_name"), sep=" ")
            .str.strip(),
            "views": photos.get("stats_views", ""),
            "downloads": photos.get("stats_downloads", ""),
            "photo_image_url": photos.get("photo_image_url", ""),
        }
    )
    collections = read_parts(folder, "collections")
    if collections is not None:
        first = collections[collections["photo_id"].isin(ids)].groupby("photo_id").first()
        catalog["category"] = catalog["id"].map(first["collection_title"]).fillna("")
    colors = read_parts(folder, "colors")
    if colors is not None:
        colors = colors[colors["photo_id"].isin(ids)].assign(
            score=lambda d: pd.to_numeric(d["ai_score"], errors="coerce").fillna(0.0)
        )
        top = (
            colors.sort_values("score", ascending=False, kind="stable").groupby("photo_id").first()
        )
        catalog["colour"] = catalog["id"].map(top["keyword"]).fillna("").str.lower()

    kw = read_parts(folder, "keywords")
    if kw is None:
        keywords = pd.DataFrame(columns=["item_id", "keyword", "confidence", "source"])
    else:
        kw = kw[kw["photo_id"].isin(ids)]
        keywords = pd.DataFrame(
            {
                "item_id": kw["photo_id"].to_numpy(),
                "keyword": kw["keyword"].str.strip().str.lower().to_numpy(),
                "confidence": _confidence(kw),
                "source": np.where(
                    kw["suggested_by_user"].str.lower().isin(["t", "true"]), "user", "ai"
                ),
            }
        )
        keywords = (
            keywords[keywords["keyword"] != ""]
            .sort_values(["item_id", "confidence"], ascending=[True, False], kind="stable")
            .drop_duplicates(["item_id", "keyword"])
            .reset_index(drop=True)
        )

    conv = read_parts(folder, "conversions")
    interactions = None
    if conv is not None and len(conv):
        interactions = pd.DataFrame(
            {
                "user": conv["anonymous_user_id"],
                "item": conv["photo_id"],
                "event": conv["conversion_type"].replace("", "download"),
                "timestamp": conv["converted_at"],
                "query": conv["keyword"],
            }
        )
    return catalog, interactions, keywords


def ingest_unsplash(
    name: str,
    folder: Path,
    images: Path,
    *,
    limit: int | None = None,
    processes: int = 2,
    progress: ProgressFn | None = None,
) -> IngestResult:
    """Ingest an Unsplash Lite folder (see the module docstring) as the catalog ``name``."""
    catalog, interactions, keywords = unsplash_frames(Path(folder), Path(images), limit)
    return ingest_frames(
        name,
        catalog,
        Path(images),
        interactions=interactions,
        keywords=keywords,
        report=ValidationReport(),
        processes=processes,
        inputs={"unsplash": str(folder), "images": str(images), "limit": str(limit)},
        progress=progress,
    )


__all__ = ["FILES", "ingest_unsplash", "read_parts", "unsplash_frames"]
