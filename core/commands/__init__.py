"""Sub-commands of the ``colorvid`` CLI, one module each."""
