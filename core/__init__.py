"""colorvid.core: colour maths, the 313 ab bins, the plugin host and the interfaces."""
