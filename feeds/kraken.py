"""Kraken spot websocket v2: the venue declaration; its decoder and book checksum are native.

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
that fall out of scope: book_depth == the subscribed depth, 25), then computes the checksum of
its top levels and compares (extra["book_checksum"]; mismatch => resync: a fresh snapshot via
extra["resync_messages"](symbol) or a connection rotation).
That is feeds.checksum.kraken_checksum over the top 10 with the pair's fixed precisions: the
wire drops trailing zeros (0.566 for 0.5660), so the text as sent is NOT what Kraken checksums
(verified on the docs' example). Precisions: parse_instruments records AssetPairs
pair_decimals/lot_decimals per symbol (PRECISION, also returned as `price_decimals` /
`qty_decimals`); without it the decoder infers them from each snapshot (the most decimals seen,
never decreasing), and keeps the precision of every instrument (learnt from its snapshots and
its first book message) for the checksum.

The frames are decoded by KrakenDecoder of feeds/native/kraken.pyx (compiled: no Python object
per value on the hot path), which implements the rules above, the precisions included; the
checksum is computed there too, in C, from the keeper's Book (`book_checksum.native`, which the
keeper verifies on every book message without a Python call) or from level lists (the hook
itself, for the keeper's Python paths). This module keeps the rest.
"""
from __future__ import annotations

from orjson import dumps

from .native.kraken import CHECKSUM, DEFAULT_PRECISION, PRECISION, KrakenDecoder, levels_checksum
from .native.kraken import INST_PRECISION as _INST_PRECISION   # instrument -> precision in use
from .venue import Limits, Ping, Venue
from .wire import SIDES, rest_json

BOOK_DEPTH = 25           # subscribed depth (10, 25, 100, 500, 1000 allowed) == VENUE.book_depth
CHANNEL_NAMES = {"trades": "trade", "quotes": "ticker", "book": "book"}
# Kraken REST/asset codes that v2 websocket symbols spell differently
_V2_ASSET = {"XBT": "BTC", "XDG": "DOGE"}
_REST_ASSET = {v: k for k, v in _V2_ASSET.items()}


def book_checksum(bids, asks, instrument: int) -> int:
    """The book keeper's checksum hook: (bids, asks) best first as (price, qty) floats, at the
    instrument's precision."""
    pd, qd = _INST_PRECISION.get(instrument, DEFAULT_PRECISION)
    return levels_checksum(asks, bids, pd, qd)


# the same checksum of the keeper's Book, in C: the keeper verifies `native` on every book
# message; `from_book` (the former Python variant's name) is the same object, for its callers
book_checksum.native = book_checksum.from_book = CHECKSUM


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
