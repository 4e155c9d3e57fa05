"""Bitget v2 public websocket (spot): declaration and pure decoder.

Wire (bitget.com/api-doc, spot websocket public channels):
{"action": snapshot|update, "arg": {"instType", "channel", "instId"}, "data": [...], "ts"}.
  trade          -> TRADE per trade (side = taker side, tradeId numeric string, ts ms string)
  books1, ticker -> QUOTE (books1: bids[0]/asks[0]; ticker: bidPr/bidSz/askPr/askSz)
  books          -> BOOK per level: snapshot first, then updates; size "0" deletes
  books5/books15 -> BOOK snapshot levels (every push is a full top-N snapshot)
  candle*        -> nothing
  "pong" text frames, {"event": "subscribe"|"unsubscribe"|"error"|"login", ...} -> nothing.

Book rule "bitget": BookEvent(first=last=data.seq, prev=data.pseq when the venue sends it, else
-1; checksum=data.checksum, a signed CRC32, on updates; None on snapshots, which are not
checksummed). The book keeper merges the levels, then calls
extra["book_checksum"](bids, asks, instrument) on its top 25 levels (book_depth = 25) and
compares. Bitget checksums its ORIGINAL price/size strings ("0.0500" is not "0.05"), so:
- `last_levels[instrument]` = the raw data entry of that instrument's last book message (its
  "bids"/"asks" are the [[price_str, size_str], ...] lists as sent, in the order of its BOOK
  records; stored as parsed, no copy);
- the decoder also keeps, per instrument, "price_str:size_str" of every live `books` level,
  sorted by price (LEVEL_STRINGS; replaced on a snapshot, size "0" removes), which
  book_checksum uses to turn the keeper's float levels back into the venue's strings. When the
  keeper's top 25 prices are the decoder's (the normal case), the checksum string is a slice
  and a join, no lookup per level.
Mismatch => resync (extra["resync_messages"](symbol) or a rotation).
No REST seeding: the first push of `books` is the full book.
"""
from __future__ import annotations

from bisect import bisect_left
from zlib import crc32

from orjson import dumps, loads

from shm.batch import LAST, LAST_BYTE_FROM_END, pack_level, pack_quote

from .checksum import BITGET_LEVELS, bitget_checksum, signed32
from .decoder import BookEvent, DecodeError, Decoder
from .venue import Limits, Ping, Venue
from .wire import (ASK, BID, BOOK, MALFORMED, MS, QUOTE, SIDES, SNAPSHOT, TNEW, TRADE, fail,
                   id_from_str, pack_book, rest_json)

CHANNEL_NAMES = {"trades": "trade", "quotes": "books1", "book": "books"}
# instType -> market; every other type (USDT-/COIN-/USDC-FUTURES, demo S*-FUTURES) is a perp
_MARKETS = {"SPOT": "spot", "spot": "spot"}


# instrument -> (bid prices, bid pieces, ask prices, ask pieces) of live levels: prices
# ascending, pieces = "price_str:size_str" (each level's part of the checksum string, joined
# once when the level arrives) at the same index
LEVEL_STRINGS: dict[int, tuple[list, list, list, list]] = {}


def _text(level, prices: list, pieces: list) -> tuple[str, str]:
    price = level[0]
    i = bisect_left(prices, price)
    if i < len(prices) and prices[i] == price:
        p, s = pieces[i].split(":", 1)
        return p, s
    return repr(price), repr(level[1])


def book_checksum(bids, asks, instrument: int) -> int:
    """The book keeper's checksum hook: (bids, asks) best first as (price, size) floats."""
    bpx, bpc, apx, apc = LEVEL_STRINGS.get(instrument) or ([], [], [], [])
    return bitget_checksum([_text(lv, bpx, bpc) for lv in bids[:BITGET_LEVELS]],
                           [_text(lv, apx, apc) for lv in asks[:BITGET_LEVELS]])


def _checksum_from_book(book, depth: int) -> int | None:
    """book_checksum when the keeper's top prices are the decoder's: the pieces are a slice,
    joined in C. None (=> book_checksum, per-level lookups and repr fallback) otherwise."""
    strings = LEVEL_STRINGS.get(book.instrument)
    if strings is None:
        return None
    bpx, bpc, apx, apc = strings
    n = min(depth, BITGET_LEVELS)
    bid_prices, ask_prices = book.top_prices(n)
    top = -n - 1
    if bpx[-1:top:-1] != bid_prices or apx[:n] != ask_prices:
        return None
    bt = bpc[-1:top:-1]
    at = apc[:n]
    n = min(len(bt), len(at))
    parts = [None] * (2 * n)
    parts[0::2] = bt[:n]                 # bid1, ask1, bid2, ask2, ... then the longer side's rest
    parts[1::2] = at[:n]
    parts += bt[n:]
    parts += at[n:]
    return signed32(crc32(":".join(parts).encode()))


book_checksum.from_book = _checksum_from_book   # the keeper's fast variant (feeds/book.py)


def _pack_keeping_strings(out, levels, prices: list, texts: list, inst: int, side: int,
                          flags: int, ts: int, ts_recv: int, seq: int) -> None:
    """Pack one side's levels as BOOK records and keep that side's "price:size" texts in
    ascending price order (the checksum string is then slices, see LEVEL_STRINGS)."""
    buf = out.reserve(len(levels))
    off = out.n << 6
    for lv in levels:
        ps = lv[0]
        p = float(ps)
        zs = lv[1]
        z = float(zs)
        pack_level(buf, off, 0, ts, ts_recv, inst, BOOK, side, flags, p, z, 0.0, seq)
        off += 64
        i = bisect_left(prices, p)
        if i < len(prices) and prices[i] == p:
            if z:
                texts[i] = f"{ps}:{zs}"
            else:
                del prices[i], texts[i]
        elif z:
            prices.insert(i, p)
            texts.insert(i, f"{ps}:{zs}")
    out.n = off >> 6


class BitgetDecoder(Decoder):
    venue = "bitget"

    def __init__(self, instruments=None, market=None):
        super().__init__(instruments, market)
        self.last_levels: dict[int, dict] = {}   # instrument -> raw data entry of its last book msg
        self._ids: dict[str, dict[str, int]] = {}  # instType -> instId -> instrument id

    def feed(self, frame: bytes, ts_recv: int) -> None:
        if frame == b"pong":
            return
        out = self.out
        n0 = out.n
        nb0 = len(self.book_events)
        try:
            m = loads(frame)
            arg = m.get("arg")
            if "event" in m or arg is None:
                if "event" in m or "code" in m:      # acks, errors, login answers
                    return
                raise DecodeError("bitget: message without arg or event")
            if "data" not in m:
                return
            ch = arg["channel"]
            if ch.startswith("candle"):
                return
            it = arg.get("instType")
            ids = self._ids.get(it) if it is not None else None
            inst = ids.get(arg["instId"]) if ids is not None else None
            if inst is None:
                inst = self._inst(arg["instId"], it)
            # records are packed inline (shm/batch.py): add() per record is a call too many
            if ch == "trade":
                for t in m["data"]:
                    ts = int(t["ts"]) * MS
                    sd = SIDES[t["side"]]
                    price = float(t["price"])
                    size = float(t["size"])
                    i = t["tradeId"]                         # id_from_str() without the call
                    tid = int(i) if type(i) is str and len(i) < 19 and i.isdigit() else id_from_str(i)
                    n = out.n
                    pack_level(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts, ts_recv,
                               inst, TRADE, sd, 0, price, size, 0.0, tid)
                    out.n = n + 1
            elif ch == "books":
                self._book(inst, m["action"] == "snapshot", m["data"], ts_recv, True)
            elif ch == "books5" or ch == "books15":
                self._book(inst, True, m["data"], ts_recv, False)
            elif ch == "books1":
                for d in m["data"]:
                    b = d["bids"]
                    a = d["asks"]
                    if b and a:
                        ts = int(d["ts"]) * MS
                        n = out.n
                        pack_quote(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts,
                                   ts_recv, inst, QUOTE, 0, 0, float(b[0][0]), float(b[0][1]),
                                   float(a[0][0]), float(a[0][1]))
                        out.n = n + 1
            elif ch == "ticker":
                for d in m["data"]:
                    ts = int(d["ts"]) * MS
                    n = out.n
                    pack_quote(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts, ts_recv,
                               inst, QUOTE, 0, 0, float(d["bidPr"]), float(d["bidSz"]),
                               float(d["askPr"]), float(d["askSz"]))
                    out.n = n + 1
            else:
                raise DecodeError(f"bitget: unexpected channel {ch!r}")
        except (DecodeError, *MALFORMED) as e:
            raise fail(self, n0, nb0, "bitget", e) from None
        n = out.n
        if n > n0:
            out.buf[(n << 6) - LAST_BYTE_FROM_END] |= LAST      # out.mark_last()

    def _inst(self, inst_id: str, inst_type: str | None) -> int:
        """Instrument id of an instId; cached per instType (not when the frame names none:
        then the decoder's market decides, and it may be set after construction)."""
        i = self.instruments.id(inst_id, self.market if inst_type is None else _MARKETS.get(inst_type, "perp"))
        if inst_type is not None:
            self._ids.setdefault(inst_type, {})[inst_id] = i
        return i

    def _book(self, inst: int, snap: bool, data, ts_recv: int, full: bool) -> None:
        out = self.out
        flags = SNAPSHOT if snap else 0
        for d in data:
            ts = int(d["ts"]) * MS
            seq = int(d.get("seq", -1))
            bids = d["bids"]
            asks = d["asks"]
            if full:                                   # `books`: keep the strings for checksums
                strings = LEVEL_STRINGS.get(inst)
                if snap or strings is None:
                    strings = LEVEL_STRINGS[inst] = ([], [], [], [])
                bpx, bpc, apx, apc = strings
                start = out.n
                # per side: a bad `asks` fails after the bids updated the strings, as it did
                _pack_keeping_strings(out, bids, bpx, bpc, inst, BID, flags, ts, ts_recv, seq)
                _pack_keeping_strings(out, asks, apx, apc, inst, ASK, flags, ts, ts_recv, seq)
            else:
                start = pack_book(out, bids, asks, inst, ts, ts_recv, flags, seq)
            cs = d.get("checksum")
            self.last_levels[inst] = d
            self.book_events.append(TNEW(BookEvent, (inst, start, out.n, snap, seq, seq,
                                                     int(d.get("pseq", -1)),
                                                     None if (snap or cs is None) else int(cs))))


# ----------------------------------------------------------------------------- declaration

def subscribe(symbols: list[str], channels: list[str]) -> list[tuple[str, list[bytes]]]:
    """One connection: [("", [subscribe messages])]; each message carries up to
    Limits.symbols_per_subscribe args {"instType": "SPOT", "channel", "instId"}."""
    args = []
    for c in channels:
        name = CHANNEL_NAMES.get(c)
        if name is None:
            raise ValueError(f"bitget has no channel {c!r}")
        args.extend({"instType": "SPOT", "channel": name, "instId": s} for s in symbols)
    per = LIMITS.symbols_per_subscribe
    return [("", [dumps({"op": "subscribe", "args": args[i:i + per]})
                  for i in range(0, len(args), per)])]


def resync_messages(symbol: str) -> list[bytes]:
    """Checksum/seq failure: unsubscribe + subscribe `books` (a full snapshot follows)."""
    arg = [{"instType": "SPOT", "channel": "books", "instId": symbol}]
    return [dumps({"op": "unsubscribe", "args": arg}), dumps({"op": "subscribe", "args": arg})]


def parse_instruments(body: bytes) -> list[dict]:
    """GET /api/v2/spot/public/symbols -> [{symbol, base, quote, market, tick_size, lot_size}]."""
    doc = rest_json(body, "bitget")
    if doc.get("code") not in ("00000", None):
        raise ValueError(f"bitget: symbols error {doc.get('code')}: {doc.get('msg')}")
    return [{
        "symbol": p["symbol"], "base": p["baseCoin"], "quote": p["quoteCoin"], "market": "spot",
        "tick_size": 10.0 ** -int(p["pricePrecision"]),
        "lot_size": 10.0 ** -int(p["quantityPrecision"]),
    } for p in doc["data"]]


def trades_request(symbol: str, from_id: int = 0) -> tuple[str, dict]:
    """GET /api/v2/spot/market/fills: the newest 500 trades (the caller keeps id > from_id)."""
    return "/api/v2/spot/market/fills", {"symbol": symbol, "limit": 500}


def parse_trades(body: bytes) -> list[tuple]:
    """-> [(trade_id, ts_ns, price, size, taker side)]."""
    doc = rest_json(body, "bitget")
    return [(id_from_str(t["tradeId"]), int(t["ts"]) * MS, float(t["price"]), float(t["size"]),
             SIDES[t["side"]]) for t in doc["data"]]


LIMITS = Limits(
    streams_per_connection=50,      # max 1000 channels, "strongly recommended <= 50"
    subscribe_msgs_per_s=10.0,      # 10 messages/s per connection, the text "ping" included
    connect_attempts=300,           # 300 connection requests per IP per 5 minutes
    connect_window_s=300.0,
    max_connection_age_s=24 * 3600.0,   # forcibly disconnected every 24 hours: rotate before
    symbols_per_subscribe=25,       # args per subscribe message (keeps frames small)
    stale_after_s=30.0,
)

VENUE = Venue(
    name="bitget",
    ws_url="wss://ws.bitget.com/v2/ws/public",
    rest_url="https://api.bitget.com",
    decoder=BitgetDecoder,
    limits=LIMITS,
    ping=Ping(mode="text", interval_s=30.0, payload=b"ping", pong=b"pong"),
    channels=("trades", "quotes", "book"),
    markets=("spot",),
    book_rule="bitget",
    book_depth=BITGET_LEVELS,       # the keeper hands book_checksum its top 25 levels
    subscribe=subscribe,
    snapshot_request=None,          # `books` pushes the full book first
    parse_snapshot=None,
    instruments_request=("/api/v2/spot/public/symbols", {}),
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=10.0,
    extra={"book_checksum": book_checksum, "resync_messages": resync_messages,
           "checksum_levels": BITGET_LEVELS, "subscriptions_per_hour": 240},
)
