"""The colorization Turing test (CTT): raters score colorized clips 1-5 for realism, blind.

``colorvid ctt serve REPORT_DIR`` serves the clips of a ``colorvid eval`` report;
``colorvid ctt results REPORT_DIR`` prints each model's mean score with a confidence interval.
Part of the evaluation layer (see :mod:`colorvid.core.evaluation`).
"""

from colorvid.core.evaluation.ctt.server import CttServer, make_server, serve_in_thread
from colorvid.core.evaluation.ctt.stats import ModelScore, summarize, t_quantile
from colorvid.core.evaluation.ctt.store import Clip, RatingError, RatingStore, load_clips

__all__ = [
    "Clip",
    "CttServer",
    "ModelScore",
    "RatingError",
    "RatingStore",
    "load_clips",
    "make_server",
    "serve_in_thread",
    "summarize",
    "t_quantile",
]
