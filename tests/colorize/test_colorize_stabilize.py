"""``--stabilize`` on the command line: colorize and eval take it for any model; bad values are
one line on stderr and nothing is written."""

from __future__ import annotations

import json

import pytest

from colorvid.core.cli import main


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main([*map(str, args)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("extra", [["--stabilize"], ["--stabilize", "0.5"],
                                   ["--stabilize", "0.9", "--stabilize-mode", "forward"]])
def test_colorize_with_stabilize(extra, test_colorizers, carphone_y4m, tmp_path, capsys,
                                 decode_rgb, const_ab):
    out = tmp_path / "out.mp4"
    rc, _, err = _cli(capsys, "colorize", carphone_y4m, "-o", out, "--model", "const-test",
                      "-q", *extra)
    assert rc == 0, err
    frames = decode_rgb(out)
    assert len(frames) == 12
    # a constant colour stays that colour: nothing washed out, nothing added
    raw = tmp_path / "raw.mp4"
    assert _cli(capsys, "colorize", carphone_y4m, "-o", raw, "--model", "const-test", "-q")[0] == 0
    for a, b in zip(frames, decode_rgb(raw), strict=True):
        assert abs(a.astype(int) - b.astype(int)).mean() < 1.0


BAD = {
    "strength too high": (["--stabilize", "1.5"], "--stabilize: STRENGTH must be a number from "
                                                 "0 to 0.98"),
    "not a number": (["--stabilize", "strong"], "got 'strong'"),
    "negative": (["--stabilize=-0.1"], "STRENGTH must be a number"),
    "mode alone": (["--stabilize-mode", "forward"], "--stabilize-mode applies with --stabilize"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_stabilize_options_are_one_line_and_write_nothing(case, test_colorizers,
                                                              carphone_y4m, tmp_path, capsys):
    extra, message = BAD[case]
    rc, _, err = _cli(capsys, "colorize", carphone_y4m, "-o", tmp_path / "out.mp4", "--model",
                      "const-test", "-q", *extra)
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("colorvid: ") and message in lines[0], err
    assert list(tmp_path.iterdir()) == []


def test_eval_scores_the_stabilised_model_beside_the_raw_one(test_colorizers, carphone_y4m,
                                                            tmp_path, capsys):
    out = tmp_path / "report"
    rc, stdout, err = _cli(capsys, "eval", carphone_y4m, "--model", "const-test", "--stabilize",
                           "--frames", "6", "--metric", "still_flicker", "--metric",
                           "chroma_ratio", "--no-clips", "--no-pictures", "--quiet",
                           "--out", out)
    assert rc == 0, err
    result = json.loads((out / "results.json").read_text())
    assert result["models"] == ["grey", "const-test", "const-test+stabilize"]
    assert "const-test+stabilize" in stdout
    bad = _cli(capsys, "eval", carphone_y4m, "--model", "const-test", "--stabilize", "2",
               "--out", tmp_path / "bad")
    assert bad[0] == 2 and "STRENGTH must be a number from 0 to 0.98" in bad[2]
    assert not (tmp_path / "bad").exists()
