"""benches/bench_colorize.py's encoder table measures what it says: slower presets spend more CPU
on the same frames, and the PSNR is that of the decoded file against the frames given."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches"))
from bench_colorize import encoder_costs  # noqa: E402


def test_encoder_costs_rows():
    y, x = np.mgrid[0:64, 0:96]
    base = np.stack([x * 255 // 95, y * 255 // 63, np.full_like(x, 100)], -1).astype(np.uint8)
    noise = np.random.default_rng(0).integers(-20, 21, (6, 64, 96, 1))
    frames = np.clip(base[None] + noise, 0, 255).astype(np.uint8)  # grain: x264 has work
    rows = encoder_costs(frames, presets=("veryfast", "medium"), crf=0)
    assert [r["preset"] for r in rows] == ["veryfast", "medium"]
    for r in rows:
        assert r["frames"] == 6 and r["cpu_ms_per_frame"] > 0 and r["kib_per_frame"] > 0
        # CRF 0 is lossless in YUV; what is left is the RGB <-> YUV 4:2:0 round trip
        assert 20 < r["psnr_db"] < 99
    worse = encoder_costs(frames, presets=("veryfast",), crf=40)[0]
    assert worse["psnr_db"] < rows[0]["psnr_db"]
    assert worse["kib_per_frame"] < rows[0]["kib_per_frame"]
