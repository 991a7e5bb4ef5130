"""Filling the model card's generated blocks from weights headers and a card report."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from colorvid.core.training import make_adapter
from colorvid.core.training.calibrate import write_temperature
from colorvid.core.training.model_card import calibration_text, main, training_table

CARD = """# Model card

Prose before.

<!-- TRAINING -->
old training table
<!-- /TRAINING -->

Prose between.

<!-- CALIBRATION -->
old calibration
<!-- /CALIBRATION -->

<!-- CARD -->
old card
<!-- /CARD -->

Prose after.
"""


def _row(a: float, t: float, s: float, hue: float, chroma: float, psnr: float) -> dict:
    return {"prior_correction": a, "temperature": t, "saturation": s, "hue_accuracy": hue,
            "chroma_ratio": chroma, "psnr": psnr, "grey_psnr": 20.0}


@pytest.fixture
def weights(tmp_path: Path) -> list[Path]:
    torch.manual_seed(0)
    zhang = make_adapter("zhang", "tiny", None).save(
        tmp_path / "zhang-tiny.safetensors", torch.ones(313),
        {"steps": 10, "data_wait_share": 0.0512,
         "cumulative": {"runs": 2, "steps": 110, "samples": 1760, "wall_hours": 1.5,
                        "cpu_hours": 2.25}})
    rows = [_row(1.0, 0.7, 1.5, 0.45, 0.52, 19.4), _row(0.0, 0.7, 0.4, 0.35, 0.47, 19.0),
            _row(0.5, 0.5, 0.8, 0.44, 0.30, 19.9)]  # the last: too pale for the table
    write_temperature(zhang, 0.7, {"chosen": 0.7, "saturation": 1.5, "prior_correction": 1.0,
                                   "rows": rows, "photos": 20, "rule": "the rule"},
                      saturation=1.5, prior_correction=1.0)
    larsson = make_adapter("larsson", "tiny", None).save(
        tmp_path / "larsson-tiny.safetensors", None, {"steps": 3})
    return [zhang, larsson]


def test_tables_from_the_headers(weights):
    table = training_table(weights).splitlines()
    assert table[2] == "| zhang-tiny | 2 | 110 | 1760 | 1.50 | 2.25 | 5.1% | 0.7 | 1.5 | 1.0 |"
    assert table[3] == "| larsson-tiny | - | - | - | - | - | - | - | - | - |"  # no history
    text = calibration_text(weights)
    assert text.startswith("**zhang**: chosen prior correction a = 1.0, T = 0.7, saturation = "
                           "1.5 (the rule; 20 photos).")
    assert "| 1.0 | 0.7 | 1.5 | 0.450 | 0.520 | -0.60 |" in text  # highest PSNR first
    assert text.count("| 0.0 | 0.7 | 0.4 | 0.350 | 0.470 | -1.00 |") == 2  # and as best a = 0
    assert "0.300" not in text and "larsson" not in text  # no calibration in larsson's header


def test_fill_replaces_the_blocks_keeps_the_prose_and_copies_sheets(weights, tmp_path,
                                                                    monkeypatch):
    import colorvid.core.training.model_card as model_card

    card = tmp_path / "MODEL_CARD.md"
    card.write_text(CARD)
    report = tmp_path / "report"
    (report / "eval" / "sheets").mkdir(parents=True)
    (report / "card.md").write_text("| model | hue_accuracy |\n|---|---|\n| lrcn | 0.5 |\n")
    Image.new("RGB", (4, 4), (200, 10, 10)).save(report / "eval" / "sheets" / "clipA.png")
    images = tmp_path / "img"
    paths = {"zhang": weights[0], "larsson": weights[1]}
    monkeypatch.setattr(model_card, "default_weights_path",
                        lambda model, preset: paths.get(model, tmp_path / "missing"))
    assert main([str(report), "--card", str(card), "--images", str(images)]) == 0
    text = card.read_text()
    for prose in ("Prose before.", "Prose between.", "Prose after."):
        assert prose in text
    assert "old" not in text
    assert "| zhang-tiny | 2 | 110 |" in text and "| lrcn | 0.5 |\n\n<!-- /CARD -->" in text
    assert (images / "card-clipA.png").read_bytes() == (
        report / "eval" / "sheets" / "clipA.png").read_bytes()


def test_the_calibration_block_is_optional(weights, tmp_path, monkeypatch):
    import colorvid.core.training.model_card as model_card

    card = tmp_path / "MODEL_CARD.md"
    short = CARD.replace("<!-- CALIBRATION -->\nold calibration\n<!-- /CALIBRATION -->\n", "")
    card.write_text(short)
    report = tmp_path / "report"
    report.mkdir()
    (report / "card.md").write_text("tables\n")
    monkeypatch.setattr(model_card, "default_weights_path",
                        lambda model, preset: weights[0] if model == "zhang" else tmp_path / "no")
    assert main([str(report), "--card", str(card), "--images", str(tmp_path / "img")]) == 0
    text = card.read_text()
    assert "| zhang-tiny | 2 | 110 |" in text and "tables\n\n<!-- /CARD -->" in text
    assert "CALIBRATION" not in text and "chosen prior correction" not in text


def test_fill_errors_leave_the_card_as_it_was(weights, tmp_path, capsys):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text(CARD)
    assert main([str(tmp_path / "nowhere"), "--card", str(card)]) == 2
    assert "no card report there" in capsys.readouterr().err
    report = tmp_path / "report"
    report.mkdir()
    (report / "card.md").write_text("tables\n")
    card.write_text(CARD.replace("<!-- /CALIBRATION -->", ""))
    assert main([str(report), "--card", str(card), "--images", str(tmp_path / "img")]) == 2
    assert "no <!-- CALIBRATION -->" in capsys.readouterr().err
    assert card.read_text() == CARD.replace("<!-- /CALIBRATION -->", "")


def test_a_saturation_only_calibration_lists_its_rows(weights):
    larsson = weights[1]
    rows = [{"temperature": None, "prior_correction": None, "saturation": s,
             "hue_accuracy": h, "chroma_ratio": c, "psnr": p, "grey_psnr": 20.0}
            for s, h, c, p in ((1.0, 0.40, 0.9, 19.0), (0.65, 0.38, 0.6, 19.8))]
    write_temperature(larsson, None, {"chosen": None, "saturation": 0.65,
                                      "prior_correction": None, "rows": rows, "photos": 20,
                                      "rule": "the rule"}, saturation=0.65)
    text = calibration_text([larsson])
    assert text.startswith("**larsson**: chosen saturation = 0.65 (the rule; 20 photos;")
    assert "| 0.65 | 0.380 | 0.600 | -0.20 |" in text and "| 1.0 | 0.400 | 0.900 | -1.00 |" in text


def test_an_lrcn_with_its_cnns_decoding_says_so(weights, tmp_path):
    from colorvid.core.training.calibrate import inherit_decoding

    lrcn = make_adapter("lrcn", "tiny", None).save(tmp_path / "lrcn-tiny.safetensors",
                                                   torch.ones(313), {"steps": 1})
    inherit_decoding(lrcn, weights[0])
    text = calibration_text([weights[0], lrcn])
    assert text.startswith("**zhang**: chosen prior correction")
    assert ("**lrcn**: decodes as its CNN was calibrated (`zhang-tiny.safetensors`, above): "
            "prior correction a = 1.0, T = 0.7, saturation = 1.5.") in text


def test_card_tables_mean_per_clip_and_lrcn_against_its_cnn():
    from colorvid.core.training.card import TABLE_METRICS, _tables

    def clip(hue: float, psnr: float, flicker: float) -> dict:
        values = dict.fromkeys(TABLE_METRICS, 0.5)
        values.update(hue_accuracy=hue, psnr=psnr, cdc_ab=flicker, warp_error_ab=flicker)
        return values

    results = {m: {"a": clip(h, 20.0, f), "b": clip(h + 0.2, 30.0, f)}
               for m, h, f in (("grey", 0.0, 0.001), ("zhang", 0.3, 0.4),
                               ("lrcn_cnn", 0.3, 0.4), ("lrcn", 0.4, 0.2))}
    text = _tables(results)
    assert text.startswith("**mean over the clips**\n\n| model | hue_accuracy |")
    # hue (0.4 + 0.6) / 2, then per-sector hue, chroma, colourfulness (0.5 each), PSNR
    assert "| lrcn | 0.5000 | 0.5000 | 0.5000 | 0.5000 | 25.00 |" in text
    assert "| model | a | b |" in text and "| zhang | 0.3000 / 0.5000 / 20.00 | " in text
    assert "cdc_ab 0.50x, warp_error_ab 0.50x, still_flicker 1.00x" in text
