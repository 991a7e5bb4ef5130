"""Choosing the decoding of trained weights on held-out *photos* (never on clips).

The annealed mean ``softmax(z / T)`` trades vividness for safety: T = 0.38 (the paper) paints
strong colours, T = 1 (the mean) pale ones. A network trained for a few CPU-hours is often sure
of the wrong bin, and a vivid wrong colour costs more PSNR than a pale one. So the recipe picks
T per weights file, once, on the corpus's validation photos (held out of training by
:class:`~colorvid.core.training.data.cache.CorpusDataset`): the most vivid T whose mean PSNR
stays within ``max_psnr_drop`` dB of the grey baseline, and records it in the file's header as
``decode_temperature`` (the colorizers decode with it unless given ``temperature=``). When even
T = 1 is too vivid (a young network is confidently over-saturated under the rebalanced loss), a
global ``decode_saturation`` factor on the decoded ab is chosen with it (``saturation=``
overrides it), and a ``decode_prior_correction`` strength a: the rebalanced loss teaches the net
to over-predict rare colours by their class weight w, so decoding ``softmax((z - a log w) / T)``
undoes a share a of it (ZhangNet.set_prior_correction). On the first shipped tiny Zhang this
moved the frontier most: chroma ratio 0.48 at 0.57 dB below grey PSNR (a = 0.5) where
saturation alone needed 1.25 dB for 0.50. One triple per weights file, chosen on photos: never
per clip. A temporal model (LRCN) is scored on each photo twice, as a static shot and as a
camera pan over it, the two kinds of shot footage has. Larsson's histograms decode by median
chroma and circular-mean hue, with no temperature or prior correction: for it only the
saturation is chosen (``decode_saturation``).

    python -m colorvid.core.training.calibrate WEIGHTS --cache runs/cache [--write]
    python -m colorvid.core.training.calibrate LRCN_WEIGHTS --from-cnn ZHANG_WEIGHTS
    python -m colorvid.core.training.calibrate WEIGHTS --cache runs/cache --score

The third form scores the file's own decoding on the validation photos (hue accuracy, per-sector
hue accuracy, chroma ratio, PSNR against grey's), without choosing anything.

The second form gives an LRCN the decoding its CNN was calibrated to (``inherit_decoding``).
Why: photos are a per-frame model's validation, not a temporal one's. An LRCN (an LSTM over a
retrained CNN), measured both ways on the held-out clips: calibrated on the
photos' static shots and pans it chose a = 0.5, T = 1, saturation 0.65 (hue accuracy 0.389,
chroma ratio 0.65, 0.30 dB under grey); with its CNN's decoding (a = 1, T = 0.7, saturation
1.5) 0.434 / 0.69 / 0.17 dB under grey. The LSTM corrects the CNN's logits, so it decodes on the
scale the CNN was calibrated for.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

__all__ = ["CORRECTIONS", "DECODE_KEYS", "GRID", "PAN_STEP", "SATURATIONS", "SATURATION_ONLY",
           "calibrate_temperature", "inherit_decoding", "main", "validation_photos",
           "write_temperature"]

DECODE_KEYS = ("decode_temperature", "decode_saturation", "decode_prior_correction")

GRID: tuple[float, ...] = (0.38, 0.5, 0.7, 1.0)
SATURATIONS: tuple[float, ...] = (1.5, 1.25, 1.0, 0.8, 0.65, 0.5, 0.4)
CORRECTIONS: tuple[float, ...] = (0.0, 0.5, 0.75, 1.0)
# Models whose decoding has no temperature or prior correction: only the saturation is chosen.
SATURATION_ONLY: frozenset[str] = frozenset({"larsson"})


def validation_photos(cache_dir: str | Path, limit: int | None = None) -> list[np.ndarray]:
    """The held-out photos of a training cache at the render scale, uint8 ``(H, W, 3)`` each."""
    from colorvid.core.training.data.cache import VIDEO_SCALE, CorpusDataset

    cache = _open_cache(Path(cache_dir))
    held = CorpusDataset(cache, validation=True)
    photos = [np.asarray(cache.array(i, str(VIDEO_SCALE))) for i in held.indices]
    return photos[:limit] if limit else photos


def _open_cache(folder: Path):
    from colorvid.core.training.data.cache import CacheEntry, TrainingCache

    index = json.loads((folder / "index.json").read_text())
    return TrainingCache(folder, [CacheEntry(**e) for e in index["entries"]], [])


def _scores(model: str, weights: Path, photos: Sequence[np.ndarray], temperature: float | None,
            saturations: Sequence[float], prior_correction: float | None = 0.0,
            device: str = "cpu") -> list[dict[str, float]]:
    """Mean metrics over ``photos`` at one temperature and prior correction, for each
    saturation factor (saturation scales the decoded ab, as the colorizers do). Temperature
    None: a model without them (Larsson's histograms decode by median and circular mean),
    scored on saturation alone."""
    import colorvid
    from colorvid.core.color import lab_to_rgb, rgb_to_lab

    decoding = {} if temperature is None else {"temperature": temperature,
                                                "prior_correction": prior_correction}
    colorizer = colorvid.create_colorizer(model, weights=str(weights), saturation=1.0,
                                          device=device, **decoding)
    metrics = {m: colorvid.create_metric(m)
               for m in ("hue_accuracy", "hue_accuracy_sector", "chroma_ratio", "psnr")}
    totals = {s: {m: [] for m in (*metrics, "grey_psnr")} for s in saturations}
    for rgb in photos:
        ref = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].double() / 255.0
        lab = rgb_to_lab(ref.float())
        with torch.inference_mode():
            shots = _shots(colorizer, lab[:, :1].to(device))
        for ab, (y0, x0) in shots:
            ab = ab.float().cpu()
            h, w = ab.shape[-2:]
            target = ref[..., y0:y0 + h, x0:x0 + w]
            L = lab[:, :1, y0:y0 + h, x0:x0 + w]
            grey = lab_to_rgb(torch.cat((L, torch.zeros_like(ab)), 1)).double()
            grey_psnr = metrics["psnr"].compute(grey, target)
            for s in saturations:
                pred = lab_to_rgb(torch.cat((L, ab * s), 1)).double()
                for name, metric in metrics.items():
                    value = metric.compute(pred, target)
                    if not np.isnan(value):
                        totals[s][name].append(value)
                totals[s]["grey_psnr"].append(grey_psnr)
    return [{"temperature": temperature, "saturation": s, "prior_correction": prior_correction,
             **{k: float(np.mean(v)) if v else float("nan") for k, v in totals[s].items()}}
            for s in saturations]


# The camera pan of a temporal colorizer's moving shot: pixels per frame down and across.
PAN_STEP: tuple[int, int] = (2, 4)


def _predict(colorizer, L: torch.Tensor) -> torch.Tensor:
    """ab of one photo as the colorizer paints it in a video: a temporal one (LRCN) sees the photo
    held still for its window (a static shot) and is scored on the last frame, where its state
    is what it carries through footage, not on a first frame with an empty state."""
    if not getattr(colorizer, "temporal", False):
        return colorizer.predict_ab(L)
    frames = getattr(colorizer, "window", None) or 6
    ab, _ = colorizer.predict_sequence(L.expand(frames, -1, -1, -1).contiguous())
    return ab[-1:]


def _pan(colorizer, L: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]] | None:
    """A temporal colorizer on a camera pan over the photo (the window moving PAN_STEP pixels a
    frame): ab of the last frame and where that frame's window starts; None when the photo is
    too small for the pan."""
    frames = getattr(colorizer, "window", None) or 6
    dy, dx = PAN_STEP
    H, W = L.shape[-2:]
    h, w = H - dy * (frames - 1), W - dx * (frames - 1)
    if h < 16 or w < 16:
        return None
    seq = torch.cat([L[..., t * dy:t * dy + h, t * dx:t * dx + w] for t in range(frames)])
    ab, _ = colorizer.predict_sequence(seq)
    return ab[-1:], (dy * (frames - 1), dx * (frames - 1))


def _shots(colorizer, L: torch.Tensor) -> list[tuple[torch.Tensor, tuple[int, int]]]:
    """What one photo is scored on: (ab, top-left of the scored region). A per-frame colorizer:
    the photo. A temporal one: the photo as a static shot and as a pan, both counted, since
    footage has both and the LSTM paints them differently (it averages over a moving view, so
    a decoding chosen on still shots alone left LRCN at 0.86x its CNN's colourfulness on the
    held-out clips)."""
    shots = [(_predict(colorizer, L), (0, 0))]
    if getattr(colorizer, "temporal", False):
        pan = _pan(colorizer, L)
        if pan is not None:
            shots.append(pan)
    return shots


def calibrate_temperature(model: str, weights: str | Path, photos: Sequence[np.ndarray],
                          grid: Sequence[float] = GRID,
                          saturations: Sequence[float] = SATURATIONS,
                          max_psnr_drop: float = 0.5, min_chroma_ratio: float = 0.5,
                          corrections: Sequence[float] = CORRECTIONS, device: str = "cpu"
                          ) -> dict:
    """Scores for each (prior correction, T, saturation) and the chosen triple: the most hue
    accuracy among those
    whose PSNR is within ``max_psnr_drop`` dB of grey and whose chroma ratio is at least
    ``min_chroma_ratio``; failing that, the highest PSNR with that chroma ratio; failing that,
    the highest PSNR."""
    if model in SATURATION_ONLY:
        rows = _scores(model, Path(weights), photos, None, saturations, None, device)
    else:
        rows = [r for a in corrections for t in grid
                for r in _scores(model, Path(weights), photos, t, saturations, a, device)]
    coloured = [r for r in rows if r["chroma_ratio"] >= min_chroma_ratio]
    ok = [r for r in coloured if r["psnr"] >= r["grey_psnr"] - max_psnr_drop]
    if ok:
        chosen, rule = max(ok, key=lambda r: r["hue_accuracy"]), (
            f"most hue_accuracy with PSNR >= grey - {max_psnr_drop} dB and chroma ratio >= "
            f"{min_chroma_ratio}")
    elif coloured:
        chosen, rule = max(coloured, key=lambda r: r["psnr"]), (
            f"no pair met the PSNR bound: the highest PSNR with chroma ratio >= "
            f"{min_chroma_ratio}")
    else:
        chosen, rule = max(rows, key=lambda r: r["psnr"]), "the highest PSNR"
    return {"chosen": chosen["temperature"], "saturation": chosen["saturation"],
            "prior_correction": chosen["prior_correction"], "rows": rows,
            "photos": len(photos), "rule": rule,
            "shots": "each photo; a temporal model's as a static shot and as a pan of "
                     f"{PAN_STEP[0]} x {PAN_STEP[1]} px a frame"}


def write_temperature(weights: str | Path, temperature: float | None, report: dict,
                      saturation: float | None = None,
                      prior_correction: float | None = None) -> Path:
    """Rewrite ``weights`` (atomically) with ``decode_temperature`` (and ``decode_saturation``,
    ``decode_prior_correction``; each None leaves it out) and the calibration table."""
    from colorvid.core.weights import read_config, save_weights

    config = read_config(weights)
    tensors = load_file(str(weights))
    state = {k: v for k, v in tensors.items() if not k.startswith("extra.")}
    extras = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    if temperature is not None:
        config["decode_temperature"] = float(temperature)
    if saturation is not None:
        config["decode_saturation"] = float(saturation)
    if prior_correction is not None:
        config["decode_prior_correction"] = float(prior_correction)
    config["calibration"] = report
    return save_weights(weights, state, config, extras)


def decoding_of(source: str | Path, rule: str) -> dict:
    """The decode_* keys of the weights file ``source`` with a calibration record naming it
    (``rule``: why they apply), ready to merge into another file's header; {} when ``source``
    has no calibrated decoding."""
    from colorvid.core.weights import read_config

    header = read_config(source)
    decoding = {k: header[k] for k in DECODE_KEYS if k in header}
    if not decoding:
        return {}
    return {**decoding, "calibration": {"inherited_from": Path(source).name, "rule": rule,
                                        **decoding}}


def inherit_decoding(weights: str | Path, cnn_weights: str | Path) -> Path:
    """Rewrite the lrcn file ``weights`` (atomically) with the decoding of ``cnn_weights``, a
    file of the model under its LSTM (zhang, mobilenet: its temperature, saturation and prior
    correction); the calibration record names the source. Raises ValueError for files of other
    models or an uncalibrated source."""
    from colorvid.core.weights import read_config

    target, source = read_config(weights), read_config(cnn_weights)
    cnn = (target.get("architecture") or {}).get("cnn", "zhang")
    if target.get("model") != "lrcn" or source.get("model") != cnn:
        raise ValueError(f"calibrate --from-cnn: gives an lrcn file the decoding of a file of "
                         f"its CNN's model ({cnn}); got {target.get('model')!r} <- "
                         f"{source.get('model')!r}")
    found = decoding_of(cnn_weights, "the decoding its CNN was calibrated to on the "
                        "validation photos")
    if not found:
        raise ValueError(f"calibrate --from-cnn: {cnn_weights} has no calibrated decoding "
                         "(run the photo calibration on it first: --cache DIR --write)")
    return write_temperature(weights, found.get("decode_temperature"), found["calibration"],
                             found.get("decode_saturation"),
                             found.get("decode_prior_correction"))


def _floats(text: str) -> tuple[float, ...]:
    """``"0.5,0.7,1"`` -> ``(0.5, 0.7, 1.0)``; numbers >= 0 only."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}") from None
    if not values or not all(v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected numbers >= 0, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m colorvid.core.training.calibrate",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("weights", type=Path)
    p.add_argument("--cache", type=Path, default=None, help="the training cache folder")
    p.add_argument("--from-cnn", type=Path, default=None, metavar="ZHANG_WEIGHTS",
                   help="give an lrcn file the decoding this zhang file was calibrated to "
                   "(written; no photos needed)")
    p.add_argument("--limit", type=int, default=None, help="at most N photos")
    p.add_argument("--write", action="store_true",
                   help="record the chosen temperature, saturation and prior correction")
    p.add_argument("--temperatures", type=_floats, default=GRID, metavar="T,T,...",
                   help=f"annealing temperatures tried (default {','.join(map(str, GRID))})")
    p.add_argument("--saturations", type=_floats, default=SATURATIONS, metavar="S,S,...",
                   help="saturation factors tried (default "
                   f"{','.join(map(str, SATURATIONS))})")
    p.add_argument("--corrections", type=_floats, default=CORRECTIONS, metavar="A,A,...",
                   help=f"prior corrections tried (default {','.join(map(str, CORRECTIONS))})")
    p.add_argument("--score", action="store_true",
                   help="only score the file's own decoding on the validation photos")
    args = p.parse_args(argv)
    from colorvid.core.weights import read_config

    if args.from_cnn is not None:
        try:
            written = inherit_decoding(args.weights, args.from_cnn)
        except ValueError as e:
            p.error(str(e))
        print(json.dumps(read_config(written)["calibration"], indent=1))
        return 0
    if args.cache is None:
        p.error("give --cache DIR (the training cache, for its validation photos) or "
                "--from-cnn ZHANG_WEIGHTS")
    header = read_config(args.weights)
    model = header["model"]
    if args.score:
        photos = validation_photos(args.cache, args.limit)
        temperature = None if model in SATURATION_ONLY else header.get("decode_temperature")
        if temperature is None and model not in SATURATION_ONLY:
            from colorvid.plugins.models.zhang_net import ANNEAL_TEMPERATURE

            temperature = ANNEAL_TEMPERATURE
        correction = None if model in SATURATION_ONLY else header.get(
            "decode_prior_correction", 0.0)
        row = _scores(model, args.weights, photos, temperature,
                      [header.get("decode_saturation", 1.0)], correction)[0]
        print(json.dumps({"weights": str(args.weights), "photos": len(photos), **row},
                         indent=1))
        return 0
    report = calibrate_temperature(model, args.weights, validation_photos(args.cache, args.limit),
                                   grid=args.temperatures, saturations=args.saturations,
                                   corrections=args.corrections)
    print(json.dumps(report, indent=1))
    if args.write:
        write_temperature(args.weights, report["chosen"], report, report["saturation"],
                          report["prior_correction"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
