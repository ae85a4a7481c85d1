"""The CLIP epochs probe: retraining the build's own (seed, epochs) gives the build's figures,
other pairs are trained and kept for a resumed run, and the summary compares epoch counts."""

from __future__ import annotations

import json

import pytest

from e2e import clip_epochs_probe as probe


def _pair(seed: int, epochs: float, clip_text: float, clip_image: float) -> dict:
    return {"seed": seed, "epochs": epochs, "clip": {"seconds": epochs * 10.0},
            "metrics": {"clip_text": clip_text, "clip_image": clip_image}}


def test_summary_compares_each_epoch_count_with_the_most_epochs():
    pairs = [_pair(1, 10.0, 0.50, 0.70), _pair(2, 10.0, 0.40, 0.60),
             _pair(1, 6.0, 0.42, 0.61), _pair(2, 6.0, 0.38, 0.59)]
    got = probe.summarise(pairs)
    assert got["reference_epochs"] == 10.0
    ref, fewer = got["by_epochs"]["10"], got["by_epochs"]["6"]
    assert ref["seeds"] == fewer["seeds"] == [1, 2]
    assert ref["metrics"]["clip_text"] == {"mean": 0.45, "min": 0.40, "max": 0.50, "delta": 0.0}
    assert fewer["metrics"]["clip_text"]["delta"] == pytest.approx(-0.05)
    assert fewer["metrics"]["clip_image"]["delta"] == pytest.approx(-0.05)
    assert fewer["clip_train_seconds"] == [60.0, 60.0]


def test_summary_compares_bfloat16_with_float32_at_the_most_epochs():
    bf16 = [{**_pair(1, 10.0, 0.47, 0.68), "compute": "bf16"},
            {**_pair(2, 10.0, 0.41, 0.60), "compute": "bf16"}]
    pairs = [_pair(1, 10.0, 0.50, 0.70), _pair(2, 10.0, 0.40, 0.60), *bf16]
    got = probe.summarise(pairs)
    assert (got["reference_epochs"], got["reference_compute"]) == (10.0, "fp32")
    assert list(got["by_epochs"]) == ["10", "10 bf16"]
    assert got["by_epochs"]["10 bf16"]["metrics"]["clip_text"]["delta"] == pytest.approx(-0.01)
    assert got["by_epochs"]["10 bf16"]["metrics"]["clip_image"]["delta"] == pytest.approx(-0.01)
    assert probe.summarise(bf16)["reference_compute"] == "bf16"  # no float32 run: bf16 is it


def test_metrics_read_pure_clip_and_the_best_of_each_tuned_curve():
    curve = {"0.0": 0.3, "0.5": 0.6}
    tuning = {name: dict(curve) for name in ("early_text", "early_image", "late_text",
                                             "late_image", "attributes_early",
                                             "attributes_late", "attributes_mlp")}
    tuning["early_image"]["0.0"] = 0.4
    got = probe._metrics(tuning, {"val_ndcg@10": 0.55})
    assert got["clip_text"] == 0.3 and got["clip_image"] == 0.4
    assert got["best_late_text"] == 0.6 and got["mlp"] == 0.55


def test_the_builds_own_pair_retrains_to_the_same_figures_and_others_resume(
    tiny_catalog, tmp_path, monkeypatch
):
    """The probe reads the build's own (seed, epochs) instead of training it again: that is
    only honest if the same code and seed train the same model, which this checks."""
    cfg = tiny_catalog.manifest["config"]
    seed, epochs = int(cfg["seed"]), float(cfg["clip"]["epochs"])
    compute = tiny_catalog.manifest["steps"]["clip"]["info"]["compute"]  # this CPU's "auto"
    built = probe.from_build(tiny_catalog)
    again = probe.train_pair(tiny_catalog, seed, epochs, log=lambda *a: None, compute=compute)
    assert again["metrics"] == built["metrics"]
    assert again["clip"]["steps"] == built["clip"]["steps"]

    out = tmp_path / "clip_epochs.json"
    args = ["--catalog", "tiny", "--seeds", f"{seed}", "--epochs", f"{epochs:g},2",
            "--out", str(out), "--force"]
    assert probe.main(args) == 0
    report = json.loads(out.read_text())["probe"]
    sources = {(p["seed"], p["epochs"]): p["source"] for p in report["pairs"]}
    assert sources == {(seed, epochs): "the catalog's build", (seed, 2.0): "trained by this probe"}
    fewer = next(p for p in report["pairs"] if p["epochs"] == 2.0)
    assert 0 < fewer["clip"]["steps"] < built["clip"]["steps"]  # (a floor of steps applies)
    assert 0.0 <= fewer["metrics"]["clip_text"] <= 1.0
    fewer_key = probe.group_key(2.0, compute)  # "2", or "2 bf16" where auto means bfloat16
    delta = report["summary"]["by_epochs"][fewer_key]["metrics"]["clip_text"]["delta"]
    assert delta == pytest.approx(
        fewer["metrics"]["clip_text"] - built["metrics"]["clip_text"], abs=1e-4)
    # A second run resumes from the kept pairs: nothing is trained again.
    monkeypatch.setattr(probe, "train_pair", lambda *a, **k: pytest.fail("trained again"))
    assert probe.main(args) == 0
    assert json.loads(out.read_text())["probe"]["pairs"] == report["pairs"]
