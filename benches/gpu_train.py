"""For the day a GPU machine is at hand: train the released-size (`full`) Zhang on the corpus for a
fixed few minutes, calibrate its decoding on the validation photos, and print the held-out table
beside the grey baseline and the shipped (CPU-trained) default, all measured in this run.

    python benches/gpu_train.py --minutes 4 --out runs/gpu            # on a CUDA machine

On the lent H200 (torch and triton there, no PyAV, no package index; our package not installed),
from the repository root, with the PyAV wheel carried in ``.whl`` (``pip download --no-deps
--only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 -d .whl av``):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benches/gpu_train.py --out $OUT/gpu

Without an installed ``colorvid`` the script maps this checkout to the package (``core/``,
``plugins/``, ``kernels/`` and ``package/`` under a temporary ``colorvid/``) and compiles the C++
kernels with the compiler and pybind11 found there. The budget: about 3 minutes to decode the
corpus into the cache (once), ``--minutes`` of training, about a minute of calibration and one of
evaluation; keep the whole inside one 10-minute device command. It never runs in CI and no CPU
target depends on it. ``--device cpu --preset tiny --minutes 0.1`` runs the same steps here
(tests/training/test_gpu_train_script.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def map_checkout(dest: Path) -> None:
    """Make ``import colorvid`` load this checkout from ``dest`` (no install, no index)."""
    pkg = dest / "colorvid"
    (pkg / "kernels").mkdir(parents=True)
    for name in ("core", "plugins"):
        (pkg / name).symlink_to(REPO / name)
    for f in (REPO / "package").glob("*.py"):
        (pkg / f.name).symlink_to(f)
    for f in (REPO / "kernels").glob("*.py"):
        (pkg / "kernels" / f.name).symlink_to(f)
    import pybind11

    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    sources = sorted(str(p) for p in (REPO / "csrc" / "cpu").glob("*.cpp"))
    subprocess.run(["c++", "-O3", "-shared", "-fPIC", "-std=c++17", "-pthread",
                    f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}",
                    *sources, "-o", str(pkg / "kernels" / f"_cpu{suffix}")], check=True)
    sys.path.insert(0, str(dest))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=None,
                   help="default: ../shared/corpus beside the checkout, else shared/corpus in it")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--preset", default="full")
    p.add_argument("--crop", type=int, default=176)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--device", default="cuda")
    p.add_argument("--frames", type=int, default=48, help="frames per held-out clip evaluated")
    p.add_argument("--photos", type=int, default=20, help="validation photos for calibration")
    p.add_argument("--coarse", action="store_true",
                   help="calibrate on a 2-point grid (to try the steps quickly)")
    args = p.parse_args(argv)
    if importlib.util.find_spec("colorvid") is None:
        map_checkout(Path(tempfile.mkdtemp(prefix="colorvid-")))
    import torch

    from colorvid.core.evaluation.runner import EvalConfig, evaluate
    from colorvid.core.training import TrainConfig, train
    from colorvid.core.training.calibrate import (
        calibrate_temperature,
        validation_photos,
        write_temperature,
    )

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing was trained (use --device cpu to try the steps)")
        return 2
    corpus = args.corpus or next((c for c in (REPO.parent / "shared" / "corpus",
                                              REPO / "shared" / "corpus") if c.is_dir()), None)
    if corpus is None or not corpus.is_dir():
        print("no corpus: pass --corpus FOLDER (photos and videos, heldout/ kept out)")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.time()
    result = train(TrainConfig(
        model="zhang", preset=args.preset, data=[], out=str(args.out / "zhang"), crop=args.crop,
        batch_size=args.batch_size, lr=args.lr, max_minutes=args.minutes, device=args.device,
        corpus=[str(corpus)], cache=str(args.out / "cache"), checkpoint_every=200,
        val_every=10**9, progress="quiet", seed=0))
    timings["train_s"] = time.time() - start
    weights = Path(result["weights"])
    start = time.time()
    photos = validation_photos(args.out / "cache", args.photos)
    grid = dict(grid=(0.38,), saturations=(1.0,), corrections=(0.0, 1.0)) if args.coarse else {}
    report = calibrate_temperature("zhang", weights, photos, device=args.device, **grid)
    write_temperature(weights, report["chosen"], report, report["saturation"],
                      report["prior_correction"])
    timings["calibrate_s"] = time.time() - start
    clips = sorted((corpus / "video" / "heldout").glob("*"))
    start = time.time()
    metrics = ["hue_accuracy", "chroma_ratio", "colorfulness", "psnr"]
    evaluated = evaluate(clips, args.out / "eval", EvalConfig(
        models=["grey", "zhang"], options={"zhang": {"weights": str(weights)}}, metrics=metrics,
        frames=args.frames, stride=2, write_clips=False, write_pictures=False,
        device=args.device), progress=None)
    shipped = evaluate(clips, args.out / "eval-shipped", EvalConfig(
        models=["zhang"], metrics=metrics, frames=args.frames, stride=2, write_clips=False,
        write_pictures=False, device=args.device), progress=None)
    timings["eval_s"] = time.time() - start
    rows = []
    for label, res, model in (("grey", evaluated, "grey"),
                              (f"zhang {args.preset}, {args.minutes:g} min here", evaluated,
                               "zhang"), ("zhang shipped (CPU-trained)", shipped, "zhang")):
        for clip in clips:
            cells = {c.metric: c.value for c in res.cells if c.model == model
                     and Path(c.video).stem == clip.stem}
            rows.append({"model": label, "clip": clip.stem, **cells})
    summary = {"device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
               "preset": args.preset, "steps": result["step"], "crop": args.crop,
               "batch_size": args.batch_size, "decode": {k: report[k] for k in (
                   "chosen", "saturation", "prior_correction")}, **{k: round(v, 1) for k, v in
                                                                    timings.items()},
               "rows": rows}
    (args.out / "gpu_train.json").write_text(json.dumps(summary, indent=1))
    print(f"{summary['device']}: {args.preset} zhang, {result['step']} steps of "
          f"{args.batch_size} x {args.crop}px in {timings['train_s']:.0f} s; decoding T="
          f"{report['chosen']} saturation={report['saturation']} prior_correction="
          f"{report['prior_correction']}")
    print(f"{'model':34} {'clip':24} " + " ".join(f"{m:>13}" for m in metrics))
    for r in rows:
        print(f"{r['model']:34} {r['clip']:24} " + " ".join(
            f"{r.get(m, float('nan')):13.3f}" for m in metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
