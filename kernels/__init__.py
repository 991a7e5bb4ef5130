"""Native kernels: nearest-bin lookup today; soft-encoding and the rebalanced loss build here.

Each op has a pure-torch reference (the ground truth of tests), a C++ CPU implementation in the
``_cpu`` pybind11 module (sources in ``csrc/cpu/``, mirroring this folder by file name) and, where
it pays, a Triton GPU kernel.
"""

from colorvid.kernels.nearest_bin import nearest_bin, nearest_bin_cpp

__all__ = ["nearest_bin", "nearest_bin_cpp"]
