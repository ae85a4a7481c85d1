"""The trained fusion MLP's towers in NumPy: what the app runs at query time.

The fusion step trains :class:`~engine.encoders.fusion_mlp.FusionMLP` with PyTorch and saves it
as safetensors. Projecting one query is two small matrix products, a GELU and a normalisation,
so serving reads the same file with ``safetensors.numpy`` and never imports torch (~650 MB of
resident memory). Vectors equal PyTorch's to float32 rounding (tested).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import erf

from engine.vectors import l2_normalise

SIDES = ("query", "item")
WEIGHTS = "fusion_mlp.safetensors"
META = "fusion_mlp.json"


def gelu(x: np.ndarray) -> np.ndarray:
    """PyTorch's default (exact, erf-based) GELU."""
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0, dtype=x.dtype)))


class FusionTowers:
    """Query and item towers (Linear -> GELU -> Linear -> L2 normalise) as float32 arrays."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.layers = {
            side: [(np.ascontiguousarray(weights[f"{side}_tower.{i}.weight"].T, np.float32),
                    np.asarray(weights[f"{side}_tower.{i}.bias"], np.float32)) for i in (0, 2)]
            for side in SIDES
        }

    @classmethod
    def load(cls, folder: Path) -> FusionTowers:
        """The towers saved by the fusion step (safetensors: no pickles, no torch)."""
        from safetensors.numpy import load_file

        json.loads((Path(folder) / META).read_text())  # the build's record must be readable too
        return cls(load_file(str(Path(folder) / WEIGHTS)))

    def project(self, x: np.ndarray, *, side: str) -> np.ndarray:
        """Project query or item feature rows (``side`` = "query" | "item") to the fused space."""
        if side not in SIDES:
            raise ValueError(f"unknown side {side!r}; valid: {', '.join(SIDES)}")
        (w1, b1), (w2, b2) = self.layers[side]
        h = np.atleast_2d(np.asarray(x, dtype=np.float32)) @ w1 + b1
        return l2_normalise((gelu(h) @ w2 + b2).astype(np.float32))
