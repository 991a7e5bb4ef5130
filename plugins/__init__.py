"""Built-in colorvid plugins: each module registers through the same hooks third parties use."""
