"""LambdaMART re-ranker: LightGBM's ``LGBMRanker``, early-stopped on validation queries.

Keyword-only constructor that only stores; ``fit()`` returns self; a model that is not fitted
refuses to predict. Saved as LightGBM's own text format plus JSON (no pickles).
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np

MODEL_FILE = "ranker.txt"
META_FILE = "ranker.json"


class LambdaMartRanker:
    """A LightGBM lambdarank model over named features."""

    def __init__(
        self,
        *,
        feature_names: tuple[str, ...],
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        early_stopping_rounds: int = 30,
        seed: int = 42,
        threads: int = 1,
    ):
        self.feature_names = tuple(feature_names)
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.threads = threads
        self.booster_: lgb.Booster | None = None
        self.best_iteration_: int | None = None
        self.val_ndcg_: float | None = None

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        *,
        X_val: np.ndarray,
        y_val: np.ndarray,
        groups_val: np.ndarray,
    ) -> LambdaMartRanker:
        """Train on query groups (sizes, in row order); early-stop on the validation NDCG@10."""
        model = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.seed,
            n_jobs=self.threads,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
            label_gain=[0, 1, 3, 7],  # 2**grade - 1: the same gains as our NDCG
        )
        model.fit(
            X,
            y,
            group=groups,
            eval_X=(X_val,),  # LightGBM 4.7's form of eval_set (which now warns)
            eval_y=(y_val,),
            eval_group=[groups_val],
            eval_at=[10],
            feature_name=list(self.feature_names),
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self.booster_ = model.booster_
        self.best_iteration_ = int(model.best_iteration_ or model.n_estimators)
        self.val_ndcg_ = float(model.best_score_["valid_0"]["ndcg@10"])
        return self

    def _check(self) -> lgb.Booster:
        if self.booster_ is None:
            raise RuntimeError("LambdaMartRanker is not fitted: call fit() or load() first")
        return self.booster_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Scores for feature rows (higher is better); single-threaded."""
        return self._check().predict(X, num_iteration=self.best_iteration_, num_threads=1)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-row SHAP-style contributions (n × (features + 1); the last column is the bias)."""
        return self._check().predict(
            X, num_iteration=self.best_iteration_, pred_contrib=True, num_threads=1
        )

    def importances(self) -> dict[str, float]:
        """Total gain per feature, largest first."""
        gain = self._check().feature_importance(
            importance_type="gain", iteration=self.best_iteration_
        )
        pairs = sorted(zip(self.feature_names, gain.tolist()), key=lambda p: -p[1])
        return {name: round(float(g), 3) for name, g in pairs}

    def save(self, folder: Path) -> None:
        self._check().save_model(str(folder / MODEL_FILE), num_iteration=self.best_iteration_)
        (folder / META_FILE).write_text(
            json.dumps(
                {
                    "feature_names": list(self.feature_names),
                    "best_iteration": self.best_iteration_,
                    "val_ndcg@10": self.val_ndcg_,
                    "importances": self.importances(),
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, folder: Path) -> LambdaMartRanker:
        meta = json.loads((folder / META_FILE).read_text())
        ranker = cls(feature_names=tuple(meta["feature_names"]))
        ranker.booster_ = lgb.Booster(model_file=str(folder / MODEL_FILE))
        ranker.best_iteration_ = meta["best_iteration"]
        ranker.val_ndcg_ = meta["val_ndcg@10"]
        return ranker
