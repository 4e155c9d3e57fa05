"""The pure-decoder contract: bytes of one websocket frame in, shm.RECORD records out.

Every venue file subclasses `Decoder` and implements `feed()`. The same `feed()` runs in tests
(`decode()` returns a numpy array) and on the worker's hot path (records stay packed in
`self.out`, a shm.RecordBatch the worker publishes in one copy) — one copy of the parsing rules.

Contract of feed():
- market data -> records appended to self.out (one TRADE per trade, one QUOTE per best
  bid/offer, one BOOK per level of a snapshot or delta, MARK, LIQUIDATION), ts in ns, the last
  record of the frame flagged Flag.LAST (call self.out.mark_last()).
- control frames (acks, pongs, heartbeats, notices, errors) -> no records, never raise; notices
  the worker must act on are reported through self.notices (e.g. "shutdown").
- order-book messages also append a BookEvent to self.book_events, so the worker's book keeper
  can check the venue's sequence rules without parsing the frame again.
- a malformed or unexpected frame -> raise DecodeError (the worker counts, samples and skips it).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from shm.batch import RecordBatch


class DecodeError(ValueError):
    """A frame that cannot be decoded. The worker counts it, logs a sample, and skips it."""


class BookEvent(NamedTuple):
    """One order-book message, for the sequence/checksum rules of the venue.

    start/end index the BOOK records of this message in the decoder's RecordBatch.
    first/last/prev are the venue's sequence fields (-1 when the venue has none);
    checksum is the venue's checksum (None when it sends none).
    """
    instrument: int
    start: int
    end: int
    snapshot: bool
    first: int
    last: int
    prev: int
    checksum: int | None = None


class InstrumentMap:
    """(venue-native symbol, market) <-> instrument id.

    The same native symbol can exist in two markets of one venue (Bybit "BTCUSDT" spot and
    linear), so the key is (symbol, market). Standalone (tests, replay) the map hands out ids
    1, 2, ... itself; in the appliance `register(symbol, market) -> id` is backed by the
    shared-memory registry (shm.registry) so ids are global and stable.
    """

    def __init__(self, venue: str, register: Callable[[str, str], int] | None = None):
        self.venue = venue
        self._ids: dict[tuple[str, str], int] = {}
        self._symbols: dict[int, tuple[str, str]] = {}
        self._register = register

    def id(self, symbol: str, market: str = "spot") -> int:
        """Id of a native symbol in a market, registering it on first sight."""
        key = (symbol, market)
        i = self._ids.get(key)
        if i is None:
            i = self._register(symbol, market) if self._register else len(self._ids) + 1
            self._ids[key] = i
            self._symbols[i] = key
        return i

    def symbol(self, instrument: int) -> str:
        return self._symbols[instrument][0]

    def market(self, instrument: int) -> str:
        return self._symbols[instrument][1]

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._ids


class Decoder:
    """Base of every venue decoder. Subclasses set `venue` and implement `feed()`."""

    venue: str = ""
    market: str = "spot"   # for venues whose frames do not say the market (set per connection)

    def __init__(self, instruments: InstrumentMap | None = None, market: str | None = None):
        self.instruments = instruments or InstrumentMap(self.venue)
        if market:
            self.market = market
        # one per socket (OKX plans 23 of them): start small, a snapshot grows it once
        self.out = RecordBatch(128)
        self.book_events: list[BookEvent] = []
        self.notices: list[str] = []
        self._ids: dict[str, int] = {}       # native symbol -> instrument id (hot-path cache)

    def _market_of(self, symbol: str) -> str:
        """The market a native symbol belongs to on this decoder's connection."""
        return self.market

    def _inst(self, symbol: str) -> int:
        """Instrument id of a native symbol, registered on first sight. Hot paths call
        `self._ids.get(s) or self._inst(s)` to skip the call when the id is cached."""
        i = self._ids.get(symbol)
        if i is None:
            i = self._ids[symbol] = self.instruments.id(symbol, self._market_of(symbol))
        return i

    def feed(self, frame: bytes, ts_recv: int) -> None:
        """Append the records of one frame to self.out (see the module docstring)."""
        raise NotImplementedError

    def decode(self, frame: bytes | str, ts_recv: int = 0) -> np.ndarray:
        """Records of one frame as a numpy array of shm.RECORD (tests and raw-capture replay)."""
        self.out.clear()
        self.book_events.clear()
        self.notices.clear()
        if isinstance(frame, str):
            frame = frame.encode()
        self.feed(frame, ts_recv)
        return self.out.array()

    def clear_events(self) -> None:
        """Forget the last frame's book messages (the worker took them)."""
        self.book_events.clear()

    def symbol(self, instrument: int) -> str:
        """The venue-native symbol of an instrument id, e.g. "BTCUSDT"."""
        return self.instruments.symbol(instrument)
