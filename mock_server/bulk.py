"""Helpers for bulk work (generating and loading a dataset), where millions of small objects are made."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic collector: millions of new dicts and tuples make it rescan the heap again and again
    (about a third of the time of a 1M-view generation), yet they hold no cycles, so reference counting
    frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
