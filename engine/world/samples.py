"""Sample query images shipped in ``assets/samples`` (``python -m engine samples`` rewrites them).

They are rendered like catalog products but are not in any catalog, at a larger size than the
catalog images, so the image page can be demonstrated without uploading anything.
"""

from __future__ import annotations

from pathlib import Path

from engine.world.render import render_product

SAMPLES = (
    ("red", "striped", "t-shirt", 101),
    ("navy", "dotted", "backpack", 202),
    ("yellow", "checked", "umbrella", 303),
    ("teal", "zigzag", "mug", 404),
    ("pink", "solid", "dress", 505),
    ("brown", "solid", "boots", 606),
)


def write_samples(folder: Path, size: int = 256) -> list[Path]:
    """Render the sample images into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for colour, pattern, category, seed in SAMPLES:
        image, _ = render_product(
            category=category, colour=colour, pattern=pattern, seed=seed, size=size, difficulty=0.8
        )
        path = folder / f"{colour}-{pattern}-{category}.jpg"
        image.save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths
