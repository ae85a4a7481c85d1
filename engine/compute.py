"""The number format of the build's heavy batch work: float32, or bfloat16 where the CPU has it.

Two build steps spend most of the build's CPU time in dense maths that tolerates bfloat16: the
sbert step's MiniLM over every item text, and the compact CLIP's training. On a CPU with native
bfloat16 instructions (AVX512-BF16 or AMX) PyTorch's ``autocast`` runs their matrix products and
convolutions in bfloat16 with float32 accumulation and float32 weights.
``python -m e2e.compute_probe`` (``reports/compute.json``) times both formats side by side on a
built catalog: on the 2-core build machine CLIP training ran 1.5x and item encoding 1.3x faster,
with item vectors equal to float32's to a cosine of 0.99997. Query-time encoders always run
float32.

``compute`` settings: ``auto`` (bfloat16 when the CPU has it natively, else float32), ``fp32``,
or ``bf16`` (bfloat16 even where it is emulated, which is slower: for tests and comparisons).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

COMPUTES = ("auto", "fp32", "bf16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def check_compute(name: str) -> str:
    """``name`` if it is a compute setting, else a ValueError listing the valid ones."""
    if name not in COMPUTES:
        raise ValueError(f"unknown compute {name!r}; valid: {', '.join(COMPUTES)}")
    return name


@lru_cache(maxsize=1)
def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bfloat16 natively (Linux ``/proc/cpuinfo`` flags; False where
    they cannot be read)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(f in flags for f in NATIVE_BF16_FLAGS)
    return False


def resolve_compute(name: str) -> str:
    """The format a setting means on this machine: ``fp32`` or ``bf16``."""
    check_compute(name)
    if name == "auto":
        return "bf16" if native_bf16() else "fp32"
    return name


@contextlib.contextmanager
def autocast(compute: str) -> Iterator[None]:
    """PyTorch CPU autocast to bfloat16 for ``bf16`` (a resolved setting); nothing for ``fp32``."""
    if resolve_compute(compute) != "bf16":
        yield
        return
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield
