"""The vector index kinds and their search knobs (a bottom-layer module: no FAISS import).

``engine.config`` validates a catalog's ``index`` section against these names, so this module
stays free of heavy imports; ``engine.indexes.vector`` builds the indexes themselves.
"""

from __future__ import annotations

# flat: exact inner product. hnsw: HNSW over full float32 vectors. ivf: IVF-Flat.
# hnsw-sq8: HNSW over 8-bit scalar-quantised vectors (about a quarter of the vector memory).
INDEX_KINDS = ("flat", "hnsw", "ivf", "hnsw-sq8")
HNSW_KINDS = ("hnsw", "hnsw-sq8")
# The search-time knob of each approximate kind (``VectorIndex.search`` keyword).
KNOBS = {"hnsw": "ef_search", "hnsw-sq8": "ef_search", "ivf": "nprobe"}
# The kinds a build always writes (the benchmark's ANN sweep reads them); a catalog's served
# kind (``IndexConfig.kind``) is written too when it is not one of these.
ALWAYS_BUILT = ("flat", "hnsw", "ivf")
DEFAULT_SERVED_KIND = "hnsw"
DEFAULT_RECALL_TARGET = 0.98


def check_kind(kind: str, valid: tuple[str, ...] = INDEX_KINDS) -> str:
    """``kind`` itself, or a ValueError that lists the valid kinds."""
    if kind not in valid:
        raise ValueError(f"unknown index kind {kind!r}; valid: {', '.join(valid)}")
    return kind

# The kinds the ``vectorstore`` build step writes to Milvus (Milvus has no scalar-quantised HNSW:
# a catalog serving ``hnsw-sq8`` from FAISS is served ``hnsw`` from Milvus).
MILVUS_WRITTEN = ("flat", "hnsw", "ivf")


def milvus_served_kind(kind: str) -> str:
    """The Milvus kind that stands for a FAISS kind."""
    return "hnsw" if kind == "hnsw-sq8" else kind
