"""Keeping the command line readable: third-party libraries' own output only when asked for.

Blender prints its reports ("Info: Saved copy as …") through Python's ``sys.stdout`` and its renderer's
lines ("Video append frame …", EGL errors) from C straight to file descriptors 1 and 2, as do MediaPipe and
TensorFlow Lite. So inside :func:`third_party_output_silenced` both the descriptors and ``sys.stdout``/
``sys.stderr`` lead to /dev/null, and the command writes its own lines and progress bar to :func:`stdout`
and :func:`stderr`, which still reach the terminal (or a test's capture).
"""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from typing import IO, Iterator

_console: tuple[IO[str], IO[str]] | None = None  # (stdout, stderr) of the command while third parties are silenced
_devnull: IO[str] | None = None  # kept open: a logging handler made while silenced may hold it


def stdout() -> IO[str]:
    """Where the command's own lines go."""
    return _console[0] if _console is not None else sys.stdout


def stderr() -> IO[str]:
    """Where the command's progress bar and warnings go."""
    return _console[1] if _console is not None else sys.stderr


@contextmanager
def third_party_output_silenced(active: bool = True) -> Iterator[None]:
    """Inside the block, descriptors 1 and 2 and ``sys.stdout``/``sys.stderr`` point at /dev/null and Python
    warnings are dropped; :func:`stdout`/:func:`stderr` write where ``sys.stdout``/``sys.stderr`` wrote before.
    ``active=False`` changes nothing (--verbose)."""
    global _console, _devnull
    if not active or _console is not None:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = (sys.stdout, sys.stderr)
    copies: dict[int, int] = {}
    console: list[IO[str]] = []
    null_fd = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            copies[fd] = os.dup(fd)
            if _writes_to(stream, fd):  # a terminal or a file: keep writing there through a copy of the descriptor
                console.append(os.fdopen(os.dup(copies[fd]), "w", buffering=1, encoding=stream.encoding, errors=stream.errors))
            else:  # already a Python-level stream (a test's capture): it is not touched by moving the descriptor
                console.append(stream)
            os.dup2(null_fd, fd)
        if _devnull is None:
            _devnull = open(os.devnull, "w")
        _console = (console[0], console[1])
        sys.stdout = sys.stderr = _devnull
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        _flush_c_stdio()  # C's stdout is buffered: what Blender printed must reach /dev/null, not the terminal later
        sys.stdout, sys.stderr = saved
        _console = None
        for stream, original in zip(console, saved):
            if stream is not original:
                stream.close()
        for fd, copy in copies.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null_fd)


def _flush_c_stdio() -> None:
    import ctypes

    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library by that name here (Windows): nothing buffered to drop
        pass


def _writes_to(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # io.StringIO, pytest's capsys
        return False
