"""The model card's measurements: every shipped model on the held-out clips, and the targets.

    python -m colorvid.core.training.card ../shared/corpus/video/heldout --out card-report

Runs ``colorvid eval`` (grey baseline, zhang, lrcn, larsson, ensemble, and LRCN's own CNN
decoded frame by frame as ``lrcn_cnn``) on every clip, then writes ``OUT/card.md`` (what the
model card shows: every metric's mean over the clips, hue accuracy / chroma ratio / PSNR per
clip, and LRCN's colour flicker against its CNN's) and ``OUT/card.json`` (every value, and the
targets with pass/fail). The contact sheets (grey | each model | original) are in
``OUT/eval/``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

from colorvid.core.weights import default_weights_path, read_config, save_weights

__all__ = ["TABLE_METRICS", "lrcn_cnn_weights", "main", "measure", "targets"]

MODELS = ("zhang", "mobilenet", "lrcn", "larsson", "ensemble")
TABLE_METRICS = ("hue_accuracy", "hue_accuracy_sector", "chroma_ratio", "colorfulness", "psnr",
                 "ssim", "rmse_ab", "cdc", "warp_error", "cdc_ab", "warp_error_ab", "still_flicker")


def lrcn_cnn_weights(lrcn_file: Path, out: Path) -> tuple[str, Path]:
    """LRCN's CNN as a weights file of its own model (zhang, mobilenet: to decode it frame by
    frame, without the LSTM), with LRCN's decoding (temperature, saturation, prior correction),
    so only the LSTM differs; returns (the CNN's model, the file)."""
    config = read_config(lrcn_file)
    tensors = load_file(str(lrcn_file))
    state = {k[len("cnn."):]: v.float() for k, v in tensors.items() if k.startswith("cnn.")}
    architecture = config["architecture"]
    cnn = architecture.get("cnn", "zhang")
    zconfig = {"model": cnn, "preset": config["preset"], "bins_sha256": config["bins_sha256"],
               "architecture": architecture.get("zhang", {}), "training": {
                   "note": f"the CNN of {lrcn_file.name}"}}
    zconfig.update({k: config[k] for k in ("decode_temperature", "decode_saturation",
                                           "decode_prior_correction") if k in config})
    extras = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return cnn, save_weights(out, state, zconfig, extras)


def measure(clips: list[Path], out: Path, frames: int | None = None) -> dict:
    """{model: {clip: {metric: value}}} for the shipped models, the grey baseline and lrcn_cnn."""
    from colorvid.core.evaluation.runner import EvalConfig, evaluate

    results: dict[str, dict[str, dict[str, float]]] = {}

    def collect(result, rename: dict[str, str]) -> None:
        for cell in result.cells:
            if cell.value is None:
                continue
            model = rename.get(cell.model, cell.model)
            results.setdefault(model, {}).setdefault(cell.video, {})[cell.metric] = cell.value

    metrics = list(TABLE_METRICS)
    result = evaluate(clips, out / "eval", EvalConfig(
        models=list(MODELS), metrics=metrics, frames=frames, write_clips=False), progress=None)
    collect(result, {})
    with tempfile.TemporaryDirectory() as tmp:
        from colorvid.plugins.models.common import default_preset

        model, cnn = lrcn_cnn_weights(default_weights_path("lrcn", default_preset("lrcn")),
                                      Path(tmp) / "cnn.safetensors")
        result = evaluate(clips, out / "eval-lrcn-cnn", EvalConfig(
            models=[model], options={model: {"weights": str(cnn)}}, metrics=metrics,
            frames=frames, write_clips=False, write_pictures=False), progress=None)
    collect(result, {model: "lrcn_cnn", "grey": "grey"})
    return results


def _mean(results: dict, model: str, metric: str) -> float:
    values = [v[metric] for v in results[model].values() if metric in v
              and not math.isnan(v[metric])]
    return sum(values) / len(values) if values else float("nan")


def targets(results: dict) -> list[dict]:
    """The quality targets for the default lrcn (and zhang, ensemble): value, goal, met."""
    clips = sorted(results["lrcn"])
    rows = []

    def row(what: str, value: float, goal: str, met: bool) -> None:
        rows.append({"target": what, "value": round(value, 4), "goal": goal, "met": bool(met)})

    hue = _mean(results, "lrcn", "hue_accuracy")
    row("lrcn hue_accuracy, mean", hue, ">= 0.5", hue >= 0.5)
    for c in clips:
        v = results["lrcn"][c]["hue_accuracy"]
        row(f"lrcn hue_accuracy, {c}", v, ">= 0.3", v >= 0.3)
        v = results["lrcn"][c]["chroma_ratio"]
        row(f"lrcn chroma_ratio, {c}", v, ">= 0.5", v >= 0.5)
        g = results["grey"][c]["psnr"]
        v = results["lrcn"][c]["psnr"]
        row(f"lrcn psnr - grey psnr, {c}", v - g, ">= -0.5 dB", v - g >= -0.5)
    # The flicker measures on RGB, then their colour parts (on Lab ab: on RGB the lightness,
    # the same for every colorizer, dominates; plugins/metrics_temporal.py).
    for metric in ("cdc", "warp_error", "cdc_ab", "warp_error_ab"):
        if not all(any(metric in v for v in results[m].values()) for m in ("lrcn", "lrcn_cnn")):
            continue  # (results from before the metric existed)
        v, base = _mean(results, "lrcn", metric), _mean(results, "lrcn_cnn", metric)
        row(f"lrcn {metric} / its CNN's", v / base, "<= 0.9", v / base <= 0.9)
    v, base = _mean(results, "lrcn", "colorfulness"), _mean(results, "lrcn_cnn", "colorfulness")
    row("lrcn colourfulness / its CNN's", v / base, ">= 0.9", v / base >= 0.9)
    v = _mean(results, "zhang", "hue_accuracy")
    row("zhang hue_accuracy, mean", v, ">= 0.4", v >= 0.4)
    best = max(_mean(results, m, "hue_accuracy") for m in ("zhang", "larsson"))
    v = _mean(results, "ensemble", "hue_accuracy")
    row("ensemble hue_accuracy - best member's", v - best, ">= 0", v >= best)
    v, z = _mean(results, "lrcn", "still_flicker"), _mean(results, "zhang", "still_flicker")
    row("lrcn still_flicker / zhang's", v / z, "< 1", v < z)
    return rows


def _cell(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"


PER_CLIP = ("hue_accuracy", "chroma_ratio", "psnr")  # the per-clip columns: colour, then fidelity


def _tables(results: dict) -> str:
    """The card's markdown: every metric's mean over the clips, then hue accuracy / chroma ratio
    / PSNR per clip (one column a clip), then LRCN's colour flicker against its own CNN's."""
    models = ["grey", "zhang", "mobilenet", "lrcn_cnn", "lrcn", "larsson", "ensemble"]
    models = [m for m in models if m in results]
    clips = sorted(results["grey"])
    lines = ["**mean over the clips**", "", "| model | " + " | ".join(TABLE_METRICS) + " |",
             "|---" * (len(TABLE_METRICS) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(_cell(_mean(results, m, metric))
                                       for metric in TABLE_METRICS) + " |" for m in models]
    lines += ["", f"**per clip**: {' / '.join(PER_CLIP)}", "",
              "| model | " + " | ".join(clips) + " |", "|---" * (len(clips) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(" / ".join(
        _cell(results[m].get(c, {}).get(metric, float("nan"))) for metric in PER_CLIP)
        for c in clips) + " |" for m in models]
    if "lrcn" in results and "lrcn_cnn" in results:
        ratios = []
        for metric in ("cdc_ab", "warp_error_ab", "still_flicker", "colorfulness"):
            ratio = _mean(results, "lrcn", metric) / _mean(results, "lrcn_cnn", metric)
            ratios.append(f"{metric} {ratio:.2f}x")
        lines += ["", "lrcn against its CNN frame by frame (`lrcn_cnn`), mean over the clips: "
                  + ", ".join(ratios) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m colorvid.core.training.card",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("clips", nargs="+", type=Path, help="held-out clips or their folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", type=int, default=None, help="at most N frames per clip")
    args = p.parse_args(argv)
    clips = [c for path in args.clips for c in (sorted(path.iterdir()) if path.is_dir()
                                                 else [path])]
    results = measure(clips, args.out, args.frames)
    rows = targets(results)
    text = _tables(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "card.md").write_text(text)
    (args.out / "card.json").write_text(json.dumps({"results": results, "targets": rows},
                                                   indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
