"""Fill the model card's measured sections from the shipped weights and a card report.

    python -m colorvid.core.training.model_card CARD_REPORT [--card plugins/weights/MODEL_CARD.md]

``plugins/weights/MODEL_CARD.md`` has generated blocks between HTML comment markers:
``<!-- TRAINING -->`` (each shipped file's cumulative training and decoding, read from its
header), ``<!-- CARD -->`` (``CARD_REPORT/card.md``, written by
:mod:`colorvid.core.training.card`) and, where a card has one, ``<!-- CALIBRATION -->`` (the
decoding chosen for each file and the best rows of its calibration table; the full table is in
the header either way). Each block is replaced whole; the prose around them is left as
written. The report's contact sheets (``CARD_REPORT/eval/sheets/<clip>.png``) are copied to
``docs/img/card-<clip>.png``, which the card shows. The card file is rewritten atomically.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from colorvid.core.weights import default_weights_path, read_config

__all__ = ["calibration_text", "fill", "main", "replace_block", "shipped_files",
           "training_table"]



def shipped_files() -> list[Path]:
    """Every weights file that ships (the package's weights folder), by name."""
    return sorted(default_weights_path("zhang", "tiny").parent.glob("*.safetensors"))


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def training_table(files: Sequence[Path]) -> str:
    """One row per weights file: cumulative runs, steps, samples and hours, the last run's data
    wait and the decoding recorded in the header."""
    lines = ["| file | runs | steps | samples | wall-hours | CPU-hours | data wait (last run) | "
             "decode T | saturation | prior correction |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for path in files:
        config = read_config(path)
        training = config.get("training") or {}
        total = training.get("cumulative") or {}
        wait = training.get("data_wait_share")
        lines.append(
            f"| {Path(path).stem} | {total.get('runs', '-')} | {total.get('steps', '-')} | "
            f"{total.get('samples', '-')} | {_num(total.get('wall_hours'), 2)} | "
            f"{_num(total.get('cpu_hours'), 2)} | "
            f"{'-' if wait is None else f'{100 * wait:.1f}%'} | "
            f"{config.get('decode_temperature', '-')} | {config.get('decode_saturation', '-')} | "
            f"{config.get('decode_prior_correction', '-')} |")
    return "\n".join(lines) + "\n"


def calibration_text(files: Sequence[Path], rows: int = 8, min_chroma: float = 0.45) -> str:
    """For each file with a calibration: the chosen triple and rule, then the ``rows`` rows with
    chroma ratio >= ``min_chroma`` and the highest PSNR, then the best such row without the
    prior correction."""
    parts = []
    for path in files:
        config = read_config(path)
        report = config.get("calibration")
        if report and report.get("inherited_from"):  # calibrate --from-cnn
            parts.append(
                f"**{config['model']}**: decodes as its CNN was calibrated "
                f"(`{report['inherited_from']}`, above): prior correction a = "
                f"{report.get('decode_prior_correction')}, T = "
                f"{report.get('decode_temperature')}, saturation = "
                f"{report.get('decode_saturation')}.\n")
            continue
        if not report or "rows" not in report:
            continue
        shots = f"; {report['shots']}" if report.get("shots") else ""
        if report.get("chosen") is None:  # saturation only (larsson): every row
            parts.append(
                f"**{config['model']}**: chosen saturation = {report['saturation']} "
                f"({report['rule']}; {report['photos']} photos{shots}; its decoding has no "
                "temperature or prior correction):\n\n"
                "| saturation | hue_accuracy | chroma_ratio | psnr - grey psnr |\n"
                "|---|---|---|---|\n" + "".join(
                    f"| {r['saturation']} | {r['hue_accuracy']:.3f} | {r['chroma_ratio']:.3f} | "
                    f"{r['psnr'] - r['grey_psnr']:.2f} |\n" for r in report["rows"]))
            continue
        table = [r for r in report["rows"] if r["chroma_ratio"] >= min_chroma]
        table.sort(key=lambda r: r["psnr"] - r["grey_psnr"], reverse=True)
        plain = [r for r in table if r["prior_correction"] == 0.0][:1]
        parts.append(
            f"**{config['model']}**: chosen prior correction a = {report['prior_correction']}, "
            f"T = {report['chosen']}, saturation = {report['saturation']} ({report['rule']}; "
            f"{report['photos']} photos{shots}). The {rows} rows with chroma ratio >= "
            f"{min_chroma} and the highest PSNR, then the best row without the correction:\n\n"
            "| a | T | saturation | hue_accuracy | chroma_ratio | psnr - grey psnr |\n"
            "|---|---|---|---|---|---|\n" + "".join(
                f"| {r['prior_correction']} | {r['temperature']} | {r['saturation']} | "
                f"{r['hue_accuracy']:.3f} | {r['chroma_ratio']:.3f} | "
                f"{r['psnr'] - r['grey_psnr']:.2f} |\n" for r in table[:rows] + plain))
    return "\n".join(parts)


def replace_block(text: str, marker: str, content: str) -> str:
    """``text`` with what lies between ``<!-- MARKER -->`` and ``<!-- /MARKER -->`` replaced."""
    pattern = re.compile(rf"(<!-- {marker} -->\n).*?(\n<!-- /{marker} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"model card: no <!-- {marker} --> ... <!-- /{marker} --> block")
    return pattern.sub(lambda m: m.group(1) + content.rstrip("\n") + "\n" + m.group(2), text,
                       count=1)


def fill(card: Path, report: Path, files: Sequence[Path], images: Path) -> list[Path]:
    """Rewrite the generated blocks of ``card`` and copy the contact sheets; returns the sheets
    written."""
    from colorvid.core.evaluation.report import atomic_write

    card_md = report / "card.md"
    if not card_md.is_file():
        raise FileNotFoundError(f"{card_md}: no card report there (run "
                                "python -m colorvid.core.training.card first)")
    text = card.read_text()
    text = replace_block(text, "TRAINING", training_table(files))
    if "<!-- CALIBRATION -->" in text:  # optional (a card short of room leaves it out)
        text = replace_block(text, "CALIBRATION", calibration_text(files))
    text = replace_block(text, "CARD", card_md.read_text())
    written = []
    images.mkdir(parents=True, exist_ok=True)
    for sheet in sorted((report / "eval" / "sheets").glob("*.png")):
        target = images / f"card-{sheet.name}"
        shutil.copyfile(sheet, target)
        written.append(target)
    atomic_write(card, lambda tmp: tmp.write_text(text))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m colorvid.core.training.model_card",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path, help="the folder written by colorvid.core.training.card")
    repo = Path(__file__).resolve().parents[2]  # a checkout: core/training/ -> the repository
    p.add_argument("--card", type=Path,
                   default=default_weights_path("zhang", "tiny").parent / "MODEL_CARD.md")
    p.add_argument("--images", type=Path, default=repo / "docs" / "img",
                   help="where the contact sheets go (default: the checkout's docs/img)")
    args = p.parse_args(argv)
    try:
        sheets = fill(args.card, args.report, shipped_files(), args.images)
    except (FileNotFoundError, ValueError) as e:
        print(f"model_card: {e}", file=sys.stderr)
        return 2
    print(f"{args.card}: filled; {len(sheets)} contact sheets in {args.images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
