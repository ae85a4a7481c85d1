"""Shared components of a built catalog, loaded once per catalog and shared by every method.

Each loader takes a :class:`~engine.catalog.Catalog` and returns a cached component (an encoder,
an index, tuned parameters) read from the build step that wrote it. Retrievers, the query layer
and the benchmark call these; nothing above them needs to know artifact file names.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.catalog import Catalog
    from engine.encoders.base import ImageEncoder, TextEncoder
    from engine.indexes.vector import VectorIndex

# Item embedding matrices, by space: (build step, file).
EMBEDDINGS = {
    "sbert": ("sbert", "sbert_items.npy"),
    "clip": ("visual", "clip_items.npy"),
    "colour": ("visual", "colour_items.npy"),
}


def text_precision(catalog: Catalog) -> str:
    """The precision (``fp32`` or ``int8``) the catalog's item vectors were encoded at.

    The sbert step records it; the build config must agree, or a query encoder would mix
    precisions with the item vectors: refused with the command that rebuilds the catalog.
    """
    from engine.artifacts import ArtifactError

    configured = catalog.config["text"].get("sbert_precision", "fp32")
    record = catalog.manifest.get("steps", {}).get("sbert", {})
    stored = record.get("info", {}).get("precision", "fp32")  # older builds: fp32 only
    if stored != configured:
        raise ArtifactError(
            f"catalog '{catalog.name}': its SBERT item vectors are {stored} but its config asks "
            f"for {configured} query vectors (precisions must match).",
            fix=catalog.manifest.get("rebuild_command", "python -m engine build"),
        )
    return stored


def text_encoder(catalog: Catalog) -> TextEncoder:
    """The catalog's Sentence-BERT encoder for queries: the model and precision its build used,
    on the query runtime (ONNX Runtime by default, PyTorch as chosen or as the fallback)."""
    from engine.encoders.onnx_text import query_runtime, query_text_encoder

    name, precision = catalog.config["text"]["sbert_model"], text_precision(catalog)
    chosen = query_runtime()
    return catalog.cached(
        f"text_encoder:{name}:{precision}:{chosen}",
        lambda: query_text_encoder(name, precision=precision, runtime_name=chosen),
    )


class _TextVectors:
    """The last few query texts' SBERT vectors: a query's text is encoded once even when several
    methods (RRF's members, fusion, CLIP sharing the encoder) need it. Thread-safe."""

    def __init__(self, encoder: TextEncoder, size: int = 256):
        import threading
        from collections import OrderedDict

        self.encoder, self.size = encoder, size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, text: str) -> np.ndarray:
        with self._lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        vec = self.encoder.encode_texts([text])[0]
        vec.setflags(write=False)
        with self._lock:
            self._cache[text] = vec
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return vec


def query_text_vector(catalog: Catalog, text: str) -> np.ndarray:
    """The SBERT vector of a query text, computed once for every method that needs it."""
    from engine.encoders.onnx_text import query_runtime

    vectors = catalog.cached(
        f"query_text_vectors:{query_runtime()}", lambda: _TextVectors(text_encoder(catalog))
    )
    return vectors(text)


def clip_encoder(catalog: Catalog):
    """The catalog's CLIP encoder (the one its build chose: compact or pretrained), on the query
    runtime: the compact CLIP's ONNX export when the build wrote one and ``onnx`` is chosen,
    else the PyTorch model (one thread)."""
    from engine.encoders.onnx_text import query_runtime

    chosen = query_runtime()

    def load():
        folder, text = catalog.step_dir("clip"), text_encoder(catalog)
        if chosen == "onnx":
            from engine.encoders.onnx_clip import onnx_compact_clip

            fast = onnx_compact_clip(folder, text)
            if fast is not None:
                return fast
        from engine.encoders.clip import load_clip_step
        from engine.runtime import torch_threads

        torch_threads()
        return load_clip_step(folder, text)

    return catalog.cached(f"clip_encoder:{chosen}", load)


def colour_encoder(catalog: Catalog) -> ImageEncoder:
    """The HSV colour-histogram encoder the visual step used (from its module, not through the
    encoder registry, whose discovery would import every encoder, torch's among them)."""
    from engine.encoders.colour import ColourEncoder

    return catalog.cached("colour_encoder", ColourEncoder)


SERVED = "ann"  # the kind name that means "the catalog's served approximate index"


def served_index_kind(catalog: Catalog) -> str:
    """The approximate index kind the catalog serves from (its config's ``index.kind``; catalogs
    built before that setting serve ``hnsw``)."""
    from engine.index_kinds import DEFAULT_SERVED_KIND

    return catalog.config.get("index", {}).get("kind", DEFAULT_SERVED_KIND)


def vector_index(catalog: Catalog, step: str, prefix: str, kind: str) -> VectorIndex:
    """A dense index written by a build step, searched with the efSearch / nprobe its build
    tuned. ``kind="ann"``: the catalog's served kind.

    From the FAISS file ``<prefix>_<kind>.faiss`` by default; from the catalog's Milvus
    collection when the catalog was opened with a Milvus vector store (``open_catalog``).
    """
    from engine.indexes.vector import VectorIndex

    if kind == SERVED:
        kind = served_index_kind(catalog)
    store = getattr(catalog, "vector_store", None)  # None: FAISS (and test stand-ins)
    if store is not None and store.is_milvus:
        key = f"milvus:{prefix}:{kind}"
        return catalog.cached(key, lambda: milvus_index(catalog, prefix, kind))
    path = catalog.step_dir(step) / f"{prefix}_{kind}.faiss"
    return catalog.cached(f"faiss:{prefix}:{kind}", lambda: VectorIndex.load(path, kind))


def milvus_collections(catalog: Catalog) -> dict[str, Any] | None:
    """The ``vectorstore`` step's record when the catalog's indexes are in Milvus, else None."""
    if catalog.unavailable("vectorstore") is not None:
        return None
    info = catalog.manifest["steps"]["vectorstore"].get("info", {})
    return info if info.get("vector_store") == "milvus" else None


def milvus_build_command(catalog: Catalog) -> str:
    """The command that adds Milvus collections to ``catalog``."""
    return f"python -m engine build --preset {catalog.config.get('preset', 'demo')} " \
        "--vector-store milvus"


def milvus_index(catalog: Catalog, prefix: str, kind: str):
    """The Milvus collection holding index ``prefix``/``kind`` (``build --vector-store milvus``)."""
    from engine.artifacts import ArtifactError
    from engine.index_kinds import MILVUS_WRITTEN, milvus_served_kind
    from engine.indexes.store import VectorStoreConfig, open_vector_index

    info = milvus_collections(catalog)
    rebuild = milvus_build_command(catalog)
    if info is None:
        raise ArtifactError(
            f"The '{catalog.name}' catalog has no Milvus collections.", fix=rebuild
        )
    kind = milvus_served_kind(kind)
    rec = info["indexes"].get(prefix)
    if rec is None or kind not in MILVUS_WRITTEN:
        raise ArtifactError(
            f"The '{catalog.name}' catalog has no Milvus collection for {prefix} {kind} "
            f"(it has: {', '.join(info['indexes']) or 'none'}; kinds {', '.join(MILVUS_WRITTEN)}).",
            fix=rebuild,
        )
    store = catalog.vector_store
    cfg = VectorStoreConfig("milvus", store.uri if store.uri is not None else info.get("uri"))
    return open_vector_index(
        cfg, catalog.step_dir("vectorstore"), info["catalog"], prefix, kind,
        version=info["version"], expect_rows=rec["n"],
    )


def embeddings(catalog: Catalog, space: str) -> np.ndarray:
    """Every item's embedding in ``space`` (``sbert``, ``clip`` or ``colour``), catalog order."""
    if space not in EMBEDDINGS:
        raise ValueError(f"unknown embedding space {space!r}; valid: {', '.join(EMBEDDINGS)}")
    step, filename = EMBEDDINGS[space]
    return catalog.cached(f"embeddings:{space}", lambda: np.load(catalog.step_dir(step) / filename))


def embedding_spaces(catalog: Catalog) -> list[str]:
    """The embedding spaces this catalog has built."""
    return [s for s, (step, _) in EMBEDDINGS.items() if step in catalog.built_steps]


def bm25_index(catalog: Catalog):
    from engine.indexes.bm25 import BM25Index

    return catalog.cached("bm25", lambda: BM25Index.load(catalog.step_dir("lexical")))


def tfidf_index(catalog: Catalog):
    from engine.indexes.tfidf import TfidfIndex

    return catalog.cached("tfidf", lambda: TfidfIndex.load(catalog.step_dir("lexical")))


def keyword_index(catalog: Catalog):
    from engine.indexes.keywords import KeywordIndex

    return catalog.cached("keywords", lambda: KeywordIndex.load(catalog.step_dir("lexical")))


def fusion_params(catalog: Catalog) -> dict[str, Any]:
    """Fusion weights tuned on validation queries by the fusion step (``fusion.json``)."""
    path = catalog.step_dir("fusion") / "fusion.json"
    return catalog.cached("fusion_params", lambda: json.loads(path.read_text()))


def fusion_mlp(catalog: Catalog):
    """The fusion step's trained MLP towers, in NumPy (:class:`FusionTowers`: no torch)."""
    from engine.encoders.fusion_towers import FusionTowers

    return catalog.cached("fusion_mlp", lambda: FusionTowers.load(catalog.step_dir("fusion")))


def query_understanding(catalog: Catalog):
    """The catalog's query understanding (lexicon, item evidence, word vectors), or None when
    the catalog was built without the query step."""
    if "query" not in catalog.built_steps:
        return None
    from engine.query import QueryUnderstanding

    return catalog.cached(
        "query_understanding",
        lambda: QueryUnderstanding.load(catalog.step_dir("query"), text_encoder(catalog)),
    )
