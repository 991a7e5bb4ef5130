"""colorvid.core.reference: colour from reference frames a colourist painted.

- ``folder``: reading and checking a folder of references named by frame number;
- ``propagate``: carrying a reference's chroma through its shot along the optical flow;
- ``match``: colour by content where the flow cannot reach;
- ``colorizer``: :class:`ReferenceColorizer`, the frame stream ``colorvid colorize --reference``
  runs, and :func:`open_reference_colorizer`;
- ``keyframes``: one frame per shot to paint (``colorvid keyframes``);
- ``evaluate``: scoring against the truth with the clip's own colour frames as references.

>>> from colorvid.core.reference import open_reference_colorizer
>>> rc = open_reference_colorizer("refs/", src="old.mp4")  # doctest: +SKIP
>>> frames_out = rc.stream(frames_in)                       # doctest: +SKIP

May import: the base modules of ``colorvid.core`` and ``colorvid.core.video``.
"""

from colorvid.core.reference.colorizer import (
    REACHES,
    ReferenceColorizer,
    open_reference_colorizer,
)
from colorvid.core.reference.folder import ReferenceError, check_references, load_references
from colorvid.core.reference.keyframes import pick_keyframes

__all__ = [
    "REACHES",
    "ReferenceColorizer",
    "ReferenceError",
    "check_references",
    "load_references",
    "open_reference_colorizer",
    "pick_keyframes",
]
