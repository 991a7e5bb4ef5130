"""colorvid.core: the framework, one sub-package per concern, on a base of shared modules.

The modules directly in this folder are the base every other part builds on: colour maths
(``color``), the 313 ab bins (``bins``, data in ``ab_bins_313.csv``), frame <-> Lab conversions
(``frames``), the hook specifications (``hookspecs``), the plugin host (``host``), the
colorizer / loss / metric interfaces (``interfaces``), ``api`` (create_colorizer & co.) and the
weights store (``weights``). They may import each other and ``colorvid.kernels``, nothing else
of colorvid (the host loads plugins by module name, at run time).

Sub-packages, each importing only what sits below it (the table is in docs/layout.md, "How
the code is laid out", and in tests/core/test_layering.py, which enforces it):

- ``video``: the colorize engine (``pipeline``), decoding, transcoding, scene cuts, progress;
- ``vapoursynth``: the Python side of the native ``core.colorvid.*`` filter;
- ``evaluation``: ``colorvid eval`` (runner, report) and the Turing test (``ctt``);
- ``training``: the trainer, its adapters, checkpoints, data and the shipped-weights recipe;
- ``cli``: the ``colorvid`` command line, one module per command, and ``make demo``.

No module under ``colorvid.core`` runs anything when imported: scripts run only under
``if __name__ == "__main__"``, and ``python -m colorvid`` is ``colorvid/__main__.py``, whose
source is package/__main__.py in the repository, outside this tree.
"""
