"""2-D projections of item embeddings for the embedding map (PCA, pure numpy, seeded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    """A fitted linear 2-D projection: ``(x - mean) @ components.T``."""

    mean: np.ndarray
    components: np.ndarray  # (2, d)
    explained: tuple[float, float]

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(x) - self.mean) @ self.components.T


def fit_pca(vectors: np.ndarray, *, max_fit: int = 5000, seed: int = 42) -> Projection:
    """PCA to 2-D fitted on up to ``max_fit`` rows (a seeded sample); signs made deterministic."""
    x = np.asarray(vectors, dtype=np.float64)
    if len(x) > max_fit:
        x = x[np.random.default_rng(seed).choice(len(x), size=max_fit, replace=False)]
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:2] * np.sign(vt[:2, :1] + 1e-12)  # fix each component's sign
    var = s**2 / max(1, (s**2).sum())
    return Projection(mean, comps, (float(var[0]), float(var[1] if len(var) > 1 else 0.0)))


def map_sample(n_items: int, size: int, *, always: np.ndarray | None = None, seed: int = 42):
    """A deterministic sample of rows to draw, always including the ``always`` rows."""
    rng = np.random.default_rng(seed)
    base = (
        np.arange(n_items) if n_items <= size else np.sort(rng.choice(n_items, size, replace=False))
    )
    if always is not None and len(always):
        base = np.union1d(base, always)
    return base


def project_embeddings(catalog, space: str) -> tuple[np.ndarray, tuple[float, float]]:
    """2-D PCA coordinates (float32) of every item's embedding in ``space``, and the share of
    variance each axis explains."""
    from engine.components import embeddings

    vectors = embeddings(catalog, space)
    proj = fit_pca(vectors)
    return proj.transform(vectors).astype(np.float32), proj.explained
