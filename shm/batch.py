"""Records packed one at a time on the hot path, then published to a ring in one copy.

A decoder appends the records of one websocket frame here with plain struct packing (no numpy
call per message); the worker hands the buffer to `Writer.publish_buffer` and clears it.
"""
from __future__ import annotations

import numpy as np

from .record import PACK_LEVEL, PACK_QUOTE, RECORD, RECORD_SIZE, Flag, Kind

_LAST = int(Flag.LAST)    # plain ints: IntFlag/IntEnum arithmetic costs microseconds per call
_QUOTE = int(Kind.QUOTE)


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
        self.buf.extend(bytes(len(self.buf)))
        self.cap *= 2

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
