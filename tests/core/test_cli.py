"""The ``colorvid`` console script and its ``plugins`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import colorvid
from colorvid.core import cli

SCRIPT = Path(sys.executable).with_name("colorvid")


def test_console_script_lists_builtin_plugins_as_json():
    out = subprocess.run([str(SCRIPT), "plugins", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    grey = [p for p in payload["plugins"] if p["name"] == "grey"][0]
    assert grey["kind"] == "colorizer" and grey["distribution"] == "colorvid"
    assert grey["version"] == colorvid.__version__
    assert set(grey) == {"name", "kind", "plugin", "distribution", "version", "description"}


def test_plugins_table_and_kind_filter(capsys, fresh_host):
    assert cli.main(["plugins", "--kind", "colorizer"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "DISTRIBUTION", "VERSION", "DESCRIPTION"]
    assert any(line.split()[:2] == ["grey", "colorizer"] for line in lines[1:])
    assert all(line.split()[1] == "colorizer" for line in lines[1:])


def test_version_and_bad_arguments(capsys):
    try:
        cli.main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.strip() == f"colorvid {colorvid.__version__}"
    out = subprocess.run([str(SCRIPT), "plugins", "--kind", "shader"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "invalid choice: 'shader'" in out.stderr
    out = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 2 and "required: COMMAND" in out.stderr
