"""Sentence-BERT precision: the int8 option, its checks, and the int8-vs-fp32 measurements."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from engine.artifacts import ArtifactError
from engine.benchmark.int8 import PRECISIONS, agreement, side_by_side, top_k
from engine.benchmark.int8_section import int8_md
from engine.cli import build_parser
from engine.components import text_precision
from engine.config import TextConfig, config_from_dict, load_preset
from engine.encoders.text import HashingEncoder, create_text_encoder
from engine.pipeline import plan
from engine.pipeline.status import rebuild_command

TEXTS = [
    "Navy striped cotton shirt. A relaxed shirt for every day. Northwind. shirts.",
    "Red leather ankle boots. Polished boots with a low heel. Ridge & Co. boots.",
    "Green floral summer dress. Light and airy. Meadow. dresses.",
    "Grey wool scarf. Warm and soft. Alpine. scarves.",
]


def test_unknown_precisions_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: fp32, int8"):
        load_preset("tiny", sbert_precision="int4")
    with pytest.raises(ValueError, match="valid: fp32, int8"):
        TextConfig(sbert_precision="bf16")
    with pytest.raises(ValueError, match="valid: fp32, int8"):
        create_text_encoder(precision="fp16")
    with pytest.raises(ValueError, match="no int8 variant"):
        create_text_encoder("hashing", precision="int8")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["build", "--sbert-precision", "int4"])
    args = build_parser().parse_args(["build", "--sbert-precision", "int8"])
    assert args.sbert_precision == "int8"


def test_fp32_keeps_its_hashes_and_int8_rebuilds_the_text_steps() -> None:
    fp32, int8 = load_preset("tiny"), load_preset("tiny", sbert_precision="int8")
    assert "sbert_precision" not in fp32.to_dict()["text"]  # hashes from before the option
    assert int8.to_dict()["text"]["sbert_precision"] == "int8"
    assert config_from_dict(fp32.to_dict()) == fp32
    assert config_from_dict(int8.to_dict()) == int8
    a, b = plan(fp32), plan(int8)
    assert a["world"] == b["world"]
    assert all(a[s] != b[s] for s in ("sbert", "query", "clip", "fusion", "ranker"))
    assert rebuild_command(int8, "tiny").endswith(" --sbert-precision int8")
    assert "--sbert-precision" not in rebuild_command(fp32, "tiny")


def _catalog(configured: str | None, stored: str | None) -> SimpleNamespace:
    text = {"sbert_model": "all-MiniLM-L6-v2"}
    info = {} if stored is None else {"precision": stored}
    if configured is not None:
        text["sbert_precision"] = configured
    return SimpleNamespace(
        name="c",
        config={"text": text},
        manifest={"steps": {"sbert": {"info": info}}, "rebuild_command": "python -m engine X"},
    )


def test_query_encoder_refuses_to_mix_precisions() -> None:
    assert text_precision(_catalog(None, None)) == "fp32"  # builds before the option
    assert text_precision(_catalog("int8", "int8")) == "int8"
    with pytest.raises(ArtifactError, match="item vectors are fp32 .* int8 query") as err:
        text_precision(_catalog("int8", None))
    assert err.value.fix == "python -m engine X"
    with pytest.raises(ArtifactError, match="item vectors are int8"):
        text_precision(_catalog(None, "int8"))


def test_the_tiny_build_records_its_precision(tiny_manifest: dict, tiny_catalog) -> None:
    assert tiny_manifest["steps"]["sbert"]["info"]["precision"] == "fp32"
    assert text_precision(tiny_catalog) == "fp32"


class Noisy(HashingEncoder):
    """The hashing encoder plus a little deterministic noise: a stand-in for another precision."""

    def encode_texts(self, texts, *, batch_size=64):
        vecs = super().encode_texts(texts, batch_size=batch_size)
        noise = np.random.default_rng(42).normal(0, 0.02, vecs.shape).astype(np.float32)
        vecs = vecs + noise
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def test_side_by_side_compares_quality_latency_and_agreement() -> None:
    encoders = {"fp32": HashingEncoder(64), "int8": Noisy(64)}
    ids = np.array([f"p{i}" for i in range(len(TEXTS))])
    vectors = {p: encoders[p].encode_texts(TEXTS) for p in PRECISIONS}
    queries = [("q1", "striped shirt"), ("q2", "leather boots"), ("q3", "floral dress")]
    qrels = {"q1": {"p0": 2}, "q2": {"p1": 2}, "q3": {"p2": 2}}
    out = side_by_side(encoders, vectors, ids, queries, qrels, k=2)
    assert out["fp32"]["ndcg@2"] == 1.0
    assert out["n_queries"] == 3 and out["n_items"] == 4
    assert {"encode_ms", "encode_search_ms"} <= set(out["int8"])
    assert out["fp32"]["encode_search_ms"]["n"] == 3
    assert 0.9 < out["item_cosine"]["mean"] < 1.0
    assert out["ndcg_change"] == round(out["int8"]["ndcg@2"] - 1.0, 4)
    md = "\n".join(int8_md({**out, "catalog": "c", "split": "test", "built_precision": "fp32",
                            "reencoded": "int8", "reencode_seconds": 1.0, "search": "exact",
                            "measured_at": "now", "commit": "abc", "machine_busy": True}))
    assert "## SBERT int8 vs fp32" in md and "machine busy" in md
    assert "| fp32 | 1.0000 |" in md


def test_top_k_and_agreement() -> None:
    items = np.eye(4, dtype=np.float32)
    assert top_k(items, np.array([0.1, 0.9, 0.5, 0.0], np.float32), 2).tolist() == [1, 2]
    assert agreement(items, items) == {"mean": 1.0, "p5": 1.0, "min": 1.0}


def test_int8_minilm_is_quantized_and_agrees_with_fp32() -> None:
    import torch

    fp32 = create_text_encoder(precision="fp32")
    int8 = create_text_encoder(precision="int8")
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    quantized = torch.ao.nn.quantized.dynamic.Linear
    assert any(isinstance(m, quantized) for m in int8.model.modules())
    assert not any(isinstance(m, quantized) for m in fp32.model.modules())
    a, b = fp32.encode_texts(TEXTS), int8.encode_texts(TEXTS)
    assert b.dtype == np.float32 and b.shape == a.shape
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert agreement(a, b)["min"] > 0.9
    # Same nearest text for each text's fp32 and int8 vectors.
    assert ((a @ a.T).argmax(1) == (b @ a.T).argmax(1)).all()


def test_probe_refuses_on_a_busy_machine(tmp_path, monkeypatch) -> None:
    import engine.benchmark.int8 as int8_mod
    from e2e import int8_probe

    monkeypatch.setattr(
        int8_mod, "provenance",
        lambda: {"measured_at": "t", "commit": "c", "load_average_before": [3.0, 2.0, 1.0],
                 "machine_busy": True},
    )
    out = tmp_path / "probe.json"
    assert int8_probe.main(["--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["machine_busy"] is True and "probe" not in report


def test_bench_int8_on_the_tiny_catalog(tiny_catalog, tmp_path, monkeypatch) -> None:
    import engine.benchmark.int8 as int8_mod
    from engine.cli import main

    busy = {"measured_at": "t", "commit": "c", "load_average_before": [3.0, 2.0, 1.0],
            "machine_busy": True}
    monkeypatch.setattr(int8_mod, "provenance", lambda: busy)
    assert main(["bench-int8", "--catalog", "tiny", "--out", str(tmp_path)]) == 1
    assert not (tmp_path / "int8.json").exists()  # a busy machine never overwrites a result
    monkeypatch.setattr(int8_mod, "provenance", lambda: {**busy, "machine_busy": False})
    assert main(["bench-int8", "--catalog", "tiny", "--out", str(tmp_path), "--limit", "8"]) == 0
    result = json.loads((tmp_path / "int8.json").read_text())
    assert result["n_queries"] == 8 and result["n_items"] == len(tiny_catalog.items)
    assert (result["built_precision"], result["reencoded"]) == ("fp32", "int8")
    assert 0.9 < result["item_cosine"]["mean"] < 1.0
