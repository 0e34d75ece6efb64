"""Garbage-collector policy for a serving process: the start-up heap is frozen once it is built.

CPython's cyclic collector stops every thread for the whole of a pass, the media clock's thread
included (the GIL). A full (generation 2) pass walks every container object in the process; after
start-up that is a few hundred thousand objects (SQLAlchemy's metadata and compiled-statement
caches, Starlette's routes, the modules), and under 45 calls/s a full pass was seen to take up to
158 ms: every call's next RTP frame waited that long (docs/performance.md, "Voice").

Those objects live as long as the process. `gc.freeze()` moves them to the permanent generation,
which the collector never walks again, so a full pass costs the objects created since (live calls,
requests, caches filling up). Objects freed by reference counting are still freed; only cycles
among frozen objects would never be collected, and the start-up heap has none worth collecting
(`gc.collect()` runs first, so start-up's own garbage is gone before the freeze).
"""

from __future__ import annotations

import gc


def settle_heap() -> int:
    """Collect start-up's garbage, then freeze what is left; returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
