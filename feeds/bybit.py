"""Bybit v5 public streams (spot and linear): the venue declaration; the frames' decoder,
BybitDecoder, is compiled (feeds/native/bybit.pyx) and implements the rules below.

Wire format (bybit-exchange/docs, docs/v5/websocket/public/*): JSON text frames
{"topic": "<name>.<symbol>", "type": "snapshot"|"delta", "ts": ms, "data": ...}. Spot and
linear are separate hosts paths (/v5/public/spot, /v5/public/linear) and the same symbol
("BTCUSDT") exists on both, so the market is a property of the connection: build the decoder
with market="spot" for /v5/public/spot and market="perp" for /v5/public/linear
(VENUE.extra["market_for_path"](path) gives it; linear dated
futures, symbols with a "-", become "future").

Decoded:
- publicTrade.S   -> TRADE per trade: id=i (numeric for spot; linear UUIDs -> stable 63-bit
                     hash, wire.id_from_str), side S = taker side, ts T
- orderbook.N.S (N > 1) -> BOOK per level, id=u, ts=ts, SNAPSHOT flag for type=snapshot or
                     u == 1 (service restart: overwrite the book); BookEvent(first=last=u,
                     prev=-1). orderbook.full.S (spot, delta-only) is the same shape.
- orderbook.1.S   -> QUOTE (best bid/offer; 10 ms) — kept out of the book so a level-1
                     snapshot never resets a deeper book of the same symbol
- tickers.S       -> QUOTE from bid1Price/bid1Size/ask1Price/ask1Size and, on linear, MARK
                     (markPrice, fundingRate, indexPrice, nextFundingTime). Ticker deltas
                     carry only changed fields, so the last values per instrument are kept
                     and merged (NAN until a field was seen). Spot tickers carry no bid/ask:
                     nothing.
- allLiquidation.S / liquidation.S -> LIQUIDATION: side = the liquidation order's side (Bybit
                     reports the liquidated *position*: "Buy" = a long was liquidated => SELL),
                     price p (bankruptcy price), size v
- op responses (subscribe/ping acks, {"success": false, ...} failures, COMMAND_RESP) and other
  topics (kline...) -> nothing.
Numbers are read as Python's float()/int() read them (strings or JSON numbers); a missing field
or a value they reject makes the frame a DecodeError.
"""
from __future__ import annotations

from orjson import dumps

from .native.bybit import BybitDecoder
from .venue import Limits, Ping, Venue
from .wire import MS, id_from_str, rest_json, rest_levels, side

PATHS = {"spot": "/v5/public/spot", "perp": "/v5/public/linear", "future": "/v5/public/linear"}
CATEGORY = {"spot": "spot", "perp": "linear", "future": "linear"}


# --- connection planning ---------------------------------------------------------------------

TOPICS = {
    "spot": {"trades": "publicTrade.", "quotes": "orderbook.1.", "book": "orderbook.50."},
    "perp": {"trades": "publicTrade.", "quotes": "tickers.", "book": "orderbook.50.",
             "mark": "tickers.", "liquidations": "allLiquidation."},
}
TOPICS["future"] = TOPICS["perp"]
ARGS_PER_MESSAGE = {"spot": 10, "perp": 100, "future": 100}   # spot: documented max 10 args


def subscribe(symbols: list[str], channels: list[str], market: str = "spot") -> list[tuple[str, list[bytes]]]:
    """One connection's subscription: [(path, [messages])] with path "/v5/public/spot" for
    market "spot" or "/v5/public/linear" for "perp"/"future" (appended to VENUE.ws_url).
    The decoder of that connection must be built with the same market. Channels the market
    lacks are skipped; "quotes" and "mark" share the linear tickers topic (sent once)."""
    table = TOPICS[market]
    args: list[str] = []
    seen: set[str] = set()
    for s in symbols:
        for c in channels:
            prefix = table.get(c)
            if prefix is not None and prefix + s not in seen:
                seen.add(prefix + s)
                args.append(prefix + s)
    if not args:
        return []
    n = ARGS_PER_MESSAGE[market]
    msgs = [dumps({"req_id": str(k + 1), "op": "subscribe", "args": args[i:i + n]})
            for k, i in enumerate(range(0, len(args), n))]
    return [(PATHS[market], msgs)]


def market_for_path(path: str) -> str:
    """The decoder market of a connection path (the worker reads extra["market_for_path"])."""
    return "spot" if path.rstrip("/").endswith("/spot") else "perp"


def ping_payload() -> bytes:
    """The documented heartbeat: {"req_id": ..., "op": "ping"} every 20 s."""
    return b'{"op":"ping"}'


# --- REST ------------------------------------------------------------------------------------

def snapshot_request(symbol: str, market: str = "spot") -> tuple[str, dict]:
    """GET /v5/market/orderbook (spot up to 50 levels per the docs' limit, linear up to 200).
    The websocket orderbook topics send their own snapshots; this seeds orderbook.full."""
    category = CATEGORY[market]
    return "/v5/market/orderbook", {"category": category, "symbol": symbol,
                                    "limit": 50 if category == "spot" else 200}


def _result(body: bytes):
    d = rest_json(body, "bybit")
    if d.get("retCode", 0) != 0:
        raise ValueError(f"bybit: REST error retCode={d.get('retCode')} retMsg={d.get('retMsg')!r}")
    return d["result"]


def parse_snapshot(body: bytes) -> tuple[int, list, list]:
    """{"result": {"s", "b", "a", "ts", "u"}} -> (u, bids, asks)."""
    r = _result(body)
    return int(r["u"]), rest_levels(r["b"]), rest_levels(r["a"])


INSTRUMENTS_REQUESTS = [("/v5/market/instruments-info", {"category": "spot"}),
                        ("/v5/market/instruments-info", {"category": "linear", "limit": 1000})]


def parse_instruments(body: bytes) -> list[dict]:
    """instruments-info (either category) -> trading instruments. Spot lot size is
    lotSizeFilter.basePrecision, linear qtyStep; LinearFutures are "future"."""
    r = _result(body)
    category = r.get("category", "spot")
    out = []
    for s in r["list"]:
        if s.get("status", "Trading") != "Trading":
            continue
        lot = s.get("lotSizeFilter", {})
        if category == "spot":
            market = "spot"
            lot_size = float(lot.get("basePrecision") or lot.get("qtyStep") or 0)
        else:
            market = "future" if s.get("contractType") == "LinearFutures" else "perp"
            lot_size = float(lot.get("qtyStep") or 0)
        out.append({"symbol": s["symbol"], "base": s["baseCoin"], "quote": s["quoteCoin"],
                    "market": market, "tick_size": float(s["priceFilter"]["tickSize"]),
                    "lot_size": lot_size})
    return out


def trades_request(symbol: str, from_id: int, market: str = "spot") -> tuple[str, dict]:
    """GET /v5/market/recent-trade: the most recent trades only (spot max 60, linear 1000);
    Bybit has no public from-id pagination, so from_id is not sent: the caller keeps the rows
    newer than what it has (by time; linear ids are UUIDs with no order)."""
    category = CATEGORY[market]
    return "/v5/market/recent-trade", {"category": category, "symbol": symbol,
                                       "limit": 60 if category == "spot" else 1000}


def parse_trades(body: bytes) -> list[tuple]:
    """{"result": {"list": [{"execId","price","size","side","time"}]}} ->
    [(id, ts_ns, price, size, side)], oldest first (the venue sends newest first)."""
    rows = [(id_from_str(t["execId"]), int(t["time"]) * MS, float(t["price"]), float(t["size"]),
             side(t["side"])) for t in _result(body)["list"]]
    rows.sort(key=lambda t: t[1])
    return rows


LIMITS = Limits(
    streams_per_connection=500,       # our cap: keeps the args under the documented 21,000 chars
    subscribe_msgs_per_s=10,          # not documented for public streams; our conservative pace
    connect_attempts=500,             # "Do not build over 500 connections in 5 minutes"
    connect_window_s=300.0,           #  (counted per WebSocket domain)
    max_connection_age_s=0.0,         # no forced lifetime documented for public streams
    symbols_per_subscribe=10,         # spot: up to 10 args per subscription request
    stale_after_s=30.0,
)

VENUE = Venue(
    name="bybit",
    ws_url="wss://stream.bybit.com",
    rest_url="https://api.bybit.com",
    decoder=BybitDecoder,
    limits=LIMITS,
    # send {"op":"ping"} every 20 s (recommended); reply carries "ret_msg":"pong" (spot/linear)
    ping=Ping(mode="text", interval_s=20.0, payload=ping_payload(), pong=b"pong"),
    channels=("trades", "quotes", "book", "mark", "liquidations"),
    markets=("spot", "perp", "future"),
    book_rule="bybit",
    book_depth=20,
    subscribe=subscribe,
    snapshot_request=snapshot_request,
    parse_snapshot=parse_snapshot,
    instruments_request=INSTRUMENTS_REQUESTS[0],
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=10.0,
    extra={
        # subscribe/snapshot_request/trades_request take market= ("spot" | "perp" | "future"):
        # the same symbol exists in both categories. Path -> market for the connection's decoder:
        "market_paths": dict(PATHS),
        "market_for_path": market_for_path,
        # every instruments-info request to make (one per category); instruments_request is the first
        "instruments_requests": list(INSTRUMENTS_REQUESTS),
        # the ws orderbook topics send snapshots: resync = resubscribe the topic
        "resync": "resubscribe",
        "args_chars_per_connection": 21_000,
        "args_per_subscribe": dict(ARGS_PER_MESSAGE),
        "topics": {m: dict(t) for m, t in TOPICS.items()},
    },
)
