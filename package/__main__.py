"""``python -m colorvid`` (and ``torchrun -m colorvid``): the colorvid command line.

Installed as ``colorvid/__main__.py`` by the build (CMakeLists.txt), beside ``__init__.py`` from
this folder. The source lives here, outside ``core/``, so that no module under ``colorvid.core``
runs anything when imported, and the ``__name__`` guard keeps even this one inert on a plain
import (``import colorvid.__main__``, as pkgutil-based discovery or a doc generator may do):
the CLI runs only when the module is executed, which is what ``python -m`` and torchrun's
``-m`` (``runpy`` with ``run_name="__main__"``) do.
"""

import sys

from colorvid.core.cli import main

if __name__ == "__main__":
    sys.exit(main())
