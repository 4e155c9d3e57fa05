"""Small parsing helpers every venue decoder shares: time units, side strings, ids, levels.

Kept deliberately tiny and stable (other venue files import it). Hot-path helpers are plain
functions or dict lookups; nothing here allocates beyond what the caller's JSON parse did.

Conventions every decoder follows (documented once, here):
- times: int nanoseconds since the epoch; a venue's ms -> ms * MS, us -> us * US.
- a float field a message does not carry is NAN (e.g. a MARK record without an index price);
  an int field it does not carry is 0 (ts_event) or -1 (sequence fields of a BookEvent).
- TRADE side = the taker (aggressor) side. LIQUIDATION side = the side of the liquidation
  *order* (a long position liquidated => SELL), whatever convention the venue reports in.
- BOOK side = BID/ASK; size 0 deletes the level.
"""
from __future__ import annotations

import hashlib
import struct

from orjson import loads

from shm.batch import pack_level
from shm.record import Flag, Kind, Side

from .decoder import DecodeError

MS = 1_000_000          # ns per millisecond
US = 1_000              # ns per microsecond
NAN = float("nan")

# kinds / sides / flags as plain ints (an IntEnum attribute lookup per record is avoidable cost)
TRADE = int(Kind.TRADE)
QUOTE = int(Kind.QUOTE)
BOOK = int(Kind.BOOK)
MARK = int(Kind.MARK)
LIQUIDATION = int(Kind.LIQUIDATION)
NONE = int(Side.NONE)
BUY = int(Side.BUY)
SELL = int(Side.SELL)
BID = int(Side.BID)
ASK = int(Side.ASK)
SNAPSHOT = int(Flag.SNAPSHOT)

# BookEvent(...) runs NamedTuple's Python-level __new__ (~0.3 us here); the hot paths build the
# same object in C: TNEW(BookEvent, (instrument, start, end, snapshot, first, last, prev, checksum))
TNEW = tuple.__new__

# taker/order side strings as the venues spell them -> Side
SIDES = {
    "buy": BUY, "sell": SELL,
    "Buy": BUY, "Sell": SELL,
    "BUY": BUY, "SELL": SELL,
    "b": BUY, "s": SELL,
}
# the opposite side (a liquidated long position is closed by a SELL order)
OPPOSITE = {BUY: SELL, SELL: BUY, NONE: NONE}

# errors a malformed frame raises inside a decoder; feed() turns them into DecodeError
MALFORMED = (KeyError, ValueError, TypeError, IndexError, AttributeError, struct.error, OverflowError)


def ms_ns(value) -> int:
    """Milliseconds (int or decimal string) -> ns."""
    return int(value) * MS


def us_ns(value) -> int:
    """Microseconds (int or decimal string) -> ns."""
    return int(value) * US


def side(value: str) -> int:
    """A venue's side string -> Side (ValueError for an unknown one)."""
    s = SIDES.get(value)
    if s is None:
        raise ValueError(f"unknown side {value!r}")
    return s


def num(value) -> float:
    """A decimal string that may be empty ("" = not available) -> float or NAN."""
    return float(value) if value != "" and value is not None else NAN


def id_from_str(value) -> int:
    """A trade id as an int64. Numeric ids stay themselves; opaque ones (Bybit linear UUIDs)
    become a stable 63-bit hash, so the live stream and REST backfill agree on the id."""
    if isinstance(value, int):
        return value
    if value.isdigit():
        v = int(value)
        if v <= 0x7FFF_FFFF_FFFF_FFFF:
            return v
    digest = hashlib.blake2b(value.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def add_levels(add, levels, instrument: int, ts_event: int, ts_recv: int, side_: int,
               flags: int, update_id: int) -> None:
    """Append one BOOK record per [price, size, ...] level (`add` = RecordBatch.add)."""
    for lv in levels:
        add(BOOK, instrument, ts_event, ts_recv, side_, flags, float(lv[0]), float(lv[1]), update_id)


def pack_book(out, bids, asks, instrument: int, ts_event: int, ts_recv: int, flags: int,
              update_id: int) -> int:
    """BOOK records of [price, size, ...] levels, bids then asks, packed straight into the
    RecordBatch `out` (one call per message instead of one add() per level). Returns the
    index of the first record; out.n is past the last one."""
    start = out.n
    k = len(bids) + len(asks)
    buf = out.buf if start + k <= out.cap else out.reserve(k)
    off = start << 6
    for lv in bids:
        pack_level(buf, off, 0, ts_event, ts_recv, instrument, BOOK, BID, flags, float(lv[0]),
                   float(lv[1]), 0.0, update_id)
        off += 64
    for lv in asks:
        pack_level(buf, off, 0, ts_event, ts_recv, instrument, BOOK, ASK, flags, float(lv[0]),
                   float(lv[1]), 0.0, update_id)
        off += 64
    out.n = off >> 6
    return start


def fail(decoder, n0: int, nb0: int, venue: str, exc: BaseException) -> DecodeError:
    """Undo the partial records of a frame that turned out malformed; the DecodeError to raise."""
    decoder.out.n = n0
    del decoder.book_events[nb0:]
    if isinstance(exc, DecodeError):
        return exc
    return DecodeError(f"{venue}: malformed frame ({type(exc).__name__}: {exc})")


def rest_json(body: bytes | str, venue: str):
    """A REST body parsed as JSON, with a clear error naming the venue when it is not JSON."""
    try:
        return loads(body)
    except ValueError as e:
        raise ValueError(f"{venue}: REST body is not JSON: {e}") from None


def rest_levels(levels) -> list[tuple[float, float]]:
    """REST [[price, size, ...], ...] -> [(price, size)]."""
    return [(float(lv[0]), float(lv[1])) for lv in levels]


def filter_value(filters: list[dict], filter_type: str, key: str) -> float:
    """A value from a Binance-style `filters` list, e.g. PRICE_FILTER.tickSize (0.0 if absent)."""
    for f in filters:
        if f.get("filterType") == filter_type:
            return float(f[key])
    return 0.0
