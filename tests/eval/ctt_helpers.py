"""Shared by the CTT tests: a tiny real report (carphone, grey + a constant-tint model)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import torch

import colorvid
from colorvid.core.evaluation.runner import EvalConfig, evaluate
from colorvid.core.interfaces import Colorizer


class TintColorizer(Colorizer):
    """Constant warm tint: a second, clearly different model for the raters."""

    def predict_ab_lowres(self, L):
        ab = torch.zeros(L.shape[0], 2, *L.shape[-2:], dtype=L.dtype)
        ab[:, 0], ab[:, 1] = 12.0, 30.0
        return ab


class _Plugin:
    @colorvid.hookimpl
    def register_colorizers(self, register):
        register("tint", TintColorizer)


def make_report(clip: Path, out: Path) -> Path:
    """Run a real ``evaluate`` with the grey baseline and ``tint`` on 3 frames of ``clip``."""
    colorvid.reset_host()
    host = colorvid.get_host()
    host.add_plugin(_Plugin(), name="ctt-test-plugin")
    try:
        evaluate([clip], out, EvalConfig(models=["tint"], metrics=["rmse_ab"], frames=3,
                                            write_pictures=False),
                 progress=None)
    finally:
        host.unregister("ctt-test-plugin")
        colorvid.reset_host()
    return out


def request(url: str, data: bytes | None = None, content_type: str = "application/json",
            method: str | None = None) -> tuple[int, bytes, str]:
    """(status, body, content type) of one HTTP request, errors included."""
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def post_rating(base: str, payload: object) -> tuple[int, dict]:
    status, body, _ = request(base + "api/ratings", json.dumps(payload).encode())
    return status, json.loads(body)
