"""Top-N levels and top of book per instrument in a shared-memory seqlock table.

Slot i holds instrument id i (ids are global, from the registry), so a consumer reads one
instrument's book in O(1) with `BookTable.attach(name).read(id)` and never blocks the worker.
The keeper writes a slot at most once per websocket frame per instrument (feeds/book.py
flush_table), after every book message of that frame was applied.

Writing is native (feeds/native/book.pyx BookSlotWriter): the slot is packed in C straight
from the book's level arrays, then stored in one copy between the seqlock's two sequence
writes (shm/_seqlock.pxd, the protocol of shm/table.py), so readers see a slot whole or retry.
"""
from __future__ import annotations

import logging

import numpy as np

from shm.table import Table

from .native.book import SLOT_CROSSED as CROSSED, SLOT_SYNCED as SYNCED, BookSlotWriter

DEFAULT_DEPTH = 20
DEFAULT_SLOTS = 4096

log = logging.getLogger("tickring.book_table")


def book_dtype(depth: int = DEFAULT_DEPTH) -> np.dtype:
    """One slot: header, top of book, then `depth` (price, size) levels per side, best first."""
    return np.dtype([
        ("instrument", "<u4"), ("n_bids", "<u2"), ("n_asks", "<u2"),
        ("state", "<u4"), ("_pad", "<u4"),
        ("ts_recv", "<i8"), ("update_id", "<i8"),
        ("bid_price", "<f8"), ("bid_size", "<f8"), ("ask_price", "<f8"), ("ask_size", "<f8"),
        ("bids", "<f8", (depth, 2)), ("asks", "<f8", (depth, 2)),
    ])


class BookTable:
    """Writer and reader of the top-N book table."""

    def __init__(self, table: Table):
        self.table = table
        self.name = table.name
        self.depth = table.dtype["bids"].shape[0]
        self._row = np.zeros(1, table.dtype)
        self._warned = False
        # the native writer takes the exact book_dtype layout; anything else takes the
        # field-by-field numpy path
        self._fast = table.dtype == book_dtype(self.depth)
        self._writer: BookSlotWriter | None = None

    @classmethod
    def create(cls, name: str, depth: int = DEFAULT_DEPTH, slots: int = DEFAULT_SLOTS,
               exist_ok: bool = True) -> "BookTable":
        return cls(Table.create(name, book_dtype(depth), slots, exist_ok=exist_ok))

    @classmethod
    def attach(cls, name: str) -> "BookTable":
        return cls(Table.attach(name))

    def book_writer(self) -> BookSlotWriter:
        """The native writer of this table's slots (the keeper's flush calls it from C)."""
        if self._writer is None:
            self._writer = BookSlotWriter(self.table.slot_writer(), self.depth, self._warn_slots)
        return self._writer

    def _warn_slots(self, instrument: int) -> None:
        if not self._warned:
            self._warned = True
            log.warning("book table %s has %d slots; instrument %d (and higher) not shown",
                        self.name, self.table.slots, instrument)

    def update(self, book, depth: int, ts_recv: int = 0) -> None:
        """Write one feeds.book.Book into its slot (its instrument id)."""
        if self._fast:
            (self._writer or self.book_writer()).update(book, depth, ts_recv)
            return
        i = book.instrument
        n = depth if depth < self.depth else self.depth
        if i >= self.table.slots:
            self._warn_slots(i)
            return
        bids, asks = book.top(n)
        r = self._row
        r["instrument"] = i
        r["n_bids"] = len(bids)
        r["n_asks"] = len(asks)
        r["state"] = (SYNCED if book.state == 0 else 0) | (CROSSED if book.crossed else 0)
        r["ts_recv"] = ts_recv
        r["update_id"] = book.last_id
        lv = r["bids"][0]
        lv[:] = 0.0
        if bids:
            lv[:len(bids)] = bids
        la = r["asks"][0]
        la[:] = 0.0
        if asks:
            la[:len(asks)] = asks
        r["bid_price"], r["bid_size"] = bids[0] if bids else (0.0, 0.0)
        r["ask_price"], r["ask_size"] = asks[0] if asks else (0.0, 0.0)
        self.table.write(i, r[0])

    def read(self, instrument: int) -> np.void:
        """A consistent copy of one instrument's slot."""
        return self.table.read(instrument)

    def levels(self, instrument: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """(bids, asks) of one instrument as lists of (price, size), best first."""
        row = self.read(instrument)
        nb, na = int(row["n_bids"]), int(row["n_asks"])
        return ([(float(p), float(s)) for p, s in row["bids"][:nb]],
                [(float(p), float(s)) for p, s in row["asks"][:na]])

    def close(self) -> None:
        self.table.close()

    def unlink(self) -> None:
        self.table.unlink()
