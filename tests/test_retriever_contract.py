"""The retriever contract, run against every registered method (in the spirit of implicit's shared
recommender test): a new method gets these assertions without a line of test code.

On the session's tiny catalog, each method answers each kind of query it declares (text, image,
both): unique catalog rows, scores best first, at most k results, non-negative stage timings,
the same answer twice, bad input refused with a clear message, and an explanation when the class
says it explains.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.retrieval.base import SearchResult
from engine.retrieval.registry import (
    available_retrievers,
    create_retriever,
    list_retrievers,
    retriever_class,
)
from engine.search import QueryError, search

METHODS = list_retrievers()
TEXTS = ("leather boots", "navy polka dot backpack", "red striped mug")


@pytest.fixture(scope="module")
def query_image(tiny_catalog) -> Image.Image:
    with Image.open(tiny_catalog.image_path(3)) as im:
        return im.convert("RGB")


def queries_for(name: str, image: Image.Image) -> list[dict]:
    """One query of every kind the method declares it can take."""
    cls = retriever_class(name)
    out: list[dict] = []
    if "text" in cls.modalities:
        out += [{"text": t} for t in TEXTS]
    if "image" in cls.modalities:
        out.append({"image": image})
    if cls.mixes_modalities:
        out.append({"text": TEXTS[0], "image": image, "image_weight": 0.3})
    return out


def check_result(result: SearchResult, name: str, k: int, n_items: int) -> None:
    rows = result.rows.tolist()
    assert result.method == name
    assert len(rows) <= k and len(set(rows)) == len(rows)
    assert all(0 <= r < n_items for r in rows)
    assert result.rows.dtype == np.int64 and len(result.scores) == len(rows)
    assert np.all(np.diff(result.scores) <= 1e-5), f"{name}: scores must be best first"
    assert result.timings_ms and all(v >= 0 for v in result.timings_ms.values())


def test_every_built_method_is_in_the_contract(tiny_catalog) -> None:
    """The tiny catalog builds every step, so every registered method is exercised below."""
    assert set(available_retrievers(tiny_catalog)) == set(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_declarations(name) -> None:
    cls = retriever_class(name)
    assert cls.name == name and cls.description and cls.modalities <= {"text", "image"}
    assert set(cls.fuses) <= set(METHODS) - {name}
    if cls.mixes_modalities:
        assert cls.modalities == {"text", "image"}
    if cls.explains:
        assert cls.explain is not retriever_class("bm25").explain


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("k", [1, 7])
def test_shape_order_and_k(tiny_catalog, query_image, name, k) -> None:
    for q in queries_for(name, query_image):
        result = search(tiny_catalog, name, k=k, **q)
        check_result(result, name, k, len(tiny_catalog.items))
        assert len(result) > 0 or result.notes, f"{name} returned nothing without saying why"


@pytest.mark.parametrize("name", METHODS)
def test_deterministic(tiny_catalog, query_image, name) -> None:
    for q in queries_for(name, query_image):
        a = search(tiny_catalog, name, k=10, **q)
        b = search(tiny_catalog, name, k=10, **q)
        assert a.rows.tolist() == b.rows.tolist()
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


@pytest.mark.parametrize("name", METHODS)
def test_bad_input_is_refused_clearly(tiny_catalog, query_image, name) -> None:
    cls = retriever_class(name)
    with pytest.raises(QueryError, match="Type something"):
        search(tiny_catalog, name, text="   ")
    with pytest.raises(QueryError, match="Top-k"):
        search(tiny_catalog, name, text="boots", image=query_image, k=0)
    if "image" not in cls.modalities:
        with pytest.raises(QueryError, match="needs a text query"):
            search(tiny_catalog, name, image=query_image)
    if "text" not in cls.modalities:
        with pytest.raises(QueryError, match="needs a"):
            search(tiny_catalog, name, text="boots")


@pytest.mark.parametrize("name", METHODS)
def test_parameters_are_declared(tiny_catalog, name) -> None:
    cls = retriever_class(name)
    retriever = create_retriever(name, tiny_catalog, **cls.params)
    for key, default in cls.params.items():
        assert getattr(retriever, key) == default
    with pytest.raises(ValueError, match="unknown parameter"):
        create_retriever(name, tiny_catalog, no_such_parameter=1)
    retriever.warm_up()


@pytest.mark.parametrize("name", [m for m in METHODS if retriever_class(m).explains])
def test_explanation_when_declared(tiny_catalog, name) -> None:
    result = search(tiny_catalog, name, text=TEXTS[1], k=5)
    why = create_retriever(name, tiny_catalog).explain(TEXTS[1], int(result.rows[0]))
    assert why["contributions"] and all("feature" in c for c in why["contributions"])


@pytest.mark.parametrize("name", [m for m in METHODS if not retriever_class(m).explains])
def test_no_explanation_unless_declared(tiny_catalog, name) -> None:
    with pytest.raises(NotImplementedError):
        create_retriever(name, tiny_catalog).explain(TEXTS[0], 0)
