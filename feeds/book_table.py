"""Top-N levels and top of book per instrument in a shared-memory seqlock table.

Slot i holds instrument id i (ids are global, from the registry), so a consumer reads one
instrument's book in O(1) with `BookTable.attach(name).read(id)` and never blocks the worker.
The keeper writes a slot at most once per websocket frame per instrument (feeds/book.py
flush_table), after every book message of that frame was applied.

Writing is cheap because the slot's bytes are kept ready: the writer holds a private image of
each slot, and a sorted book edits its image level by level as deltas arrive (Book.mirror:
nothing for a level deeper than N, one small pack for a level within the top N). A frame then
costs the 64-byte header and one memoryview store of the image between the seqlock's two
sequence writes (the protocol of shm/table.py), so readers see a slot whole or retry.
"""
from __future__ import annotations

import logging
import struct

import numpy as np

from shm.table import Table

DEFAULT_DEPTH = 20
DEFAULT_SLOTS = 4096
SYNCED = 1          # `state` bits
CROSSED = 2

log = logging.getLogger("tickring.book_table")


class _Slot:
    """update()'s staging image of one instrument's slot, for `n` levels per side, and where
    the slot lives (Table.span)."""

    __slots__ = ("img", "n", "span")

    def __init__(self, size: int, n: int, span: tuple[int, int, int]):
        self.img = bytearray(size)
        self.n = n
        self.span = span


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
        # update() keeps, per instrument, the slot's bytes (a staging image, see the module
        # docstring) and stores it into the shm slot with one memoryview store inside the
        # seqlock (no numpy row assignment). Only for the exact book_dtype layout; anything
        # else takes the field-by-field numpy path.
        self._fast = table.dtype == book_dtype(self.depth)
        if self._fast:
            d = self.depth
            self._slots_state: dict[int, _Slot] = {}
            self._head = struct.Struct("<IHHIIqqdddd").pack_into
            # pack_into of k levels (2k doubles), k = 0..depth
            self._levels = [struct.Struct(f"<{2 * k}d").pack_into for k in range(d + 1)]
            self._zeros = [0.0] * (2 * d)
            self._zero_bytes = bytes(16 * d)
            self._size = table.dtype.itemsize
            self._asks_at = 64 + 16 * d        # byte offsets: header, bids, asks
            self._store = table.store           # the image into the slot, in the seqlock

    @classmethod
    def create(cls, name: str, depth: int = DEFAULT_DEPTH, slots: int = DEFAULT_SLOTS,
               exist_ok: bool = True) -> "BookTable":
        return cls(Table.create(name, book_dtype(depth), slots, exist_ok=exist_ok))

    @classmethod
    def attach(cls, name: str) -> "BookTable":
        return cls(Table.attach(name))

    def update(self, book, depth: int, ts_recv: int = 0) -> None:
        """Write one feeds.book.Book into its slot (its instrument id)."""
        i = book.instrument
        n = depth if depth < self.depth else self.depth
        st = self._slots_state.get(i) if self._fast else None
        if st is not None and book.mirror is st.img and st.n == n:
            # the common case: the book kept the image's levels current (Book.mirror); only
            # the header is packed, then the image goes into the slot in one store
            img = st.img
            bpx, apx = book.bpx, book.apx
            nb = len(bpx)
            if nb > n:
                nb = n
            na = len(apx)
            if na > n:
                na = n
            self._head(img, 0, i, nb, na,
                       (SYNCED if book.state == 0 else 0) | (CROSSED if book.crossed else 0), 0,
                       ts_recv, book.last_id, bpx[-1] if nb else 0.0, book.bsz[-1] if nb else 0.0,
                       apx[0] if na else 0.0, book.asz[0] if na else 0.0)
            self._store(st.span, img)
            return
        if i >= self.table.slots:
            if not self._warned:
                self._warned = True
                log.warning("book table %s has %d slots; instrument %d (and higher) not shown",
                            self.name, self.table.slots, i)
            return
        if self._fast:
            self._update_fast(book, i, n, ts_recv)
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

    def _update_fast(self, book, i: int, n: int, ts_recv: int) -> None:
        """update() through the instrument's staging image when the book has no current
        mirror (first write, a cleared or resorted book, a plain dict book): the top n are
        packed whole, a sorted book gets the image as its mirror (it then keeps the levels
        current itself, level by level); then the header, and one store into the slot."""
        st = self._slots_state.get(i)
        if st is None or st.n != n:
            st = self._slots_state[i] = _Slot(self._size, n, self.table.span(i))
        img = st.img
        bpx = book.bpx
        if bpx is None:                       # plain dict book: no mirror
            bp, ap = book.top_prices(n)
            bs = list(map(book.bids.__getitem__, bp))
            az = list(map(book.asks.__getitem__, ap))
            nb, na = len(bp), len(ap)
            self._side(img, 64, bp, bs, nb, n)
            self._side(img, self._asks_at, ap, az, na, n)
            bid = (bp[0], bs[0]) if nb else (0.0, 0.0)
            ask = (ap[0], az[0]) if na else (0.0, 0.0)
        else:
            bsz, apx, asz = book.bsz, book.apx, book.asz
            nb = len(bpx)
            if nb > n:
                nb = n
            na = len(apx)
            if na > n:
                na = n
            if book.mirror is not img:        # first write, or the book was cleared/resorted
                end = -nb - 1
                self._side(img, 64, bpx[-1:end:-1], bsz[-1:end:-1], nb, n)
                self._side(img, self._asks_at, apx[:na], asz[:na], na, n)
                book.mirror, book.mirror_n, book.mirror_asks = img, n, self._asks_at
            bid = (bpx[-1], bsz[-1]) if nb else (0.0, 0.0)
            ask = (apx[0], asz[0]) if na else (0.0, 0.0)
        # the header last: it raises (an update id of the wrong type) before the slot is touched
        self._head(img, 0, i, nb, na,
                   (SYNCED if book.state == 0 else 0) | (CROSSED if book.crossed else 0), 0,
                   ts_recv, book.last_id, bid[0], bid[1], ask[0], ask[1])
        self._store(st.span, img)

    def _side(self, img, at: int, px: list, sz: list, count: int, n: int) -> None:
        """Pack one side's top `count` levels (price, size interleaved) at byte `at` of the
        image and zero its levels count..n-1 (a dropped mirror may have left any there)."""
        if count:
            flat = self._zeros[:2 * count]
            flat[0::2] = px
            flat[1::2] = sz
            self._levels[count](img, at, *flat)
        if count < n:
            img[at + 16 * count:at + 16 * n] = self._zero_bytes[:16 * (n - count)]

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
