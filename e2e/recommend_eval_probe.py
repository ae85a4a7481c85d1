"""Recommender evaluation, batched vs one user at a time: ``python -m e2e.recommend_eval_probe``.

Loads the recommenders a built catalog's ``recommend`` step saved and evaluates them on its
held-out interactions twice per round, taking turns: once the way the build does now
(``recommend_many``, a batch of users per matrix product) and once one user at a time
(``recommend`` per user, the way it did before). Records the seconds of each and whether
every metric came out identical.
Writes ``reports/recommend_eval.json`` (or ``--out``) with the date, commit and load average;
a machine whose 1-min load average is above 1.5 is not measured (``--force``: flagged busy).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _one_at_a_time(model, user_ids, k=10, exclude_seen=True, batch=None):
    """``recommend_many`` as it was before batching: one ``recommend`` call per user."""
    return [model.recommend(u, k, exclude_seen) for u in user_ids]


def compare(catalog_name: str, rounds: int) -> dict[str, Any]:
    """Seconds per evaluation (batched, one at a time) per round, and whether they agree."""
    from engine.pipeline.steps.recommend import SETTINGS
    from engine.recommend import load_recommender
    from engine.recommend.base import Recommender
    from engine.recommend.data import InteractionData
    from engine.recommend.evaluate import evaluate_recommenders
    from engine.serving import open_catalog

    catalog = open_catalog(catalog_name)
    folder = catalog.step_dir("recommend")
    data = InteractionData.load(folder / "data")
    models = {p.name: load_recommender(p) for p in sorted(folder.iterdir())
              if (p / "meta.json").is_file()}
    inter = catalog.table("interactions")
    test = inter[inter["split"] == "test"]
    items = catalog.items
    kwargs = dict(k=SETTINGS["eval_k"], new_item_ids=set(items.loc[items["is_new"], "item_id"]),
                  short_history_max=SETTINGS["short_history_max"], latency_users=0,
                  max_users=SETTINGS["eval_max_users"], seed=42)

    def timed() -> tuple[float, dict]:
        t0 = time.perf_counter()
        out = evaluate_recommenders(models, data, test, **kwargs)
        return time.perf_counter() - t0, out

    batched, single, same = [], [], True
    original = Recommender.recommend_many
    for _ in range(rounds):
        s_b, m_b = timed()
        Recommender.recommend_many = _one_at_a_time
        try:
            s_1, m_1 = timed()
        finally:
            Recommender.recommend_many = original
        batched.append(round(s_b, 2))
        single.append(round(s_1, 2))
        same = same and m_b == m_1
    return {
        "catalog": catalog_name,
        "models": sorted(models),
        "test_users": m_b["test_users"],
        "items": int(data.n_items),
        "seconds_batched": batched,
        "seconds_one_at_a_time": single,
        "speedup": round(min(single) / min(batched), 2),
        "metrics_identical": same,
        "note": "evaluate_recommenders without the latency sample (latency_users=0), one "
        "thread, the two ways taking turns in one process on the same loaded models",
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: measure (unless the machine is busy) and write the JSON report."""
    from e2e.probe_cli import run_probe

    def options(p) -> None:
        p.add_argument("--rounds", type=int, default=2, help="turns of each way (default 2)")

    return run_probe("e2e.recommend_eval_probe", __doc__, "recommend_eval.json", options,
                     lambda a: compare(a.catalog, a.rounds), argv)


if __name__ == "__main__":
    sys.exit(main())
