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


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_example_runs(index, fresh_host):
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
