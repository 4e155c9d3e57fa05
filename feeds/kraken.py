"""Kraken spot websocket v2: declaration and pure decoder.

Wire (docs.kraken.com, "Spot WebSocket v2"): {"channel", "type": snapshot|update, "data": [...]}
with prices and quantities as JSON numbers and RFC 3339 timestamps.
  trade  -> TRADE per trade (side = taker side, trade_id sequential per book)
  ticker -> QUOTE (bid/bid_qty/ask/ask_qty; subscribed with event_trigger "bbo")
  book   -> BOOK per level (qty 0 deletes; SNAPSHOT on type snapshot) + BookEvent per symbol
  heartbeat, status, ohlc, instrument, method answers (subscribe/unsubscribe/pong) -> nothing;
  status with system "maintenance" -> notices "shutdown".

Book rule "kraken": no sequence numbers (BookEvent first/last/prev = -1); every snapshot and
update carries `checksum` (BookEvent.checksum, unsigned CRC32). The book keeper applies the
levels in wire order, truncates to the subscribed depth (Kraken never sends qty 0 for levels
that fall out of scope: book_depth == the subscribed depth, 25), then calls
extra["book_checksum"](bids, asks, instrument) on its top levels and compares.
That is feeds.checksum.kraken_checksum over the top 10 with the pair's fixed precisions: the
wire drops trailing zeros (0.566 for 0.5660), so the text as sent is NOT what Kraken checksums
(verified on the docs' example). Precisions: parse_instruments records AssetPairs
pair_decimals/lot_decimals per symbol (PRECISION, also returned as `price_decimals` /
`qty_decimals`); without it the decoder infers them from each snapshot (the most decimals seen,
never decreasing), and keeps the precision of every instrument for book_checksum.
`last_levels[instrument]` = the raw data entry of the instrument's last book message (its
"bids"/"asks" hold the level dicts {"price", "qty"} in wire order; stored as parsed, no copy). Mismatch => resync (a fresh snapshot:
extra["resync_messages"](symbol) or a connection rotation).
"""
from __future__ import annotations

from zlib import crc32

from orjson import dumps, loads

from shm.batch import LAST, LAST_BYTE_FROM_END, pack_level, pack_quote

from .checksum import KRAKEN_LEVELS, kraken_checksum
from .decoder import BookEvent, DecodeError, Decoder
from .isotime import ISO_NS, iso_ns
from .venue import Limits, Ping, Venue
from .wire import ASK, BID, BOOK, MALFORMED, QUOTE, SIDES, SNAPSHOT, TNEW, TRADE, fail, rest_json

_IGNORED = frozenset(("heartbeat", "ohlc", "instrument", "level3", "executions", "balances"))
BOOK_DEPTH = 25           # subscribed depth (10, 25, 100, 500, 1000 allowed) == VENUE.book_depth
CHANNEL_NAMES = {"trades": "trade", "quotes": "ticker", "book": "book"}
# Kraken REST/asset codes that v2 websocket symbols spell differently
_V2_ASSET = {"XBT": "BTC", "XDG": "DOGE"}
_REST_ASSET = {v: k for k, v in _V2_ASSET.items()}

# checksum precisions: v2 symbol -> (price_decimals, qty_decimals) from the instrument list;
# symbol -> the most decimals seen in its snapshots; instrument id -> the precision in use
PRECISION: dict[str, tuple[int, int]] = {}
_INFERRED: dict[str, tuple[int, int]] = {}
_INST_PRECISION: dict[int, tuple[int, int]] = {}


def _decimals(x) -> int:
    """Decimals of a JSON number as the venue wrote it (shortest repr; 740.0 -> 0)."""
    r = repr(float(x))
    if "e" in r:
        mant, exp = r.split("e")
        return max(0, (len(mant) - mant.index(".") - 1 if "." in mant else 0) - int(exp))
    if r.endswith(".0"):
        return 0
    return len(r) - r.index(".") - 1


def _learn_precision(inst: int, symbol: str, bids, asks) -> None:
    """Precision of an instrument for its checksum (on snapshots only: not per message)."""
    known = PRECISION.get(symbol)
    if known is None:
        pd = qd = 0
        for lv in bids:
            pd = max(pd, _decimals(lv["price"]))
            qd = max(qd, _decimals(lv["qty"]))
        for lv in asks:
            pd = max(pd, _decimals(lv["price"]))
            qd = max(qd, _decimals(lv["qty"]))
        old = _INFERRED.get(symbol, (0, 0))
        known = _INFERRED[symbol] = (max(pd, old[0]), max(qd, old[1]))
    _INST_PRECISION[inst] = known


def book_checksum(bids, asks, instrument: int) -> int:
    """The book keeper's checksum hook: (bids, asks) best first as (price, qty) floats."""
    pd, qd = _INST_PRECISION.get(instrument, (8, 8))
    return kraken_checksum(asks, bids, pd, qd)


# field text per decimals: value -> _kraken_field(value, decimals). The top-10 levels of a book
# barely change between messages, so the 40 fixed-precision formats per message become dict hits
_FIELDS: dict[int, dict[float, str]] = {}
_FIELDS_MAX = 1 << 13          # ~1 MB per precision; the live top-10 texts fit many times


def _field_texts(values: list, decimals: int) -> list:
    """[kraken_field(v, decimals) for v in values], memoized (the checksum's hot part)."""
    cache = _FIELDS.get(decimals)
    if cache is None or len(cache) > _FIELDS_MAX:
        cache = _FIELDS[decimals] = {}
    texts = list(map(cache.get, values))
    if None in texts:
        for i, t in enumerate(texts):
            if t is None:
                v = values[i]
                t = texts[i] = f"{v:.{decimals}f}".replace(".", "").lstrip("0")
                cache[v] = t
    return texts


def _checksum_from_book(book, depth: int) -> int:
    """book_checksum from the keeper's Book (its top prices and sizes, read off the native
    book's sorted arrays): the same string as kraken_checksum(asks, bids, ...) over its top
    levels."""
    pd, qd = _INST_PRECISION.get(book.instrument, (8, 8))
    n = min(depth, KRAKEN_LEVELS)
    bp, ap = book.top_prices(n)
    bs, az = book.top_sizes(n)
    parts = [None] * (2 * (len(ap) + len(bp)))
    parts[0::2] = _field_texts(ap + bp, pd)
    parts[1::2] = _field_texts(az + bs, qd)
    return crc32("".join(parts).encode()) & 0xFFFFFFFF


book_checksum.from_book = _checksum_from_book   # the keeper's fast variant (feeds/book.py)


class KrakenDecoder(Decoder):
    venue = "kraken"

    def __init__(self, instruments=None, market=None):
        super().__init__(instruments, market)
        self.last_levels: dict[int, dict] = {}   # instrument -> raw data entry of its last book msg

    def feed(self, frame: bytes, ts_recv: int) -> None:
        out = self.out
        n0 = out.n
        nb0 = len(self.book_events)
        try:
            m = loads(frame)
            ch = m.get("channel")
            if ch == "book":
                self._book(m, ts_recv)
            elif ch == "trade":
                self._trades(m, ts_recv)
            elif ch == "ticker":
                self._ticker(m, ts_recv)
            elif ch in _IGNORED:
                return
            elif ch == "status":
                for d in m["data"]:
                    if d.get("system") == "maintenance":
                        self.notices.append("shutdown")
                return
            elif ch is None:
                if "method" in m or "error" in m:   # acks (success true/false), pong, errors
                    return
                raise DecodeError("kraken: message without channel or method")
            else:
                raise DecodeError(f"kraken: unexpected channel {ch!r}")
        except (DecodeError, *MALFORMED) as e:
            raise fail(self, n0, nb0, "kraken", e) from None
        n = out.n
        if n > n0:
            out.buf[(n << 6) - LAST_BYTE_FROM_END] |= LAST      # out.mark_last()

    # records are packed inline (shm/batch.py); stamps are looked up whole first (isotime.ISO_NS)
    def _book(self, m, ts_recv: int) -> None:
        out = self.out
        ids = self._ids
        snap = m["type"] == "snapshot"
        flags = SNAPSHOT if snap else 0
        for d in m["data"]:
            sym = d["symbol"]
            inst = ids.get(sym) or self._inst(sym)
            tm = d.get("timestamp")
            ts = (ISO_NS.get(tm) or iso_ns(tm)) if tm else ts_recv
            bids = d["bids"]
            asks = d["asks"]
            start = out.n
            buf = out.reserve(len(bids))
            off = start << 6
            for lv in bids:
                pack_level(buf, off, 0, ts, ts_recv, inst, BOOK, BID, flags, float(lv["price"]),
                           float(lv["qty"]), 0.0, 0)
                off += 64
            out.n = off >> 6
            buf = out.reserve(len(asks))
            for lv in asks:
                pack_level(buf, off, 0, ts, ts_recv, inst, BOOK, ASK, flags, float(lv["price"]),
                           float(lv["qty"]), 0.0, 0)
                off += 64
            out.n = off >> 6
            if snap or inst not in _INST_PRECISION:
                _learn_precision(inst, sym, bids, asks)
            self.last_levels[inst] = d
            self.book_events.append(TNEW(BookEvent, (inst, start, out.n, snap, -1, -1, -1,
                                                     int(d["checksum"]))))

    def _trades(self, m, ts_recv: int) -> None:
        out = self.out
        ids = self._ids
        for t in m["data"]:
            sym = t["symbol"]
            inst = ids.get(sym) or self._inst(sym)
            tm = t["timestamp"]
            ts = ISO_NS.get(tm) or iso_ns(tm)
            sd = SIDES[t["side"]]
            n = out.n
            pack_level(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts, ts_recv, inst,
                       TRADE, sd, 0, float(t["price"]), float(t["qty"]), 0.0, int(t["trade_id"]))
            out.n = n + 1

    def _ticker(self, m, ts_recv: int) -> None:
        out = self.out
        ids = self._ids
        for t in m["data"]:
            tm = t.get("timestamp")
            sym = t["symbol"]
            inst = ids.get(sym) or self._inst(sym)
            ts = (ISO_NS.get(tm) or iso_ns(tm)) if tm else ts_recv
            n = out.n
            pack_quote(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts, ts_recv, inst,
                       QUOTE, 0, 0, float(t["bid"]), float(t["bid_qty"]), float(t["ask"]),
                       float(t["ask_qty"]))
            out.n = n + 1


# ----------------------------------------------------------------------------- declaration

def subscribe(symbols: list[str], channels: list[str]) -> list[tuple[str, list[bytes]]]:
    """One connection: [("", [subscribe messages])]; one message per channel per symbol batch.

    book: depth BOOK_DEPTH with snapshot; ticker: event_trigger "bbo" (a QUOTE per best
    bid/offer change); trade: snapshot false (recent-trade replays would look live; gaps are
    backfilled from REST instead).
    """
    per = LIMITS.symbols_per_subscribe
    msgs = []
    for c in channels:
        name = CHANNEL_NAMES.get(c)
        if name is None:
            raise ValueError(f"kraken has no channel {c!r}")
        for i in range(0, len(symbols), per):
            params = {"channel": name, "symbol": symbols[i:i + per]}
            if name == "book":
                params["depth"] = BOOK_DEPTH
                params["snapshot"] = True
            elif name == "ticker":
                params["event_trigger"] = "bbo"
            else:
                params["snapshot"] = False
            msgs.append(dumps({"method": "subscribe", "params": params}))
    return [("", msgs)]


def resync_messages(symbol: str) -> list[bytes]:
    """Checksum mismatch: unsubscribe + subscribe the book (a fresh snapshot follows)."""
    return [dumps({"method": "unsubscribe", "params": {"channel": "book", "symbol": [symbol],
                                                       "depth": BOOK_DEPTH}}),
            dumps({"method": "subscribe", "params": {"channel": "book", "symbol": [symbol],
                                                     "depth": BOOK_DEPTH, "snapshot": True}})]


def _v2(asset: str) -> str:
    return _V2_ASSET.get(asset, asset)


def rest_pair(symbol: str) -> str:
    """v2 websocket symbol "BTC/USD" -> REST pair name "XBTUSD"."""
    base, quote = symbol.split("/")
    return _REST_ASSET.get(base, base) + _REST_ASSET.get(quote, quote)


def parse_instruments(body: bytes) -> list[dict]:
    """GET /0/public/AssetPairs -> [{symbol (v2 "BTC/USD"), base, quote, market, tick_size,
    lot_size, price_decimals, qty_decimals}] (the decimals feed the book checksum)."""
    doc = rest_json(body, "kraken")
    if doc.get("error"):
        raise ValueError(f"kraken: AssetPairs error {doc['error']}")
    out = []
    for p in doc["result"].values():
        ws = p.get("wsname")
        if not ws:
            continue                              # dark-pool ".d" pairs have no websocket name
        base, quote = (_v2(a) for a in ws.split("/"))
        pd = int(p["pair_decimals"])
        qd = int(p["lot_decimals"])
        PRECISION[f"{base}/{quote}"] = (pd, qd)
        out.append({
            "symbol": f"{base}/{quote}", "base": base, "quote": quote, "market": "spot",
            "tick_size": float(p.get("tick_size") or 10.0 ** -pd), "lot_size": 10.0 ** -qd,
            "price_decimals": pd, "qty_decimals": qd,
        })
    return out


def trades_request(symbol: str, from_id: int = 0) -> tuple[str, dict]:
    """GET /0/public/Trades (public). Its `since` cursor is a time, not a trade id, so the
    request asks for the newest 1000 trades and the caller keeps those with id > from_id."""
    return "/0/public/Trades", {"pair": rest_pair(symbol), "count": 1000}


def parse_trades(body: bytes) -> list[tuple]:
    """-> [(trade_id, ts_ns, price, size, side)]; rows [price, volume, time, b|s, m|l, misc, id]."""
    doc = rest_json(body, "kraken")
    if doc.get("error"):
        raise ValueError(f"kraken: Trades error {doc['error']}")
    out = []
    for key, rows in doc["result"].items():
        if key == "last":
            continue
        for r in rows:
            out.append((int(r[6]), int(round(float(r[2]) * 1e6)) * 1000, float(r[0]), float(r[1]),
                        SIDES[r[3]]))
    return out


def _ping() -> bytes:
    return b'{"method":"ping"}'


LIMITS = Limits(
    streams_per_connection=150,     # not documented; 50 symbols x 3 channels per socket
    subscribe_msgs_per_s=5.0,       # the message rate limit is dynamic (not published): stay low
    connect_attempts=150,           # Kraken/Cloudflare: ~150 connection attempts per rolling
    connect_window_s=600.0,         # 10 minutes per IP (websocket general considerations)
    max_connection_age_s=0.0,       # none documented
    symbols_per_subscribe=50,
    stale_after_s=10.0,             # heartbeat channel ~1/s; docs suggest a ~5 s deadline
)

VENUE = Venue(
    name="kraken",
    ws_url="wss://ws.kraken.com/v2",
    rest_url="https://api.kraken.com",
    decoder=KrakenDecoder,
    limits=LIMITS,
    ping=Ping(mode="text", interval_s=20.0, payload=_ping, pong=b'"pong"'),
    channels=("trades", "quotes", "book"),
    markets=("spot",),
    book_rule="kraken",
    book_depth=BOOK_DEPTH,          # == the subscribed depth: the keeper truncates to it
    subscribe=subscribe,
    snapshot_request=None,          # the book channel sends its own snapshot (with checksum)
    parse_snapshot=None,
    instruments_request=("/0/public/AssetPairs", {}),
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=1.0,          # public REST: roughly 1 request/s per IP
    extra={"book_checksum": book_checksum, "resync_messages": resync_messages,
           "checksum_levels": 10},
)
