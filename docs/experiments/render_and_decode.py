"""Session 15: the render size and the decoding measured on footage (model card, "Session 15").

    .venv/bin/python docs/experiments/render_and_decode.py CLIP [CLIP ...] [--frames N] [--stride K]

For each clip: the first ``--frames`` frames at ``--stride``, greyed; the shipped ``zhang`` run
once per render shape (square 256, as shipped, or the aspect kept with the shorter side 256, 192
or 160), its logits decoded several ways; hue accuracy, chroma ratio and PSNR against grey per
clip, printed as one row per variant. Not part of the package: the variants it measures were not
adopted (the card says why).

Decodings: ``mean`` is the shipped annealed mean ``softmax((z - a log w) / T)`` over the bin
centres, times a saturation factor. ``lobe`` averages only the bins within +-60 degrees of hue of
the strongest chroma-weighted hue sector (36 sectors) plus the grey bin, so that a pixel torn
between orange and green bins does not decode to their olive mean.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import colorvid
from colorvid.core.bins import ab_bins
from colorvid.core.color import lab_to_rgb, rgb_to_lab
from colorvid.core.video.decode import read_frames

RENDERS = ("square256", "short256", "short192", "short160")
DECODINGS = [("mean", a, t, s)
             for a in (0.5, 1.0) for t in (0.38, 0.5, 0.7, 1.0) for s in (1.0, 1.5)]
DECODINGS += [("lobe", 1.0, 0.7, s) for s in (1.0, 1.5)]
SHIPPED = ("mean", 1.0, 0.7, 1.5)


def render(L: torch.Tensor, kind: str) -> torch.Tensor:
    """L resized as the variant renders it: a square, or the aspect kept (multiples of 8)."""
    side = int(kind[-3:])
    if kind.startswith("square"):
        size = (side, side)  # what Colorizer.to_render does at render_size 256
    else:
        scale = side / min(L.shape[-2:])
        size = tuple(max(8, round(n * scale / 8) * 8) for n in L.shape[-2:])
    return F.interpolate(L, size=size, mode="bicubic", align_corners=False).clamp(0.0, 100.0)


def lobe_mean(p: torch.Tensor, centres: torch.Tensor, half_width: float = 60.0) -> torch.Tensor:
    """Probabilities ``(B, 313, h, w)`` -> ab: the mean of the winning hue sector's bins."""
    chroma = centres.norm(dim=1)
    hue = torch.atan2(centres[:, 1], centres[:, 0])
    sectors = torch.arange(36) * (2 * math.pi / 36)
    gap = torch.remainder(hue[None] - sectors[:, None] + math.pi, 2 * math.pi) - math.pi
    inside = gap.abs() <= math.radians(half_width)       # (36, 313)
    grey = chroma < 5
    vote = (inside & ~grey).float()
    member = (inside | grey).float()
    score = torch.einsum("sq,bqhw->bshw", vote, p * chroma.view(1, -1, 1, 1))
    chosen = member[score.argmax(1)].permute(0, 3, 1, 2) * p  # (B, 313, h, w)
    total = chosen.sum(1, keepdim=True).clamp_min(1e-8)
    return torch.einsum("bqhw,qc->bchw", chosen, centres) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--stride", type=int, default=2)
    args = parser.parse_args()
    zhang = colorvid.create_colorizer("zhang")
    prior = zhang.weights_extras["prior"]  # the class weights w the rebalanced loss used
    centres = ab_bins().float()
    metrics = {m: colorvid.create_metric(m) for m in ("hue_accuracy", "chroma_ratio", "psnr")}
    variants = [(r, *SHIPPED) for r in RENDERS[1:]] + [(RENDERS[0], *d) for d in DECODINGS]
    rows = {v: [] for v in variants}
    for clip in args.clips:
        frames = [rgb for _, rgb in read_frames(clip, count=args.frames, stride=args.stride)]
        ref = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).double() / 255.0
        L = rgb_to_lab(ref.float())[:, :1]
        grey = lab_to_rgb(torch.cat((L, 0 * L, 0 * L), 1)).double()
        grey_psnr = metrics["psnr"].compute(grey, ref)
        logits = {r: torch.cat([zhang.logits(render(L[i:i + 6], r)) for i in range(0, len(L), 6)])
                  for r in RENDERS}
        for variant in variants:
            kind, mode, a, t, s = variant
            zhang.net.set_prior_correction(a, prior)  # the shipped decoder, a varied
            if mode == "mean":
                ab = zhang.net.decode(logits[kind], "annealed_mean", t)
            else:
                p = torch.softmax((logits[kind] + zhang.net.decode_bias.view(1, -1, 1, 1)) / t, 1)
                ab = lobe_mean(p, centres)
            ab = F.interpolate(ab * s, size=L.shape[-2:], mode="bilinear", align_corners=False)
            pred = lab_to_rgb(torch.cat((L, ab), 1)).double()
            scores = {n: m.compute(pred, ref) for n, m in metrics.items()}
            rows[variant].append((scores["hue_accuracy"], scores["chroma_ratio"],
                                  scores["psnr"] - grey_psnr))
        print(f"scored {clip.name}", flush=True)
    print("variant | hue per clip (mean) | chroma per clip | PSNR - grey per clip")
    for variant, per_clip in rows.items():
        hue, chroma, dpsnr = (np.array(col) for col in zip(*per_clip, strict=True))
        print(f"{' '.join(map(str, variant))} | {' '.join(f'{h:.3f}' for h in hue)} "
              f"({hue.mean():.3f}) | {' '.join(f'{c:.2f}' for c in chroma)} | "
              f"{' '.join(f'{d:+.2f}' for d in dpsnr)}")


if __name__ == "__main__":
    main()
