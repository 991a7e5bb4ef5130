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
    write_temperature(lrcn_file, 0.5, {"note": "test"}, saturation=0.8, prior_correction=0.5)
    model, cnn = lrcn_cnn_weights(lrcn_file, tmp_path / "cnn.safetensors")
    assert model == "zhang"
    zhang = colorvid.create_colorizer("zhang", weights=str(cnn), device="cpu", render_size=64)
    lrcn = colorvid.create_colorizer("lrcn", weights=str(lrcn_file), device="cpu",
                                     render_size=64)
    L = torch.rand(1, 1, 64, 64) * 100
    torch.testing.assert_close(zhang.logits(L), lrcn.frame_features(L).float())
    assert read_config(cnn)["model"] == "zhang"
    # Decoded as LRCN decodes, so that only the LSTM differs between the two.
    assert (zhang.temperature, zhang.saturation, zhang.prior_correction) == (
        lrcn.temperature, lrcn.saturation, lrcn.prior_correction) == (0.5, 0.8, 0.5)


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
    assert "lrcn warp_error_ab / its CNN's" not in rows  # not measured in these results
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
                                   saturations=(1.0, 0.5), corrections=(0.0,))
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


def _rebalanced_file(tmp_path: Path, model: str = "zhang") -> tuple[Path, torch.Tensor]:
    torch.manual_seed(1)
    adapter = make_adapter(model, "tiny", None)
    w = torch.rand(313) * 4 + 0.1  # class weights far from uniform
    return adapter.save(tmp_path / f"{model}-tiny.safetensors", w, {"steps": 1}), w


def test_prior_correction_decodes_logits_minus_a_log_w(tmp_path):
    weights, w = _rebalanced_file(tmp_path)
    plain = colorvid.create_colorizer("zhang", weights=str(weights), render_size=32,
                                      prior_correction=0)
    half = colorvid.create_colorizer("zhang", weights=str(weights), render_size=32,
                                     prior_correction=0.5)
    assert half.prior_correction == 0.5 and plain.prior_correction == 0.0
    z = torch.randn(2, 313, 8, 8)
    # By hand: the annealed mean of the shifted logits over the 313 centres.
    from colorvid.core.bins import ab_bins
    p = torch.softmax((z - 0.5 * w.log().view(1, -1, 1, 1)) / half.temperature, dim=1)
    expected = torch.einsum("bqhw,qc->bchw", p, ab_bins())
    torch.testing.assert_close(half.decode(z), expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(plain.decode(z), plain.net.decode(z, "annealed_mean",
                                                                 plain.temperature))
    # Undoing the rebalancing moves mass back to the frequent (low-weight) classes.
    frequent = w.argmin()
    assert torch.softmax(z - w.log().view(1, -1, 1, 1), 1)[:, frequent].mean() > \
        torch.softmax(z, 1)[:, frequent].mean()


def test_prior_correction_comes_from_the_header_and_is_checked(tmp_path):
    weights, _ = _rebalanced_file(tmp_path)
    write_temperature(weights, 0.5, {"note": "test"}, saturation=1.0, prior_correction=0.75)
    assert read_config(weights)["decode_prior_correction"] == 0.75
    assert colorvid.create_colorizer("zhang", weights=str(weights)).prior_correction == 0.75
    assert colorvid.create_colorizer("zhang", weights=str(weights),
                                     prior_correction=0).prior_correction == 0
    with pytest.raises(ValueError, match=r"zhang: prior_correction must be a number in \[0, 1\]"):
        colorvid.create_colorizer("zhang", weights=str(weights), prior_correction=2)
    with pytest.raises(ValueError, match="needs weights trained with the class-rebalanced loss"):
        colorvid.create_colorizer("zhang", pretrained=False, prior_correction=0.5)


def test_lrcn_prior_correction_applies_to_the_sequence_logits(tmp_path):
    weights, w = _rebalanced_file(tmp_path, "lrcn")
    write_temperature(weights, 0.38, {"note": "test"}, prior_correction=1.0)
    lrcn = colorvid.create_colorizer("lrcn", weights=str(weights), render_size=32)
    plain = colorvid.create_colorizer("lrcn", weights=str(weights), render_size=32,
                                      prior_correction=0)
    assert lrcn.prior_correction == 1.0
    seq = torch.randn(1, 313, 8, 8)
    shifted = seq - w.log().view(1, -1, 1, 1)
    torch.testing.assert_close(lrcn.decode_logits(seq), plain.decode_logits(shifted),
                               atol=1e-4, rtol=1e-4)


def test_calibration_searches_the_prior_correction(tmp_path):
    weights, _ = _rebalanced_file(tmp_path)
    g = np.random.default_rng(0)
    photos = [g.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2)]
    report = calibrate_temperature("zhang", weights, photos, grid=(0.38,), saturations=(1.0,),
                                   corrections=(0.0, 1.0))
    assert {r["prior_correction"] for r in report["rows"]} == {0.0, 1.0}
    assert report["prior_correction"] in (0.0, 1.0)
    a, b = sorted(report["rows"], key=lambda r: r["prior_correction"])
    assert a["chroma_ratio"] != b["chroma_ratio"]  # the correction changes what is decoded


def test_lrcn_is_calibrated_on_a_static_shot_of_each_photo(lrcn_file):
    from colorvid.core.training.calibrate import _predict

    torch.manual_seed(0)
    lrcn = colorvid.create_colorizer("lrcn", weights=str(lrcn_file), render_size=32)
    with torch.no_grad():  # a non-zero LSTM head, so the state matters
        lrcn.net.head.weight.normal_(0, 1.0)
    L = torch.rand(1, 1, 32, 32) * 100
    ab = _predict(lrcn, L)
    sequence, _ = lrcn.predict_sequence(L.repeat(lrcn.window, 1, 1, 1))
    torch.testing.assert_close(ab, sequence[-1:])
    assert not torch.allclose(ab, lrcn.predict_ab(L))  # not the first frame's empty state


def test_target_table_adds_the_colour_parts_of_cdc_and_warp_error():
    clip = {"hue_accuracy": 0.6, "chroma_ratio": 0.7, "psnr": 29.8, "cdc": 0.0030,
            "warp_error": 0.0020, "cdc_ab": 0.010, "warp_error_ab": 4.0,
            "colorfulness": 20.0, "still_flicker": 0.1}
    results = {
        "grey": {"a": {"psnr": 30.0}},
        "lrcn": {"a": dict(clip)},
        "lrcn_cnn": {"a": {**clip, "cdc_ab": 0.020, "warp_error_ab": 4.2}},
        "zhang": {"a": dict(clip)}, "larsson": {"a": dict(clip)}, "ensemble": {"a": dict(clip)},
    }
    rows = {r["target"]: r for r in targets(results)}
    assert rows["lrcn cdc_ab / its CNN's"]["value"] == pytest.approx(0.5)
    assert rows["lrcn cdc_ab / its CNN's"]["met"]
    assert rows["lrcn warp_error_ab / its CNN's"]["value"] == pytest.approx(4.0 / 4.2, abs=1e-4)
    assert not rows["lrcn warp_error_ab / its CNN's"]["met"]
    assert not rows["lrcn cdc / its CNN's"]["met"]  # equal on RGB: ratio 1


def test_lrcn_is_also_calibrated_on_a_pan_over_each_photo(lrcn_file, monkeypatch):
    import colorvid.core.training.calibrate as calibrate

    torch.manual_seed(0)
    lrcn = colorvid.create_colorizer("lrcn", weights=str(lrcn_file), render_size=32)
    with torch.no_grad():
        lrcn.net.head.weight.normal_(0, 1.0)
    L = torch.rand(1, 1, 40, 48) * 100
    shots = calibrate._shots(lrcn, L)
    assert [origin for _, origin in shots] == [(0, 0), (10, 20)]  # 5 steps of (2, 4) px
    (still, _), (pan, _) = shots
    frames = [L[..., 2 * t:2 * t + 30, 4 * t:4 * t + 28] for t in range(lrcn.window)]
    expected, _ = lrcn.predict_sequence(torch.cat(frames))
    assert still.shape[-2:] == (40, 48) and pan.shape[-2:] == (30, 28)
    torch.testing.assert_close(pan, expected[-1:])
    assert calibrate._pan(lrcn, L[..., :20, :20]) is None  # too small to pan: the still only
    zhang = colorvid.create_colorizer("zhang", pretrained=False, render_size=32)
    assert len(calibrate._shots(zhang, L)) == 1  # a per-frame model: the photo once
    # every shot counts in the scores: twice as many PSNRs as photos for LRCN
    seen = []
    real = calibrate._shots
    monkeypatch.setattr(calibrate, "_shots", lambda c, x: seen.append(len(real(c, x))) or
                        real(c, x))
    g = np.random.default_rng(0)
    photos = [g.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(2)]
    report = calibrate.calibrate_temperature("lrcn", lrcn_file, photos, grid=(1.0,),
                                             saturations=(1.0,), corrections=(0.0,))
    assert seen == [2, 2] and "pan" in report["shots"]


def test_larsson_is_calibrated_on_saturation_alone_and_decodes_with_it(tmp_path):
    torch.manual_seed(0)
    weights = make_adapter("larsson", "tiny", None).save(
        tmp_path / "larsson-tiny.safetensors", None, {"steps": 1})
    g = np.random.default_rng(1)
    photos = [g.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    report = calibrate_temperature("larsson", weights, photos, saturations=(1.0, 0.5))
    assert report["chosen"] is None and report["prior_correction"] is None
    assert [r["saturation"] for r in report["rows"]] == [1.0, 0.5]  # no T or correction grid
    assert report["saturation"] in (1.0, 0.5)
    write_temperature(weights, None, report, saturation=0.5)
    config = read_config(weights)
    assert config["decode_saturation"] == 0.5 and "decode_temperature" not in config
    calibrated = colorvid.create_colorizer("larsson", weights=str(weights), render_size=64)
    plain = colorvid.create_colorizer("larsson", weights=str(weights), render_size=64,
                                      saturation=1.0)
    assert calibrated.saturation == 0.5
    L = torch.rand(1, 1, 64, 64) * 100
    torch.testing.assert_close(calibrated.predict_ab(L), plain.predict_ab(L) * 0.5)
    with pytest.raises(ValueError, match=r"larsson: saturation must be a number in \(0, 4\]"):
        colorvid.create_colorizer("larsson", weights=str(weights), saturation=-1)


def test_lrcn_inherits_its_cnns_decoding_from_the_cli(lrcn_file, tmp_path, capsys):
    from colorvid.core.training.calibrate import inherit_decoding, main

    zhang, _ = _rebalanced_file(tmp_path)
    with pytest.raises(ValueError, match="no calibrated decoding"):
        inherit_decoding(lrcn_file, zhang)
    write_temperature(zhang, 0.7, {"note": "photos"}, saturation=1.5, prior_correction=1.0)
    assert main([str(lrcn_file), "--from-cnn", str(zhang)]) == 0
    assert '"inherited_from": "zhang-tiny.safetensors"' in capsys.readouterr().out
    lrcn = colorvid.create_colorizer("lrcn", weights=str(lrcn_file), device="cpu")
    assert (lrcn.temperature, lrcn.saturation, lrcn.prior_correction) == (0.7, 1.5, 1.0)
    with pytest.raises(ValueError, match=r"lrcn file the decoding of a file of its CNN.s model"):
        inherit_decoding(zhang, zhang)
    with pytest.raises(SystemExit):  # neither --cache nor --from-cnn
        main([str(lrcn_file)])
    assert "--cache DIR" in capsys.readouterr().err


def test_score_reports_the_files_own_decoding_on_the_validation_photos(tmp_path, capsys):
    import json

    from PIL import Image

    from colorvid.core.training.calibrate import main
    from colorvid.core.training.data.cache import build_cache

    corpus = tmp_path / "corpus" / "photos"
    corpus.mkdir(parents=True)
    g = np.random.default_rng(0)
    for i in range(21):  # every 20th photo is held out for validation: one here
        Image.fromarray(g.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(
            corpus / f"p{i:02d}.png")
    build_cache([corpus.parent], tmp_path / "cache", progress=False)
    torch.manual_seed(0)
    weights = make_adapter("zhang", "tiny", None).save(
        tmp_path / "zhang-tiny.safetensors", torch.ones(313), {"steps": 1})
    write_temperature(weights, 0.7, {"note": "test"}, saturation=1.5, prior_correction=0.5)
    assert main([str(weights), "--cache", str(tmp_path / "cache"), "--score"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["photos"] >= 1
    assert (report["temperature"], report["saturation"], report["prior_correction"]) == (
        0.7, 1.5, 0.5)
    for key in ("hue_accuracy", "hue_accuracy_sector", "chroma_ratio", "psnr", "grey_psnr"):
        assert key in report
    assert read_config(weights)["decode_temperature"] == 0.7  # nothing written
    # A calibration over a grid of one's choosing, written to the header.
    assert main([str(weights), "--cache", str(tmp_path / "cache"), "--temperatures", "0.5,1",
                 "--saturations", "1", "--corrections", "0.5", "--write"]) == 0
    chosen = read_config(weights)
    assert chosen["decode_temperature"] in (0.5, 1.0) and chosen["decode_saturation"] == 1.0
    assert chosen["decode_prior_correction"] == 0.5
    assert {(r["temperature"], r["saturation"]) for r in chosen["calibration"]["rows"]} == {
        (0.5, 1.0), (1.0, 1.0)}
    with pytest.raises(SystemExit):
        main([str(weights), "--cache", str(tmp_path / "cache"), "--saturations", "x"])
