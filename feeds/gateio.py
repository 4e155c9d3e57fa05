"""Gate.io spot websocket v4: the venue declaration; the frames' decoder, GateioDecoder, is
compiled (feeds/native/gateio.pyx) and implements the rules below.

Wire (gate.com/docs/developers/apiv4/ws/en): {"time", "time_ms", "channel", "event", "result"};
only event "update" (or "all") carries data.
  spot.trades            -> TRADE (side = taker side; id = `id`, the id REST /spot/trades pages
                            by, else id_market; numeric ids as they are, others wire.id_from_str;
                            create_time_ms "1606292218213.4578" -> ns without float loss
                            (ms_str_ns), else create_time s; a list of trades is read too)
  spot.book_ticker       -> QUOTE (b/B/a/A, t ms)
  spot.order_book_update -> BOOK per level (amounts absolute, "0" deletes; `full: true` pushes a
                            snapshot that overwrites the book -> SNAPSHOT flag)
  spot.obu               -> BOOK per level of the newer channel (result.s "ob.BTC_USDT.50")
  spot.order_book        -> BOOK snapshot levels (limited-level full snapshot, lastUpdateId)
  spot.candlesticks, spot.tickers, spot.pong, subscribe/unsubscribe answers -> nothing.
Numbers are read as Python's float()/int() read them (strings or JSON numbers); a missing field,
a value they reject or another channel makes the frame a DecodeError.

Book rule "gateio": BookEvent(first=U, last=u, prev=-1, checksum=None). Seed from REST
GET /api/v4/spot/order_book?with_id=true (snapshot_request/parse_snapshot -> its `id`): drop
events with u < id + 1, the first applied event must have U <= id + 1 <= u, afterwards every
U must equal the previous u + 1 (else rebuild). BOOK record id = u. No checksum.

The subscribe messages carry `time` (s) which Gate checks against its clock (+-60 s): the
connection code passes each message through extra["restamp"] as it sends it
(feeds/connection.py Socket.send), so a reconnect hours later still sends a current time.
"""
from __future__ import annotations

import time

from orjson import dumps, loads

from .native.gateio import GateioDecoder
from .venue import Limits, Ping, Venue
from .wire import MS, SIDES, id_from_str, rest_json, rest_levels

CHANNEL_NAMES = {"trades": "spot.trades", "quotes": "spot.book_ticker",
                 "book": "spot.order_book_update"}
BOOK_INTERVAL = "100ms"       # the only spot.order_book_update speed left (1000ms removed 2024-11)


def ms_str_ns(value) -> int:
    """A millisecond time with a decimal fraction ("1606292218213.4578" or a number) -> ns (REST
    trades; the native decoder reads the usual strings itself and hands it the rest)."""
    if isinstance(value, str):
        whole, _, frac = value.partition(".")
        return int(whole) * MS + (int((frac + "000000")[:6]) if frac else 0)
    return int(round(value * 1000)) * 1000


# ----------------------------------------------------------------------------- declaration

def _msg(channel: str, payload: list) -> bytes:
    return dumps({"time": int(time.time()), "channel": channel, "event": "subscribe",
                  "payload": payload})


def subscribe(symbols: list[str], channels: list[str]) -> list[tuple[str, list[bytes]]]:
    """One connection: [("", [subscribe messages])]. trades/book_ticker take a list of pairs;
    order_book_update takes one pair per request ([pair, "100ms"]). Book requests go first:
    each book needs a REST seed after its first update, the longest warm-up."""
    per = LIMITS.symbols_per_subscribe
    msgs = []
    for c in sorted(channels, key=lambda c: c != "book"):
        name = CHANNEL_NAMES.get(c)
        if name is None:
            raise ValueError(f"gateio has no channel {c!r}")
        if name == "spot.order_book_update":
            msgs.extend(_msg(name, [s, BOOK_INTERVAL]) for s in symbols)
        else:
            msgs.extend(_msg(name, symbols[i:i + per]) for i in range(0, len(symbols), per))
    return [("", msgs)]


def restamp(message: bytes) -> bytes:
    """The same request with `time` set to now (Gate rejects times more than 60 s off)."""
    d = loads(message)
    if "time" in d:
        d["time"] = int(time.time())
    return dumps(d)


def snapshot_request(symbol: str) -> tuple[str, dict]:
    return "/api/v4/spot/order_book", {"currency_pair": symbol, "limit": 100, "with_id": "true"}


def parse_snapshot(body: bytes) -> tuple[int, list, list]:
    """{"id", "current", "update", "asks", "bids"} -> (id, bids, asks) as [(price, size)]."""
    doc = rest_json(body, "gateio")
    if "id" not in doc:
        raise ValueError("gateio: order_book without id (request it with with_id=true)")
    return int(doc["id"]), rest_levels(doc["bids"]), rest_levels(doc["asks"])


def parse_instruments(body: bytes) -> list[dict]:
    """GET /api/v4/spot/currency_pairs -> [{symbol, base, quote, market, tick_size, lot_size}]."""
    doc = rest_json(body, "gateio")
    return [{
        "symbol": p["id"], "base": p["base"], "quote": p["quote"], "market": "spot",
        "tick_size": 10.0 ** -int(p["precision"]), "lot_size": 10.0 ** -int(p["amount_precision"]),
    } for p in doc]


def trades_request(symbol: str, from_id: int = 0) -> tuple[str, dict]:
    """GET /api/v4/spot/trades; with from_id, the trades after it (last_id, reverse=false)."""
    params = {"currency_pair": symbol, "limit": 1000}
    if from_id > 0:
        params["last_id"] = str(from_id)
        params["reverse"] = "false"
    return "/api/v4/spot/trades", params


def parse_trades(body: bytes) -> list[tuple]:
    """-> [(trade_id, ts_ns, price, size, side)]; `side` read as the taker side, as on the
    stream (the REST schema only says "Order side")."""
    doc = rest_json(body, "gateio")
    return [(id_from_str(t["id"]), ms_str_ns(t["create_time_ms"]), float(t["price"]),
             float(t["amount"]), SIDES[t["side"]]) for t in doc]


def _ping() -> bytes:
    return dumps({"time": int(time.time()), "channel": "spot.ping"})


LIMITS = Limits(
    streams_per_connection=100,     # not stated on the spot WS v4 page: a conservative choice
    subscribe_msgs_per_s=10.0,      # not stated: conservative
    connect_attempts=50,            # not stated: conservative
    connect_window_s=60.0,
    max_connection_age_s=0.0,       # no forced disconnect documented
    symbols_per_subscribe=50,
    stale_after_s=30.0,
)

VENUE = Venue(
    name="gateio",
    ws_url="wss://api.gateio.ws/ws/v4/",
    rest_url="https://api.gateio.ws",
    decoder=GateioDecoder,
    limits=LIMITS,
    # the server pings at protocol level; spot.ping also resets its idle timer
    ping=Ping(mode="text", interval_s=10.0, payload=_ping, pong=b"spot.pong"),
    channels=("trades", "quotes", "book"),
    markets=("spot",),
    book_rule="gateio",
    book_depth=20,
    subscribe=subscribe,
    snapshot_request=snapshot_request,
    parse_snapshot=parse_snapshot,
    instruments_request=("/api/v4/spot/currency_pairs", {}),
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=10.0,         # public endpoints: 200 requests / 10 s per IP
    extra={"restamp": restamp},
)
