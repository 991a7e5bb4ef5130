"""``python -m colorvid`` (and ``torchrun -m colorvid``): the colorvid command line."""

import sys

from colorvid.core.cli import main

sys.exit(main())
