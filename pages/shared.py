"""What the pages share: every Streamlit cache, the catalog picker and the result cards.

Pages stay thin: they lay out widgets and call these helpers and the engine. Catalog text is
always shown as text (escaped), never as markup.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import numpy as np
import streamlit as st

from engine.artifacts import ArtifactError
from engine.catalog import Catalog
from engine.pipeline.status import stale_problem
from engine.retrieval.base import SearchResult
from engine.search import QueryError
from engine.serving import (
    building_catalogs,
    built_catalogs,
    catalog_build,
    manifest_mtime,
    open_catalog,
)
from engine.serving.thumbnails import ThumbnailCache
from pages.build_progress import build_failures, rebuild_notice, show_build, watch_for_build
from pages.cache_diag import note_build
from pages.card_html import Card, grid_html

T = TypeVar("T")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def esc(text: object) -> str:
    """Escape Markdown/HTML/LaTeX so catalog text displays literally."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


# -- caches (the only st.cache_* calls in the app) -----------------------------------------------
@st.cache_resource(show_spinner="Opening the catalog…", max_entries=4)
def _cached_catalog(name: str, manifest_mtime: float, store: str) -> Catalog:
    note_build("_open_catalog", name, manifest_mtime, store)
    # a first build's finished steps, or a catalog built by other code (refused by
    # current_catalog unless it is being rebuilt)
    return open_catalog(name, vector_store=store, partial=True, outdated=True)


def _open_catalog(name: str, manifest_mtime: float, store: str = "faiss") -> Catalog:
    """A built catalog whose dense methods read their indexes from ``store`` (faiss|milvus),
    opened once per process. (The cache is keyed on the arguments as passed, so every call goes
    through here with all three: ``f(a, b)`` and ``f(a, b, "faiss")`` would be two entries.)"""
    return _cached_catalog(name, manifest_mtime, store)


@st.cache_resource(show_spinner="Loading models and indexes…", max_entries=32)
def warm_retriever(name: str, manifest_mtime: float, method: str, store: str = "faiss") -> bool:
    """Load a method's models and indexes once per process (shared by every session)."""
    note_build("warm_retriever", name, manifest_mtime, method, store)
    from engine.search import get_retriever

    get_retriever(_open_catalog(name, manifest_mtime, store), method).warm_up()
    return True


# Card thumbnails per opened catalog object. Opened catalogs are themselves cached per process
# (``_cached_catalog``), so this is per process and build like the caches above; a plain map
# because a result page asks for ~50 images per run, and each ``st.cache_resource`` call hashes
# its arguments.
_THUMBS: weakref.WeakKeyDictionary[Catalog, ThumbnailCache] = weakref.WeakKeyDictionary()
_THUMBS_LOCK = threading.Lock()


def _thumbnails(catalog: Catalog) -> ThumbnailCache:
    """The catalog's card-image thumbnails (built per item on first show, shared by sessions)."""
    cache = _THUMBS.get(catalog)
    if cache is None:
        with _THUMBS_LOCK:
            cache = _THUMBS.get(catalog)
            if cache is None:
                note_build("_thumbnails", catalog.name, catalog.manifest.get("built_at"))
                cache = _THUMBS[catalog] = ThumbnailCache()
    return cache


def card_image(catalog: Catalog, row: int) -> str:
    """A card's image: a small inline ``data:`` URI built once per item."""
    return _thumbnails(catalog).get(row, lambda: catalog.image_path(row))


def card_image_uri(catalog: Catalog, row: int) -> str:
    """A card's image as an inline ``data:`` URI, for HTML cards ("" when it cannot be read)."""
    try:
        return card_image(catalog, row)
    except (OSError, ValueError):  # a missing or unreadable image: the card shows its text
        return ""


@st.cache_data(show_spinner=False, max_entries=64)
def facet_values(name: str, manifest_mtime: float, column: str) -> list:
    """Distinct values of a catalog column (or a ground-truth one), for filter widgets."""
    note_build("facet_values", name, manifest_mtime, column)
    catalog = _open_catalog(name, manifest_mtime)
    table = catalog.items if column in catalog.items else catalog.truth
    return sorted(table[column].astype(str).unique().tolist())


@st.cache_data(show_spinner="Projecting the embeddings…", max_entries=8)
def embedding_projection(
    name: str, manifest_mtime: float, space: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """2-D PCA coordinates of every item's embedding in one space (``sbert``, ``clip``)."""
    note_build("embedding_projection", name, manifest_mtime, space)
    from engine.projection import project_embeddings

    return project_embeddings(_open_catalog(name, manifest_mtime), space)


@st.cache_resource(show_spinner="Loading the recommenders…", max_entries=4)
def recommendation_service(name: str, manifest_mtime: float):
    """The catalog's recommenders (loaded lazily, shared by every session; users' histories and
    the items' attributes memoised for the per-card reasons)."""
    note_build("recommendation_service", name, manifest_mtime)
    from engine.serving.recommendations import ServingRecommendations

    return ServingRecommendations.for_catalog(_open_catalog(name, manifest_mtime))


@st.cache_data(show_spinner=False, max_entries=4)
def persona_users(name: str, manifest_mtime: float) -> dict[str, str]:
    """A few users whose tastes are easy to recognise ("loves red sneakers")."""
    note_build("persona_users", name, manifest_mtime)
    from engine.serving.personas import personas

    catalog = _open_catalog(name, manifest_mtime)
    return personas(catalog.table("user_truth"), catalog.table("interactions"))


@st.cache_resource
def latency_monitor():
    """The process-wide live latency monitor (every session records into it)."""
    note_build("latency_monitor")
    from engine.monitoring import LatencyMonitor

    return LatencyMonitor()


@st.cache_resource
def benchmark_job():
    """The process-wide quick-benchmark job (runs in a thread; pages poll it)."""
    note_build("benchmark_job")
    from engine.benchmark.jobs import BenchmarkJob

    return BenchmarkJob()


@st.cache_data(show_spinner=False, max_entries=4)
def benchmark_report(path: str, mtime: float) -> dict | None:
    """The benchmark report written by ``make bench`` (re-read when the file changes)."""
    note_build("benchmark_report", path, mtime)
    import json

    return json.loads(Path(path).read_text())


@st.cache_data(show_spinner=False, max_entries=8)
def disagreement_table(name: str, manifest_mtime: float, methods: tuple[str, ...]):
    """Per-test-query NDCG@10 of each method, sorted by disagreement (computed once)."""
    note_build("disagreement_table", name, manifest_mtime, methods)
    from engine.benchmark.harness import disagreement

    return disagreement(_open_catalog(name, manifest_mtime), methods)


def run_search(catalog: Catalog, method: str, **kwargs) -> SearchResult:
    """engine.search.search, recording the query's stage latencies in the live monitor."""
    from engine.search import search

    result = search(catalog, method, **kwargs)
    latency_monitor().record(result)
    return result


def method_select(label: str, methods: list[str], key: str, container=st) -> str:
    """A method selector whose help lists every method's description."""
    from engine.retrieval.registry import retriever_class

    return container.selectbox(
        label,
        methods,
        key=key,
        help="\n".join(f"**{m}**: {retriever_class(m).description}" for m in methods),
    )


def guarded(method: str, work: Callable[[], T], *, name_method: bool = False) -> T | None:
    """Warm ``method`` up and run ``work``. Bad input shows a warning, a broken method (an index
    or model that will not load) an error with the rebuild command; both return None, so a page
    comparing several methods keeps the others. The one search error handler of the app.
    """
    try:
        warm_retriever(*catalog_key(), method, vector_store())
        return work()
    except QueryError as exc:
        st.warning((f"{esc(method)}: " if name_method else "") + esc(str(exc)))
    except Exception as exc:  # a broken index or model: say so; other methods still work
        method_unavailable(method, exc)
    return None


def try_search(
    catalog: Catalog, method: str, *, name_method: bool = False, **kwargs
) -> SearchResult | None:
    """One search through :func:`guarded` (its latency goes to the live monitor)."""
    return guarded(method, lambda: run_search(catalog, method, **kwargs), name_method=name_method)


def understood_search(
    catalog: Catalog, method: str, prefix: str, text: str, **kwargs
) -> SearchResult:
    """Search ``text`` and show what it was understood as, each piece removable with one click
    (a pill: click it off to search without it, on again to bring it back)."""
    import hashlib

    from engine.serving.understanding import dropped, interpret_text

    interp = interpret_text(catalog, text)  # None on bad input: the search says why, once
    chips = interp.chips() if interp is not None else []
    key = f"{prefix}_understood_{hashlib.sha1(text.encode()).hexdigest()[:10]}"
    drop = dropped([c for c, _ in chips], st.session_state.get(key))
    result = search_or_stop(catalog, method, text=text, drop=drop, **kwargs)
    if chips:
        labels = dict(chips)
        st.pills(
            "Understood as",
            list(labels),
            selection_mode="multi",
            default=list(labels),
            format_func=lambda c: labels[c],
            key=key,
            help="What the query was understood as. Click a piece to search without it.",
        )
    return result


def search_or_stop(catalog: Catalog, method: str, **kwargs) -> SearchResult:
    """:func:`try_search`, stopping the page when there is nothing to show."""
    result = try_search(catalog, method, **kwargs)
    if result is None:
        st.stop()
    return result


def method_unavailable(method: str, exc: Exception) -> None:
    """One method failed to load or run: an error naming it, and the rebuild command if known."""
    reason = exc.reason if isinstance(exc, ArtifactError) else f"{type(exc).__name__}: {exc}"
    st.error(
        f"The {esc(method)} method is unavailable: {esc(reason)} "
        "Other methods and pages still work."
    )
    if isinstance(exc, ArtifactError) and exc.fix:
        st.code(exc.fix, language="bash")


def require_methods(catalog: Catalog, methods: list[str], what: str) -> None:
    """Stop the page (``what`` it offers) when the catalog has no method for it (no visual
    index built)."""
    if not methods:
        not_built_yet(catalog, what, "the CLIP model and the image embeddings",
                      "This catalog has no visual index yet.")


def not_built_yet(catalog: Catalog, what: str, steps: str, missing: str) -> NoReturn:
    """Stop a page whose steps are not built: during a first build, say that ``what`` comes
    when ``steps`` are built; otherwise say ``missing`` with the command that builds them."""
    if catalog.manifest.get("partial") and catalog_build(catalog.name) is not None:
        st.info(f"{what} will work as soon as {steps} are built: this catalog's first build "
                "is running (its progress is in the sidebar), and the page updates by itself.",
                icon=":material/hourglass_top:")
    else:
        st.warning(missing)
        st.code(catalog.manifest.get("rebuild_command", "python -m engine build"),
                language="bash")
    st.stop()


# -- catalog choice ----------------------------------------------------------------------------
def catalog_key() -> tuple[str, float]:
    """(name, manifest mtime) of the catalog chosen in the sidebar: the key of every cache."""
    name = st.session_state.get("catalog_name", "demo")
    return name, manifest_mtime(name)


@st.cache_resource
def _served_versions() -> dict[str, float]:
    """The newest manifest mtime this process has served, per catalog."""
    return {}


def _drop_superseded(name: str, mtime: float) -> None:
    """Free the catalog (with the models and indexes it loaded) and the recommenders of the
    older manifest of ``name`` once a newer one is served (a rebuild, or each step of a first
    build): nothing asks for them again, and they would otherwise stay until evicted. Other
    catalogs' entries stay."""
    seen = _served_versions()
    old = seen.get(name, mtime)
    if old < mtime:
        for store in STORES:
            _cached_catalog.clear(name, old, store)
        recommendation_service.clear(name, old)
    seen[name] = max(mtime, old)


def current_catalog() -> Catalog:
    """The catalog chosen in the sidebar; stops the page with a clear message if unusable."""
    names = built_catalogs()
    if not names and (building := building_catalogs()):
        show_build(next(iter(building)), 0.0)
        st.stop()
    if not names:
        st.error("No catalog has been built yet.")
        st.code("make run        # or: python -m engine build --preset demo", language="bash")
        build_failures()
        watch_for_build()
        st.stop()
    default = "demo" if "demo" in names else names[0]
    if st.session_state.get("catalog_name") not in names:
        st.session_state["catalog_name"] = default
    st.sidebar.selectbox("Catalog", names, key="catalog_name")
    name, mtime = catalog_key()
    _drop_superseded(name, mtime)
    try:
        catalog = _open_catalog(name, mtime)
        store = vector_store_picker(catalog)
        if store != "faiss":
            catalog = _open_catalog(name, mtime, store)
    except ArtifactError as exc:
        if catalog_build(name) is not None:  # being built: follow the build until it ends
            show_build(name, mtime)
            st.stop()
        _refuse(name, mtime, exc.reason, exc.fix)
    building = catalog_build(name) is not None
    if catalog.stale_steps and not building:  # built by other code, and no rebuild runs
        _refuse(name, mtime, " ".join(stale_problem(s) for s in catalog.stale_steps),
                catalog.manifest.get("rebuild_command"))
    n = len(catalog.items)
    partial = bool(catalog.manifest.get("partial"))
    st.sidebar.caption(f"{n:,} products · " + ("being built" if partial else
                                               f"built {catalog.manifest['built_at'][:10]}"))
    if building:  # the built steps serve until the build ends
        with st.sidebar:
            rebuild_notice(name, mtime, partial)
    elif partial:
        st.sidebar.warning("This catalog is only partly built (its build stopped): the methods "
                           "of the missing steps are not offered. "
                           f"`{catalog.manifest.get('rebuild_command', 'make run')}` finishes "
                           "it.")
        build_failures(name)
        watch_for_build(name, mtime)  # a build started later, or one that just ended
    return catalog


def _refuse(name: str, mtime: float, reason: str, fix: str | None) -> NoReturn:
    """Stop the page: the catalog cannot be served, why, and the command that fixes it."""
    st.error(f"The '{name}' catalog cannot be served: {reason}")
    st.code(fix or f"python -m engine build --preset {name}", language="bash")
    build_failures(name)
    watch_for_build(name, mtime)
    st.stop()


STORES = {"faiss": "FAISS (in-process files)", "milvus": "Milvus"}


def vector_store() -> str:
    """The vector store the session's searches read (``faiss`` unless Milvus was picked)."""
    return st.session_state.get("vector_store", "faiss")


def vector_store_picker(catalog: Catalog) -> str:
    """A sidebar choice of vector store, shown when the catalog also has Milvus collections."""
    from engine.components import milvus_collections

    info = milvus_collections(catalog)
    if info is None:
        st.session_state["vector_store"] = "faiss"
        return "faiss"
    if st.session_state.get("vector_store") not in STORES:
        st.session_state["vector_store"] = "faiss"
    where = "Milvus Lite files" if info.get("uri") is None else f"Milvus at {info['uri']}"
    st.sidebar.radio(
        "Vector store",
        list(STORES),
        format_func=STORES.get,
        key="vector_store",
        help=f"Where the dense methods search: the FAISS index files, or the same vectors in "
        f"{where} (built with --vector-store milvus). Results agree; latency differs.",
    )
    return vector_store()


# -- result display ----------------------------------------------------------------------------
def truth_label(catalog: Catalog) -> str:
    """What the attributes shown beside catalog data are: the world's truth or the merchant's."""
    return "ground truth" if catalog.is_synthetic else "merchant attributes"


def _item_facts(catalog: Catalog, row: int) -> tuple[str, list[str]]:
    """A card's price and the item's attributes (ground truth: what the synthetic world knows;
    no method sees them), as plain text."""
    price = f"${catalog.items['price'].iat[row]:.2f}"
    truth = catalog.truth  # column access: a row of a wide table per card costs ~1 ms
    values = [truth[f].iat[row] for f in ("colour", "pattern", "material") if f in truth]
    return price, [str(v) for v in values if v]


def item_caption(catalog: Catalog, row: int) -> str:
    """One escaped Markdown line for a card: the price, then the item's attributes labelled as
    ground truth."""
    price, attrs = _item_facts(catalog, row)
    line = esc(price)
    if attrs:
        line += f" · *{esc(truth_label(catalog))}:* " + " · ".join(esc(a) for a in attrs)
    return line


def html_card(
    catalog: Catalog,
    row: int,
    score: float | None = None,
    why: str | None = None,
    *,
    rank: int | None = None,
) -> Card:
    """What an HTML card shows (``pages/card_html.py`` renders it)."""
    price, attrs = _item_facts(catalog, row)
    return Card(
        image_uri=card_image_uri(catalog, row),
        title=str(catalog.items["title"].iat[row]),
        price=price,
        truth_label=truth_label(catalog),
        attributes=tuple(attrs),
        is_new=bool(catalog.items["is_new"].iat[row]),
        score=score,
        why=why,
        rank=rank,
        item_id=str(catalog.item_ids[row]),
    )


def show_timings(result: SearchResult) -> None:
    """The method's description and the latency of each stage of this query."""
    from engine.retrieval.registry import retriever_class

    st.caption(esc(retriever_class(result.method).description))
    stages = " · ".join(f"{esc(k)} **{v:.1f}** ms" for k, v in result.timings_ms.items())
    st.caption(f"Latency: {stages} · total **{result.total_ms:.1f}** ms")


def _set_state(key: str, value: object) -> None:
    st.session_state[key] = value


def result_grid(
    catalog: Catalog,
    rows: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    columns: int = 5,
    key: str = "grid",
    on_open: str | None = None,
    more_like_this: Callable[[str], None] | None = None,
) -> None:
    """Ranked cards of product images with title, price, attributes and score, as one HTML
    element (``pages/card_html.py``).

    With ``more_like_this`` set, a "More like this" picker above the grid lists the cards and
    calls it with the chosen item's id; with ``on_open`` set, an "Open a product" picker stores
    the chosen card's row in that session key. (A button per card cost the browser a
    container, an HTML element and a button each: a third more CPU per image search, measured
    with ``e2e/page_cpu_probe.py``.)
    """
    cards = [
        html_card(catalog, int(row), None if scores is None else float(scores[i]), rank=i + 1)
        for i, row in enumerate(rows)
    ]
    if more_like_this and len(cards):
        _card_picker(cards, f"{key}-mlt", "More like this", "Search with one of these results…",
                     lambda i: more_like_this(cards[i].item_id))
    if on_open and len(cards):
        _card_picker(cards, f"{key}-open", "Open a product",
                     "See everything about one of these products…",
                     lambda i: _set_state(on_open, int(rows[i])))
    st.html(grid_html(cards, columns=columns))


def _card_picker(cards: list[Card], widget: str, label: str, placeholder: str,
                 then: Callable[[int], None]) -> None:
    """A select box of the cards; choosing one calls ``then`` with its position (the box
    empties again, ready for the next cards)."""

    def chosen() -> None:
        i = st.session_state.get(widget)
        st.session_state[widget] = None
        if i is not None and 0 <= i < len(cards):
            then(i)

    st.selectbox(
        label,
        range(len(cards)),
        index=None,
        key=widget,
        format_func=lambda i: f"{cards[i].rank}. {cards[i].title}",
        placeholder=placeholder,
        on_change=chosen,
    )


def item_details(catalog: Catalog, row: int) -> None:
    """A product's image, text, attributes and interaction count."""
    info = catalog.describe(row)
    left, right = st.columns([1, 2])
    left.image(str(catalog.image_path(row)), width="stretch")
    with right:
        st.subheader(esc(info["title"]), anchor=False)
        st.text(info["description"])
        fields = ["item_id", "category", "brand", "price", "is_new", "launch_day", "interactions"]
        truth = catalog.truth.iloc[row]
        known = [f for f in ("colour", "pattern", "material") if f in truth]
        st.dataframe(
            {
                "attribute": fields + [f"{f} ({truth_label(catalog)})" for f in known],
                "value": [str(info.get(f, "")) for f in fields] + [str(truth[f]) for f in known],
            },
            hide_index=True,
            width="stretch",
        )


def clip_notice(catalog: Catalog) -> None:
    """Say which CLIP model serves visual search, and if a requested one was unavailable."""
    info = catalog.manifest.get("steps", {}).get("clip", {}).get("info", {})
    if not info:
        return
    if info.get("fallback"):
        st.info(esc(info["fallback"]))
    if info.get("trained"):
        st.caption(
            f"Visual model: compact CLIP trained on this catalog "
            f"({info.get('seconds', 0):.0f} s, {info.get('epochs', 0):.1f} epochs)."
        )
    else:
        st.caption(f"Visual model: pretrained CLIP {esc(info.get('spec', ''))}.")
