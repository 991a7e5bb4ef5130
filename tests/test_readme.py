"""The README's Python examples run, and every hook has a documented section and a test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from colorvid.core.hookspecs import ColorvidSpec

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
HOOKS = sorted(n for n in vars(ColorvidSpec) if n.startswith("register_"))


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.fixture
def example_dir(tmp_path, monkeypatch, carphone_clip):
    """The examples' working folder, with the ``in.mp4`` they colorize: 10 real frames."""
    import av

    with av.open(str(carphone_clip)) as src, av.open(str(tmp_path / "in.mp4"), "w") as dst:
        out = dst.add_stream("libx264", rate=25)
        out.width, out.height, out.pix_fmt = 176, 144, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == 10:
                break
            frame.pts = None
            dst.mux(out.encode(frame))
        dst.mux(out.encode())
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index, fresh_host, example_dir):
    namespace: dict = {"__name__": f"readme_example_{index}"}
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), namespace)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_an_example_and_tested(hook):
    section = re.search(rf"### `{hook}`\n(.*?)(?=\n## |\n### |\Z)", README, flags=re.S)
    assert section, f"README has no '### `{hook}`' section"
    example = re.search(r"```python\n(.*?)```", section.group(1), flags=re.S)
    assert example and f"def {hook}(" in example.group(1), f"{hook}: no minimal example"
    tests = [p for p in (REPO / "tests").rglob("test_*.py") if p.name != "test_readme.py"]
    assert any(f"def {hook}(" in p.read_text() for p in tests), f"{hook}: no test implements it"


CONSOLE = re.findall(r"```console\n(.*?)```", README, flags=re.S)
COMMANDS = [line[2:].split("  #")[0].strip() for block in CONSOLE for line in block.splitlines()
            if line.startswith("$ colorvid ") and "|" not in line]


def test_readme_shows_every_cli_command():
    from colorvid.core.cli import COMMAND_MODULES

    shown = {cmd.split()[1] for cmd in COMMANDS}
    assert {m.rsplit(".", 1)[-1] for m in COMMAND_MODULES} <= shown | {"plugins", "weights"}


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_lines_parse(command):
    """Every ``$ colorvid ...`` line of the README is valid for the CLI as it is."""
    import shlex

    from colorvid.core.cli import build_parser

    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.func)
