"""Records packed one at a time on the hot path, then published to a ring in one copy.

A decoder appends the records of one websocket frame here with plain struct packing (no numpy
call per message); the worker hands the buffer to `Writer.publish_buffer` and clears it.

The hottest decoder paths skip the add() call (a Python call per record costs as much as the
pack itself): `buf = batch.reserve(k)`, then `pack_level(buf, n << 6, 0, ...)` per record at
n = batch.n, n + 1, ..., then `batch.n = n`; the last record of a message gets LAST with
`buf[(n << 6) - LAST_BYTE_FROM_END] |= LAST` (what mark_last() does).
"""
from __future__ import annotations

from .record import PACK_LEVEL, PACK_QUOTE, RECORD_SIZE, Flag, Kind

_LAST = int(Flag.LAST)    # plain ints: IntFlag/IntEnum arithmetic costs microseconds per call
_QUOTE = int(Kind.QUOTE)
assert RECORD_SIZE == 64 and _LAST < 256   # record n at n << 6; LAST lives in the flags' low byte

pack_level = PACK_LEVEL.pack_into   # (buf, offset, seq, ts_event, ts_recv, instrument, kind, side,
                                    #  flags, price, size, extra, id)
pack_quote = PACK_QUOTE.pack_into   # (buf, offset, seq, ts_event, ts_recv, instrument, kind, side,
                                    #  flags, bid_price, bid_size, ask_price, ask_size)
LAST = _LAST
LAST_BYTE_FROM_END = RECORD_SIZE - 30   # the flags' low byte of the last of n records: (n << 6) - 34


from ._batch import RecordBatch   # noqa: E402  (native: C code appends through room(k))

__all__ = ["RecordBatch", "pack_level", "pack_quote", "LAST", "LAST_BYTE_FROM_END"]
