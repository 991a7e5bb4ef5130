"""Third-party plugins through the ``colorvid`` entry-point group, in a real installed package.

The example package (examples/colorvid-sepia) is pip-installed into a temporary folder that
only the subprocesses of these tests see, so the shared venv is left as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "colorvid-sepia"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE)],
        check=True,
    )
    # A second, broken plugin: a real dist-info whose entry point names a module that raises.
    dist = target / "colorvid_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: colorvid-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[colorvid]\nbroken = colorvid_broken\n")
    (target / "colorvid_broken.py").write_text("raise ImportError('needs libfoo 2')\n")
    return target


def _run(plugin_path: Path, *args: str, env: dict[str, str] | None = None, code: str = ""):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COLORVID_")}
    full_env.update({"PYTHONPATH": str(plugin_path), **(env or {})})
    cli = [sys.executable, "-m", "colorvid", *args]
    cmd = [sys.executable, "-c", code] if code else cli
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, cwd=plugin_path)


def test_example_plugin_is_listed_with_its_distribution(plugin_path):
    out = _run(plugin_path, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    by_name = {p["name"]: p for p in payload["plugins"]}
    assert by_name["sepia"] == {
        "name": "sepia", "kind": "colorizer", "plugin": "sepia",
        "distribution": "colorvid-sepia", "version": "0.2.0",
        "description": "Sepia tone, strongest in the mid-tones",
    }
    assert by_name["grey"]["distribution"] == "colorvid"
    # The broken plugin is reported by name with the original error; the rest still works.
    errors = {e["plugin"]: e for e in payload["errors"]}
    assert "needs libfoo 2" in errors["broken"]["error"]


def test_example_plugin_is_usable(plugin_path):
    code = (
        "import torch, colorvid\n"
        "m = colorvid.create_colorizer('sepia')\n"
        "L = torch.tensor([0.0, 50.0, 100.0]).view(1, 1, 1, 3)\n"
        "ab = m.predict_ab(L)\n"
        "print(ab.flatten().tolist())\n"
    )
    out = _run(plugin_path, code=code)
    assert out.returncode == 0, out.stderr
    values = json.loads(out.stdout)
    # a channel: 0 at black, 6 at mid-grey, 0 at white; b likewise with 22.
    assert values == pytest.approx([0.0, 6.0, 0.0, 0.0, 22.0, 0.0])


@pytest.mark.parametrize(
    "allow, expect_sepia, expect_broken_error",
    [("sepia", True, False), ("", False, False), ("broken", False, True)],
)
def test_load_plugins_allowlist(plugin_path, allow, expect_sepia, expect_broken_error):
    out = _run(plugin_path, "plugins", "--json", env={"COLORVID_LOAD_PLUGINS": allow})
    payload = json.loads(out.stdout)
    names = {p["name"] for p in payload["plugins"]}
    assert ("sepia" in names) is expect_sepia
    assert "grey" in names  # built-ins always load
    assert any(e["plugin"] == "broken" for e in payload["errors"]) is expect_broken_error


def test_trace_plugins_env_prints_hook_calls(plugin_path):
    out = _run(plugin_path, "plugins", env={"COLORVID_TRACE_PLUGINS": "1",
                                            "COLORVID_LOAD_PLUGINS": "sepia"})
    assert out.returncode == 0
    assert "colorvid: hook register_colorizers -> [sepia]" in out.stderr
    assert "colorvid: hook register_colorizers ok" in out.stderr
    # The human-readable table lists the plugin with its distribution and version.
    line = [row for row in out.stdout.splitlines() if row.startswith("sepia")][0]
    assert line.split()[:4] == ["sepia", "colorizer", "colorvid-sepia", "0.2.0"]
