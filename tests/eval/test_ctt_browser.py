"""The CTT rating page end to end in a real headless browser (Debian's chromium).

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: commands
on fd 3, replies on fd 4, each a JSON message ending in NUL), so no driver package is needed.
Skipped with a reason when chromium is not installed (``apt-get install chromium``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from ctt_helpers import make_report

from colorvid.core.evaluation.ctt import make_server, serve_in_thread

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")


class Browser:
    """Minimal DevTools-protocol client over chromium's debugging pipe."""

    def __init__(self, profile: str) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4. subprocess closes every
        # other descriptor after preexec_fn, so bash moves the pipe ends onto 3 and 4 right
        # before exec'ing the browser.
        r, w = to_child_r, from_child_w
        script = f'exec "$0" "$@" 3<&{r} 4>&{w} {r}<&- {w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "--no-first-run",
             "--autoplay-policy=no-user-gesture-required", "about:blank"],
            pass_fds=(to_child_r, from_child_w),
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("CTT_BROWSER_DEBUG") else subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:  # skip events until our reply arrives
            while b"\0" not in self._buf:
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the debugging pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def wait_for(page, expression: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = page(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.1)


@pytest.mark.slow  # ~10 s: a cold chromium start on a shared CPU
def test_rating_page_in_headless_chromium(carphone_clip, tmp_path):
    report = make_report(carphone_clip, tmp_path / "report")
    server = make_server(report, port=0, db=tmp_path / "ratings.sqlite")
    serve_in_thread(server)
    browser = Browser(str(tmp_path / "profile"))
    try:
        target = browser.send("Target.createTarget", {"url": server.url + "?rater=robot"})
        session = browser.send("Target.attachToTarget",
                               {"targetId": target["targetId"], "flatten": True})["sessionId"]

        def page(expression: str):
            result = browser.send("Runtime.evaluate", {"expression": expression,
                                                       "returnByValue": True}, session)
            return result["result"].get("value")

        assert wait_for(page, "document.getElementById('status').textContent") == "Clip 1 of 3"
        # The served WebM really decodes in the browser.
        assert wait_for(page, "document.getElementById('clip').videoWidth") == 176
        html = page("document.documentElement.outerHTML")
        assert "tint" not in html and "grey" not in html  # blind
        for k, score in enumerate((5, 3, 4)):
            wait_for(page, f"document.getElementById('status').textContent == 'Clip {k + 1} of 3'"
                           " || null")
            page(f"document.querySelector('button[data-score=\"{score}\"]').click()")
        wait_for(page, "!document.getElementById('done').classList.contains('hidden') || null")
        rows = server.store.ratings()
        assert sorted(r[3] for r in rows) == [3, 4, 5]
        assert {r[0] for r in rows} == {"robot"}
        assert {r[2] for r in rows} == {"original", "grey", "tint"}
        # A reload resumes: everything is rated, so the page goes straight to "done".
        browser.send("Page.reload", {}, session)
        time.sleep(0.5)
        wait_for(page, "!document.getElementById('done').classList.contains('hidden') || null")
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
