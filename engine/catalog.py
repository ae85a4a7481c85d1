"""A built catalog: its tables, images and lazily loaded shared components.

Serving opens a catalog with :func:`engine.serving.open_catalog`, which first verifies the
artifacts against the current code (missing, partial, corrupt, stale or from another version:
refused with the one command that rebuilds them). Heavy components (indexes, encoders) load on
first use through :meth:`Catalog.cached` and are shared by every method of the catalog.
"""

from __future__ import annotations

import json
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.artifacts import ArtifactError, ArtifactStore
from engine.paths import artifacts_dir


class Catalog:
    """The artifacts of one built catalog. Use :meth:`open`."""

    def __init__(self, name: str, store: ArtifactStore, manifest: dict[str, Any]):
        self.name = name
        self.store = store
        self.manifest = manifest
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}
        self._image_paths: dict[int, Path] = {}  # row -> resolved image file (see image_path)
        # Where the dense indexes are read from (an ``engine.indexes.store.VectorStoreConfig``);
        # None: the FAISS files. Set by ``engine.serving.open_catalog``.
        self.vector_store: Any = None
        # Steps built by other code, when opened ``outdated`` (the app, while it is rebuilt).
        self.stale_steps: list[str] = []

    @classmethod
    def load(cls, name: str, manifest: dict[str, Any], *, root: Path | None = None) -> Catalog:
        """The catalog ``name`` described by ``manifest`` (already verified by the caller)."""
        return cls(name, ArtifactStore(root or artifacts_dir(name)), manifest)

    # -- folders and tables ----------------------------------------------------------------
    def step_dir(self, step: str) -> Path:
        return self.store.root / self.manifest["steps"][step]["dir"]

    @property
    def world_dir(self) -> Path:
        return self.step_dir("world")

    def table(self, name: str) -> pd.DataFrame:
        """A world table (``items``, ``interactions``, ``queries``, ...), read once."""
        return self.cached(
            f"table:{name}", lambda: pd.read_parquet(self.world_dir / f"{name}.parquet")
        )

    @cached_property
    def items(self) -> pd.DataFrame:
        return self.table("items")

    @cached_property
    def truth(self) -> pd.DataFrame:
        """GROUND TRUTH, one row per catalog row: the synthetic world's true colour, pattern and
        material of each item (for an ingested catalog: the merchant's attribute columns).

        For evaluation and for pages that label it as ground truth; no method reads it.
        """
        truth = self.table("truth").set_index("item_id")
        return truth.reindex(self.item_ids).reset_index()

    @property
    def is_synthetic(self) -> bool:
        """True for the generated world, False for an ingested catalog."""
        return not self.config.get("source")

    @cached_property
    def item_ids(self) -> np.ndarray:
        return self.items["item_id"].to_numpy()

    @cached_property
    def row_of(self) -> dict[str, int]:
        return {item_id: row for row, item_id in enumerate(self.item_ids)}

    @cached_property
    def interaction_counts(self) -> np.ndarray:
        """Training-period interactions per catalog row."""
        inter = self.table("interactions")
        counts = inter.loc[inter["split"] == "train", "item_id"].value_counts()
        return counts.reindex(self.item_ids, fill_value=0).to_numpy()

    def image_path(self, row: int) -> Path:
        """The image file of a catalog row, confined to the world folder."""
        known = self._image_paths.get(row)
        if known is not None:  # resolving walks every folder of the path: once per row
            return known
        path = (self.world_dir / self.items["image_path"].iat[row]).resolve()
        if not path.is_relative_to(self.world_dir.resolve()):
            raise ArtifactError(f"image path of row {row} escapes the catalog folder")
        self._image_paths[row] = path
        return path

    def qrels(self, kind: str = "text") -> dict[str, dict[str, int]]:
        """Judgments ``{query_id: {item_id: grade}}`` of the text or image query sets."""
        table = "qrels" if kind == "text" else "image_qrels"

        def load() -> dict[str, dict[str, int]]:
            df = self.table(table)
            out: dict[str, dict[str, int]] = {}
            for qid, item, grade in zip(df["query_id"], df["item_id"], df["grade"]):
                out.setdefault(qid, {})[item] = int(grade)
            return out

        return self.cached(f"qrels:{kind}", load)

    def describe(self, row: int) -> dict[str, Any]:
        """A JSON-ready view of one item: its catalog fields and interaction count (truth apart)."""
        rec = self.items.iloc[row].to_dict()
        rec["interactions"] = int(self.interaction_counts[row])
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}

    # -- shared components -----------------------------------------------------------------
    def cached(self, key: str, factory):
        """Build a shared component once, thread-safely.

        A component that fails to load (an index file deleted or corrupted after the catalog was
        opened, a model that will not load) raises :class:`ArtifactError` naming it and the
        rebuild command; nothing is cached, so every other component keeps working.
        """
        with self._lock:
            if key not in self._cache:
                try:
                    self._cache[key] = factory()
                except ArtifactError:
                    raise
                except Exception as exc:
                    raise ArtifactError(
                        f"Could not load the {key.replace(':', ' ')} of the '{self.name}' catalog "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).",
                        fix=self.store.default_fix(self.manifest),
                    ) from exc
            return self._cache[key]

    @property
    def built_steps(self) -> set[str]:
        """Steps with artifacts (an unavailable step, e.g. no interactions, is not among them)."""
        return {s for s in self.manifest.get("steps", {}) if self.unavailable(s) is None}

    def unavailable(self, step: str) -> str | None:
        """Why ``step`` could not run on this catalog, or None."""
        rec = self.manifest.get("steps", {}).get(step)
        if rec is None:
            return "it has not been built"
        return rec.get("info", {}).get("unavailable")

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    def step_info(self, step: str) -> dict[str, Any]:
        rec_path = self.step_dir(step) / "step.json"
        return json.loads(rec_path.read_text()).get("info", {})
