"""Giving memory back: a server whose classes come and go must not only grow."""

from __future__ import annotations

import ctypes
import gc
import sys


def release_memory() -> None:
    """Collect what ended runs and closed pages left, and hand freed heap pages back to the system (glibc keeps them
    otherwise: a process's memory would only grow)."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:  # not glibc (e.g. musl): nothing to trim
            pass
