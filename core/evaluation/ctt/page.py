"""The rating page served by ``colorvid ctt serve``: plain HTML and JavaScript, no external assets.

The page knows clips only by opaque ids; it asks for a rater name (kept in localStorage, or
``?rater=NAME`` in the URL), fetches ``/api/clips``, plays each clip and posts a 1-5 score to
``/api/ratings``. Already-rated clips are skipped, so a rater can reload and continue.
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Colorization Turing test</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font-family: sans-serif; max-width: 760px; margin: 2em auto; padding: 0 1em; }
 video { width: 100%; background: #000; }
 .scores button { font-size: 1.3em; width: 3em; margin: 0.3em; }
 #status { color: #555; } .hidden { display: none; } #error { color: #b00; }
</style></head>
<body>
<h1>How realistic are these colours?</h1>
<p>Each clip was coloured automatically or is an original. Score how <b>realistic</b> its colours
look: 1 = clearly fake, 5 = looks like a real colour video.</p>
<form id="who"><label>Your name or initials: <input id="rater" maxlength="64"
 pattern="[A-Za-z0-9_.-]+" required></label> <button>Start</button></form>
<div id="rate" class="hidden">
 <p id="status"></p>
 <video id="clip" autoplay loop muted playsinline controls></video>
 <div class="scores">
  <button class="score" data-score="1">1</button><button class="score" data-score="2">2</button>
  <button class="score" data-score="3">3</button><button class="score" data-score="4">4</button>
  <button class="score" data-score="5">5</button>
 </div>
</div>
<p id="done" class="hidden">All clips rated. Thank you!</p>
<p id="error"></p>
<script>
"use strict";
let rater = null, queue = [], total = 0, busy = false;
const $ = (id) => document.getElementById(id);
function show(id) {
  for (const x of ["who", "rate", "done"]) $(x).classList.toggle("hidden", x !== id);
}
async function start(name) {
  rater = name; localStorage.setItem("ctt-rater", name);
  const r = await fetch("/api/clips?rater=" + encodeURIComponent(name));
  const data = await r.json();
  if (!r.ok) { $("error").textContent = data.error; return; }
  total = data.clips.length;
  queue = data.clips.filter((c) => !c.rated);
  next();
}
function next() {
  if (queue.length === 0) { show("done"); $("clip").removeAttribute("src"); return; }
  show("rate");
  $("status").textContent = "Clip " + (total - queue.length + 1) + " of " + total;
  $("clip").src = queue[0].url;
  $("clip").dataset.clip = queue[0].id;
}
async function rate(score) {
  if (busy || queue.length === 0) return;
  busy = true;
  try {
    const r = await fetch("/api/ratings", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({rater: rater, clip: queue[0].id, score: score})});
    if (!r.ok) { $("error").textContent = (await r.json()).error; return; }
    $("error").textContent = ""; queue.shift(); next();
  } catch (e) { $("error").textContent = "could not save the score: " + e; }
  finally { busy = false; }
}
for (const b of document.querySelectorAll("button.score")) {
  b.addEventListener("click", () => rate(Number(b.dataset.score)));
}
$("who").addEventListener("submit", (e) => { e.preventDefault(); start($("rater").value); });
const given = new URLSearchParams(location.search).get("rater")
  || localStorage.getItem("ctt-rater");
if (given) { $("rater").value = given; start(given); }
</script>
</body></html>
"""
