"""Writing output files so that nothing is lost and nothing half-written is left behind.

Every file colorvid writes (videos, frames, ONNX networks, reports, weights) is written under a
hidden temporary name in its target's folder (:func:`temp_beside`) and moved into place when it
is complete (:func:`publish`). The move never replaces a file that appeared while the output was
being written (another run, another program): without ``overwrite`` it is a rename that fails
when the target exists (Linux ``renameat2(RENAME_NOREPLACE)``; elsewhere ``link`` + ``unlink``
for files), so two runs writing one name cannot silently replace each other's finished work.

Errors are :class:`OutputError`, one line naming the target and the cause
(``out.mp4: cannot write in /proc: No such file or directory``).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> atomic_write(folder / "a.txt", lambda tmp: tmp.write_text("hello"))
>>> (folder / "a.txt").read_text()
'hello'
>>> try:
...     atomic_write(folder / "a.txt", lambda tmp: tmp.write_text("again"), overwrite=False)
... except OutputError as e:
...     print(str(e).split(": ", 1)[1])
already exists (use --overwrite to replace it)
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["OutputError", "atomic_write", "check_output_folder", "discard", "os_error_text",
           "publish", "sha256_file", "temp_beside", "write_bytes"]

_NAME_KEPT = 64  # characters of the target's name kept in its temporary name
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


class OutputError(OSError):
    """An output could not be written or moved into place; the message names it and why."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "output error"


def os_error_text(error: BaseException) -> str:
    """``No space left on device``: an OSError's (or FFmpeg error's) cause without its errno and
    file names."""
    return getattr(error, "strerror", None) or str(error)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_folder(target: Path) -> None:
    """Refuse a target whose folder is missing or is a file (``file.mp4/%05d.png``)."""
    parent = target.parent
    if parent.is_dir():
        return
    for above in (parent, *parent.parents):
        if above.exists() and not above.is_dir():
            raise OutputError(f"{target}: {above} is a file, not a folder")
    raise OutputError(f"{target}: output folder {parent} does not exist")


def temp_beside(target: Path, *, folder: bool = False) -> Path:
    """A new hidden file (or folder) in ``target``'s folder, named after it, with the mode a plain
    ``open`` (``mkdir``) would give; the target's extension stays last (muxers guess the container
    from it). Raises :class:`OutputError` when the folder cannot be written."""
    check_output_folder(target)
    # The name is cut so that a target name near the 255-byte limit still has a temporary name.
    stem, name = target.stem[:_NAME_KEPT], target.name[:_NAME_KEPT]
    try:
        if folder:
            tmp = tempfile.mkdtemp(dir=target.parent, prefix=f".{name}.part-")
            os.chmod(tmp, 0o777 & ~_umask())
        else:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{stem}.",
                                       suffix=f".part{target.suffix[:_NAME_KEPT]}")
            os.close(fd)
            os.chmod(tmp, 0o666 & ~_umask())
    except OSError as e:
        raise OutputError(f"{target}: cannot write in {target.parent}: {os_error_text(e)}"
                          ) from e
    return Path(tmp)


def discard(tmp: Path | None) -> None:
    """Remove a temporary file or folder made by :func:`temp_beside` (gone already: fine)."""
    if tmp is None:
        return
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename, failing with FileExistsError when ``dst`` exists (atomically where the OS can)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = getattr(libc, "renameat2", None)
        if renameat2 is not None:
            if renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                         _RENAME_NOREPLACE) == 0:
                return
            code = ctypes.get_errno()
            if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # fs without it
                raise OSError(code, os.strerror(code), str(dst))
    if src.is_dir():
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
        os.rename(src, dst)  # a folder cannot be hard-linked; the window here is tiny
        return
    os.link(src, dst)  # fails with EEXIST when dst exists
    os.unlink(src)


def publish(tmp: Path, target: Path, *, overwrite: bool = False) -> None:
    """Move the finished ``tmp`` to ``target``. Without ``overwrite`` a target that exists now
    (it appeared during the run) is kept and :class:`OutputError` raised, ``tmp`` removed; an
    empty folder is the exception (it is what ``mkdir out`` before a run leaves). With
    ``overwrite`` a file is replaced atomically, a folder swapped in and the old one removed."""
    try:
        if overwrite:
            if target.is_dir() and not target.is_symlink():
                old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
                os.rename(target, old / "x")
                try:
                    os.rename(tmp, target)
                except OSError:
                    os.rename(old / "x", target)
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
            return
        if target.is_dir() and not target.is_symlink():
            try:
                os.rmdir(target)  # empty: the folder the user made for this output
            except OSError:
                pass
        _rename_noreplace(tmp, target)
    except FileExistsError as e:
        discard(tmp)
        raise OutputError(f"{target}: appeared while this output was being written (another "
                          "run or program made it); it was kept and this output discarded "
                          "(use --overwrite to replace it)") from e
    except OSError as e:
        discard(tmp)
        raise OutputError(f"{target}: cannot move the finished output into place: "
                          f"{os_error_text(e)}") from e


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``; a full disk or a size limit is an :class:`OutputError`."""
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise OutputError(f"{path}: cannot write: {os_error_text(e)}") from e


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None], *,
                 overwrite: bool = True) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then :func:`publish` it.

    ``overwrite=False`` refuses an existing ``path`` before writing. Any exception (a full
    disk, Ctrl-C) removes the temporary file and leaves ``path`` as it was.
    """
    target = Path(path)
    if not overwrite and (target.exists() or target.is_symlink()):
        raise OutputError(f"{target}: already exists (use --overwrite to replace it)")
    tmp = temp_beside(target)
    try:
        try:
            write(tmp)
        except OSError as e:
            if isinstance(e, OutputError):
                raise
            raise OutputError(f"{target}: cannot write: {os_error_text(e)}") from e
        if tmp.exists():  # a writer may have made the file anew (safetensors does, 0600)
            os.chmod(tmp, 0o666 & ~_umask())
        publish(tmp, target, overwrite=overwrite)
    finally:
        discard(tmp if tmp.exists() else None)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks (weights, sources, corpus files)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
