"""Garbage-collector discipline for long-running tickring processes.

Why: CPython's cyclic GC runs a generation-0 collection every 700 net container allocations
(threshold 700). A feed worker parses thousands of JSON frames per second, each making dicts
and lists, so collections fire in the middle of bursts, and every full collection walks every
object created at start-up (modules, decoders, the venue tables) again and again.

What `after_startup()` does, once, when start-up is over (connections planned, tables built):
  1. gc.collect()  - drop start-up garbage so it is not frozen forever;
  2. gc.freeze()   - move every surviving object to the permanent generation: later collections
                     never traverse them (and fork children don't touch their pages);
  3. raise the gen-0 threshold (default 50,000) so collections are rare and short: the hot path
     allocates little that survives (records go straight into the ring), so what a collection
     finds is mostly young garbage, and 50,000 objects take well under a millisecond.

Usage (feed workers, the compactor and the supervisor call it):

    from appliance.gctune import after_startup
    ...build everything...
    after_startup()

Reference cycles are still collected; this only changes *when*. `stats()` reports collections
per generation for `tickring inspect` / metrics.
"""
from __future__ import annotations

import gc

DEFAULT_GEN0 = 50_000
DEFAULT_GEN1 = 20
DEFAULT_GEN2 = 100


def after_startup(gen0: int = DEFAULT_GEN0, gen1: int = DEFAULT_GEN1, gen2: int = DEFAULT_GEN2) -> dict:
    """Collect, freeze what survived start-up, raise the thresholds. Returns stats()."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, gen1, gen2)
    return stats()


def stats() -> dict:
    """Thresholds, frozen object count and collections per generation so far."""
    per_gen = gc.get_stats()
    return {"threshold": list(gc.get_threshold()), "frozen": gc.get_freeze_count(),
            "collections": [g["collections"] for g in per_gen],
            "collected": [g["collected"] for g in per_gen]}
