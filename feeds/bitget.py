"""Bitget v2 public websocket (spot): the venue declaration; the frames' decoder, BitgetDecoder,
and the book checksum are compiled (feeds/native/bitget.pyx) and implement the rules below.

Wire (bitget.com/api-doc, spot websocket public channels):
{"action": snapshot|update, "arg": {"instType", "channel", "instId"}, "data": [...], "ts"}.
  trade          -> TRADE per trade (side = taker side, tradeId numeric string, ts ms string)
  books1, ticker -> QUOTE (books1: bids[0]/asks[0]; ticker: bidPr/bidSz/askPr/askSz)
  books          -> BOOK per level: snapshot first, then updates; size "0" deletes
  books5/books15 -> BOOK snapshot levels (every push is a full top-N snapshot)
  candle*        -> nothing
  "pong" text frames, {"event": "subscribe"|"unsubscribe"|"error"|"login", ...} -> nothing.
instType SPOT (or spot) is the spot market, any other (USDT-/COIN-/USDC-FUTURES, demo
S*-FUTURES) a perp; a frame without instType is in the decoder's market. Numbers are read as
Python's float()/int() read them (strings or JSON numbers); a missing field, a value they reject
or another channel makes the frame a DecodeError.

Book rule "bitget": BookEvent(first=last=data.seq, prev=data.pseq when the venue sends it, else
-1; checksum=data.checksum, a signed CRC32, on updates; None on snapshots, which are not
checksummed). The book keeper merges the levels, then checks the CRC32 of its top 25 levels
(book_depth = 25) against it. Bitget checksums its ORIGINAL price/size strings ("0.0500" is not
"0.05"), so the decoder keeps, per instrument and side, "price_str:size_str" of every live
`books` level (replaced on a snapshot, size "0" removes; LEVEL_STRINGS shows them), and the
checksum finds each of the keeper's levels' text by its price (a level without one counts as
repr(price):repr(size)). The keeper calls it in C (book_checksum.native, on its Book);
book_checksum(bids, asks, instrument) is the same rule for (price, size) floats.
Mismatch => resync (extra["resync_messages"](symbol) or a rotation).
No REST seeding: the first push of `books` is the full book.
"""
from __future__ import annotations

from orjson import dumps

from .checksum import BITGET_LEVELS, bitget_checksum  # noqa: F401  (the rule's CRC, for callers)
from .native.bitget import LEVEL_STRINGS, BitgetChecksum, BitgetDecoder, levels_checksum  # noqa: F401
from .venue import Limits, Ping, Venue
from .wire import MS, SIDES, id_from_str, rest_json

CHANNEL_NAMES = {"trades": "trade", "quotes": "books1", "book": "books"}


def book_checksum(bids, asks, instrument: int) -> int:
    """The book keeper's checksum hook: (bids, asks) best first as (price, size) floats; its
    `native` variant reads the keeper's Book in C (the same rule, one copy, in the native module)."""
    return levels_checksum(bids, asks, instrument)


book_checksum.native = BitgetChecksum()


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
