"""Bootstrap intervals and paired tests (engine.evaluation.stats)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.evaluation.stats import bootstrap_ci, paired_test


def test_interval_contains_the_mean_and_narrows_with_more_queries() -> None:
    rng = np.random.default_rng(0)
    small = bootstrap_ci(rng.uniform(size=20))
    large = bootstrap_ci(rng.uniform(size=2000))
    for iv in (small, large):
        assert iv.low <= iv.mean <= iv.high
    assert (large.high - large.low) < (small.high - small.low) / 4
    assert large.n == 2000


def test_interval_coverage_is_close_to_nominal() -> None:
    """Over many samples from a known distribution, ~95 % of intervals contain the true mean."""
    rng = np.random.default_rng(1)
    trials, covered = 300, 0
    for i in range(trials):
        x = rng.exponential(size=60)
        iv = bootstrap_ci(x, n_resamples=500, seed=i)
        covered += iv.low <= 1.0 <= iv.high
    assert 0.88 <= covered / trials <= 0.98


def test_interval_is_deterministic_and_degenerate_cases() -> None:
    x = [0.1, 0.5, 0.9, 0.3]
    assert bootstrap_ci(x) == bootstrap_ci(x)
    one = bootstrap_ci([0.4])
    assert (one.mean, one.low, one.high, one.n) == (0.4, 0.4, 0.4, 1)
    same = bootstrap_ci([0.7] * 10)
    assert same.low == same.high == pytest.approx(0.7)
    with pytest.raises(ValueError, match="at least one query"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([0.1, float("nan")])


def test_paired_test_detects_a_real_difference_and_not_noise() -> None:
    rng = np.random.default_rng(2)
    base = rng.uniform(size=200)
    better = np.clip(base + 0.05 + rng.normal(0, 0.02, size=200), 0, 1)
    real = paired_test(better, base, names=("new", "old"))
    assert real.significant and real.difference.low > 0 and real.wins > real.losses
    assert "`new` beats `old`" in real.sentence()
    noise = paired_test(base + rng.normal(0, 0.02, size=200), base, names=("x", "y"))
    assert noise.p_value > 0.01 or not noise.significant
    same = paired_test(base, base)
    assert same.p_value == 1.0 and not same.significant and same.ties == 200
    assert "not significant" in same.sentence()


def test_paired_test_needs_the_same_queries() -> None:
    with pytest.raises(ValueError, match="same queries"):
        paired_test([0.1, 0.2], [0.1])
