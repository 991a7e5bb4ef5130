"""colorvid.core.training: ``colorvid train`` (fine-tuning Zhang and Larsson, training LRCN),
single process or multi-process under torchrun (DistributedDataParallel).

- ``trainer``: the training loop (``TrainConfig``, ``Trainer``, ``train``);
- ``adapters``: what each model needs from the loop (network, optimiser, schedule, batches);
- ``checkpoint``: atomic save / resume of a run;
- ``data``: training data (decoding, splits by video, sequences, the decoded corpus cache);
- ``defaults``: the recipe of the shipped default weights (``python -m
  colorvid.core.training.defaults``).

May import: the base modules of ``colorvid.core``, ``colorvid.kernels``, ``colorvid.plugins``
(the adapters build the plugins' networks), ``colorvid.core.video``, ``colorvid.core.evaluation``
(the recipe scores its candidates), the public API (``colorvid``) and this folder.
"""

from colorvid.core.training.adapters import ADAPTERS, TrainAdapter, make_adapter
from colorvid.core.training.checkpoint import load_checkpoint, save_checkpoint
from colorvid.core.training.trainer import TrainConfig, Trainer, train

__all__ = [
    "ADAPTERS",
    "TrainAdapter",
    "TrainConfig",
    "Trainer",
    "load_checkpoint",
    "make_adapter",
    "save_checkpoint",
    "train",
]
