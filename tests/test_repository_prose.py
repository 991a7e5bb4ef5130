"""The repository describes the product, not the story of its making, and its front pages stay
short.

- No tracked text file (code, comments, docs, tests, benches) and no tracked file name cites a
  numbered work period: the word "session" (or "sessions") followed by a number or a range of
  numbers. Figures say what they measure and which command reruns them, not when they were
  taken. The word alone stays legitimate (an ONNX Runtime or HTTP session, pytest's
  ``scope="session"``, a VapourSynth filter's session object).
- README.md is a landing page of at most 12 KB, the model card at most 10 KB; the details
  live in docs/.
- checkpoints/ (weights kept to continue a training run) stays under 20 MB.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()  # it spells the forms out

# "session 12", "Session 15", "sessions 11-13", "session-3", "(session 4)", "session12",
# "session #4", and "session" at the end of a line wrapped before its number (a comment's "# "
# or "// " in between); not "session", "sessions", "sessionId", "session's", "InferenceSession".
NUMBERED_PERIOD = re.compile(r"\bsessions?(?:[\s_-]|#|//)*\d", re.IGNORECASE)
BINARY_SUFFIXES = {".safetensors", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".mp4", ".mkv",
                   ".avi", ".npy", ".npz", ".pth", ".onnx", ".so", ".whl", ".sqlite"}

README_LIMIT = 12 * 1024
MODEL_CARD_LIMIT = 10 * 1024
CHECKPOINTS_LIMIT = 20 * 1024 * 1024


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [p for p in out.stdout.decode().split("\0") if p]


def read_text(path: str) -> str | None:
    """The file's text, or None for a binary file or one deleted from the working tree."""
    file = REPO / path
    if Path(path).suffix.lower() in BINARY_SUFFIXES or not file.is_file():
        return None
    data = file.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def numbered_periods(text: str) -> list[str]:
    """``line: text`` for every numbered work period in ``text``."""
    return [f"{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
            for m in NUMBERED_PERIOD.finditer(text)]


@pytest.mark.parametrize(("text", "hits"), [
    ("the model card, Session 15 (all figures)", 1),
    ("sessions 11-13 chose LRCN runs", 1),
    ("the session-3 figures; since session\n12", 2),
    ("# the presets that ship since session\n# 12; larsson", 1),
    ("session #4 and session\n    // 5", 2),
    ("training-state/zhang-small-session12.safetensors", 1),
    ("ort.InferenceSession(path); scope=\"session\"; msg['sessionId']", 0),
    ("the session it returns processes frames; this session's 2 cores", 0),
])
def test_the_pattern_finds_numbered_periods_only(text, hits):
    assert len(numbered_periods(text)) == hits


def test_no_numbered_work_periods_in_tracked_files():
    found = []
    for path in tracked_files():
        if NUMBERED_PERIOD.search(path):
            found.append(f"{path}: the file name")
        text = None if path == THIS else read_text(path)
        if text is not None:
            found += [f"{path}:{hit}" for hit in numbered_periods(text)]
    assert not found, ("say what a figure measures and how to rerun it, not when it was taken:\n"
                       + "\n".join(found))


@pytest.mark.parametrize(("path", "limit"), [("README.md", README_LIMIT),
                                             ("plugins/weights/MODEL_CARD.md", MODEL_CARD_LIMIT)])
def test_front_pages_stay_short(path, limit):
    size = (REPO / path).stat().st_size
    assert size <= limit, (f"{path} is {size} bytes, over {limit}: move details to a page in "
                           "docs/ and link it")


def test_checkpoints_stay_small():
    files = [REPO / p for p in tracked_files() if p.startswith("checkpoints/")]
    size = sum(f.stat().st_size for f in files if f.is_file())
    assert size <= CHECKPOINTS_LIMIT, (f"checkpoints/ holds {size / 2**20:.1f} MiB, over 20 MiB: "
                                       "keep only the weights a run will continue from")
