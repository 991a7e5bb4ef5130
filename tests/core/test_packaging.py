"""The wheel: what lands in site-packages, and that a regular (non-editable) install imports."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(REPO)],
        check=True,
    )
    (path,) = out.glob("colorvid-*.whl")
    return path


def test_wheel_layout(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    # Only the colorvid package (plus metadata and the VapourSynth plugin folder) is installed:
    # no bare core/plugins/kernels module may land in site-packages.
    assert not tops & {"core", "plugins", "kernels", "csrc"}
    assert "colorvid/__init__.py" in names
    assert "colorvid/core/bins.py" in names and "colorvid/core/ab_bins_313.csv" in names
    assert "colorvid/plugins/grey.py" in names and "colorvid/kernels/nearest_bin.py" in names
    assert any(n.startswith("colorvid/kernels/_cpu") and n.endswith(".so") for n in names)
    entry_points = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points[0]).decode()
    assert "colorvid = colorvid.core.cli:main" in text


def test_regular_install_imports_and_runs(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True,
    )
    # -S skips .pth files, so the editable install's import hook is not active; the
    # dependencies come from the venv's site-packages after the fresh install.
    paths = [str(target), sysconfig.get_paths()["purelib"]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    code = (
        "import colorvid, torch\n"
        "from colorvid.kernels import nearest_bin_cpp\n"
        f"assert colorvid.__file__.startswith({str(target)!r}), colorvid.__file__\n"
        "names = [p['name'] for p in colorvid.list_plugins('colorizer')]\n"
        "print(nearest_bin_cpp(torch.zeros(1, 2, 1, 1)).item(), 'grey' in names, 'lrcn' in names)\n"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True,
                         text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["120", "True", "True"]


def test_editable_install_serves_this_checkout():
    import colorvid.core

    assert Path(colorvid.core.__file__).resolve().parent == REPO / "core"
