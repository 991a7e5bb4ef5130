"""colorvid.core.vapoursynth: the Python side of the native VapourSynth filter ``core.colorvid.*``.

The native plugin (csrc/vapoursynth/plugin.cpp) imports ``colorvid.core.vapoursynth.filter`` by
name and calls its ``native_create``; the session it returns processes frames.

- ``filter``: option checking, the colorizer, the per-frame path and temporal windows;
- ``batch``: batching of concurrent frame requests, the per-frame feature cache;
- ``color``: VapourSynth planes <-> Lab (numpy, single-threaded per frame).
- ``stabilize``: ``stabilize(clip)``, the temporal chroma stabiliser as a filter of its own
  (a Python filter over ``std.ModifyFrame``) for any colorized clip.
- ``mlrt``: the per-frame networks as ONNX graphs for vs-mlrt (``colorvid export onnx``).

May import: the base modules of ``colorvid.core``, ``colorvid.kernels``, ``colorvid.core.video``,
the public API (``colorvid``) and this folder. Importing this package does not import VapourSynth.
"""
