"""Atomic file output: every file the package writes appears complete or not at all.

A writer gets a temporary file in the target's own folder (so the final rename stays on one file
system); when the block ends without an exception the data is flushed to disk and the temporary
file renamed over the target with :func:`os.replace`. An exception, or a process killed mid-write,
leaves the previous target untouched (a ``kill -9`` may leave a hidden ``.NAME.*.tmp`` behind;
nothing reads those).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "write_bytes_atomic", "write_text_atomic"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once: a new output gets the permissions a plain open() would give it, not mkstemp's 0600.
_NEW_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; rename it onto ``path`` on success.

    ``mode`` is ``"w"`` (text, ``encoding``) or ``"wb"``. An existing target keeps its
    permissions; a new one gets the usual ``0666 & ~umask``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        try:
            file_mode = os.stat(target).st_mode & 0o7777
        except OSError:
            file_mode = _NEW_FILE_MODE
        os.fchmod(fd, file_mode)
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": encoding, "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as handle:
            fd = -1  # the file object owns it now
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """``Path.write_text``, atomically."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """``Path.write_bytes``, atomically."""
    with atomic_write(path, "wb", encoding=None) as handle:
        handle.write(data)
    return Path(path)
