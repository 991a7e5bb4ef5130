"""The colorization Turing test: SQLite store, statistics, HTTP API and CLI (real server)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from ctt_helpers import make_report, post_rating, request
from scipy import stats

from colorvid.core.cli import main
from colorvid.core.evaluation.ctt import (
    RatingStore,
    make_server,
    serve_in_thread,
    summarize,
    t_quantile,
)


@pytest.fixture(scope="module")
def report(carphone_clip, tmp_path_factory):
    return make_report(carphone_clip, tmp_path_factory.mktemp("ctt") / "report")


@pytest.fixture
def server(report, tmp_path):
    srv = make_server(report, port=0, db=tmp_path / "ratings.sqlite")
    serve_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def clips_for(base: str, rater: str) -> list[dict]:
    status, body, _ = request(f"{base}api/clips?rater={rater}")
    assert status == 200
    return json.loads(body)["clips"]


def test_page_and_clip_list_are_blind(server):
    status, page, ctype = request(server.url)
    assert status == 200 and ctype.startswith("text/html")
    assert b"/api/ratings" in page
    status, body, _ = request(server.url + "api/clips?rater=alice")
    listing = json.loads(body)["clips"]
    assert len(listing) == 3  # original, grey, tint
    text = body.decode()
    for name in ("tint", "grey", "original", "carphone"):
        assert name not in text  # nothing in what the page sees names the model or video
    assert clips_for(server.url, "alice") == listing  # stable across reloads
    orders = {tuple(c["id"] for c in clips_for(server.url, f"r{i}")) for i in range(12)}
    assert len(orders) > 1  # each rater gets a random order
    status, data, ctype = request(server.url + listing[0]["url"].lstrip("/"))
    assert status == 200 and ctype == "video/webm" and data[:4] == b"\x1a\x45\xdf\xa3"  # EBML
    assert request(server.url + "media/0123abcd")[0] == 404


def test_ratings_are_stored_replaced_and_marked(server):
    listing = clips_for(server.url, "bob")
    assert post_rating(server.url, {"rater": "bob", "clip": listing[0]["id"], "score": 2}) == (
        201, {"ok": True})
    assert post_rating(server.url, {"rater": "bob", "clip": listing[0]["id"], "score": 5})[0] == 201
    rows = server.store.ratings()
    assert len(rows) == 1 and rows[0][0] == "bob" and rows[0][3] == 5
    assert [c["rated"] for c in clips_for(server.url, "bob")] == [True, False, False]


@pytest.mark.parametrize("payload, message", [
    ({"rater": "eve", "score": 3}, "exactly the keys rater, clip and score"),
    ({"rater": "eve", "clip": "CLIP", "score": 3, "model": "tint"}, "exactly the keys"),
    ({"rater": "eve", "clip": "CLIP", "score": 0}, "score must be an integer from 1 to 5"),
    ({"rater": "eve", "clip": "CLIP", "score": 6}, "score must be an integer from 1 to 5"),
    ({"rater": "eve", "clip": "CLIP", "score": 3.5}, "score must be an integer from 1 to 5"),
    ({"rater": "eve", "clip": "CLIP", "score": "4"}, "score must be an integer from 1 to 5"),
    ({"rater": "eve", "clip": "CLIP", "score": True}, "score must be an integer from 1 to 5"),
    ({"rater": "eve", "clip": "nope", "score": 3}, "clip: unknown clip id"),
    ({"rater": "", "clip": "CLIP", "score": 3}, "rater: 1-64 characters"),
    ({"rater": "a b<script>", "clip": "CLIP", "score": 3}, "rater: 1-64 characters"),
    ([1, 2, 3], "body must be a JSON object"),
])
def test_malformed_submissions_are_rejected(server, payload, message):
    clip = clips_for(server.url, "eve")[0]["id"]
    if isinstance(payload, dict) and payload.get("clip") == "CLIP":
        payload = {**payload, "clip": clip}
    status, body = post_rating(server.url, payload)
    assert status == 400 and message in body["error"]
    assert server.store.ratings() == []


def test_non_json_and_oversized_bodies_are_rejected(server):
    status, body, _ = request(server.url + "api/ratings", b"score=5")
    assert status == 400 and b"body must be a JSON object" in body
    status, body, _ = request(server.url + "api/ratings", b"{}", content_type="text/plain")
    assert status == 400 and b"Content-Type must be application/json" in body
    status, body, _ = request(server.url + "api/ratings", b"{" + b" " * 10000 + b"}")
    assert status == 413
    assert server.store.ratings() == []


def test_store_survives_restart_without_losing_ratings(report, tmp_path):
    db = tmp_path / "ratings.sqlite"
    srv = make_server(report, port=0, db=db)
    serve_in_thread(srv)
    raters = [f"rater{i}" for i in range(8)]
    listing = {r: clips_for(srv.url, r) for r in raters}
    results = []

    def rate(rater):  # concurrent submissions from 8 raters, 3 clips each
        for k, clip in enumerate(listing[rater]):
            results.append(post_rating(srv.url, {"rater": rater, "clip": clip["id"],
                                                 "score": 1 + (k + len(rater)) % 5})[0])

    threads = [threading.Thread(target=rate, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    srv.shutdown()
    srv.server_close()
    assert results == [201] * 24
    again = make_server(report, port=0, db=db)  # a new process would read the same file
    serve_in_thread(again)
    try:
        assert len(again.store.ratings()) == 24
        assert sorted(again.clips) == sorted(srv.clips)  # ids survive the restart
        assert all(c["rated"] for c in clips_for(again.url, "rater3"))
    finally:
        again.shutdown()
        again.server_close()


def test_t_quantile_and_summary_match_scipy():
    for df in (1, 2, 4, 9, 29, 120):
        assert t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)
    assert t_quantile(0.95, 5) == pytest.approx(stats.t.ppf(0.95, 5), rel=1e-9)
    rows = [("a", "v", "zhang", 4), ("b", "v", "zhang", 5), ("c", "v", "zhang", 3),
            ("a", "v", "grey", 2)]
    zhang, grey = summarize(rows)
    assert (zhang.model, zhang.ratings, zhang.raters, zhang.mean) == ("zhang", 3, 3, 4.0)
    low, high = stats.t.interval(0.95, 2, loc=4.0, scale=stats.sem([4, 5, 3]))
    assert (zhang.ci_low, zhang.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert grey.ci_low is None and grey.mean == 2.0
    with pytest.raises(ValueError, match="t_quantile: need 0.5 < p < 1"):
        t_quantile(0.2, 3)


def test_cli_ctt_results(report, tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    store = RatingStore(db)
    for rater, score in (("a", 4), ("b", 5), ("c", 4)):
        store.add(rater, "carphone_pristine", "tint", score)
    store.add("a", "carphone_pristine", "grey", 1)
    assert main(["ctt", "results", str(report), "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["model", "ratings", "raters", "mean", "95%", "CI"]
    assert out[1].split()[:4] == ["tint", "3", "3", "4.33"] and out[2].split()[-1] == "n/a"
    assert main(["ctt", "results", str(report), "--db", str(db), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["models"][0]["model"] == "tint" and payload["models"][0]["ratings"] == 3
    assert main(["ctt", "results", str(tmp_path)]) == 2
    assert "no ratings database" in capsys.readouterr().err
    assert main(["ctt", "serve", str(tmp_path), "--port", "0"]) == 2
    assert "results.json not found" in capsys.readouterr().err


def test_cli_ctt_serve_binds_localhost(report, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "colorvid", "ctt", "serve", str(report), "--port", "0",
         "--db", str(tmp_path / "s.sqlite")],
        stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        line = proc.stderr.readline()
        assert "3 clips; rate at http://127.0.0.1:" in line
        url = line.split("rate at ")[1].split()[0]
        assert request(url)[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_load_clips_lists_the_report_clips(report, tmp_path):
    from colorvid.core.evaluation.ctt import load_clips

    clips = load_clips(report)
    assert sorted(c.model for c in clips) == ["grey", "original", "tint"]
    assert all(c.path.is_file() and c.path.suffix == ".webm" for c in clips)
    assert sorted(c.model for c in load_clips(report, include_original=False)) == ["grey", "tint"]
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_clips(tmp_path)
    (tmp_path / "results.json").write_text('{"clips": [{"video": "v", "model": "m", '
                                           '"path": "../../etc/passwd"}]}')
    with pytest.raises(ValueError, match="lists no clips"):
        load_clips(tmp_path)  # paths outside the report are never served
