"""Worn copies of colour clips, to score colorizers on footage like a restorer's.

Black-and-white film and old video reach a colorizer softer and grainier than clean digital
clips. ``make_worn`` writes a copy of a colour clip whose luminance (CIE L) is softened by a
bilinear down- and up-scale and given Gaussian grain that is new in every frame, while the
colours (a, b) stay the original's, so ``colorvid eval`` on the copies measures how a model's
colour and flicker hold up on such input (the grey input it colorizes is the worn L; its colours
are judged against the clean ones).

    python -m colorvid.core.evaluation.worn CLIP... --out DIR [--scale 2] [--grain 3] [--seed 0]
    colorvid eval DIR --model lrcn --metric warp_error_ab ...

The copies are H.264 4:4:4 at CRF 10 (the colours are not subsampled again); each is written
atomically (a crash leaves no partial file under the requested name).
"""

from __future__ import annotations

import argparse
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from colorvid.core.color import lab_to_rgb, rgb_to_lab

__all__ = ["WornError", "main", "make_worn", "soften_l", "wear_frame"]


class WornError(ValueError):
    """A clip that cannot be read, or settings out of range (the message says which)."""


def _check(scale: float, grain: float) -> None:
    if not 1.0 <= scale <= 8.0:
        raise WornError(f"scale is the softening factor, between 1 (none) and 8; got {scale}")
    if not 0.0 <= grain <= 20.0:
        raise WornError(f"grain is a standard deviation in L units, between 0 and 20; got {grain}")


def soften_l(L: torch.Tensor, scale: float, min_side: int = 1) -> torch.Tensor:
    """``L`` (N, 1, H, W) scaled down by ``scale`` (antialiased bilinear, sides at least
    ``min_side``) and back up to (H, W): the detail a low-resolution transfer loses."""
    h, w = L.shape[-2:]
    small = (max(min_side, round(h / scale)), max(min_side, round(w / scale)))
    if small == (h, w):
        return L
    L = torch.nn.functional.interpolate(L, size=small, mode="bilinear", antialias=True,
                                        align_corners=False)
    return torch.nn.functional.interpolate(L, size=(h, w), mode="bilinear", align_corners=False)


def wear_frame(rgb: np.ndarray, generator: torch.Generator, *, scale: float = 2.0,
               grain: float = 3.0) -> np.ndarray:
    """One (H, W, 3) uint8 RGB frame with its L softened by ``scale`` and grained with standard
    deviation ``grain`` (L units, 0..100) drawn from ``generator``; a and b kept."""
    _check(scale, grain)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise WornError(f"wear_frame takes an (H, W, 3) uint8 RGB frame, got {rgb.shape} "
                        f"{rgb.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    lab = rgb_to_lab(x)
    L = soften_l(lab[:, :1], scale)
    if grain > 0:
        L = L + torch.randn(L.shape, generator=generator) * grain
    out = lab_to_rgb(torch.cat((L.clamp(0.0, 100.0), lab[:, 1:]), dim=1)).clamp(0.0, 1.0)
    return (out[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def make_worn(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, scale: float = 2.0,
              grain: float = 3.0, seed: int = 0) -> int:
    """Write the worn copy of the clip ``src`` to ``dst`` (an .mp4); the number of frames."""
    _check(scale, grain)
    src, dst = Path(src), Path(dst)
    generator = torch.Generator().manual_seed(seed)
    part = dst.with_name(f".{dst.name}.part")
    frames = 0
    try:
        with av.open(str(src)) as inp:
            if not inp.streams.video:
                raise WornError(f"{src}: no video stream (accepted: any video PyAV decodes)")
            stream = inp.streams.video[0]
            rate = stream.average_rate or Fraction(25)
            with av.open(str(part), "w", format="mp4") as out:
                vs = out.add_stream("libx264", rate=rate)
                vs.width, vs.height = stream.codec_context.width, stream.codec_context.height
                vs.pix_fmt = "yuv444p"
                vs.options = {"crf": "10", "preset": "fast"}
                for frame in inp.decode(stream):
                    worn = wear_frame(frame.to_ndarray(format="rgb24"), generator, scale=scale,
                                      grain=grain)
                    out.mux(vs.encode(av.VideoFrame.from_ndarray(worn, format="rgb24")))
                    frames += 1
                out.mux(vs.encode(None))
        if frames == 0:
            raise WornError(f"{src}: no frame could be decoded")
        os.replace(part, dst)
    except av.FFmpegError as e:
        raise WornError(f"{src}: cannot read it as a video ({e})") from e
    finally:
        part.unlink(missing_ok=True)
    return frames


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m colorvid.core.evaluation.worn",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("clips", nargs="+", type=Path, help="colour clips (or folders of them)")
    p.add_argument("--out", type=Path, required=True, help="folder for the worn copies")
    p.add_argument("--scale", type=float, default=2.0, help="softening factor (default 2)")
    p.add_argument("--grain", type=float, default=3.0,
                   help="grain standard deviation in L units (default 3)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    clips = [c for a in args.clips for c in (sorted(x for x in a.iterdir() if x.is_file())
                                             if a.is_dir() else [a])]
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for clip in clips:
            n = make_worn(clip, args.out / f"{clip.stem}.mp4", scale=args.scale,
                          grain=args.grain, seed=args.seed)
            print(f"{args.out / (clip.stem + '.mp4')}: {n} frames", file=sys.stderr)
    except WornError as e:
        print(f"colorvid worn: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
