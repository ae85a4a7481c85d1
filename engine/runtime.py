"""Process-wide runtime settings: offline model hubs and thread counts.

Import this module before anything that may import transformers or open_clip: it sets
``HF_HUB_OFFLINE`` (a failed hub lookup otherwise retries for ~25 s) and keeps OpenMP to one
thread, which on this 2-core machine is 5-18x faster than two threads for single queries.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("KMP_DUPLICATE_LIB_OK", "TRUE")

QUERY_THREADS = 1
_serving_threads: int | None = None  # set_serving_threads's count, applied when torch arrives


def set_threads(n: int) -> None:
    """Set torch's and FAISS's thread counts (1 for query-time work, more for batch builds)."""
    import torch

    torch.set_num_threads(max(1, n))
    try:
        import faiss

        faiss.omp_set_num_threads(max(1, n))
    except ImportError:  # pragma: no cover - faiss is a hard requirement, but keep this safe
        pass


def set_serving_threads(n: int = QUERY_THREADS) -> None:
    """:func:`set_threads` for a serving process (the app, the API, the benchmarks): FAISS now,
    torch only if and when something imports it through :func:`torch_threads`.

    The app serves every built-in method without torch (ONNX Runtime and NumPy), and importing
    torch costs ~650 MB of resident memory, so serving never imports it just to set a count.
    """
    global _serving_threads
    _serving_threads = max(1, n)
    if "torch" in sys.modules:
        torch_threads()
    try:
        import faiss

        faiss.omp_set_num_threads(_serving_threads)
    except ImportError:  # pragma: no cover - faiss is a hard requirement
        pass


def torch_threads():
    """Import torch with the serving thread count applied (if one was set); returns torch.

    Call this before loading a torch model at query time (a fallback encoder, a pretrained
    CLIP): torch's own default is every core, 5-18x slower for single queries here.
    """
    import torch

    if _serving_threads is not None and torch.get_num_threads() != _serving_threads:
        torch.set_num_threads(_serving_threads)
    return torch


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages, rounded (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None
