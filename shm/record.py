"""The 64-byte record every ring carries: the public contract between producers and consumers.

One record is one cache line. Fields that never coexist share bytes (see docs/schema.md):
a QUOTE uses bid_price/bid_size/ask_price/ask_size, every other kind uses price/size/id.
"""
from __future__ import annotations

import enum
import hashlib
import struct

import numpy as np

RECORD_SIZE = 64


class Kind(enum.IntEnum):
    """What a record is. 0 never appears in a committed record."""
    TRADE = 1
    QUOTE = 2
    BOOK = 3         # one L2 level: a delta, or a snapshot level (Flag.SNAPSHOT)
    MARK = 4         # price=mark price, size=funding rate, ask_price=index price, id=next funding time (ns)
    LIQUIDATION = 5  # price/size/side of the liquidation order as the venue reports it
    STATUS = 6       # in-band event: id = Status code, price/size = code-specific details


class Side(enum.IntEnum):
    """Aggressor side for trades and liquidations, book side for BOOK levels."""
    NONE = 0
    BUY = 1
    SELL = 2
    BID = 1
    ASK = 2


class Flag(enum.IntFlag):
    """Bit values of `flags` (uint16)."""
    SNAPSHOT = 1 << 0   # BOOK level from a snapshot (the first one of a snapshot clears the book)
    LAST = 1 << 1       # last record decoded from its exchange message
    RESYNCED = 1 << 2   # first records after a book resync of this instrument
    DERIVED = 1 << 3    # computed by tickring, not sent by the venue
    REPLAY = 1 << 4     # published by `tickring replay`, not live
    BACKFILL = 1 << 5   # trade recovered from the venue's REST API after a gap
    WICK = 1 << 6       # flagged by the compactor's cross-venue check
    CROSSED = 1 << 7    # book was crossed after this update


class Status(enum.IntEnum):
    """STATUS record codes, carried in `id`. price/size carry the details named here."""
    EPOCH = 1         # producer (re)started: price = new epoch
    CONNECTED = 2     # connection up: price = connection index
    DISCONNECTED = 3  # connection lost: price = connection index
    GAP = 4           # sequence gap on an instrument: price = expected, size = received
    RESYNC = 5        # book of this instrument resynced from a snapshot
    STALE = 6         # no data for longer than the venue's stale limit
    DECODE_ERROR = 7  # a malformed frame was skipped: price = running count
    ROTATED = 8       # planned connection rotation (24 h limit or a shutdown notice)
    LAPPED = 9        # a consumer (the compactor) lost records: price = count
    CROSSED = 10      # crossed book detected: price = best bid, size = best ask
    CHECKSUM = 11     # venue checksum mismatch, book resynced


_FIELDS = [
    # name,        format, offset
    ("seq",        "<u8", 0),
    ("ts_event",   "<i8", 8),
    ("ts_recv",    "<i8", 16),
    ("instrument", "<u4", 24),
    ("kind",       "u1",  28),
    ("side",       "u1",  29),
    ("flags",      "<u2", 30),
    ("price",      "<f8", 32),
    ("size",       "<f8", 40),
    ("bid_price",  "<f8", 32),  # QUOTE only, shares bytes with price
    ("bid_size",   "<f8", 40),  # QUOTE only, shares bytes with size
    ("ask_price",  "<f8", 48),  # QUOTE; MARK: index price
    ("ask_size",   "<f8", 56),  # QUOTE only, shares bytes with id
    ("id",         "<i8", 56),  # trade id / book update id / STATUS code
]

RECORD = np.dtype({
    "names": [f[0] for f in _FIELDS],
    "formats": [f[1] for f in _FIELDS],
    "offsets": [f[2] for f in _FIELDS],
    "itemsize": RECORD_SIZE,
})

# struct formats for the hot path (native order and alignment == the dtype above on x86-64).
# Every kind but QUOTE: seq, ts_event, ts_recv, instrument, kind, side, flags, price, size, ask_price, id
PACK_LEVEL = struct.Struct("@QqqIBBHdddq")
# QUOTE: seq, ts_event, ts_recv, instrument, kind, side, flags, bid_price, bid_size, ask_price, ask_size
PACK_QUOTE = struct.Struct("@QqqIBBHdddd")
assert PACK_LEVEL.size == PACK_QUOTE.size == RECORD_SIZE


def dtype_hash(dtype: np.dtype) -> int:
    """A 64-bit hash of a structured dtype's names, formats and offsets (the schema hash)."""
    parts = [f"{n}:{dtype.fields[n][0].str}:{dtype.fields[n][1]}" for n in dtype.names]
    parts.append(f"itemsize:{dtype.itemsize}")
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


RECORD_HASH = dtype_hash(RECORD)


def empty(n: int) -> np.ndarray:
    """A zeroed array of n records."""
    return np.zeros(n, dtype=RECORD)


def concat(batches) -> np.ndarray:
    """Concatenate record arrays keeping the 64-byte layout.

    Plain `np.concatenate` promotes structured dtypes to a canonical form, which unpacks the
    shared bytes (RECORD becomes 88 bytes); passing the dtype explicitly keeps it.
    """
    batches = list(batches)
    if not batches:
        return np.empty(0, RECORD)
    return np.concatenate(batches, dtype=batches[0].dtype)
