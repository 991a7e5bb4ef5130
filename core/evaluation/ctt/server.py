"""The HTTP server of the colorization Turing test (standard library only).

Routes:
    GET  /                     the rating page
    GET  /api/clips?rater=R    ``{"clips": [{"id", "url", "rated"}]}`` in R's own random order
    GET  /media/<id>           the clip (WebM); ids are opaque, model names never reach the page
    POST /api/ratings          ``{"rater": R, "clip": id, "score": 1..5}`` -> 201 ``{"ok": true}``

Malformed submissions get 400 (413 when oversized) with ``{"error": "..."}`` naming the field.
"""

from __future__ import annotations

import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from colorvid.core.evaluation.ctt.page import PAGE
from colorvid.core.evaluation.ctt.store import Clip, RatingError, RatingStore, load_clips

__all__ = ["CttServer", "MAX_BODY", "RATER_RE", "make_server", "serve_in_thread"]

RATER_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_BODY = 4096  # a rating is ~100 bytes; anything larger is not a rating


class CttServer(ThreadingHTTPServer):
    """A threading HTTP server holding the clip catalogue and the rating store."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], clips: list[Clip], store: RatingStore,
                 seed: int = 0) -> None:
        super().__init__(address, _Handler)
        self.store, self.seed = store, seed
        self.clips = {store.clip_id(c.video, c.model): c for c in clips}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def order_for(self, rater: str) -> list[str]:
        """Clip ids in this rater's order: random, but stable across reloads and restarts."""
        ids = sorted(self.clips)
        random.Random(f"{self.seed}:{rater}").shuffle(ids)
        return ids


def make_server(report_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8765,
                db: str | Path | None = None, seed: int = 0,
                include_original: bool = True) -> CttServer:
    """A server for the clips of ``report_dir`` (``port=0`` picks a free port).

    >>> server = make_server("report", port=0)  # doctest: +SKIP
    >>> threading.Thread(target=server.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    clips = load_clips(report_dir, include_original=include_original)
    store = RatingStore(db if db is not None else Path(report_dir) / "ctt.sqlite")
    return CttServer((host, port), clips, store, seed=seed)


class _Handler(BaseHTTPRequestHandler):
    server: CttServer
    server_version = "colorvid-ctt"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: the CLI prints one line at start; per-request logs would bury it

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        url = urlparse(self.path)
        if url.path in ("/", "/index.html"):
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif url.path == "/api/clips":
            rater = parse_qs(url.query).get("rater", [""])[0]
            if not RATER_RE.match(rater):
                return self._error(400, "rater: 1-64 characters of letters, digits, '_', '.', '-'")
            done = self.server.store.rated_by(rater)
            clips = [{"id": cid, "url": f"/media/{cid}",
                      "rated": (self.server.clips[cid].video, self.server.clips[cid].model) in done}
                     for cid in self.server.order_for(rater)]
            self._json(200, {"clips": clips})
        elif url.path.startswith("/media/"):
            clip = self.server.clips.get(url.path[len("/media/"):])
            if clip is None:
                return self._error(404, "no such clip")
            self._send(200, clip.path.read_bytes(), "video/webm")
        else:
            self._error(404, f"no route {url.path}")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/api/ratings":
            return self._error(404, f"no route {self.path}")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._error(411, "a Content-Length header is required")
        if length > MAX_BODY or length < 0:
            return self._error(413, f"body larger than {MAX_BODY} bytes")
        body = self.rfile.read(length)
        if "application/json" not in self.headers.get("Content-Type", ""):
            return self._error(400, "Content-Type must be application/json")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._error(400, "body must be a JSON object")
        if not isinstance(data, dict) or set(data) != {"rater", "clip", "score"}:
            return self._error(400, "body must be a JSON object with exactly the keys "
                                    "rater, clip and score")
        rater, clip_id, score = data["rater"], data["clip"], data["score"]
        if not isinstance(rater, str) or not RATER_RE.match(rater):
            return self._error(400, "rater: 1-64 characters of letters, digits, '_', '.', '-'")
        clip = self.server.clips.get(clip_id) if isinstance(clip_id, str) else None
        if clip is None:
            return self._error(400, "clip: unknown clip id (ids come from /api/clips)")
        try:
            self.server.store.add(rater, clip.video, clip.model, score)
        except RatingError as e:
            return self._error(400, str(e))
        self._json(201, {"ok": True})


def serve_in_thread(server: CttServer) -> threading.Thread:
    """Run ``server`` on a daemon thread (tests, notebooks); stop with ``server.shutdown()``."""
    t = threading.Thread(target=server.serve_forever, daemon=True, name="colorvid-ctt")
    t.start()
    return t
