"""Giving memory back: a server whose classes come and go must not only grow.

glibc's allocator keeps freed heap pages, and gives each thread that allocates at once an arena of its own (up to
eight per core): a server with many threads (Gradio's, the scheduler's) that streams tensors and figures sees its
resident memory creep up by megabytes a minute with no Python object growing (measured with tracemalloc). So the
server limits its arenas at start and hands free pages back now and then.
"""

from __future__ import annotations

import ctypes
import gc
import sys

M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)
ARENAS = 2


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return None


def limit_arenas(arenas: int = ARENAS) -> None:
    """At most ``arenas`` malloc arenas for the threads started from now on (call it first thing)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, arenas)


def trim_memory() -> None:
    """Hand the heap pages that are free back to the system (cheap: no garbage collection)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def freeze_startup_objects() -> None:
    """Leave what exists now (modules, the app's components, shared runs: ~0.5 M objects) out of every later garbage
    collection: a full collection of the served app took 250 ms with the interpreter lock held, a stall for every
    page and stream of the server, whenever a page left (``release_memory``) or Python's own collector ran."""
    gc.collect()
    gc.freeze()


def release_memory() -> None:
    """Collect what ended runs and closed pages left, and hand freed heap pages back to the system."""
    gc.collect()
    trim_memory()
