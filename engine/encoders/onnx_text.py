"""Sentence-BERT through ONNX Runtime: the same MiniLM weights, a leaner runtime.

At query time one short text at a time is what matters, and there PyTorch's per-operator
overhead dominates: on this 2-core machine sentence-transformers takes ~17 ms per query where ONNX
Runtime, running the same exported graph on one thread, takes ~5 ms, with vectors equal to 1e-6.
The build's fp32 steps encode items, titles and words with it too
(:func:`text_encoder_for`): batches of similar length on one-thread
workers, faster than sentence-transformers on the same cores, with the same vectors.

The transformer, mean pooling and L2 normalisation are exported once per machine to
``data/models/<model>-<hash>.onnx`` (the hash covers the weights, the export code and the torch /
onnx versions), checked against PyTorch on probe texts, and written atomically with a JSON
manifest beside it. :func:`query_text_encoder` picks the runtime: ``onnx`` (default) or ``torch``
(``PIXELMATCH_QUERY_RUNTIME``), falling back to torch with a logged reason when ONNX Runtime is
missing or the export fails its check. ``int8`` catalogs always use torch (their item vectors
come from PyTorch's dynamic quantization, which the query side must match).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from engine import runtime  # noqa: F401  (offline env before transformers is imported)
from engine.encoders.base import distinct_longest_first
from engine.vectors import l2_normalise

log = logging.getLogger(__name__)

RUNTIMES = ("onnx", "torch")
RUNTIME_ENV = "PIXELMATCH_QUERY_RUNTIME"
EXPORT_VERSION = 1  # bump when the exported graph changes
OPSET = 17
PROBES = (
    "navy polka dot sneakers",
    "  a warm woollen hat for winter  ",
    "Handmade STONEWARE mug, dishwasher safe; 350 ml. " * 40,  # longer than max_seq_length
)
MAX_ABS_DIFF = 1e-4  # exported vectors must match PyTorch's this closely, or torch is used
_export_lock = threading.Lock()


def query_runtime() -> str:
    """The configured query runtime (``PIXELMATCH_QUERY_RUNTIME``); unknown values list the
    valid ones."""
    value = os.environ.get(RUNTIME_ENV, "onnx").strip().lower() or "onnx"
    if value not in RUNTIMES:
        raise ValueError(f"{RUNTIME_ENV}={value!r} is not a query runtime; valid: "
                         + ", ".join(RUNTIMES))
    return value


def query_text_encoder(name: str, *, precision: str = "fp32", runtime_name: str | None = None):
    """The text encoder for queries: ONNX Runtime for fp32 MiniLM when available, else the
    PyTorch encoder the build used (same weights, same vectors) on a serving process's one
    thread."""
    return _sbert_encoder(name, precision, runtime_name=runtime_name, serving=True)


def onnx_text_encoder(*, threads: int = 1, runtime_name: str | None = None):
    """fp32 MiniLM on ONNX Runtime with ``threads`` workers, or None (with the reason logged)
    when the runtime setting says torch, ``onnxruntime`` is missing or the export fails its
    check: the caller then uses PyTorch, which gives the same vectors."""
    if (runtime_name or query_runtime()) != "onnx":
        return None
    try:
        return OnnxSbertEncoder(threads=threads)
    except Exception as exc:  # missing package, failed export or check: torch still works
        log.warning("ONNX text encoder unavailable (%s); using PyTorch", exc)
        return None


def text_encoder_for(text_cfg, *, threads: int = 1):
    """The Sentence-BERT encoder a build's text settings (:class:`TextConfig`) ask for.

    fp32 MiniLM runs on ONNX Runtime with ``threads`` workers, like the queries (the same
    vectors as PyTorch to about 1e-7, and faster in batches; ``PIXELMATCH_QUERY_RUNTIME=torch``
    or a failed export falls back to PyTorch). int8 stays on PyTorch's quantized model.
    """
    return _sbert_encoder(text_cfg.sbert_model, text_cfg.sbert_precision, threads=threads)


def item_text_encoder(text_cfg, *, threads: int = 1):
    """The encoder of the sbert step's item and title texts: fp32 MiniLM on PyTorch in bfloat16
    autocast when ``text.item_compute`` resolves to ``bf16`` (:mod:`engine.compute`), else
    :func:`text_encoder_for`'s. Queries never use it: they are always encoded in float32."""
    from engine.compute import resolve_compute
    from engine.encoders.text import FP32, MINILM, SbertEncoder

    bf16 = resolve_compute(text_cfg.item_compute) == "bf16"
    if bf16 and text_cfg.sbert_model == MINILM and text_cfg.sbert_precision == FP32:
        return SbertEncoder(compute="bf16")
    return text_encoder_for(text_cfg, threads=threads)


def _sbert_encoder(name: str, precision: str, *, threads: int = 1,
                   runtime_name: str | None = None, serving: bool = False):
    """fp32 MiniLM on ONNX Runtime when it is available, otherwise ``create_text_encoder``
    (PyTorch, or the hashing encoder); ``serving`` keeps a PyTorch MiniLM on one thread."""
    from engine.encoders.text import FP32, MINILM, create_text_encoder

    if name == MINILM and precision == FP32:
        encoder = onnx_text_encoder(threads=threads, runtime_name=runtime_name)
        if encoder is not None:
            return encoder
    if serving and name == MINILM:
        runtime.torch_threads()  # a serving process's one thread, not torch's every core
    return create_text_encoder(name, precision=precision)


def query_session(path: Path):
    """An ONNX Runtime session for queries: CPU, one thread (``runtime.QUERY_THREADS``),
    sequential, warnings off."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = runtime.QUERY_THREADS
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _fingerprint(model_dir: Path) -> str:
    """A hash of the model's files, the export code and the exporter's versions."""
    import importlib.metadata as md

    h = hashlib.sha256(f"v{EXPORT_VERSION}:opset{OPSET}".encode())
    for pkg in ("torch", "onnx", "transformers"):
        try:
            h.update(f"{pkg}={md.version(pkg)}".encode())
        except md.PackageNotFoundError:
            h.update(f"{pkg}=none".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(model_dir)).encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def onnx_path(model_dir: Path, name: str) -> Path:
    """Where the exported graph of ``model_dir`` lives (it may not exist yet)."""
    from engine.paths import data_dir

    return data_dir() / "models" / f"{name}-{_fingerprint(model_dir)}.onnx"


def export_minilm(model_dir: Path, out: Path) -> dict[str, Any]:
    """Export MiniLM (transformer + mean pooling + L2 normalisation) to ``out``, atomically,
    after checking it against sentence-transformers on :data:`PROBES`."""
    import torch

    from engine.encoders.text import SbertEncoder

    reference = SbertEncoder(model_dir)
    st = reference.model
    transformer = st[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    tok = st.tokenizer(["a probe"], return_tensors="pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python-level conditionals
            torch.onnx.export(
                Pooled(transformer),
                (tok["input_ids"], tok["attention_mask"]),
                str(tmp),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        encoder = OnnxSbertEncoder(model_dir, path=tmp)
        diff = float(np.abs(encoder.encode_texts(list(PROBES))
                            - reference.encode_texts(list(PROBES))).max())
        if not diff <= MAX_ABS_DIFF:
            raise RuntimeError(f"exported MiniLM differs from PyTorch by {diff:.2e}")
        manifest = {"source": str(model_dir), "max_abs_diff": diff, "opset": OPSET,
                    "export_version": EXPORT_VERSION, "probes": len(PROBES)}
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    from engine.artifacts import atomic_write_json

    atomic_write_json(out.with_suffix(".json"), manifest)
    return manifest


class OnnxSbertEncoder:
    """all-MiniLM-L6-v2 on ONNX Runtime (CPU): a :class:`TextEncoder` whose vectors equal
    :class:`~engine.encoders.text.SbertEncoder`'s (fp32) to about 1e-7.

    A query runs on one thread. A batch (the build's items, titles and words) is cut into
    batches of similar length (less padding), each distinct text is encoded once, and with
    ``threads`` > 1 the batches run on that many one-thread workers sharing the session (ONNX
    Runtime's ``run`` is thread-safe and releases the GIL).
    """

    runtime = "onnx"
    # Texts per batch at most: on 2 cores, 3,000 catalog texts on two one-thread workers ran at
    # 235 texts/s in batches of 32 against 184 in batches of 128 (2026-12-03, scratch probe).
    max_batch = 32

    def __init__(self, model_dir: Path | None = None, *, path: Path | None = None,
                 threads: int = 1):
        from engine.encoders.text import FP32, MINILM, minilm_path
        from engine.encoders.wordpiece import word_pieces

        model_dir = Path(model_dir or minilm_path())
        if path is None:
            path = onnx_path(model_dir, MINILM)
            with _export_lock:
                if not path.is_file():
                    log.info("exporting MiniLM to ONNX: %s", path)
                    export_minilm(model_dir, path)
        self.name, self.precision, self.path = MINILM, FP32, path
        self.threads = max(1, int(threads))
        self.tokenizer = word_pieces(str(model_dir))  # not transformers: no torch to serve
        self.max_len = self.tokenizer.max_len
        self.session = query_session(path)
        self.dim = int(self.session.get_outputs()[0].shape[-1] or 384)

    def _run(self, texts: list[str]) -> np.ndarray:
        return self.session.run(None, self.tokenizer.encode(texts))[0]

    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        texts = [str(t).strip() for t in texts]  # sentence-transformers strips, too
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        distinct, rows = distinct_longest_first(texts)
        bs = max(1, min(batch_size, self.max_batch))
        batches = [distinct[s : s + bs] for s in range(0, len(distinct), bs)]
        if self.threads > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.threads) as pool:
                parts = list(pool.map(self._run, batches))
        else:
            parts = [self._run(b) for b in batches]
        return l2_normalise(np.concatenate(parts).astype(np.float32)[rows])
