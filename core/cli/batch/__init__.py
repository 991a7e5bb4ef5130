"""``colorvid batch``: colorizing a collection of videos, image sequences and stills with the
model loaded once per worker, resumably, on one machine or a Ray cluster (docs/batch.md).

- ``command``: the sub-command (``add_parser``, ``run``, ``--status``);
- ``plan``: finding the inputs (recursively), their outputs under OUTDIR, and the identities
  (input and job) that decide what a rerun redoes;
- ``manifest``: the SQLite manifest in OUTDIR, one row per input (written by the driver only);
- ``worker``: one worker's side: the colorizer loaded once, inputs colorized one by one through
  ``colorvid colorize``'s own per-input function
  (:func:`colorvid.core.cli.colorize.colorize_input`);
- ``pool``: what the driver asks of a pool of workers; ``local`` and ``ray_pool``: the two
  pools (processes on this machine, Ray actors);
- ``driver``: hands inputs to workers, retries failures, writes the manifest, stops cleanly;
- ``progress``: the batch's progress on stderr (a bar or JSON lines).

It lives in the CLI layer because its unit of work is colorize's, option for option.
"""

from colorvid.core.cli.batch.command import add_parser, run

__all__ = ["add_parser", "run"]
