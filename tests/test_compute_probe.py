"""The compute probe: fp32 and bf16 turns alternate on a built catalog's own data, and the
report holds each turn's rate, the ratio of medians and the item vectors' agreement."""

from __future__ import annotations

import json

from e2e import compute_probe as probe


def test_formats_alternate_and_the_report_compares_them(tiny_catalog, tmp_path):
    out = tmp_path / "compute.json"
    args = ["--catalog", "tiny", "--texts", "48", "--images", "96", "--rounds", "2",
            "--out", str(out), "--force"]
    assert probe.main(args) == 0
    report = json.loads(out.read_text())
    got = report["probe"]
    assert report["command"].startswith("python -m e2e.compute_probe")
    text, clip = got["item_encoding"], got["clip_training"]
    assert text["texts"] == 48 and clip["images"] == 96
    assert text["runtimes"]["bf16"] == "torch"
    for summary in (text["texts_per_s"], clip["images_per_s"]):
        assert [len(summary["per_turn"][f]) for f in probe.FORMATS] == [2, 2]
        assert all(x > 0 for f in probe.FORMATS for x in summary["per_turn"][f])
        ratio = summary["median"]["bf16"] / summary["median"]["fp32"]
        assert abs(summary["bf16_over_fp32"] - ratio) < 0.01
    assert 0.999 < text["cosine_bf16_vs_fp32"]["min"] <= text["cosine_bf16_vs_fp32"]["mean"]
    assert {t["final_loss"] > 0 for f in probe.FORMATS for t in clip["turns"][f]} == {True}
