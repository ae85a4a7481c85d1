"""The ONNX query encoder: PyTorch's MiniLM vectors on a leaner runtime, chosen per process,
checked before use, and replaced by PyTorch whenever it cannot be trusted."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from engine.encoders import onnx_text
from engine.encoders.onnx_text import (
    MAX_ABS_DIFF,
    RUNTIME_ENV,
    OnnxSbertEncoder,
    export_minilm,
    query_runtime,
    query_text_encoder,
)
from engine.encoders.text import HASHING, MINILM, HashingEncoder, SbertEncoder, minilm_path

TEXTS = [
    "navy polka dot sneakers",
    "",
    "  Red LEATHER handbag, gold clasp!  ",
    "kicks",
    "a cosy woollen hat for long winter walks by the sea " * 30,  # truncated at 256 tokens
    "čeština, 日本語 and emoji 👟",
]


@pytest.fixture(scope="module")
def torch_encoder() -> SbertEncoder:
    return SbertEncoder()


@pytest.fixture(scope="module")
def onnx_encoder(data_dir) -> OnnxSbertEncoder:
    return OnnxSbertEncoder()


def test_onnx_vectors_equal_pytorchs(onnx_encoder, torch_encoder) -> None:
    expected = torch_encoder.encode_texts(TEXTS)
    for batch_size in (1, 4, 64):  # padding inside a batch must not change a text's vector
        got = onnx_encoder.encode_texts(TEXTS, batch_size=batch_size)
        assert got.shape == expected.shape == (len(TEXTS), 384) and got.dtype == np.float32
        assert np.abs(got - expected).max() < 1e-5, batch_size
    assert onnx_encoder.encode_texts([]).shape == (0, 384)


def test_the_export_is_cached_once_with_its_check(onnx_encoder, data_dir) -> None:
    path = onnx_encoder.path
    assert path.parent == data_dir / "models" and path.name.startswith(MINILM)
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert 0 <= manifest["max_abs_diff"] <= MAX_ABS_DIFF
    assert not list(path.parent.glob(".*.tmp"))  # no half-written export left behind
    mtime = path.stat().st_mtime_ns
    assert OnnxSbertEncoder().path == path and path.stat().st_mtime_ns == mtime  # reused


def test_the_runtime_is_chosen_by_setting(monkeypatch, onnx_encoder) -> None:
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    assert query_runtime() == "onnx" and isinstance(query_text_encoder(MINILM), OnnxSbertEncoder)
    monkeypatch.setenv(RUNTIME_ENV, "torch")
    assert isinstance(query_text_encoder(MINILM), SbertEncoder)
    assert isinstance(query_text_encoder(HASHING), HashingEncoder)  # other encoders: unchanged
    monkeypatch.setenv(RUNTIME_ENV, "tpu")
    with pytest.raises(ValueError, match="valid: onnx, torch"):
        query_runtime()


def test_int8_catalogs_keep_pytorchs_quantized_encoder(onnx_encoder) -> None:
    enc = query_text_encoder(MINILM, precision="int8", runtime_name="onnx")
    assert isinstance(enc, SbertEncoder) and enc.precision == "int8"


def test_a_failed_export_falls_back_to_pytorch(monkeypatch, tmp_path, caplog) -> None:
    monkeypatch.setenv("PIXELMATCH_DATA", str(tmp_path))  # nothing exported here yet

    def broken(model_dir, out):
        raise RuntimeError("exported MiniLM differs from PyTorch by 1.0e-01")

    monkeypatch.setattr(onnx_text, "export_minilm", broken)
    with caplog.at_level(logging.WARNING, logger="engine.encoders.onnx_text"):
        enc = query_text_encoder(MINILM, runtime_name="onnx")
    assert isinstance(enc, SbertEncoder)
    assert "using PyTorch" in caplog.text and "differs" in caplog.text
    assert not list(tmp_path.rglob("*.onnx"))


def test_an_export_that_disagrees_with_pytorch_never_lands(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(onnx_text, "MAX_ABS_DIFF", -1.0)  # any difference is too much
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        export_minilm(minilm_path(), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []  # neither the graph nor its temporary file


def test_search_results_are_the_same_on_both_runtimes(tiny_catalog, monkeypatch) -> None:
    from engine.search import search

    queries = ["leather boots", "something red to carry", "striped mug"]
    results = {}
    for chosen in ("torch", "onnx"):
        monkeypatch.setenv(RUNTIME_ENV, chosen)
        results[chosen] = [search(tiny_catalog, m, text=q, k=10)
                           for m in ("sbert", "clip") for q in queries]
    for a, b in zip(results["torch"], results["onnx"]):
        assert a.rows.tolist() == b.rows.tolist()
        assert np.allclose(a.scores, b.scores, atol=1e-5)


def test_batches_on_workers_give_each_text_its_own_vector(onnx_encoder, torch_encoder) -> None:
    """The build's batch path: duplicates encoded once, batches sorted by length and run on two
    workers, every vector back in its text's place and equal to PyTorch's."""
    texts = TEXTS + TEXTS[::-1] + [f"item {i} in blue cotton" for i in range(70)]
    expected = torch_encoder.encode_texts(texts)
    workers = OnnxSbertEncoder(threads=2)
    got = workers.encode_texts(texts, batch_size=128)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5
    np.testing.assert_allclose(got, onnx_encoder.encode_texts(texts, batch_size=1), atol=1e-6)
    assert np.array_equal(got[: len(TEXTS)], got[len(TEXTS) : 2 * len(TEXTS)][::-1])


def test_build_steps_encode_fp32_minilm_on_onnx(monkeypatch, onnx_encoder) -> None:
    from engine.config import TextConfig
    from engine.encoders.onnx_text import text_encoder_for

    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    enc = text_encoder_for(TextConfig(), threads=2)
    assert isinstance(enc, OnnxSbertEncoder) and enc.threads == 2
    monkeypatch.setenv(RUNTIME_ENV, "torch")
    assert isinstance(text_encoder_for(TextConfig()), SbertEncoder)
    monkeypatch.delenv(RUNTIME_ENV)
    int8 = text_encoder_for(TextConfig(sbert_precision="int8"))
    assert isinstance(int8, SbertEncoder) and int8.precision == "int8"
    assert isinstance(text_encoder_for(TextConfig(sbert_model=HASHING)), HashingEncoder)


def test_item_texts_encode_in_bfloat16_where_asked(onnx_encoder, torch_encoder) -> None:
    """The sbert step's item encoder: bfloat16 autocast on PyTorch when asked, with vectors
    equal to float32's for search purposes; float32 settings keep ONNX, int8 keeps its model."""
    from engine.config import TextConfig
    from engine.encoders.onnx_text import item_text_encoder

    bf16 = item_text_encoder(TextConfig(item_compute="bf16"), threads=2)
    assert isinstance(bf16, SbertEncoder) and bf16.compute == "bf16"
    got, expected = bf16.encode_texts(TEXTS), onnx_encoder.encode_texts(TEXTS)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert (got * expected).sum(axis=1).min() > 0.999
    assert bf16.encode_texts([]).shape == (0, 384)
    assert torch_encoder.encode_texts([]).shape == (0, 384)
    assert isinstance(item_text_encoder(TextConfig(item_compute="fp32"), threads=2),
                      OnnxSbertEncoder)
    int8 = item_text_encoder(TextConfig(item_compute="bf16", sbert_precision="int8"))
    assert int8.precision == "int8" and int8.compute == "fp32"
    with pytest.raises(ValueError, match="fp32 model"):
        SbertEncoder(precision="int8", compute="bf16")
