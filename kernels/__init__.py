"""Native kernels: nearest bin, soft-encoding, the class-rebalanced cross-entropy and its prior.

Each op has a pure-torch reference (:mod:`colorvid.kernels.reference`, the ground truth of the
tests), a C++ CPU implementation in the ``_cpu`` pybind11 module (sources in ``csrc/cpu/``,
mirroring this folder by file name) and a Triton kernel for CUDA tensors (``triton_*.py``).
:mod:`colorvid.kernels.dispatch` picks one per call; ``COLORVID_KERNELS=reference|cpp|triton``
forces one. May import: this folder and :mod:`colorvid.core.bins` (the base of ``colorvid.core``).
"""

from colorvid.kernels.dispatch import IMPLEMENTATIONS, KernelUnavailableError, select_implementation
from colorvid.kernels.nearest_bin import nearest_bin, nearest_bin_cpp
from colorvid.kernels.prior import (
    PRIOR_KEY,
    PriorEstimator,
    estimate_prior,
    load_prior,
    prior_weights,
    save_prior,
    smooth_distribution,
)
from colorvid.kernels.rebalanced_ce import rebalanced_cross_entropy
from colorvid.kernels.soft_encode import SoftEncoding, soft_encode, soft_encode_dense

__all__ = [
    "IMPLEMENTATIONS",
    "PRIOR_KEY",
    "KernelUnavailableError",
    "PriorEstimator",
    "SoftEncoding",
    "estimate_prior",
    "load_prior",
    "nearest_bin",
    "nearest_bin_cpp",
    "prior_weights",
    "rebalanced_cross_entropy",
    "save_prior",
    "select_implementation",
    "smooth_distribution",
    "soft_encode",
    "soft_encode_dense",
]
