"""The README's and docs/'s examples run, and every hook has a documented section and a test.

Every ```python block of README.md and docs/*.md runs (in a folder holding a 3-frame
``in.mp4``); every ``$ colorvid ...`` line of their ```console blocks parses; plain ``` blocks
are fragments that are not run (a vs-mlrt call, a shell pipe).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from colorvid.core.hookspecs import ColorvidSpec

REPO = Path(__file__).resolve().parents[1]
PAGES = {p.relative_to(REPO).as_posix(): p.read_text()
         for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
BLOCKS = [(page, i, block) for page, text in PAGES.items()
          for i, block in enumerate(re.findall(r"```python\n(.*?)```", text, flags=re.S))]
HOOKS = sorted(n for n in vars(ColorvidSpec) if n.startswith("register_"))
PLUGIN_GUIDE = PAGES["docs/plugins.md"]


def test_readme_and_docs_have_python_examples():
    assert sum(page == "README.md" for page, _, _ in BLOCKS) >= 3
    assert len(BLOCKS) >= 10


def test_readme_links_resolve():
    """Every relative link of the README and docs/ points at a file that exists."""
    for page, text in PAGES.items():
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert ((REPO / page).parent / target).exists(), f"{page}: broken link {target}"


@pytest.fixture
def example_dir(tmp_path, monkeypatch, carphone_clip):
    """The examples' working folder, with the ``in.mp4`` they colorize: 3 real frames (the
    shipped LRCN colorizes about 1.5 frames/s on 2 busy cores, so the README example stays
    quick)."""
    import av

    with av.open(str(carphone_clip)) as src, av.open(str(tmp_path / "in.mp4"), "w") as dst:
        out = dst.add_stream("libx264", rate=25)
        out.width, out.height, out.pix_fmt = 176, 144, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == 3:
                break
            frame.pts = None
            dst.mux(out.encode(frame))
        dst.mux(out.encode())
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("page", "index", "block"), BLOCKS,
                         ids=[f"{page}[{i}]" for page, i, _ in BLOCKS])
def test_python_example_runs(page, index, block, fresh_host, example_dir):
    namespace: dict = {"__name__": f"example_{index}"}
    exec(compile(block, f"{page}[python block {index}]", "exec"), namespace)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_an_example_and_tested(hook):
    section = re.search(rf"### `{hook}`\n(.*?)(?=\n## |\n### |\Z)", PLUGIN_GUIDE, flags=re.S)
    assert section, f"docs/plugins.md has no '### `{hook}`' section"
    example = re.search(r"```python\n(.*?)```", section.group(1), flags=re.S)
    assert example and f"def {hook}(" in example.group(1), f"{hook}: no minimal example"
    tests = [p for p in (REPO / "tests").rglob("test_*.py") if p.name != "test_readme.py"]
    assert any(f"def {hook}(" in p.read_text() for p in tests), f"{hook}: no test implements it"


CONSOLE = [block for text in PAGES.values()
           for block in re.findall(r"```console\n(.*?)```", text, flags=re.S)]
COMMANDS = [line[2:].split("  #")[0].strip() for block in CONSOLE for line in block.splitlines()
            if line.startswith("$ colorvid ") and "|" not in line]


def test_docs_show_every_cli_command():
    from colorvid.core.cli import COMMAND_MODULES

    shown = {cmd.split()[1] for cmd in COMMANDS}
    assert {m.rsplit(".", 1)[-1] for m in COMMAND_MODULES} <= shown


@pytest.mark.parametrize("command", COMMANDS)
def test_command_lines_parse(command):
    """Every ``$ colorvid ...`` line of the README and docs/ is valid for the CLI as it is."""
    import shlex

    from colorvid.core.cli import build_parser

    args = build_parser().parse_args(shlex.split(command)[1:])
    assert callable(args.func)
