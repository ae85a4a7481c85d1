"""Check and copy a catalog's images: confined to the image folder, decoded safely, resized.

Every image goes through :func:`engine.imageio.load_image` (the same checks as an upload:
bounded bytes and pixels, exotic modes converted, EXIF rotation applied) and is stored as a JPEG
of at most ``THUMB_SIDE`` pixels inside the ingested catalog, so a build never reads the user's
folder again and a path in the catalog file can never reach outside that folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from engine.imageio import ImageInputError, load_image, safe_join
from engine.ingest.report import IngestError, ValidationReport
from engine.processes import spawn_pool

THUMB_SIDE = 384
MAX_IMAGE_BYTES = 50 * 1024 * 1024
ProgressFn = Callable[[Iterable, int, str], Iterable]


def image_relpath(index: int) -> str:
    """Where the ``index``-th kept image is stored inside the catalog (1,000 files a shard)."""
    return f"images/{index // 1000:03d}/{index:06d}.jpg"


def _convert(job: tuple[str, str]) -> str | None:
    """Decode ``src`` and write the resized JPEG ``dst``; the user-facing error, or None."""
    src, dst = job
    try:
        decoded = load_image(Path(src), max_bytes=MAX_IMAGE_BYTES)
    except ImageInputError as exc:
        return str(exc)
    except OSError as exc:
        return f"could not be read ({exc.strerror or exc})"
    img = decoded.image
    img.thumbnail((THUMB_SIDE, THUMB_SIDE))
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    img.save(dst, format="JPEG", quality=90)
    return None


def _no_progress(it: Iterable, total: int, desc: str) -> Iterable:
    return it


def import_images(
    items: pd.DataFrame,
    images_root: Path,
    out: Path,
    report: ValidationReport,
    *,
    processes: int = 2,
    progress: ProgressFn = _no_progress,
) -> pd.DataFrame:
    """Keep the rows whose image is usable, with ``image_path`` pointing at the stored copy."""
    images_root = Path(images_root)
    if not images_root.is_dir():
        report.refuse("missing_image_folder", "images", f"{images_root} is not a folder")
        raise IngestError(f"The image folder {images_root} does not exist.", report)
    unsafe, missing, sources = [], [], {}
    for item_id, rel in zip(items["item_id"], items["image"]):
        try:
            path = safe_join(images_root, rel)
        except ImageInputError:
            unsafe.append(f"{item_id}: {rel!r}")
            continue
        if not path.is_file():
            missing.append(f"{item_id}: {rel!r}")
            continue
        sources[item_id] = path
    report.add(
        "unsafe_image_path",
        "images",
        "skipped",
        "image paths that are absolute or point outside the image folder were skipped",
        unsafe,
    )
    report.add(
        "missing_image",
        "images",
        "skipped",
        "rows whose image file does not exist were skipped",
        missing,
    )

    ids = [i for i in items["item_id"] if i in sources]
    jobs = [(str(sources[i]), str(out / image_relpath(k))) for k, i in enumerate(ids)]
    errors = _run(jobs, processes, progress)
    unreadable = [f"{i}: {err}" for i, err in zip(ids, errors) if err]
    report.add(
        "unreadable_image",
        "images",
        "skipped",
        "rows whose image could not be decoded were skipped",
        unreadable,
    )

    # Keep the order of the catalog file; stored names follow the order of ``ids``.
    stored = {i: image_relpath(k) for k, (i, err) in enumerate(zip(ids, errors)) if not err}
    kept = items[items["item_id"].isin(stored)].copy()
    kept["image_path"] = kept["item_id"].map(stored)
    report.counts["images stored"] = len(kept)
    return kept.drop(columns=["image"]).reset_index(drop=True)


def _run(jobs: list[tuple[str, str]], processes: int, progress: ProgressFn) -> list[str | None]:
    if processes <= 1 or len(jobs) < 200:
        return [_convert(j) for j in progress(jobs, len(jobs), "check images")]
    with spawn_pool(processes) as pool:
        return list(progress(pool.imap(_convert, jobs, chunksize=32), len(jobs), "check images"))
