"""Human relevance judgments (the Review page's ratings): storage, agreement, qrels and metrics.

* :mod:`engine.judgments.store` — :class:`JudgmentStore`, a local SQLite database
  (``data/judgments.db``) with one row per (catalog, query, item, reviewer): the latest grade
  0..3 and when it was given (UTC).
* :mod:`engine.judgments.agreement` — Cohen's kappa between reviewers (unweighted and
  quadratic-weighted) and the mean over every pair of reviewers.
* :mod:`engine.judgments.qrels` — several reviewers' grades aggregated into one grade per
  (query, item): the lower median (see that module).
* :mod:`engine.judgments.metrics` — NDCG@k, precision@k, recall@k and MRR from human judgments,
  with judged coverage and the count of unjudged results.
* :mod:`engine.judgments.csvio` — CSV import (every bad row reported) and export.
* :mod:`engine.benchmark.judgments` — the benchmark with a judgments file as its ground truth
  (``python -m engine bench --judgments FILE``).
"""

from engine.judgments.store import GRADES, Judgment, JudgmentStore, default_db_path

__all__ = ["GRADES", "Judgment", "JudgmentStore", "default_db_path"]
