"""colorvid.core.video: the video engine, what ``colorvid colorize`` and embedders run.

- ``pipeline``: the streaming colorization API (``open_colorizer``, ``VideoColorizer``,
  ``colorize_video``), re-exported by ``colorvid``;
- ``decode``: probing and frame iteration with PyAV (``probe``, ``read_frames``, ``VideoError``);
- ``transcode``: re-encoding a video's picture while copying its audio, subtitles and timing;
- ``scenecut``: where a temporal model's carried state is reset;
- ``flow``: DIS optical flow on luma, backward warping, confidence of warped pixels;
- ``engine``: stages in threads joined by bounded queues (the pipelined ``stream``);
- ``progress``: the progress bar / JSON lines on stderr.

May import: the base modules of ``colorvid.core``, ``colorvid.kernels`` and this folder; not
the public API (``colorvid`` re-exports ``pipeline``). Plugins are reached through the host by
name, never imported.
"""
