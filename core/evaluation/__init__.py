"""colorvid.core.evaluation: scoring colorizers, ``colorvid eval`` and ``colorvid ctt``.

- ``runner``: grey each video, colorize it with each model, score every metric
  (``EvalConfig``, ``evaluate``);
- ``report``: the report folder's files (results.csv / .json, report.md, sheets, plots, clips);
- ``ctt``: the colorization Turing test (rating server, store, statistics).

May import: the base modules of ``colorvid.core``, ``colorvid.kernels``, ``colorvid.plugins``
(the report uses a metric's helper directly), ``colorvid.core.video``, the public API
(``colorvid``) and this folder.
"""
