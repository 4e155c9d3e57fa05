"""Bybit v5 public streams (spot and linear): the venue declaration and the pure decoder.

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
"""
from __future__ import annotations

from orjson import dumps, loads

from shm.batch import LAST, LAST_BYTE_FROM_END, pack_level, pack_quote

from .decoder import BookEvent, DecodeError, Decoder
from .venue import Limits, Ping, Venue
from .wire import (LIQUIDATION, MALFORMED, MARK, MS, NAN, OPPOSITE, QUOTE, SIDES, SNAPSHOT, TNEW,
                   TRADE, fail, id_from_str, num, pack_book, rest_json, rest_levels, side)

PATHS = {"spot": "/v5/public/spot", "perp": "/v5/public/linear", "future": "/v5/public/linear"}
CATEGORY = {"spot": "spot", "perp": "linear", "future": "linear"}


class BybitDecoder(Decoder):
    """Bybit v5 public frames of one connection -> records (see the module docstring)."""

    venue = "bybit"
    market = "spot"

    def __init__(self, instruments=None, market=None):
        super().__init__(instruments, market)
        self._bbo: dict[int, list] = {}      # instrument -> [bid, bid_size, ask, ask_size]
        self._mark: dict[int, list] = {}     # instrument -> [mark, funding, index, next_funding_ns]

    def _market_of(self, symbol: str) -> str:
        """Dated contracts ("BTCUSDT-26DEC25") ride the linear/inverse routes as futures."""
        if self.market != "spot" and "-" in symbol:
            return "future"
        return self.market

    def feed(self, frame: bytes, ts_recv: int) -> None:
        out = self.out
        n0 = out.n
        nb0 = len(self.book_events)
        try:
            msg = loads(frame)
            topic = msg.get("topic")
            if topic is None:
                if "op" in msg or "success" in msg or msg.get("type") == "COMMAND_RESP":
                    return                                   # acks, pongs, failures
                raise DecodeError(f"bybit: unrecognised message (keys {sorted(msg)[:8]})")
            if topic.startswith("orderbook."):
                if topic.startswith("orderbook.1."):
                    self._bbo_quote(msg, ts_recv)
                else:
                    self._book(msg, ts_recv)
            elif topic.startswith("publicTrade."):
                for t in msg["data"]:                       # records packed inline (shm/batch.py)
                    inst = self._inst(t["s"])
                    ts = int(t["T"]) * MS
                    sd = SIDES.get(t["S"])
                    if sd is None:
                        sd = side(t["S"])                    # raises: unknown side
                    price = float(t["p"])
                    size = float(t["v"])
                    i = t["i"]                               # id_from_str() without the call
                    tid = int(i) if type(i) is str and len(i) < 19 and i.isdigit() else id_from_str(i)
                    n = out.n
                    pack_level(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts, ts_recv,
                               inst, TRADE, sd, 0, price, size, 0.0, tid)
                    out.n = n + 1
            elif topic.startswith("tickers."):
                self._ticker(msg, ts_recv)
            elif topic.startswith("allLiquidation."):
                add = out.add
                for t in msg["data"]:
                    add(LIQUIDATION, self._inst(t["s"]), int(t["T"]) * MS, ts_recv,
                        OPPOSITE[side(t["S"])], 0, float(t["p"]), float(t["v"]), 0)
            elif topic.startswith("liquidation."):             # deprecated single-object topic
                t = msg["data"]
                out.add(LIQUIDATION, self._inst(t["symbol"]), int(t["updatedTime"]) * MS, ts_recv,
                        OPPOSITE[side(t["side"])], 0, float(t["price"]), float(t["size"]), 0)
            # kline.*, other topics: not decoded
        except MALFORMED as e:
            raise fail(self, n0, nb0, "bybit", e) from None
        n = out.n
        if n > n0:
            out.buf[(n << 6) - LAST_BYTE_FROM_END] |= LAST      # out.mark_last()

    def _book(self, msg: dict, ts_recv: int) -> None:
        out = self.out
        d = msg["data"]
        inst = self._inst(d["s"])
        u = d["u"]
        snap = msg["type"] == "snapshot" or u == 1
        start = pack_book(out, d["b"], d["a"], inst, int(msg["ts"]) * MS, ts_recv,
                          SNAPSHOT if snap else 0, u)
        self.book_events.append(TNEW(BookEvent, (inst, start, out.n, snap, u, u, -1, None)))

    def _bbo_quote(self, msg: dict, ts_recv: int) -> None:
        d = msg["data"]
        inst = self._inst(d["s"])
        q = self._bbo.get(inst)
        if q is None or msg["type"] == "snapshot" or d["u"] == 1:
            q = self._bbo[inst] = [NAN, NAN, NAN, NAN]
        for lv in d["b"]:
            size = float(lv[1])
            q[0], q[1] = (float(lv[0]), size) if size else (NAN, NAN)
        for lv in d["a"]:
            size = float(lv[1])
            q[2], q[3] = (float(lv[0]), size) if size else (NAN, NAN)
        ts = int(msg["ts"]) * MS
        out = self.out
        n = out.n
        pack_quote(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts, ts_recv, inst, QUOTE,
                   0, 0, q[0], q[1], q[2], q[3])
        out.n = n + 1

    def _ticker(self, msg: dict, ts_recv: int) -> None:
        d = msg["data"]
        inst = self._inst(d["symbol"])
        ts = int(msg["ts"]) * MS
        snap = msg.get("type") == "snapshot"
        if "bid1Price" in d or "ask1Price" in d or "bid1Size" in d or "ask1Size" in d:
            q = self._bbo.get(inst)
            if q is None or snap:
                q = self._bbo[inst] = [NAN, NAN, NAN, NAN]
            if "bid1Price" in d:
                q[0] = num(d["bid1Price"])
            if "bid1Size" in d:
                q[1] = num(d["bid1Size"])
            if "ask1Price" in d:
                q[2] = num(d["ask1Price"])
            if "ask1Size" in d:
                q[3] = num(d["ask1Size"])
            self.out.add_quote(inst, ts, ts_recv, 0, q[0], q[1], q[2], q[3])
        if self.market != "spot" and ("markPrice" in d or "fundingRate" in d or "indexPrice" in d
                                      or "nextFundingTime" in d):
            m = self._mark.get(inst)
            if m is None or snap:
                m = self._mark[inst] = [NAN, NAN, NAN, 0]
            if "markPrice" in d:
                m[0] = num(d["markPrice"])
            if "fundingRate" in d:
                m[1] = num(d["fundingRate"])
            if "indexPrice" in d:
                m[2] = num(d["indexPrice"])
            if "nextFundingTime" in d:
                t = d["nextFundingTime"]
                m[3] = int(t) * MS if t != "" else 0
            self.out.add(MARK, inst, ts, ts_recv, 0, 0, m[0], m[1], m[3], m[2])


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
