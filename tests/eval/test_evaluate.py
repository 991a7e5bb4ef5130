"""``colorvid.core.evaluation.runner`` and ``colorvid eval`` on short real clips with in-process
plugins."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import colorvid
from colorvid.core.cli import main
from colorvid.core.color import rgb_to_lab
from colorvid.core.evaluation.runner import EvalConfig, evaluate, find_videos
from colorvid.core.frames import frames_to_l
from colorvid.core.interfaces import Colorizer, Metric
from colorvid.core.video.decode import read_frames

FRAMES = 4


class ConstantColorizer(Colorizer):
    """A constant chroma everywhere (a sepia-ish tint by default)."""

    def __init__(self, a: float = 8.0, b: float = 20.0, weights: str | None = None) -> None:
        if weights is not None:  # a real file read safely, as a real model would
            a, b = torch.load(weights, weights_only=True).tolist()
        self.ab = (float(a), float(b))

    def predict_ab_lowres(self, L):
        ab = L.new_empty((L.shape[0], 2, *L.shape[-2:]))
        ab[:, 0], ab[:, 1] = self.ab
        return ab


class NoisyColorizer(Colorizer):
    """Random chroma per frame: flickers, and depends on the seed."""

    def predict_ab_lowres(self, L):
        return torch.randn(L.shape[0], 2, 1, 1).expand(-1, -1, *L.shape[-2:]) * 25.0


class OracleColorizer(Colorizer):
    """Returns the original's ab for frames it has seen (matched on their exact L)."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.known = []  # (L (1, H, W), ab (2, H, W)) of every frame of every clip
        for clip in frames:
            x = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255.0
            self.known += list(zip(frames_to_l(clip), rgb_to_lab(x)[:, 1:], strict=False))

    def predict_ab_lowres(self, L):
        out = []
        for frame in L:
            out.append(next(ab for known_l, ab in self.known if torch.equal(known_l, frame)))
        return torch.stack(out)


class BrokenColorizer(Colorizer):
    def predict_ab_lowres(self, L):
        raise RuntimeError("boom: this model always fails")


class NarrowOnlyMetric(Metric):
    """Fails on frames wider than 200 pixels (to exercise per-video metric failures)."""

    higher_is_better = True

    def per_frame(self, pred, ref):
        if pred.shape[-1] > 200:
            raise ValueError("too wide for this metric")
        return pred.mean(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def small_bikes(clips_dir, tmp_path_factory):
    """The first frames of the real bikes.mp4 scaled to 240x102 (the full 640x272 costs ~5 s a
    run on a shared CPU); a second real clip with another aspect ratio than carphone's."""
    import av

    path = tmp_path_factory.mktemp("clips") / "bikes.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 240, 102, "yuv420p"
        s.options = {"crf": "12"}
        for _, rgb in read_frames(clips_dir / "bikes.mp4", count=FRAMES + 2):
            small = np.asarray(Image.fromarray(rgb).resize((240, 102), Image.Resampling.LANCZOS))
            for packet in s.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


@pytest.fixture(scope="module")
def clips(carphone_clip, small_bikes):
    return [carphone_clip, small_bikes]


@pytest.fixture
def test_plugins(fresh_host, clips):
    """Registers the test colorizers and metric in the process-wide host; removed afterwards."""
    frames = [np.stack([f for _, f in read_frames(c, count=FRAMES)]) for c in clips]

    class Plugin:
        @colorvid.hookimpl
        def register_colorizers(self, register):
            register("const", ConstantColorizer)
            register("noisy", NoisyColorizer)
            register("oracle", lambda: OracleColorizer(frames))
            register("broken", BrokenColorizer)
            register("uncreatable", lambda: ConstantColorizer(weights="/no/such/weights.pt"))

        @colorvid.hookimpl
        def register_metrics(self, register):
            register("narrow_only", NarrowOnlyMetric)

    assert fresh_host.add_plugin(Plugin(), name="eval-test-plugins")
    yield fresh_host
    fresh_host.unregister("eval-test-plugins")


def by_key(payload):
    return {(r["video"], r["model"], r["metric"]): r for r in payload["results"]}


def test_eval_two_clips_writes_report_with_sane_values(test_plugins, clips, tmp_path):
    out = tmp_path / "report"
    metrics = ["rmse_ab", "rmse_rgb", "psnr", "ssim", "colorfulness", "colorfulness_gap", "cdc",
               "warp_error"]
    result = evaluate(clips, out, EvalConfig(models=["const", "oracle"], metrics=metrics,
                                             frames=FRAMES), progress=None)
    assert result.models == ["grey", "const", "oracle"]
    for name in ("results.csv", "results.json", "report.md"):
        assert (out / name).stat().st_size > 0
    payload = json.loads((out / "results.json").read_text())
    cells = by_key(payload)
    assert len(cells) == 2 * 3 * len(metrics)
    assert all(r["error"] is None for r in payload["results"])
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(cells)
    for video in ("carphone_pristine", "bikes"):
        def v(model, m, video=video):
            return cells[(video, model, m)]["value"]

        assert v("grey", "colorfulness_gap") > 5  # the original is colourful, grey is not
        assert v("grey", "colorfulness") < 1
        assert v("const", "colorfulness") > v("grey", "colorfulness")
        # The oracle reproduces the original up to Lab -> uint8 rounding.
        # The oracle reproduces the original (uint8 -> Lab -> uint8 round-trips exactly here).
        assert v("oracle", "psnr") == "inf" and v("grey", "psnr") < 35
        assert v("oracle", "rmse_ab") == 0.0 < 1.0 < v("grey", "rmse_ab")
        assert v("oracle", "rmse_rgb") == 0.0 and v("oracle", "ssim") == pytest.approx(1.0)
        ref = torch.from_numpy(np.stack([f for _, f in read_frames(
            clips[0] if video == "carphone_pristine" else clips[1], count=FRAMES)]))
        ref = ref.permute(0, 3, 1, 2).double() / 255.0
        assert v("oracle", "cdc") == colorvid.create_metric("cdc").compute(ref, ref)
        # Per-video pictures: a sheet with rows original + 3 models, and a plot.
        sheet = Image.open(out / "sheets" / f"{video}.png")
        assert sheet.height > 4 * 100  # 4 rows of frames at least 100 px tall each
        assert Image.open(out / "plots" / f"{video}.png").size[0] > 300
        for model in ("original", "grey", "const", "oracle"):
            assert (out / "clips" / video / f"{model}.webm").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "| model | rmse_ab ↓ | rmse_rgb ↓ | psnr ↑ | ssim ↑ |" in report
    assert "![bikes contact sheet](sheets/bikes.png)" in report
    assert "| oracle |" in report and "## Failures" not in report
    decoded = list(read_frames(out / "clips" / "bikes" / "const.webm"))
    assert len(decoded) == FRAMES and decoded[0][1].shape == (102, 240, 3)


def test_failures_are_reported_and_the_run_continues(test_plugins, clips, tmp_path):
    bad_video = tmp_path / "not_a_video.mp4"
    bad_video.write_text("hello")
    log = io.StringIO()
    result = evaluate([*clips, bad_video], tmp_path / "r",
                      EvalConfig(models=["broken", "uncreatable", "const"],
                                 metrics=["rmse_ab", "narrow_only"],
                                 frames=2, write_clips=False, write_pictures=False),
                      progress=log)
    assert log.getvalue().count("eval: model uncreatable cannot be created: FileNotFoundError") == 1
    assert log.getvalue().count("model broken failed on") == 2  # the two readable videos
    assert "12/12" in log.getvalue()  # videos x models (grey included), failures too
    uncreatable = result.value("bikes", "uncreatable", "narrow_only")
    assert uncreatable.value is None and "FileNotFoundError" in uncreatable.error
    cell = result.value("carphone_pristine", "broken", "rmse_ab")
    assert cell.value is None and "RuntimeError: boom" in cell.error
    assert result.value("carphone_pristine", "const", "rmse_ab").value > 0
    assert result.value("carphone_pristine", "const", "narrow_only").value is not None
    wide = result.value("bikes", "const", "narrow_only")
    assert wide.value is None and "too wide for this metric" in wide.error
    assert result.videos[2].error is not None
    assert result.value("not_a_video", "const", "rmse_ab").error.startswith("video:")
    report = (tmp_path / "r" / "report.md").read_text()
    assert "## Failures" in report and "boom: this model always fails" in report
    assert "| broken | failed | failed |" in report
    # narrow_only succeeded on one of the three videos: the mean says so.
    assert "(1/3)" in report


def test_results_are_deterministic_for_a_seed(test_plugins, clips, tmp_path):
    def run(seed, name):
        cfg = EvalConfig(models=["noisy"], metrics=["rmse_ab", "cdc"], frames=3, seed=seed,
                         write_clips=False, write_pictures=False)
        evaluate(clips[:1], tmp_path / name, cfg, progress=None)
        return json.loads((tmp_path / name / "results.json").read_text())["results"]

    first, again, other = run(7, "a"), run(7, "b"), run(8, "c")
    assert first == again
    assert first != other
    noisy_cdc = by_key({"results": first})[("carphone_pristine", "noisy", "cdc")]["value"]
    grey_cdc = by_key({"results": first})[("carphone_pristine", "grey", "cdc")]["value"]
    assert noisy_cdc > 3 * grey_cdc  # random colour per frame is flicker


def test_cli_eval_with_weights_options_and_progress(test_plugins, clips, tmp_path, capsys):
    weights = tmp_path / "const.pt"
    torch.save(torch.tensor([-30.0, 40.0]), weights)
    out = tmp_path / "cli"
    rc = main(["eval", str(clips[0]), "--out", str(out), "--model", "const", "--frames", "2",
               "--stride", "5", "--weights", f"const={weights}", "--metric", "rmse_ab",
               "--metric", "colorfulness", "--no-clips", "--no-pictures"])
    assert not (out / "sheets").exists()
    captured = capsys.readouterr()
    assert rc == 0
    assert "| const |" in captured.out and "report:" in captured.out
    assert "eval [" in captured.err and "2/2" in captured.err
    payload = json.loads((out / "results.json").read_text())
    assert payload["config"]["options"] == {"const": {"weights": str(weights)}}
    assert payload["config"]["stride"] == 5 and payload["videos"][0]["frames"] == 2
    assert not (out / "clips").exists()
    with_weights = by_key(payload)[("carphone_pristine", "const", "colorfulness")]["value"]
    rc = main(["eval", str(clips[0]), "--out", str(tmp_path / "cli2"), "--model", "const",
               "--frames", "2", "--stride", "5", "--option", "const:a=0", "--option",
               "const:b=0.0", "--metric", "colorfulness", "--no-clips", "--quiet"])
    assert rc == 0 and capsys.readouterr().err == ""
    zero = json.loads((tmp_path / "cli2" / "results.json").read_text())
    assert by_key(zero)[("carphone_pristine", "const", "colorfulness")]["value"] < 1 < with_weights


@pytest.mark.parametrize("argv, message", [
    (["--model", "nope"], "--model: unknown colorizer 'nope'; available: "),
    (["--metric", "nope"], "--metric: unknown metric 'nope'; available: "),
    (["--weights", "grey"], "--weights: expected NAME=FILE"),
    (["--option", "grey=1"], "--option: expected NAME:KEY=VALUE"),
    (["--frames", "0"], "frames must be a positive int"),
    (["--option", "zzz:a=1"], "options given for models that are not evaluated: zzz"),
])
def test_cli_eval_rejects_bad_arguments(argv, message, carphone_clip, tmp_path, capsys,
                                        fresh_host):
    rc = main(["eval", str(carphone_clip), "--out", str(tmp_path), "--model", "grey", *argv])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_find_videos_expands_folders_and_rejects_missing(clips_dir, tmp_path):
    vids = find_videos([clips_dir])
    assert [p.name for p in vids] == sorted(p.name for p in vids)
    assert any(p.name == "carphone_pristine.mp4" for p in vids)
    with pytest.raises(ValueError, match="videos: .* is neither a file nor a folder"):
        find_videos([tmp_path / "missing.mp4"])
    with pytest.raises(ValueError, match="holds no video files"):
        find_videos([tmp_path])


def test_parse_option_value():
    from colorvid.core.cli.eval import parse_option_value

    assert parse_option_value("False") is False and parse_option_value("none") is None
    assert parse_option_value("3") == 3 and parse_option_value("0.5") == 0.5
    assert parse_option_value("small") == "small"


def test_cli_eval_scores_variants_of_one_colorizer_side_by_side(test_plugins, clips, tmp_path,
                                                                 capsys):
    out = tmp_path / "variants"
    rc = main(["eval", str(clips[0]), "--out", str(out), "--model", "const", "--model",
               "const@zero", "--option", "const@zero:a=0", "--option", "const@zero:b=0.0",
               "--frames", "2", "--metric", "colorfulness", "--no-clips", "--no-pictures",
               "--quiet"])
    assert rc == 0
    payload = json.loads((out / "results.json").read_text())
    values = by_key(payload)
    zero = values[("carphone_pristine", "const@zero", "colorfulness")]["value"]
    default = values[("carphone_pristine", "const", "colorfulness")]["value"]
    assert zero < 1 < default  # the variant ran with its own options, the plain row without
    assert "| const@zero |" in capsys.readouterr().out
    assert main(["eval", str(clips[0]), "--out", str(tmp_path / "bad"), "--model",
                 "nope@x"]) == 2
    assert "unknown colorizer 'nope'" in capsys.readouterr().err
