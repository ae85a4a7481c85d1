"""The build's number format (engine/compute.py): settings, CPU detection and autocast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine import compute
from engine.config import ClipConfig, TextConfig


def test_unknown_settings_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        compute.check_compute("fp16")
    with pytest.raises(ValueError, match="valid"):
        ClipConfig(compute="half")
    with pytest.raises(ValueError, match="valid"):
        TextConfig(item_compute="int4")


def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path: Path) -> None:
    with_bf16, without, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    with_bf16.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16 avx2\n")
    without.write_text("processor : 0\nflags : fpu sse avx2 avx512f\n")
    other.write_text("Features : fp asimd\n")  # no x86 flags line: float32
    assert compute.native_bf16(with_bf16)
    assert not compute.native_bf16(without)
    assert not compute.native_bf16(other)
    assert not compute.native_bf16(tmp_path / "missing")


def test_auto_follows_the_cpu_and_explicit_settings_win(monkeypatch) -> None:
    monkeypatch.setattr(compute, "native_bf16", lambda: True)
    assert compute.resolve_compute("auto") == "bf16"
    monkeypatch.setattr(compute, "native_bf16", lambda: False)
    assert compute.resolve_compute("auto") == "fp32"
    assert compute.resolve_compute("bf16") == "bf16"
    assert compute.resolve_compute("fp32") == "fp32"


def test_autocast_runs_products_in_bfloat16_only_when_asked() -> None:
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with compute.autocast("bf16"):
        assert layer(x).dtype == torch.bfloat16
    with compute.autocast("fp32"):
        assert layer(x).dtype == torch.float32
    assert layer.weight.dtype == torch.float32  # weights stay float32 either way
    a = layer(x).detach().numpy()
    with compute.autocast("bf16"):
        b = layer(x).float().detach().numpy()
    np.testing.assert_allclose(a, b, atol=0.05)
