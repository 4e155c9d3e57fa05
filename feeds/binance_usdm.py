"""Binance USD-M futures: the venue declaration, and the rules of its market-data decoder
(BinanceUsdmDecoder, compiled: feeds/native/binance.pyx implements what this docstring says).

Same wire format as spot (feeds/binance.py), with these differences:
- two routed hosts since the 2026 URL split (legacy unrouted /ws and /stream retired
  2026-04-23): wss://fstream.binance.com/public carries the high-frequency book streams
  (bookTicker, depth, partial depth); wss://fstream.binance.com/market carries the rest
  (aggTrade, markPrice, forceOrder, kline, tickers). A stream subscribed on the wrong route
  never arrives, so subscribe() returns one entry per route.
- depthUpdate carries pu (final update id of the previous event): BookEvent prev=pu. The
  partial-depth stream (<symbol>@depth<N>) sends the *same* depthUpdate shape; only the
  stream name tells it is a top-N snapshot, so it is decoded as a snapshot when the combined
  wrapper names a depth<N> stream.
- bookTicker has e/E/T: ts_event = E.
- markPriceUpdate -> MARK: price=mark p, size=funding rate r (NAN for delivery contracts,
  which send ""), extra (ask_price)=index price i, id=next funding time T in ns (0 = none).
- forceOrder -> LIQUIDATION: side S (the liquidation order's side), price ap (average fill
  price; p when ap is 0), size z (filled quantity; q when z is 0), ts T.
Markets: symbols with a delivery suffix ("BTCUSDT_250627") are "future", the rest "perp".
"""
from __future__ import annotations

from .binance import parse_depth, parse_exchange_info, subscribe_messages
from .native.binance import BinanceUsdmDecoder
from .venue import Limits, Ping, Venue
from .wire import BUY, MS, SELL, rest_json


# --- connection planning: routes, streams and SUBSCRIBE messages -------------------------------

PUBLIC = {                       # /public route: high-frequency book data
    "quotes": "@bookTicker",
    "book": "@depth@100ms",
}
MARKET = {                       # /market route: everything else
    "trades": "@aggTrade",
    "mark": "@markPrice@1s",
    "liquidations": "@forceOrder",
}


def subscribe(symbols: list[str], channels: list[str]) -> list[tuple[str, list[bytes]]]:
    """Subscriptions for these symbols and channels: [(path, [messages])], one entry per
    route, each entry its own connection: ("/public/stream", ...) for quotes/book and
    ("/market/stream", ...) for trades/mark/liquidations. path is appended to VENUE.ws_url;
    the combined-stream wrapper names each payload's stream (needed for partial depth)."""
    plan = []
    for path, table in (("/public/stream", PUBLIC), ("/market/stream", MARKET)):
        streams = [s.lower() + table[c] for s in symbols for c in channels if c in table]
        if streams:
            plan.append((path, subscribe_messages(streams, LIMITS.symbols_per_subscribe)))
    return plan


# --- REST: depth snapshot, instruments, trade backfill -----------------------------------------

def snapshot_request(symbol: str) -> tuple[str, dict]:
    """GET /fapi/v1/depth?limit=1000 (the documented local-book procedure uses 1000)."""
    return "/fapi/v1/depth", {"symbol": symbol.upper(), "limit": 1000}


def parse_snapshot(body: bytes) -> tuple[int, list, list]:
    """GET /fapi/v1/depth -> (lastUpdateId, bids, asks) (the body also carries "E", "T")."""
    return parse_depth(body, "binance_usdm")


INSTRUMENTS_REQUEST = ("/fapi/v1/exchangeInfo", {})


def parse_instruments(body: bytes) -> list[dict]:
    """exchangeInfo -> trading contracts: PERPETUAL => "perp", delivery contracts => "future"."""
    return parse_exchange_info(
        body, "binance_usdm",
        lambda s: "perp" if s.get("contractType", "PERPETUAL") == "PERPETUAL" else "future")


def trades_request(symbol: str, from_id: int) -> tuple[str, dict]:
    """GET /fapi/v1/aggTrades?fromId= (public): the aggTrade id space we subscribe to,
    oldest first from from_id inclusive, up to 1000 per call."""
    return "/fapi/v1/aggTrades", {"symbol": symbol.upper(), "fromId": int(from_id), "limit": 1000}


def parse_trades(body: bytes) -> list[tuple]:
    """[{"a","p","q","f","l","T","m"}] -> [(a, ts_ns, price, size, side)]."""
    rows = rest_json(body, "binance_usdm")
    return [(int(r["a"]), int(r["T"]) * MS, float(r["p"]), float(r["q"]), SELL if r["m"] else BUY)
            for r in rows]


LIMITS = Limits(
    streams_per_connection=1024,      # maximum 1024 streams per connection
    subscribe_msgs_per_s=10,          # 10 incoming messages per second per connection
    connect_attempts=300,             # not stated on the futures Connect page; spot's 300 ...
    connect_window_s=300.0,           # ... per 5 minutes is used as the conservative figure
    max_connection_age_s=86_400.0,    # a connection is only valid for 24 hours
    symbols_per_subscribe=100,        # stream names per SUBSCRIBE message (our choice)
    stale_after_s=30.0,
)

VENUE = Venue(
    name="binance_usdm",
    ws_url="wss://fstream.binance.com",
    rest_url="https://fapi.binance.com",
    decoder=BinanceUsdmDecoder,
    limits=LIMITS,
    # server pings every 3 minutes; no pong within 10 minutes => disconnected
    ping=Ping(mode="server", interval_s=180.0),
    channels=("trades", "quotes", "book", "mark", "liquidations"),
    markets=("perp", "future"),
    book_rule="binance_usdm",
    subscribe=subscribe,
    snapshot_request=snapshot_request,
    parse_snapshot=parse_snapshot,
    instruments_request=INSTRUMENTS_REQUEST,
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=10.0,
    extra={
        # route (path prefix) -> the channels it carries; subscribe() already splits by route
        "routes": {"/public": sorted(PUBLIC), "/market": sorted(MARKET)},
        "streams": {**PUBLIC, **MARKET},
        "shutdown_event": "serverShutdown",
    },
)
