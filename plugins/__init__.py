"""Built-in colorvid plugins: each module registers through the same hooks third parties use.

Colorizers (networks in ``models/``), ``losses``, ``metrics`` and ``metrics_temporal``. May
import: the public API (``colorvid``), the base modules of ``colorvid.core``,
``colorvid.kernels`` and this folder; the host loads them by module name (``DEFAULT_PLUGINS``).
"""
