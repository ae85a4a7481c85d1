"""The vendor tagger's own photos, and the catalog images as the tagger sees them.

Photo ``i`` of a world with seed ``seed`` is fully determined by
``SeedSequence([seed, STREAM, i])``: a 64-bit render seed and a category, colour and pattern
drawn uniformly. It is drawn by :func:`engine.world.render.render_product` with the world's image
size and difficulty and stored through JPEG at the world's quality, exactly as the catalog stores
its images, so the vendor's photos look like the catalog's; the catalog's own render seeds come
from ``[seed, 7, index]`` and are never used here. Every image reaches the model through
:func:`load_pixels` (JPEG draft decode, bilinear resize to the model's input size).

This module imports neither torch nor pandas, so the spawned render workers start quickly.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from engine.processes import spawn_pool
from engine.world import vocab
from engine.world.render import render_product

ProgressFn = Callable[[Iterable, int, str], Iterable]
MapFn = Callable[..., list]  # (fn, jobs, desc, progress) -> [fn(job) for job in jobs]
FIELDS = vocab.VISUAL_FIELDS
STREAM = 0x7A66  # the vendor's own render-seed stream ("tagger")


def _no_progress(it: Iterable, total: int, desc: str) -> Iterable:
    return it


def vendor_image_spec(seed: int, index: int) -> tuple[int, str, str, str]:
    """(render seed, category, colour, pattern) of the vendor's photo ``index``: uniform draws."""
    s = np.random.SeedSequence([seed, STREAM, index]).generate_state(4, np.uint64)
    names = [vocab.names(f) for f in FIELDS]
    return (int(s[0]), *(n[int(v % len(n))] for n, v in zip(names, s[1:])))


def load_pixels(source, size: int) -> np.ndarray:
    """uint8 (size, size, 3) of an image file or file object: JPEG draft decode, bilinear resize."""
    with Image.open(source) as im:
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        w, h = im.size
        if w != h:
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _vendor_photo(job: tuple) -> np.ndarray:
    """Render one vendor photo as the catalog stores its images (JPEG), then load it as pixels."""
    seed, index, image_size, difficulty, quality, input_size = job
    render_seed, category, colour, pattern = vendor_image_spec(seed, index)
    image, _ = render_product(category=category, colour=colour, pattern=pattern,
                              seed=render_seed, size=image_size, difficulty=difficulty)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return load_pixels(buf, input_size)


@contextlib.contextmanager
def workers(processes: int) -> Iterator[MapFn]:
    """An ordered ``map(fn, jobs, desc, progress)``: in this process, or in a spawn pool of
    ``processes`` workers kept for the whole block (rendering, then decoding after training)."""
    if processes <= 1:
        yield lambda fn, jobs, desc, progress=_no_progress: [
            fn(j) for j in progress(jobs, len(jobs), desc)
        ]
        return
    with spawn_pool(processes) as pool:
        yield lambda fn, jobs, desc, progress=_no_progress: list(
            progress(pool.imap(fn, jobs, chunksize=64), len(jobs), desc)
        )


def _stack(arrays: list[np.ndarray], size: int) -> np.ndarray:
    """(N, size, size, 3) arrays -> one contiguous uint8 (N, 3, size, size) array."""
    if not arrays:
        return np.zeros((0, 3, size, size), np.uint8)
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))


def vendor_photos(seed: int, indices: range, *, image_size: int, difficulty: float, quality: int,
                  input_size: int, pmap: MapFn | None = None,
                  progress: ProgressFn = _no_progress) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 3, S, S) photos of ``indices`` and their (N, 3) label indices (FIELDS order);
    rendered with ``pmap`` (see :func:`workers`; default: in this process)."""
    jobs = [(seed, i, image_size, difficulty, quality, input_size) for i in indices]
    with contextlib.ExitStack() as stack:
        pmap = pmap or stack.enter_context(workers(1))
        x = _stack(pmap(_vendor_photo, jobs, "render tagger photos", progress), input_size)
    index_of = [{n: k for k, n in enumerate(vocab.names(f))} for f in FIELDS]
    labels = [vendor_image_spec(seed, i)[1:] for i in indices]
    y = np.array([[m[v] for m, v in zip(index_of, lab)] for lab in labels], np.int64)
    return x, y.reshape(len(labels), len(FIELDS))


def catalog_pixels(paths: list[Path], size: int, pmap: MapFn | None = None,
                   progress: ProgressFn = _no_progress) -> np.ndarray:
    """uint8 (N, 3, S, S) of the catalog's stored images, decoded with ``pmap`` (processes:
    decoding in threads was measured no faster than one thread, the GIL)."""
    with contextlib.ExitStack() as stack:
        pmap = pmap or stack.enter_context(workers(1))
        arrays = pmap(partial(load_pixels, size=size), [str(p) for p in paths],
                      "decode catalog images for the tagger", progress)
    return _stack(arrays, size)
