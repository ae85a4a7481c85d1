"""Build configuration: small frozen dataclasses, named JSON presets and stable config hashes.

Presets live in ``engine/presets/<name>.json`` (like open_clip's ``model_configs``); each holds only
the values that differ from the dataclass defaults. ``load_preset(name, **overrides)`` is the one
way to get a :class:`BuildConfig`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.compute import check_compute
from engine.index_kinds import DEFAULT_RECALL_TARGET, DEFAULT_SERVED_KIND, check_kind

PRESET_DIR = Path(__file__).with_name("presets")
DEFAULT_PRESET = "demo"
DEFAULT_SEED = 42
# Numeric precision of the Sentence-BERT encoder: full float32, or int8 dynamic quantization of
# its Linear layers (engine/encoders/text.py). Build and query time always use the same one.
SBERT_PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class WorldConfig:
    """The synthetic catalog world: products, images, users, interactions and query sets."""

    n_items: int = 20_000
    n_users: int = 5_000
    n_interactions: int = 150_000
    n_sessions: int = 8_000
    new_item_fraction: float = 0.10
    # Fraction of titles that name neither the colour nor the pattern (the "visual intent" gap).
    title_omit_visual_rate: float = 0.65
    image_size: int = 128
    image_quality: int = 85
    image_difficulty: float = 1.0
    n_queries_train: int = 600
    n_queries_val: int = 150
    n_queries_test: int = 400
    # Shares of each split's text queries worded with held-out synonyms and as people type
    # ("wild"); the rest use the catalog's words (engine/world/queries.py).
    paraphrase_rate: float = 0.3
    wild_rate: float = 0.3
    n_image_queries: int = 300
    days: int = 180
    cutoff_day: int = 150
    # 0: each user's interactions are a Gumbel-top-k sample over every item (exact, O(users x
    # items)). N > 0: over N items drawn uniformly per user, O(users x N), for worlds too large
    # to score every pair (engine/world/users.py).
    interaction_candidates: int = 0
    # The simulated vendor image tagger (engine/world/tagger.py): a small CNN trained on its own
    # rendered photos (never a catalog image), calibrated, then run on every catalog image.
    tagger_train_images: int = 9_000
    tagger_calibration_images: int = 1_000
    tagger_test_images: int = 1_000
    tagger_epochs: int = 5
    tagger_batch_size: int = 64
    tagger_input_size: int = 64  # pixels; at most image_size
    tagger_width: int = 16  # channels of the first conv layer


@dataclass(frozen=True)
class TextConfig:
    """Text encoders and lexical indexes."""

    sbert_model: str = "all-MiniLM-L6-v2"
    sbert_precision: str = "fp32"  # one of SBERT_PRECISIONS
    # Precompute the text encoder's vectors of its whole word vocabulary (~21,700 words) for
    # query understanding, so an unseen word costs nothing at query time. Off: only the
    # catalog's words and the colour table (others are encoded on first use, then cached).
    query_vocabulary: bool = True
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    encode_batch_size: int = 128
    # Number format of the sbert step's item and title encoding (engine/compute.py): "auto" is
    # bfloat16 on a CPU that has it natively (reports/compute.json: 1.3x faster, vectors equal
    # to a cosine of 0.99997), else float32. Queries are always encoded in float32.
    item_compute: str = "auto"

    def __post_init__(self) -> None:
        check_compute(self.item_compute)
        if self.sbert_precision not in SBERT_PRECISIONS:
            raise ValueError(
                f"unknown sbert_precision {self.sbert_precision!r}; "
                f"valid: {', '.join(SBERT_PRECISIONS)}"
            )


@dataclass(frozen=True)
class ClipConfig:
    """The compact catalog CLIP trained by the build (see ``engine/encoders/compact_clip.py``).

    ``model`` is ``"compact"`` (train on the catalog), a pretrained open_clip tag such as
    ``"ViT-B-32/laion2b_s34b_b79k"`` (used when its weights are available offline; otherwise the
    build falls back to the compact model and says so), or ``"MODEL@/path/to/checkpoint"``.
    """

    model: str = "compact"
    # The training budget is counted in work (epochs over the training images); wall-clock is
    # only a cap, and a model stopped by it is flagged in the build's record and the report.
    epochs: float = 10.0
    max_seconds: float = 1800.0
    # Fixed for the whole run, so the same seed trains the same model. Two threads trained
    # 1.6x faster than one on the idle 2-core machine (batch 256 at 64 px), and the build runs
    # nothing beside this step that a free core could serve.
    threads: int = 2
    image_size: int = 64
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    # Number format of the training (engine/compute.py): "auto" trains in bfloat16 autocast on a
    # CPU that has it natively (reports/compute.json: 1.5x faster; quality against float32 in
    # reports/clip_bf16.json), else in float32. The model is saved and served in float32.
    compute: str = "auto"

    def __post_init__(self) -> None:
        check_compute(self.compute)


@dataclass(frozen=True)
class IndexConfig:
    """The vector indexes a catalog serves from (a preset's ``index`` section).

    ``kind`` is the approximate index the dense methods search: ``hnsw`` (full float32 vectors),
    ``hnsw-sq8`` (8-bit scalar-quantised vectors: about a quarter of the vector memory, a little
    less recall per efSearch), ``ivf`` or ``flat`` (exact). Every build also writes flat, HNSW
    and IVF (the benchmark compares them). ``recall_target`` is the recall@10 against exact
    search each approximate index must reach: its efSearch / nprobe is tuned to it at build time.
    """

    kind: str = DEFAULT_SERVED_KIND
    recall_target: float = DEFAULT_RECALL_TARGET

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if not 0.0 < self.recall_target <= 1.0:
            raise ValueError(f"index recall_target must be in (0, 1], got {self.recall_target}")


VECTOR_STORES = ("faiss", "milvus")


@dataclass(frozen=True)
class VectorStoreSection:
    """Where the dense indexes are served from (``build --vector-store``).

    ``faiss`` (the default): the FAISS files each build step writes. ``milvus``: the ``vectorstore``
    step also writes every FAISS index's vectors into Milvus collections (flat, HNSW, IVF), in
    Milvus Lite databases inside its folder when ``uri`` is None, else on the Milvus server or
    cluster at ``uri``. Searches choose the store at query time (``search --vector-store``).
    """

    kind: str = "faiss"
    uri: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in VECTOR_STORES:
            raise ValueError(
                f"unknown vector store {self.kind!r}; valid: {', '.join(VECTOR_STORES)}"
            )
        if self.uri is not None and self.kind != "milvus":
            raise ValueError("a vector store URI is only used with --vector-store milvus")


@dataclass(frozen=True)
class SourceConfig:
    """An ingested catalog (``python -m engine ingest``) that replaces the synthetic world.

    ``fingerprint`` is the ingested tables' and images' content hash (``source.json``), so a
    re-ingest changes every step's hash and a build over the old content is detected as stale.
    """

    name: str
    fingerprint: str


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build depends on. Two configs with equal hashes build identical artifacts."""

    preset: str = DEFAULT_PRESET
    seed: int = DEFAULT_SEED
    world: WorldConfig = field(default_factory=WorldConfig)
    text: TextConfig = field(default_factory=TextConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    build_threads: int = 2
    source: SourceConfig | None = None  # None: the synthetic world of ``world``
    vector_store: VectorStoreSection = field(default_factory=VectorStoreSection)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``source`` only when the catalog is ingested)."""
        d = dataclasses.asdict(self)
        if d["source"] is None:
            del d["source"]  # keeps the synthetic world's hashes independent of this field
        if d["text"]["sbert_precision"] == "fp32":
            del d["text"]["sbert_precision"]  # likewise: fp32 builds keep their earlier hashes
        if d["world"]["interaction_candidates"] == 0:
            del d["world"]["interaction_candidates"]  # likewise: exact worlds keep their hashes
        if d["vector_store"] == {"kind": "faiss", "uri": None}:
            del d["vector_store"]  # likewise: FAISS-only builds keep their earlier manifests
        return d


def stable_hash(obj: Any) -> str:
    """A short sha256 over canonical JSON: the same content always gives the same hash."""
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def list_presets() -> list[str]:
    """Names of the presets shipped in ``engine/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def preset_description(name: str) -> str:
    """The one-line description stored in a preset file."""
    return _read_preset(name).get("description", "")


def _read_preset(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(list_presets())}")
    return json.loads(path.read_text())


def _section(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(
            f"unknown {where} setting(s) {sorted(unknown)}; valid: {', '.join(sorted(known))}"
        )
    return cls(**values)


def load_preset(
    name: str = DEFAULT_PRESET,
    *,
    seed: int | None = None,
    n_items: int | None = None,
    world: dict[str, Any] | None = None,
    clip_model: str | None = None,
    index: dict[str, Any] | None = None,
    sbert_precision: str | None = None,
    source: SourceConfig | None = None,
    vector_store: dict[str, Any] | None = None,
    compute: str | None = None,
) -> BuildConfig:
    """Build the :class:`BuildConfig` of a named preset, with optional overrides.

    ``n_items`` scales users, interactions and sessions in proportion, so ``--items 2000`` on the
    demo preset gives a coherent small world rather than 5,000 users over 2,000 products.
    ``index`` overrides the preset's ``index`` section (``{"kind": "hnsw-sq8"}``).
    ``sbert_precision`` (``fp32`` or ``int8``) overrides the preset's text encoder precision.
    ``vector_store`` overrides the preset's ``vector_store`` section (``{"kind": "milvus"}``).
    ``compute`` (``auto``, ``fp32`` or ``bf16``) sets the number format of the item encoding and
    of the CLIP training (``text.item_compute`` and ``clip.compute``).
    """
    raw = _read_preset(name)
    world_values = dict(raw.get("world", {}))
    if n_items is not None:
        if n_items < 100:
            raise ValueError(f"--items must be at least 100 (got {n_items})")
        base = _section(WorldConfig, world_values, "world")
        ratio = n_items / base.n_items
        world_values.update(
            n_items=n_items,
            n_users=max(50, round(base.n_users * ratio)),
            n_interactions=max(1_000, round(base.n_interactions * ratio)),
            n_sessions=max(100, round(base.n_sessions * ratio)),
        )
    world_values.update(world or {})
    return BuildConfig(
        preset=name,
        seed=DEFAULT_SEED if seed is None else seed,
        world=_section(WorldConfig, world_values, "world"),
        text=_section(
            TextConfig,
            {
                **raw.get("text", {}),
                **({"sbert_precision": sbert_precision} if sbert_precision else {}),
                **({"item_compute": compute} if compute else {}),
            },
            "text",
        ),
        clip=_section(
            ClipConfig,
            {**raw.get("clip", {}), **({"model": clip_model} if clip_model else {}),
             **({"compute": compute} if compute else {})},
            "clip",
        ),
        index=_section(IndexConfig, {**raw.get("index", {}), **(index or {})}, "index"),
        source=source,
        vector_store=_section(
            VectorStoreSection,
            {**raw.get("vector_store", {}), **(vector_store or {})},
            "vector_store",
        ),
    )


def config_from_dict(d: dict[str, Any]) -> BuildConfig:
    """Rebuild a :class:`BuildConfig` from :meth:`BuildConfig.to_dict` output (a manifest's)."""
    return BuildConfig(
        preset=d["preset"],
        seed=int(d["seed"]),
        world=_section(WorldConfig, d.get("world", {}), "world"),
        text=_section(TextConfig, d.get("text", {}), "text"),
        clip=_section(ClipConfig, d.get("clip", {}), "clip"),
        index=_section(IndexConfig, d.get("index", {}), "index"),
        build_threads=int(d.get("build_threads", 2)),
        source=SourceConfig(**d["source"]) if d.get("source") else None,
        vector_store=_section(VectorStoreSection, d.get("vector_store", {}), "vector_store"),
    )
