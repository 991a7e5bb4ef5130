"""The decoded training cache and the corpus dataset: MANIFEST checks, held-out exclusion,
reuse, area sampling, determinism, and exact flow of the synthetic pans."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from colorvid.core.training.data.cache import (
    PAN_STEP,
    PHOTO_SCALES,
    CorpusDataset,
    build_cache,
    degrade_l,
    parse_mix,
    read_manifest,
)
from colorvid.core.training.data.sources import MediaError, MediaWarning


def _photo(path: Path, w: int, h: int, seed: int) -> None:
    """A colourful, textured picture (random blobs of saturated colour on a gradient)."""
    g = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1),
                    np.full_like(x, 128)], -1).astype(np.uint8)
    for _ in range(12):
        cy, cx, r = g.integers(0, h), g.integers(0, w), g.integers(8, 40)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = g.integers(0, 256, 3)
    Image.fromarray(img).save(path)


def _video(path: Path, frames: int = 30, w: int = 96, h: int = 64) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for k in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = 200
            img[:, (k * 2) % w:, 1] = 180  # a moving edge
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "photos").mkdir(parents=True)
    (root / "video" / "train").mkdir(parents=True)
    (root / "video" / "heldout").mkdir(parents=True)
    _photo(root / "photos" / "big.png", 400, 300, 1)
    _photo(root / "photos" / "small.jpg", 120, 100, 2)
    Image.fromarray(np.full((90, 90, 3), 128, np.uint8)).save(root / "photos" / "grey.png")
    _video(root / "video" / "train" / "clip.mp4")
    _video(root / "video" / "heldout" / "secret.mp4")
    rows = ["file\tsha256\tkind\tlicence\tpackage"]
    kinds = {"photos/big.png": "photo", "photos/small.jpg": "photo", "photos/grey.png": "photo",
             "video/train/clip.mp4": "video-train", "video/heldout/secret.mp4": "video-heldout"}
    for rel, kind in kinds.items():
        rows.append(f"{rel}\t{_sha(root / rel)}\t{kind}\tCC0\ttestpkg")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_cache_decodes_each_source_once_and_never_reads_heldout(corpus, tmp_path):
    cache = build_cache([corpus], tmp_path / "cache")
    sources = sorted(Path(e.source).name for e in cache.entries)
    assert sources == ["big.png", "clip.mp4", "grey.png", "small.jpg"]
    big = next(e for e in cache.entries if e.source.endswith("big.png"))
    assert big.licence == "CC0" and big.package == "testpkg" and big.group == "photo"
    for scale in PHOTO_SCALES:  # every scale, shorter side exact
        arr = np.load(tmp_path / "cache" / big.files[str(scale)])
        assert arr.dtype == np.uint8 and min(arr.shape[:2]) == scale
    video = next(e for e in cache.entries if e.group == "video")
    segments = np.load(tmp_path / "cache" / video.files["256"], mmap_mode="r")
    assert segments.ndim == 5 and segments.shape[1] == 12 and segments.shape[2] == 256
    # a second build reuses the arrays (same files, not rewritten)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npy")}
    again = build_cache([corpus], tmp_path / "cache")
    assert len(again.entries) == 4
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npy")} == stamps
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert len(index["entries"]) == 4


def test_manifest_mismatch_is_an_error_naming_the_file(corpus, tmp_path):
    _photo(corpus / "photos" / "big.png", 400, 300, 99)  # content changed, manifest not
    with pytest.raises(MediaError, match=r"big\.png: sha256 .* does not match the MANIFEST"):
        build_cache([corpus], tmp_path / "cache")


def test_folder_without_manifest_skips_heldout_and_reports_unreadable(corpus, tmp_path):
    (corpus / "MANIFEST.tsv").unlink()
    (corpus / "photos" / "broken.jpg").write_bytes(b"not a jpeg")
    assert read_manifest(corpus) is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = build_cache([corpus], tmp_path / "cache")
    names = sorted(Path(e.source).name for e in cache.entries)
    assert "secret.mp4" not in names and "broken.jpg" not in names
    assert any("broken.jpg" in s for s in cache.skipped)
    assert any(issubclass(w.category, MediaWarning) for w in caught)


def test_dataset_is_deterministic_drops_grey_and_samples_by_area(corpus, tmp_path):
    cache = build_cache([corpus], tmp_path / "cache")
    data = CorpusDataset(cache, crop=64, samples=400, seed=3, holdout=0,
                         mix={"photo": 1.0, "video": 0.0, "animation": 0.0})
    assert any("grey.png" in s and "nearly grey" in s for s in data.skipped)
    a, b = data[5], data[5]
    assert torch.equal(a["L"], b["L"]) and torch.equal(a["ab"], b["ab"])
    data.set_epoch(1)
    assert not torch.equal(data[5]["L"], a["L"])  # new crops each epoch
    assert a["L"].shape == (1, 1, 64, 64) and a["ab"].shape == (1, 2, 64, 64)
    big = next(i for i, e in enumerate(cache.entries) if e.source.endswith("big.png"))
    picks = [int(data[i]["source"]) for i in range(400)]
    share = picks.count(big) / len(picks)
    expected = 0.12 / (0.12 + 0.012)  # 400x300 against 120x100 pixels
    assert abs(share - expected) < 0.06, share


def test_photo_pans_have_exact_whole_cell_flow(corpus, tmp_path):
    cache = build_cache([corpus], tmp_path / "cache")
    data = CorpusDataset(cache, crop=64, seq_len=6, samples=64, seed=0, holdout=0,
                         mix={"photo": 1.0})
    moving = 0
    for i in range(64):
        item = data[i]
        dy, dx = (int(v) for v in item["shift"])
        assert dy % PAN_STEP == 0 and dx % PAN_STEP == 0
        if (dy, dx) == (0, 0):
            continue
        moving += 1
        ab = item["ab"]
        # frame t at (y, x) shows frame t-1 at (y + dy, x + dx)
        cur = ab[1:, :, max(0, -dy): 64 - max(0, dy), max(0, -dx): 64 - max(0, dx)]
        prev = ab[:-1, :, max(0, dy): 64 - max(0, -dy), max(0, dx): 64 - max(0, -dx)]
        torch.testing.assert_close(cur, prev)
    assert moving > 32


def test_video_sequences_have_unknown_flow(corpus, tmp_path):
    cache = build_cache([corpus], tmp_path / "cache")
    data = CorpusDataset(cache, crop=64, seq_len=6, samples=8, seed=0,
                         mix={"photo": 0.0, "video": 1.0})
    item = data[0]
    assert item["L"].shape == (6, 1, 64, 64)
    assert torch.isnan(item["shift"]).all()


def test_dataset_rejects_bad_sizes(corpus, tmp_path):
    cache = build_cache([corpus], tmp_path / "cache")
    with pytest.raises(ValueError, match="crop must be between 8 and 224"):
        CorpusDataset(cache, crop=300)
    with pytest.raises(ValueError, match="seq_len must be between 1 and 12"):
        CorpusDataset(cache, seq_len=20)


def _sharpness(L: torch.Tensor) -> float:
    """Mean absolute difference of horizontally neighbouring pixels."""
    return float((L[..., 1:] - L[..., :-1]).abs().mean())


def test_degrade_softens_and_grains_reproducibly():
    g = np.random.default_rng(0)
    # a sharp pattern: 8-px stripes, L 20 / 80, three frames
    x = torch.arange(64)
    L = torch.where((x // 8) % 2 == 0, 20.0, 80.0).expand(3, 1, 64, 64).clone()
    out = degrade_l(L, np.random.default_rng(11))
    again = degrade_l(L, np.random.default_rng(11))
    assert torch.equal(out, again)  # same draws, same result
    assert out.shape == L.shape and out.min() >= 0 and out.max() <= 100
    # mean brightness kept (neither the softening nor zero-mean grain moves it much)
    assert abs(float(out.mean() - L.mean())) < 1.0
    # across many draws: the edges are softer on average and grain differs frame to frame
    softer, grainy = 0, 0
    for _ in range(20):
        d = degrade_l(L, g)
        # blur lowers the stripe contrast: compare the stripe means, which grain cannot move
        stripes = d.reshape(3, 1, 64, 8, 8).mean(dim=(2, 4))[..., 1:-1]
        contrast = float((stripes[..., 1::2] - stripes[..., ::2]).abs().mean())
        softer += contrast < 59.5
        grainy += not torch.equal(d[0], d[1])
    assert softer >= 15 and grainy >= 15
    with pytest.raises(ValueError, match=r"\(T, 1, H, W\)"):
        degrade_l(torch.zeros(1, 64, 64), g)


def test_dataset_degrades_only_the_asked_share_of_training_items(corpus, tmp_path):
    cache = build_cache([corpus], tmp_path / "cache")
    common = dict(crop=64, samples=64, seed=3, holdout=0, mix={"photo": 1.0})
    clean = CorpusDataset(cache, **common)
    half = CorpusDataset(cache, degrade=0.5, **common)
    every = CorpusDataset(cache, degrade=1.0, **common)
    changed_half = changed_all = 0
    for i in range(64):
        a, b, c = clean[i], half[i], every[i]
        # the same crop and the same clean colours: only L is degraded
        assert torch.equal(a["ab"], b["ab"]) and torch.equal(a["ab"], c["ab"])
        assert int(a["source"]) == int(c["source"])
        changed_half += not torch.equal(a["L"], b["L"])
        changed_all += not torch.equal(a["L"], c["L"])
        assert _sharpness(c["L"]) > 0
    assert changed_all == 64 and 16 <= changed_half <= 48
    assert torch.equal(half[7]["L"], half[7]["L"])  # deterministic
    # validation items are never degraded
    val = CorpusDataset(cache, crop=64, seed=3, holdout=1, validation=True, degrade=1.0,
                        mix={"photo": 1.0})
    ref = CorpusDataset(cache, crop=64, seed=3, holdout=1, validation=True, mix={"photo": 1.0})
    assert len(val) and torch.equal(val[0]["L"], ref[0]["L"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        CorpusDataset(cache, degrade=1.5)


def test_parse_mix_reads_group_shares_and_refuses_what_it_cannot_use():
    assert parse_mix(None) is None
    assert parse_mix("photo=0.5, video=0.4,animation=0.1") == {
        "photo": 0.5, "video": 0.4, "animation": 0.1}
    assert parse_mix({"video": 1}) == {"video": 1.0}
    for bad, why in (("photos=1", "unknown group 'photos'"), ("photo", "not GROUP=SHARE"),
                     ("photo=lots", "not a number"), ("photo=-1", "must be a number >= 0"),
                     ("photo=0,video=0", "no group has a share above 0"),
                     ("photo=1,photo=2", "given twice"), ("photo=nan", "must be a number >= 0")):
        with pytest.raises(ValueError, match=why) as info:
            parse_mix(bad)
        assert "accepted: GROUP=SHARE" in str(info.value)


def test_dataset_draws_each_group_by_its_mix_share(corpus, tmp_path):
    cache = build_cache([corpus], tmp_path / "cache")
    video = next(i for i, e in enumerate(cache.entries) if e.group == "video")

    def video_share(mix):
        data = CorpusDataset(cache, crop=32, samples=300, seed=5, holdout=0, mix=mix)
        return [int(data[i]["source"]) for i in range(300)].count(video) / 300

    assert abs(video_share("photo=0.5,video=0.5") - 0.5) < 0.08
    assert abs(video_share({"photo": 0.8, "video": 0.2}) - 0.2) < 0.07
    assert video_share("video=1") == 1.0
    assert abs(video_share(None) - 0.15 / 0.95) < 0.07  # the default, no animation here
    with pytest.raises(MediaError, match="no usable source"):
        CorpusDataset(cache, crop=32, holdout=0, mix="animation=1")  # a group this cache lacks
