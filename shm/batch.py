"""Records packed one at a time on the hot path, then published to a ring in one copy.

A decoder appends the records of one websocket frame here with plain struct packing (no numpy
call per message); the worker hands the buffer to `Writer.publish_buffer` and clears it.

The hottest decoder paths skip the add() call (a Python call per record costs as much as the
pack itself): `buf = batch.reserve(k)`, then `pack_level(buf, n << 6, 0, ...)` per record at
n = batch.n, n + 1, ..., then `batch.n = n`; the last record of a message gets LAST with
`buf[(n << 6) - LAST_BYTE_FROM_END] |= LAST` (what mark_last() does).
"""
from __future__ import annotations

import numpy as np

from .record import PACK_LEVEL, PACK_QUOTE, RECORD, RECORD_SIZE, Flag, Kind

_LAST = int(Flag.LAST)    # plain ints: IntFlag/IntEnum arithmetic costs microseconds per call
_QUOTE = int(Kind.QUOTE)
assert RECORD_SIZE == 64 and _LAST < 256   # record n at n << 6; LAST lives in the flags' low byte

pack_level = PACK_LEVEL.pack_into   # (buf, offset, seq, ts_event, ts_recv, instrument, kind, side,
                                    #  flags, price, size, extra, id)
pack_quote = PACK_QUOTE.pack_into   # (buf, offset, seq, ts_event, ts_recv, instrument, kind, side,
                                    #  flags, bid_price, bid_size, ask_price, ask_size)
LAST = _LAST
LAST_BYTE_FROM_END = RECORD_SIZE - 30   # the flags' low byte of the last of n records: (n << 6) - 34


class RecordBatch:
    """A growable staging buffer of RECORD-shaped bytes. `n` records are valid."""

    __slots__ = ("buf", "n", "cap", "_level", "_quote")

    def __init__(self, capacity: int = 1024):
        self.cap = capacity
        self.buf = bytearray(capacity * RECORD_SIZE)
        self.n = 0
        self._level = PACK_LEVEL.pack_into
        self._quote = PACK_QUOTE.pack_into

    def clear(self) -> None:
        self.n = 0

    def _grow(self) -> None:
        self.buf.extend(bytes(max(len(self.buf), 16 * RECORD_SIZE)))   # (a 0-capacity batch too)
        self.cap = len(self.buf) // RECORD_SIZE

    def reserve(self, k: int) -> bytearray:
        """Room for k more records; returns the buffer to pack them into (growing moves it)."""
        while self.n + k > self.cap:
            self._grow()
        return self.buf

    def add(self, kind: int, instrument: int, ts_event: int, ts_recv: int, side: int, flags: int,
            price: float, size: float, id: int = 0, extra: float = 0.0) -> None:
        """Append one TRADE/BOOK/MARK/LIQUIDATION/STATUS record (`extra` lands in ask_price)."""
        n = self.n
        if n == self.cap:
            self._grow()
        self._level(self.buf, n * RECORD_SIZE, 0, ts_event, ts_recv, instrument, kind, side, flags,
                    price, size, extra, id)
        self.n = n + 1

    def add_quote(self, instrument: int, ts_event: int, ts_recv: int, flags: int,
                  bid_price: float, bid_size: float, ask_price: float, ask_size: float) -> None:
        """Append one QUOTE record."""
        n = self.n
        if n == self.cap:
            self._grow()
        self._quote(self.buf, n * RECORD_SIZE, 0, ts_event, ts_recv, instrument, _QUOTE, 0, flags,
                    bid_price, bid_size, ask_price, ask_size)
        self.n = n + 1

    def mark_last(self) -> None:
        """Set Flag.LAST on the newest record (the last one of its exchange message)."""
        if self.n:
            off = (self.n - 1) * RECORD_SIZE + 30
            flags = self.buf[off] | (self.buf[off + 1] << 8) | _LAST
            self.buf[off] = flags & 0xFF
            self.buf[off + 1] = flags >> 8

    def array(self) -> np.ndarray:
        """A copy of the valid records as a numpy array of shm.RECORD."""
        return np.frombuffer(self.buf, dtype=RECORD, count=self.n).copy()
