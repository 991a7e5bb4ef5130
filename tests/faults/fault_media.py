"""Small real files for the fault tests, made with PyAV, numpy, OpenCV and Pillow (32x32, a few
frames, so each test runs in well under a second of decoding)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SIZE = 32


def gradient(i: int, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """A grey RGB frame that differs from frame to frame (no scene cut between neighbours)."""
    y, x = np.mgrid[0:h, 0:w]
    v = (x * 4 + y * 2 + i * 3) % 256
    return np.repeat(v[:, :, None], 3, axis=2).astype(np.uint8)


def make_video(path: Path, frames: int = 4, *, w: int = SIZE, h: int = SIZE, rate: int = 25,
               rotation: int | None = None, audio: str | None = None,
               pts: list[int] | None = None, time_base: Fraction | None = None) -> Path:
    """An H.264 clip; ``rotation``: a display matrix (degrees counter-clockwise); ``audio``: an
    audio encoder (pcm_s16le, aac, ...) for a second stream; ``pts``: explicit (VFR) timestamps
    in ``time_base``."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        if time_base is not None:
            v.time_base = time_base
            v.codec_context.time_base = time_base
        if rotation is not None:
            v.set_display_rotation(rotation)
        a = None
        if audio is not None:
            a = c.add_stream(audio, rate=8000)
            a.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(gradient(i, h, w), format="rgb24")
            if pts is not None:
                frame.pts = pts[i]
                frame.time_base = time_base
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        if a is not None:
            samples = 8000 * frames // rate
            fmt = a.codec_context.codec.audio_formats[0].name
            dtypes = {"s16": np.int16, "s32": np.int32, "u8": np.uint8, "flt": np.float32}
            data = np.zeros((1, samples), dtypes[fmt.rstrip("p")])
            af = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
            af.sample_rate = 8000
            af.pts = 0
            c.mux(a.encode(af))
            c.mux(a.encode(None))
    return path


def make_y4m(path: Path, frames: int = 3, *, w: int = SIZE, h: int = SIZE,
             cut: int = 0) -> Path:
    """A raw y4m stream (4:2:0); ``cut`` bytes removed from its end (a stream ending mid-frame)."""
    header = f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode()
    body = b""
    for i in range(frames):
        y = gradient(i, h, w)[:, :, 0].tobytes()
        body += b"FRAME\n" + y + bytes([128]) * (2 * (w // 2) * (h // 2))
    data = header + body
    path.write_bytes(data[:len(data) - cut] if cut else data)
    return path


def make_sequence(folder: Path, frames: int = 4, ext: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        cv2.imwrite(str(folder / f"{i:05d}{ext}"), gradient(i))
    return folder


def make_jpeg_with_orientation(path: Path, orientation: int, *, w: int = 48,
                               h: int = 32) -> Path:
    """A JPEG whose pixels are ``w`` x ``h`` and whose EXIF says to show them turned
    (orientation 6: 90 degrees clockwise, so it displays ``h`` x ``w``)."""
    from PIL import Image

    img = Image.fromarray(gradient(0, h, w))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, format="JPEG", exif=exif, quality=95)
    return path


def make_animated_webp(path: Path, frames: int = 3) -> Path:
    from PIL import Image

    images = [Image.fromarray(gradient(i * 20)) for i in range(frames)]
    images[0].save(path, format="WEBP", save_all=True, append_images=images[1:], duration=40,
                   lossless=True)
    return path
