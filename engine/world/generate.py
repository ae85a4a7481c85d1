"""Generate the whole synthetic world into a folder: tables as parquet, images as JPEG files.

Output (``<out>/``): ``items.parquet``, ``users.parquet``, ``interactions.parquet``,
``sessions.parquet``, ``queries.parquet``, ``qrels.parquet``, ``image_queries.parquet``,
``image_qrels.parquet``, ``keywords.parquet``, ``images/<shard>/<item_id>.jpg``,
``query_images/<query_id>.jpg`` and ``tagger/`` (the vendor tagger's weights, see
:mod:`engine.world.tagger`: its keywords come from looking at the rendered images).
The same seed gives byte-identical files: every random draw comes from a child of one
``SeedSequence`` and every image from its own seed.
"""

from __future__ import annotations

import json
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.config import BuildConfig
from engine.progress import ProgressFn, no_progress
from engine.schema import split_items, split_users
from engine.world import catalog, queries, tagger, users
from engine.world.render import render_product
from engine.world.tagger_photos import workers


def item_render_seed(seed: int, index: int) -> int:
    """The render seed of catalog item ``index``: independent of every other draw."""
    return int(np.random.SeedSequence([seed, 7, index]).generate_state(1)[0])


def image_relpath(item_id: str, index: int) -> str:
    """Where an item's image lives, relative to the world folder (1,000 files a shard)."""
    return f"images/{index // 1000:03d}/{item_id}.jpg"


def _render_job(job: tuple) -> None:
    path, category, colour, pattern, seed, size, difficulty, quality = job
    image, _ = render_product(
        category=category,
        colour=colour,
        pattern=pattern,
        seed=seed,
        size=size,
        difficulty=difficulty,
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=quality)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished child processes."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _render_jobs(cfg: BuildConfig, out: Path, items, image_q) -> list[tuple]:
    """One :func:`_render_job` per catalog item, then per image query."""
    w = cfg.world
    jobs = [
        (str(out / p), c, col, pat, item_render_seed(cfg.seed, k), w.image_size,
         w.image_difficulty, w.image_quality)
        for k, (p, c, col, pat) in enumerate(
            zip(items["image_path"], items["category"], items["colour"], items["pattern"])
        )
    ]
    for row in image_q.itertuples():
        a = json.loads(row.attributes)
        jobs.append((str(out / row.image_path), a["category"], a["colour"], a["pattern"],
                     row.render_seed, w.image_size, w.image_difficulty, w.image_quality))
    return jobs


def generate_world(cfg: BuildConfig, out: Path, progress: ProgressFn = no_progress) -> dict:
    """Generate every table and image of the world described by ``cfg`` into ``out``."""
    w = cfg.world
    timings: dict[str, float] = {}
    streams = np.random.SeedSequence(cfg.seed).spawn(6)
    rng_items, rng_users, rng_inter, rng_sess, rng_q, rng_iq = (
        np.random.default_rng(s) for s in streams
    )
    t_start, cpu = time.perf_counter(), _cpu_seconds()
    with workers(cfg.build_threads) as pmap:
        photos = tagger.render_vendor_photos(cfg, pmap, progress)
        timings["tagger_photos_s"] = round(photos.seconds, 2)
        # The vendor model trains on one torch thread while this thread makes the tables and
        # the worker processes render the catalog images (the same bytes as one after another).
        with ThreadPoolExecutor(1, thread_name_prefix="tagger-training") as background:
            training = background.submit(tagger.train_vendor_tagger, cfg, photos)
            t0 = time.perf_counter()
            items = catalog.generate_products(w, rng_items)
            items["image_path"] = [image_relpath(i, k) for k, i in enumerate(items["item_id"])]
            people = users.generate_users(w, rng_users)
            inter, item_prior = users.interactions_and_prior(w, items, people, rng_inter)
            sessions = users.generate_sessions(w, items, inter, rng_sess)
            text_q, qrels = queries.generate_text_queries(w, items, rng_q)
            image_q = queries.sample_image_queries(w, rng_iq)
            image_q["image_path"] = [f"query_images/{q}.jpg" for q in image_q["query_id"]]
            image_qrels = queries.image_query_qrels(image_q, items)
            timings["tables_s"] = round(time.perf_counter() - t0, 2)

            t0 = time.perf_counter()
            pmap(_render_job, _render_jobs(cfg, out, items, image_q), "render images", progress)
            timings["images_s"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            trained = training.result()
            timings["tagger_training_wait_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        tags, tagger_info = tagger.tag_catalog(cfg, items, out, photos, trained, pmap,
                                               progress)  # looks at the images
        timings["tagging_s"] = round(time.perf_counter() - t0, 2)

    catalog_items, truth = split_items(items)
    catalog_users, user_truth = split_users(people)
    tables = {
        "items": catalog_items,
        "users": catalog_users,
        "interactions": inter,
        "sessions": sessions,
        "queries": text_q,
        "qrels": qrels,
        "image_queries": image_q,
        "image_qrels": image_qrels,
        "keywords": tags,
        "truth": truth,
        "user_truth": user_truth,
        "oracle": users.oracle_rankings(items, people, inter, item_prior),
    }
    for name, df in tables.items():
        df.to_parquet(out / f"{name}.parquet", index=False)
    is_train = inter["split"] == "train"
    new_ids = set(items.loc[items["is_new"], "item_id"])
    return {
        "counts": {name: len(df) for name, df in tables.items()},
        "n_new_items": len(new_ids),
        "new_items_train_interactions": int(inter.loc[is_train, "item_id"].isin(new_ids).sum()),
        "new_items_test_interactions": int(inter.loc[~is_train, "item_id"].isin(new_ids).sum()),
        "title_omits_visual": round(float((items["title_mentions"] == "").mean()), 4),
        "query_sets": queries.query_set_summary(text_q),
        "tagger": tagger_info,
        "timings": timings,
        # CPU seconds of this process and its render / decode workers (two cores: up to twice
        # the wall clock while the tagger trains beside the tables and the rendering)
        "seconds": round(time.perf_counter() - t_start, 2),
        "cpu_seconds": round(_cpu_seconds() - cpu, 2),
    }
