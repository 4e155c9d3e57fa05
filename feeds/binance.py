"""Binance spot: the venue declaration, and the rules of its market-data decoder (BinanceDecoder,
compiled: feeds/native/binance.pyx implements what this docstring says).

Wire format (binance-spot-api-docs, web-socket-streams.md): JSON text frames, either the raw
payload (/ws) or the combined-stream wrapper {"stream": "<name>", "data": <payload>} (/stream).
We always connect to /stream and subscribe with SUBSCRIBE messages, so every payload arrives
with its stream name (partial-depth payloads carry no symbol; the stream name supplies it).

Decoded:
- trade       -> TRADE  id=t, ts=T, side: m (buyer is maker) true => aggressor SELL
- aggTrade    -> TRADE  id=a, ts=T
- bookTicker  -> QUOTE  (spot bookTicker has no event time: ts_event 0; u is not stored,
                 a QUOTE has no id field)
- depthUpdate -> BOOK per level, id=u, ts=E; BookEvent(first=U, last=u, prev=-1)
- partial depth {lastUpdateId, bids, asks} -> BOOK levels flagged SNAPSHOT, id=lastUpdateId;
                 BookEvent(snapshot=True, first=last=lastUpdateId, prev=-1)
- serverShutdown -> notices "shutdown"; {"result":..,"id":..} acks and {"code","msg"} errors
  -> nothing. Other event types (kline, tickers...) -> nothing.
"""
from __future__ import annotations

from orjson import dumps

from .native.binance import BinanceDecoder
from .venue import Limits, Ping, Venue
from .wire import BUY, MS, SELL, filter_value, rest_json, rest_levels


# --- connection planning: streams and SUBSCRIBE messages ---------------------------------------

STREAMS = {                      # our channel -> Binance spot stream suffix
    "trades": "@trade",
    "quotes": "@bookTicker",
    "book": "@depth@100ms",
}


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def subscribe_messages(streams: list[str], per_message: int, first_id: int = 1) -> list[bytes]:
    """SUBSCRIBE messages carrying `per_message` stream names each."""
    return [dumps({"method": "SUBSCRIBE", "params": chunk, "id": first_id + k})
            for k, chunk in enumerate(_chunks(streams, per_message))]


def subscribe(symbols: list[str], channels: list[str]) -> list[tuple[str, list[bytes]]]:
    """One connection's subscription: [(path, [messages])].

    path is appended to VENUE.ws_url ("/stream": combined-stream wrapper, so every payload
    names its stream); the messages are sent in order after the connection opens, no faster
    than Limits.subscribe_msgs_per_s. Channels this venue lacks are skipped."""
    streams = [s.lower() + STREAMS[c] for s in symbols for c in channels if c in STREAMS]
    if not streams:
        return []
    return [("/stream", subscribe_messages(streams, LIMITS.symbols_per_subscribe))]


# --- REST: depth snapshot, instruments, trade backfill -----------------------------------------

def snapshot_request(symbol: str) -> tuple[str, dict]:
    """GET /api/v3/depth (weight 50 at limit 1000; 5000 is the documented maximum)."""
    return "/api/v3/depth", {"symbol": symbol.upper(), "limit": 1000}


def parse_depth(body: bytes, venue: str) -> tuple[int, list, list]:
    """A Binance-family depth snapshot {"lastUpdateId", "bids": [[p, q]], "asks": [[p, q]]}
    (spot /api/v3/depth, USD-M /fapi/v1/depth) -> (lastUpdateId, bids, asks)."""
    d = rest_json(body, venue)
    return int(d["lastUpdateId"]), rest_levels(d["bids"]), rest_levels(d["asks"])


def parse_snapshot(body: bytes) -> tuple[int, list, list]:
    """GET /api/v3/depth -> (lastUpdateId, bids, asks)."""
    return parse_depth(body, "binance")


INSTRUMENTS_REQUEST = ("/api/v3/exchangeInfo", {})


def parse_exchange_info(body: bytes, venue: str, market_of) -> list[dict]:
    """A Binance-family exchangeInfo -> trading symbols with PRICE_FILTER.tickSize and
    LOT_SIZE.stepSize; market_of(symbol_entry) names the market ("spot", "perp", "future")."""
    d = rest_json(body, venue)
    out = []
    for s in d["symbols"]:
        if s.get("status", "TRADING") != "TRADING":
            continue
        filters = s.get("filters", [])
        out.append({"symbol": s["symbol"], "base": s["baseAsset"], "quote": s["quoteAsset"],
                    "market": market_of(s),
                    "tick_size": filter_value(filters, "PRICE_FILTER", "tickSize"),
                    "lot_size": filter_value(filters, "LOT_SIZE", "stepSize")})
    return out


def parse_instruments(body: bytes) -> list[dict]:
    """GET /api/v3/exchangeInfo -> spot symbols."""
    return parse_exchange_info(body, "binance", lambda s: "spot")


def trades_request(symbol: str, from_id: int) -> tuple[str, dict]:
    """GET /api/v3/historicalTrades?fromId= (public, weight 25): the `trade` id space we
    subscribe to, oldest first from from_id inclusive, up to 1000 per call."""
    return "/api/v3/historicalTrades", {"symbol": symbol.upper(), "fromId": int(from_id), "limit": 1000}


def parse_trades(body: bytes) -> list[tuple]:
    """[{"id","price","qty","time","isBuyerMaker"}] -> [(id, ts_ns, price, size, side)]."""
    rows = rest_json(body, "binance")
    return [(int(r["id"]), int(r["time"]) * MS, float(r["price"]), float(r["qty"]),
             SELL if r["isBuyerMaker"] else BUY) for r in rows]


LIMITS = Limits(
    streams_per_connection=1024,      # "A single connection can listen to a maximum of 1024 streams"
    subscribe_msgs_per_s=5,           # 5 incoming msgs/s per connection, pings/pongs included
    connect_attempts=300,             # 300 connection attempts ...
    connect_window_s=300.0,           # ... per 5 minutes per IP
    max_connection_age_s=86_400.0,    # a connection is only valid for 24 hours
    symbols_per_subscribe=100,        # stream names per SUBSCRIBE message (our choice; no documented cap)
    stale_after_s=30.0,
)

VENUE = Venue(
    name="binance",
    ws_url="wss://stream.binance.com:9443",
    rest_url="https://api.binance.com",
    decoder=BinanceDecoder,
    limits=LIMITS,
    # server pings every 20 s, we must pong within a minute (copying the payload; picows does)
    ping=Ping(mode="server", interval_s=20.0),
    channels=("trades", "quotes", "book"),
    markets=("spot",),
    book_rule="binance_spot",
    subscribe=subscribe,
    snapshot_request=snapshot_request,
    parse_snapshot=parse_snapshot,
    instruments_request=INSTRUMENTS_REQUEST,
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=10.0,
    extra={
        # the market-data-only host serves the same streams (and /api/v3 market data REST)
        "ws_url_data_only": "wss://data-stream.binance.vision",
        "rest_url_data_only": "https://data-api.binance.vision",
        # streams each channel uses (the simulator and docs read this)
        "streams": dict(STREAMS),
        # the shutdown notice: reconnect as soon as possible
        "shutdown_event": "serverShutdown",
    },
)
