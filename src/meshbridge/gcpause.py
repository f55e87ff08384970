"""Pausing Python's cyclic garbage collector around batch work that allocates many long-lived dicts."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic collector for the block, then freeze what survived it and restore the collector.

    Rendering, modelling and translating a large bridge allocates hundreds of thousands of dicts and builds
    no reference cycles. With the collector on, a 1000-export bridge spends over half of its time in it;
    merely re-enabling it at the end of the block makes the next allocation scan every object the block
    allocated. ``gc.freeze()`` moves them to the permanent generation instead, so they are never scanned:
    reference counting still frees them as usual, and the only cost is that a reference cycle built inside
    the block would live until the process exits (meshbridge's commands are short-lived processes).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()
