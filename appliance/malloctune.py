"""glibc malloc discipline for a long-running process that allocates big, short-lived arrays.

Why: the compactor reads ring batches of up to a few MiB, concatenates columns and hands them to
Arrow, then frees them. glibc serves blocks above M_MMAP_THRESHOLD with mmap (given back to the
OS on free), but it raises that threshold dynamically each time such a block is freed, up to
32 MiB. After the first flush the compactor's big arrays therefore land in the brk heap, where
one live block near the top pins everything below it: measured, 90 MB of heap after two minutes
of the demo with a fraction of it in use. Fixing the threshold (setting it at all switches the
dynamic adjustment off) keeps big arrays on mmap, and `trim()` after a flush returns the rest.

Forked children inherit the parent's malloc state, so environment variables
(MALLOC_MMAP_THRESHOLD_) do not reach a process forked from the zygote: this calls mallopt.
No-op where glibc is not the allocator.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 256 << 10      # blocks from 256 KiB up (4,096 records) get their own mapping
TRIM_THRESHOLD = 4 << 20        # give back heap tops above 4 MiB

try:
    _libc = ctypes.CDLL(None)
    _mallopt = _libc.mallopt
    _malloc_trim = _libc.malloc_trim
except (OSError, AttributeError):      # not glibc
    _mallopt = _malloc_trim = None


def release_big_blocks(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Serve big blocks with mmap for good and trim the heap eagerly. True when applied."""
    if _mallopt is None:
        return False
    ok = _mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1
    return _mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1 and ok


def trim() -> None:
    """Return free heap pages to the OS (after a bulk free, e.g. a Parquet flush)."""
    if _malloc_trim is not None:
        _malloc_trim(0)
