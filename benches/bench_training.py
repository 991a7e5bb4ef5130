"""Training throughput: where a step's time goes, before and after the decoded cache.

*Before* (decoding per sample, at the crop it would need for inference-scale
training): each sample decodes its source file (JPEG/PNG via PIL; what a plain image-folder
loader does) and resamples it to the training scale before cropping. *After*: the sample crops a
memory-mapped uint8 array of ``colorvid.core.training.data.cache`` (decoded once). Both then
convert the crop to Lab. The trainer case runs real ``colorvid train`` steps (tiny Zhang,
batch 8, 176 px) and reports frames/s and the share of each step spent building the batch
(target under 10%).

    make bench                              # pytest-benchmark, all cases
    python benches/bench_training.py        # table: ms per sample, ratio, frames/s, data share,
                                            # then frames/s by preset and precision (fp32, bf16)

Photos are made here (random colour blobs on gradients, 1600x1200 JPEGs, the size of a typical
wallpaper in the corpus), so the bench needs no data outside the repository.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorvid.core.color import rgb_to_lab
from colorvid.core.training.data.cache import VIDEO_SCALE, CorpusDataset, build_cache
from colorvid.plugins.models.common import native_bf16

CROP = 176
PHOTOS = 12
SIZE = (1600, 1200)


def make_photos(folder: Path, n: int = PHOTOS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        g = np.random.default_rng(k)
        w, h = SIZE
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None]
        img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
        for _ in range(40):
            y, x, r = g.integers(0, h), g.integers(0, w), g.integers(20, 200)
            img[max(0, y - r): y + r, max(0, x - r): x + r] = g.integers(0, 256, 3)
        path = folder / f"photo{k:02d}.jpg"
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


def decode_per_sample(paths: list[Path], index: int) -> torch.Tensor:
    """The before path: decode, resample to the training scale, crop, Lab."""
    g = np.random.default_rng(index)
    with Image.open(paths[index % len(paths)]) as im:
        rgb = im.convert("RGB")
        scale = VIDEO_SCALE / min(rgb.size)
        rgb = rgb.resize((round(rgb.size[0] * scale), round(rgb.size[1] * scale)),
                         Image.Resampling.LANCZOS)
    arr = np.asarray(rgb)
    y, x = g.integers(0, arr.shape[0] - CROP + 1), g.integers(0, arr.shape[1] - CROP + 1)
    crop = torch.from_numpy(np.array(arr[y: y + CROP, x: x + CROP])).permute(2, 0, 1)[None]
    return rgb_to_lab(crop.float() / 255.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-corpus")
    paths = make_photos(root / "photos")
    cache = build_cache([root / "photos"], root / "cache")
    return paths, cache


def test_sample_decoded_per_step(benchmark, corpus):
    paths, _ = corpus
    counter = iter(range(10**9))
    benchmark(lambda: decode_per_sample(paths, next(counter)))


def test_sample_from_cache(benchmark, corpus):
    _, cache = corpus
    data = CorpusDataset(cache, crop=CROP, samples=10**6, holdout=0)
    counter = iter(range(10**9))
    benchmark(lambda: data[next(counter)])


def train_steps(cache_root: Path, out: Path, steps: int, *, preset: str = "tiny",
                crop: int = CROP, batch: int = 8, precision: str = "fp32") -> dict:
    from colorvid.core.training import TrainConfig, train

    cfg = TrainConfig(model="zhang", data=[], corpus=[str(cache_root / "photos")],
                      cache=str(cache_root / "cache"), out=str(out), crop=crop,
                      batch_size=batch, lr=1e-3, steps=steps, progress="quiet",
                      checkpoint_every=10**6, val_every=10**6, preset=preset,
                      precision=precision)
    return train(cfg)


# The recipe's settings (128 px crops, batch 16) at both precisions: bf16 mixed precision is what
# the recipe uses (--precision auto) on a CPU with AMX or AVX512-BF16.
PRECISION_CASES = (("tiny", "fp32"), ("tiny", "bf16"), ("small", "fp32"), ("small", "bf16"))


@pytest.mark.parametrize(("preset", "precision"), PRECISION_CASES)
def test_training_frames_per_second_by_precision(benchmark, corpus, tmp_path, preset, precision):
    paths, _ = corpus
    root = paths[0].parent.parent
    runs = iter(range(100))
    result = benchmark.pedantic(lambda: train_steps(
        root, tmp_path / f"run{next(runs)}", 8, preset=preset, crop=128, batch=16,
        precision=precision), rounds=1, iterations=1)
    benchmark.extra_info.update(frames_per_s=result["frames_per_s"],
                                data_share=result["data_share"])
    assert result["step"] == 8


def test_training_step_waits_little_for_data(benchmark, corpus, tmp_path):
    paths, _ = corpus
    root = paths[0].parent.parent
    runs = iter(range(100))
    result = benchmark.pedantic(lambda: train_steps(root, tmp_path / f"run{next(runs)}", 6),
                                rounds=1, iterations=1)
    benchmark.extra_info.update(frames_per_s=result["frames_per_s"],
                                data_share=result["data_share"])
    assert result["data_share"] < 0.10, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--precision-steps", type=int, default=30,
                   help="steps per row of the precision table (0: skip it)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_photos(root / "photos")
        start = time.perf_counter()
        cache = build_cache([root / "photos"], root / "cache")
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(args.samples):
            decode_per_sample(paths, i)
        before = (time.perf_counter() - start) / args.samples
        data = CorpusDataset(cache, crop=CROP, samples=10**6, holdout=0)
        start = time.perf_counter()
        for i in range(args.samples):
            data[i]
        after = (time.perf_counter() - start) / args.samples
        result = train_steps(root, root / "run", args.steps)
        rows = []
        for k, (preset, precision) in enumerate(PRECISION_CASES if args.precision_steps else ()):
            r = train_steps(root, root / f"p{k}", args.precision_steps, preset=preset, crop=128,
                            batch=16, precision=precision)
            rows.append((preset, precision, r["frames_per_s"], r["data_share"]))
    print(f"cache build ({PHOTOS} photos {SIZE[0]}x{SIZE[1]}): {build_s:.1f} s, once")
    print("| data path | ms per sample | speed-up |")
    print("|---|---|---|")
    print(f"| decode per sample (before) | {before * 1e3:.1f} | 1.0x |")
    print(f"| decoded cache (after) | {after * 1e3:.1f} | {before / after:.1f}x |")
    step_s = 8 / result["frames_per_s"]
    compute_s = step_s * (1 - result["data_share"])
    before_step = compute_s + before * 8  # the same step, its samples decoded per step
    print(f"training, tiny zhang, batch 8, {CROP} px: {result['frames_per_s']:.1f} frames/s, "
          f"data share {result['data_share']:.1%} (after); the same steps with per-sample "
          f"decoding: {8 / before_step:.1f} frames/s, data share {before * 8 / before_step:.1%} "
          f"(before)")
    if rows:
        print(f"\nrecipe settings (128 px crops, batch 16, {args.precision_steps} steps; "
              f"native bf16 here: {native_bf16(torch.device('cpu'))})")
        print("| preset | precision | frames/s | vs fp32 | data share |")
        print("|---|---|---|---|---|")
        fp32 = {p: f for p, prec, f, _ in rows if prec == "fp32"}
        for preset, precision, fps, share in rows:
            print(f"| {preset} | {precision} | {fps:.1f} | {fps / fp32[preset]:.2f}x | "
                  f"{share:.1%} |")


if __name__ == "__main__":
    main()
