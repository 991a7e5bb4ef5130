"""The layout of the package holds: imports go only the ways the layer table allows, every
folder has a place in it and says so, and nothing runs when a module is imported.

Every module of the source tree (``core/``, ``plugins/``, ``kernels/``, ``package/``) is parsed
with ``ast``, so an import inside a function or under ``TYPE_CHECKING`` counts like any other.
Plugins that the host loads by name (``importlib``) are not imports and are not checked.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Which layer may import which: the one table (docs/layout.md, "How the code is laid out", shows
# the same; test_layout_doc_table_matches keeps the two equal), lowest layers first.
#   core         the modules directly in core/ (colour maths, bins, host, interfaces, ...)
#   video ...    the sub-packages core/<layer>/
#   colorvid     the root package's public API (package/__init__.py: re-exports of core, video)
#   __main__     python -m colorvid (package/__main__.py)
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": ("core", "kernels"),
    "kernels": ("kernels", "core"),
    "video": ("video", "core", "kernels"),
    "reference": ("reference", "video", "core", "kernels"),
    "colorvid": ("colorvid", "video", "core", "kernels"),
    "plugins": ("plugins", "colorvid", "core", "kernels"),
    "vapoursynth": ("vapoursynth", "reference", "colorvid", "video", "core", "kernels"),
    "evaluation": ("evaluation", "plugins", "colorvid", "video", "core", "kernels"),
    "training": ("training", "evaluation", "plugins", "colorvid", "video", "core", "kernels"),
    "cli": ("cli", "training", "evaluation", "vapoursynth", "reference", "plugins", "colorvid",
            "video", "core", "kernels"),
    "__main__": ("__main__", "cli"),
}
SUBPACKAGES = ("video", "reference", "vapoursynth", "evaluation", "training", "cli")  # core/<name>/
SOURCE_ROOTS = {"core": "colorvid.core", "plugins": "colorvid.plugins",
                "kernels": "colorvid.kernels", "package": "colorvid"}


def module_name(path: Path) -> str:
    """``core/video/pipeline.py`` -> ``colorvid.core.video.pipeline`` (``__init__`` dropped)."""
    rel = path.relative_to(REPO)
    parts = [SOURCE_ROOTS[rel.parts[0]], *rel.parts[1:-1]]
    if rel.stem != "__init__":
        parts.append(rel.stem)
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """The layer of a dotted colorvid module (or of a name inside one); None outside colorvid."""
    parts = module.split(".")
    if parts[0] != "colorvid":
        return None
    if parts[1:2] == ["__main__"]:
        return "__main__"
    if len(parts) == 1 or parts[1] not in ("core", "plugins", "kernels"):
        return "colorvid"  # the root package's API: colorvid, colorvid.hookimpl, ...
    if parts[1] == "core" and len(parts) > 2 and parts[2] in SUBPACKAGES:
        return parts[2]
    return parts[1]


def source_files() -> list[Path]:
    return sorted(p for root in SOURCE_ROOTS for p in (REPO / root).rglob("*.py")
                  if "__pycache__" not in p.parts)


def imported_modules(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, dotted target) of every import in the file; ``from a import b`` gives ``a.b``."""
    tree = ast.parse(path.read_text() if text is None else text, filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def test_every_module_has_a_layer():
    files = source_files()
    assert len(files) > 50, "the source tree was not found"
    for path in files:
        assert layer_of(module_name(path)) in ALLOWED, path


def test_every_core_folder_is_a_layer_or_inside_one():
    """A new folder under core/ must be placed in the table, not silently join the base."""
    folders = {p.name for p in (REPO / "core").iterdir()
               if p.is_dir() and p.name != "__pycache__" and any(p.rglob("*.py"))}
    assert folders == set(SUBPACKAGES), "add the folder to SUBPACKAGES, ALLOWED, docs/layout.md"


def test_imports_follow_the_layer_table():
    wrong = []
    for path in source_files():
        layer = layer_of(module_name(path))
        for line, target in imported_modules(path):
            to = layer_of(target)
            if to is not None and to not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {layer} imports {target} ({to})")
    assert not wrong, "imports against the layer table:\n" + "\n".join(wrong)


@pytest.mark.parametrize("source, target, ok", [
    ("core/video/pipeline.py", "colorvid.core.training.trainer.train", False),
    ("core/training/trainer.py", "colorvid.core.cli.CLIError", False),
    ("core/host.py", "colorvid.core.video.decode", False),
    ("plugins/grey.py", "colorvid.core.evaluation.runner", False),
    ("core/cli/train.py", "colorvid.core.training.trainer.train", True),
    ("core/frames.py", "colorvid.kernels.lab_to_rgb8", True),
    ("plugins/grey.py", "colorvid.hookimpl", True),
    ("package/__init__.py", "colorvid.core.cli.main", False),
    ("package/__main__.py", "colorvid.core.cli.main", True),
    ("core/video/pipeline.py", "colorvid.open_colorizer", False),
    ("core/training/defaults.py", "colorvid.create_colorizer", True),
])
def test_the_check_tells_directions_apart(source, target, ok):
    layer = layer_of(module_name(REPO / source))
    assert (layer_of(target) in ALLOWED[layer]) is ok


def test_relative_imports_are_resolved():
    text = "from . import decode\nfrom ..training import trainer\nfrom .. import bins\n"
    found = imported_modules(REPO / "core" / "video" / "fake.py", text)
    assert [t for _, t in found] == [
        "colorvid.core.video.decode", "colorvid.core.training.trainer", "colorvid.core.bins"]
    found = imported_modules(REPO / "core" / "video" / "__init__.py", "from .decode import probe")
    assert [t for _, t in found] == ["colorvid.core.video.decode.probe"]


@pytest.mark.parametrize("folder", ["core", *(f"core/{s}" for s in SUBPACKAGES)])
def test_each_folder_says_what_it_holds_and_may_import(folder):
    doc = ast.get_docstring(ast.parse((REPO / folder / "__init__.py").read_text()))
    assert doc and re.search(r"may import", doc, flags=re.I), f"{folder}/__init__.py"


def test_layout_doc_table_matches():
    layout = (REPO / "docs" / "layout.md").read_text()
    section = layout.split("# How the code is laid out", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ((?:`\w+`(?:, )?)+) \|$", section, flags=re.M)
    table = {layer: tuple(re.findall(r"`(\w+)`", targets)) for layer, targets in rows}
    assert table == ALLOWED


def test_importing_any_module_runs_nothing():
    """Import every module (colorvid.__main__ too) with an argv that the CLI would act on."""
    names = [module_name(p) for p in source_files() if p.parent.name != "package"]
    names.append("colorvid.__main__")
    code = (
        "import importlib, sys\n"
        "sys.argv = ['probe', '--version']\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except SystemExit as e:\n"
        "        sys.stderr.write(f'{name} exited on import ({e.code})'); sys.exit(3)\n"
        f"print('imported', {len(names)})\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO / "tests")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == f"imported {len(names)}\n", out.stdout[-2000:]
