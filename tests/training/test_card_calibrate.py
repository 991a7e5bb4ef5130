"""The model card's tools: LRCN's CNN as a zhang file, the target table, and the decoding
temperature calibrated on photos and recorded in the weights header."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import colorvid
from colorvid.core.training import make_adapter
from colorvid.core.training.calibrate import calibrate_temperature, write_temperature
from colorvid.core.training.card import lrcn_cnn_weights, targets
from colorvid.core.weights import read_config


@pytest.fixture
def lrcn_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    adapter = make_adapter("lrcn", "tiny", None)
    return adapter.save(tmp_path / "lrcn-tiny.safetensors", torch.ones(313), {"steps": 1})


def test_lrcn_cnn_decoded_alone_matches_lrcn_frame_logits(lrcn_file, tmp_path):
    cnn = lrcn_cnn_weights(lrcn_file, tmp_path / "cnn.safetensors")
    zhang = colorvid.create_colorizer("zhang", weights=str(cnn), device="cpu", render_size=64)
    lrcn = colorvid.create_colorizer("lrcn", weights=str(lrcn_file), device="cpu",
                                     render_size=64)
    L = torch.rand(1, 1, 64, 64) * 100
    with torch.inference_mode():
        torch.testing.assert_close(zhang.net.logits(L), lrcn.net.frame_logits(L))
    assert read_config(cnn)["model"] == "zhang"


def test_target_table_flags_each_goal():
    clip = {"hue_accuracy": 0.6, "chroma_ratio": 0.7, "psnr": 29.8, "cdc": 0.0030,
            "warp_error": 0.0020, "colorfulness": 20.0, "still_flicker": 0.1}
    results = {
        "grey": {"a": {"psnr": 30.0}, "b": {"psnr": 30.0}},
        "lrcn": {"a": dict(clip), "b": {**clip, "hue_accuracy": 0.2, "psnr": 28.0}},
        "lrcn_cnn": {"a": {**clip, "cdc": 0.004, "warp_error": 0.003, "colorfulness": 21.0}},
        "zhang": {"a": {**clip, "hue_accuracy": 0.45, "still_flicker": 0.2}},
        "larsson": {"a": {**clip, "hue_accuracy": 0.3}},
        "ensemble": {"a": {**clip, "hue_accuracy": 0.5}},
    }
    rows = {r["target"]: r for r in targets(results)}
    assert rows["lrcn hue_accuracy, mean"]["value"] == pytest.approx(0.4)
    assert not rows["lrcn hue_accuracy, mean"]["met"]
    assert rows["lrcn hue_accuracy, a"]["met"] and not rows["lrcn hue_accuracy, b"]["met"]
    assert rows["lrcn psnr - grey psnr, a"]["met"] and not rows["lrcn psnr - grey psnr, b"]["met"]
    assert rows["lrcn cdc / its CNN's"]["met"] and rows["lrcn warp_error / its CNN's"]["met"]
    assert rows["lrcn colourfulness / its CNN's"]["met"]
    assert rows["zhang hue_accuracy, mean"]["met"]
    assert rows["ensemble hue_accuracy - best member's"]["met"]
    assert rows["lrcn still_flicker / zhang's"]["met"]


def test_calibration_picks_a_temperature_and_the_colorizer_uses_it(tmp_path):
    torch.manual_seed(0)
    adapter = make_adapter("zhang", "tiny", None)
    weights = adapter.save(tmp_path / "zhang-tiny.safetensors", torch.ones(313), {"steps": 1})
    g = np.random.default_rng(0)
    photos = [g.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2)]
    report = calibrate_temperature("zhang", weights, photos, grid=(0.38, 1.0),
                                   saturations=(1.0, 0.5))
    assert report["chosen"] in (0.38, 1.0) and report["photos"] == 2
    assert report["saturation"] in (1.0, 0.5)
    assert {(r["temperature"], r["saturation"]) for r in report["rows"]} == {
        (0.38, 1.0), (0.38, 0.5), (1.0, 1.0), (1.0, 0.5)}
    for row in report["rows"]:
        assert {"hue_accuracy", "chroma_ratio", "psnr", "grey_psnr"} <= set(row)
    half = {r["temperature"]: r for r in report["rows"] if r["saturation"] == 0.5}
    full = {r["temperature"]: r for r in report["rows"] if r["saturation"] == 1.0}
    assert half[1.0]["chroma_ratio"] == pytest.approx(full[1.0]["chroma_ratio"] / 2, rel=0.1)
    write_temperature(weights, 0.7, report, saturation=0.5)
    assert read_config(weights)["decode_temperature"] == 0.7
    z = colorvid.create_colorizer("zhang", weights=str(weights), render_size=32)
    assert z.saturation == 0.5
    L = torch.rand(1, 1, 32, 32) * 100
    full_ab = colorvid.create_colorizer("zhang", weights=str(weights), render_size=32,
                                        saturation=1.0).predict_ab(L)
    torch.testing.assert_close(z.predict_ab(L), full_ab * 0.5)
    with pytest.raises(ValueError, match=r"zhang: saturation must be a number in \(0, 4\]"):
        colorvid.create_colorizer("zhang", weights=str(weights), saturation=0)
    for model in ("zhang",):
        assert colorvid.create_colorizer(model, weights=str(weights)).temperature == 0.7
        assert colorvid.create_colorizer(model, weights=str(weights),
                                         temperature=0.5).temperature == 0.5


def test_lrcn_reads_its_calibrated_temperature(lrcn_file):
    write_temperature(lrcn_file, 0.6, {"note": "test"})
    assert colorvid.create_colorizer("lrcn", weights=str(lrcn_file)).temperature == 0.6
    with pytest.raises(ValueError, match="lrcn: temperature must be a number > 0"):
        colorvid.create_colorizer("lrcn", weights=str(lrcn_file), temperature=-1)
