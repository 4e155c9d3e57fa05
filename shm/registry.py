"""The instrument registry in shared memory: id <-> venue, native symbol, BASE-QUOTE, market.

Append-only so any consumer can name any record's instrument without locks: entries [0, count)
never change, and `count` is bumped (own 8-byte store) only after an entry is fully written.
Appends from several workers are serialized with an flock on the segment (start-up only).
Ids start at 1; 0 means "venue-wide" in STATUS records.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import layout as L
from .errors import SegmentNotFound
from .segment import Segment, list_segments, unlink

MARKETS = ("spot", "perp", "future")
_MARKET_CODE = {m: i + 1 for i, m in enumerate(MARKETS)}

ENTRY = np.dtype({
    "names": ["id", "market", "tick_size", "lot_size", "venue", "symbol", "normalized"],
    "formats": ["<u4", "u1", "<f8", "<f8", "S16", "S40", "S24"],
    "offsets": [0, 4, 8, 16, 24, 40, 80],
    "itemsize": 104,
})
_COUNT = L.REGISTRY["count"].index


class Instrument(NamedTuple):
    id: int
    venue: str
    symbol: str
    normalized: str
    market: str
    tick_size: float
    lot_size: float


class RegistryNotFound(SegmentNotFound):
    """No registry of that name."""


class Registry:
    """The append-only instrument registry."""

    def __init__(self, seg: Segment):
        self.seg = seg
        self.name = seg.name
        self.capacity = seg.word("capacity")
        self._entries = np.frombuffer(seg.mm, dtype=ENTRY, count=self.capacity,
                                      offset=seg.word("data_offset"))
        self._u64 = memoryview(seg.mm).cast("B").cast("Q")
        self._known = 0
        self._by_key: dict[tuple[str, str, str], int] = {}
        self._by_id: dict[int, Instrument] = {}

    @classmethod
    def create(cls, name: str = "registry", capacity: int = 65536, exist_ok: bool = True) -> "Registry":
        seg = Segment.create(name, L.REGISTRY_HEADER_SIZE + capacity * ENTRY.itemsize,
                             L.MAGIC_REGISTRY, ENTRY, capacity, L.REGISTRY_HEADER_SIZE,
                             exist_ok=exist_ok)
        return cls(seg)

    @classmethod
    def attach(cls, name: str = "registry") -> "Registry":
        return cls(Segment.attach(name, L.MAGIC_REGISTRY, ENTRY, not_found=RegistryNotFound,
                                  kind="registry"))

    @staticmethod
    def names() -> list[str]:
        return list_segments(L.MAGIC_REGISTRY)

    def unlink(self) -> None:
        unlink(self.name)

    def close(self) -> None:
        self._entries = None
        self._u64.release()
        self.seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self) -> int:
        return self._u64[_COUNT]

    def _refresh(self) -> None:
        count = self._u64[_COUNT]
        for i in range(self._known, count):
            e = self._entries[i]
            inst = Instrument(int(e["id"]), e["venue"].decode(), e["symbol"].decode(),
                              e["normalized"].decode(), MARKETS[int(e["market"]) - 1],
                              float(e["tick_size"]), float(e["lot_size"]))
            self._by_id[inst.id] = inst
            self._by_key[(inst.venue, inst.symbol, inst.market)] = inst.id
        self._known = count

    def add(self, venue: str, symbol: str, normalized: str = "", market: str = "spot",
            tick_size: float = 0.0, lot_size: float = 0.0) -> int:
        """Register an instrument (idempotent for the same venue, symbol and market); its id."""
        if market not in _MARKET_CODE:
            raise ValueError(f"market must be one of {', '.join(MARKETS)}, got {market!r}")
        key = (venue, symbol, market)
        found = self.lookup(venue, symbol, market)
        if found is not None:
            return found
        with self.seg.locked():
            self._refresh()
            if key in self._by_key:
                return self._by_key[key]
            count = self._u64[_COUNT]
            if count >= self.capacity:
                raise ValueError(f"instrument registry {self.name!r} is full ({self.capacity} entries)")
            for field, value, width in (("venue", venue, 16), ("symbol", symbol, 40), ("normalized", normalized, 24)):
                if len(value.encode()) > width:
                    raise ValueError(f"{field} {value!r} is longer than {width} bytes")
            e = self._entries
            e[count] = (count + 1, _MARKET_CODE[market], tick_size, lot_size, venue.encode(),
                        symbol.encode(), normalized.encode())
            self._u64[_COUNT] = count + 1       # publish after the entry is complete
            self._refresh()
            return count + 1

    def lookup(self, venue: str, symbol: str, market: str = "spot") -> int | None:
        key = (venue, symbol, market)
        i = self._by_key.get(key)
        if i is None and self._known != self._u64[_COUNT]:
            self._refresh()
            i = self._by_key.get(key)
        return i

    def get(self, instrument: int) -> Instrument:
        inst = self._by_id.get(instrument)
        if inst is None:
            self._refresh()
            inst = self._by_id.get(instrument)
            if inst is None:
                raise KeyError(f"instrument id {instrument} is not in registry {self.name!r} "
                               f"({len(self)} instruments)")
        return inst

    def all(self) -> list[Instrument]:
        self._refresh()
        return [self._by_id[i] for i in sorted(self._by_id)]
