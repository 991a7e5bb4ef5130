"""Training: ``colorvid train`` (fine-tuning Zhang and Larsson, training LRCN), single process or
multi-process under torchrun (DistributedDataParallel).
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
