"""`make demo` (python -m colorvid.core.cli.demo) on a short real clip, and its failure message."""

from __future__ import annotations

import numpy as np
from PIL import Image

from colorvid.core.cli import demo


def test_demo_writes_video_and_strip(carphone_y4m, tmp_path, capsys):
    result = demo.run_demo("grey", tmp_path / "demo", clip=carphone_y4m, progress="quiet")
    assert result["frames"] == 12
    assert result["colorized"].is_file() and result["grey"].is_file()
    strip = np.asarray(Image.open(result["strip"]))
    assert strip.shape == (3 * 144, 3 * 176, 3)  # 3 moments x (grey | colorized | original)
    grey_col, original_col = strip[:, :176].astype(int), strip[:, 352:].astype(int)
    assert np.abs(grey_col - grey_col[..., :1]).max() <= 2  # the greyed input has no colour
    assert np.abs(original_col - original_col[..., :1]).max() > 20  # the original has
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "grey.mp4", "out.mp4", "strip.png"]


def test_demo_without_model_fails_clearly(tmp_path, capsys):
    rc = demo.main(["--model", "no-such-model", "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith("demo: the demo model 'no-such-model' is not available")
    assert "--model" in err and not (tmp_path / "d").exists()
    assert demo.DEMO_MODEL == "lrcn" and demo.find_clip().name == demo.DEMO_CLIP
