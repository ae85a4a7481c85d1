"""How sure a figure is: bootstrap intervals over queries and paired comparisons of two methods.

A benchmark figure is a mean over queries, so its uncertainty comes from which queries were
drawn. ``bootstrap_ci`` resamples the queries (percentile interval, seeded); ``paired_test``
compares two methods on the same queries with a paired bootstrap of the mean difference and a
two-sided sign-flip permutation test, and says whether the difference is significant. Pure
numpy; every function is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

N_RESAMPLES = 2000
CONFIDENCE = 0.95
ALPHA = 0.05
SEED = 42


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` queries and its bootstrap percentile interval."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self, digits: int = 4) -> dict[str, float | int]:
        d = asdict(self)
        return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in d.items()}

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"per-query values must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("per-query values must be finite")
    return x


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """The mean of per-query ``values`` with a percentile bootstrap interval over queries.

    With fewer than two queries the interval is the mean itself (nothing to resample).
    """
    x = _values(values)
    if len(x) == 0:
        raise ValueError("no per-query values: an interval needs at least one query")
    mean = float(x.mean())
    if len(x) < 2 or np.all(x == x[0]):
        return Interval(mean, mean, mean, len(x))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    means = x[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(mean, float(low), float(high), len(x))


@dataclass(frozen=True)
class Comparison:
    """Method A minus method B on the same queries."""

    a: str
    b: str
    difference: Interval  # mean of a - b with its bootstrap interval
    p_value: float  # two-sided sign-flip permutation test of mean difference = 0
    wins: int  # queries where a > b
    losses: int  # queries where a < b
    ties: int

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA and not (self.difference.low <= 0.0 <= self.difference.high)

    def as_dict(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "difference": self.difference.as_dict(),
            "p_value": round(self.p_value, 4),
            "significant": self.significant,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
        }

    def sentence(self, metric: str = "NDCG@10") -> str:
        """One plain sentence: which method is ahead, by how much, and whether it is noise."""
        d = self.difference
        if not self.significant:
            return (
                f"`{self.a}` vs `{self.b}`: {metric} difference {d.mean:+.3f} "
                f"[{d.low:+.3f}, {d.high:+.3f}] over {d.n} queries, not significant "
                f"(p = {self.p_value:.2f})."
            )
        ahead, behind = (self.a, self.b) if d.mean > 0 else (self.b, self.a)
        return (
            f"`{ahead}` beats `{behind}` on {metric} by {abs(d.mean):.3f} "
            f"[{min(abs(d.low), abs(d.high)):.3f}, {max(abs(d.low), abs(d.high)):.3f}] over "
            f"{d.n} queries (paired, p = {self.p_value:.3g})."
        )


def paired_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    names: tuple[str, str] = ("a", "b"),
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> Comparison:
    """Compare two methods' per-query values on the same queries (same order)."""
    x, y = _values(a), _values(b)
    if len(x) != len(y):
        raise ValueError(f"paired values need the same queries ({len(x)} vs {len(y)})")
    diff = x - y
    interval = bootstrap_ci(diff, n_resamples=n_resamples, seed=seed)
    observed = abs(diff.mean()) if len(diff) else 0.0
    if len(diff) == 0 or np.all(diff == 0):
        p = 1.0
    else:
        rng = np.random.default_rng(seed + 1)
        signs = rng.choice((-1.0, 1.0), size=(n_resamples, len(diff)))
        flipped = np.abs((signs * diff).mean(axis=1))
        p = float((1 + np.sum(flipped >= observed - 1e-12)) / (n_resamples + 1))
    return Comparison(
        names[0],
        names[1],
        interval,
        p,
        int(np.sum(diff > 0)),
        int(np.sum(diff < 0)),
        int(np.sum(diff == 0)),
    )
