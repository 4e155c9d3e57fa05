"""KuCoin spot public websocket: declaration and token handshake; its decoder is native.

Connecting (KuCoin "Apply connect token"): POST {rest_url}/api/v1/bullet-public (no auth)
returns a token and instanceServers; extra["connect_url"](body) turns that body into
(ws_url_with_token_and_connectId, ping_interval_s, ping_timeout_s). The server then sends
{"type": "welcome", "id": <connectId>} and only after it may the client subscribe. Tokens
live 24 h: a reconnect fetches a new one (extra["token_request"]).

Wire: {"type": "message", "topic", "subject", "data"}.
  trade.l3match (/market/match)      -> TRADE (side = taker side; time is a ns string)
  trade.ticker (/market/ticker)      -> QUOTE (bestBid/bestBidSize/bestAsk/bestAskSize)
  level1 (/spotMarket/level1)        -> QUOTE (bids/asks = [price, size])
  trade.l2update (/market/level2)    -> BOOK per change row [price, size, sequence]; size "0"
                                        deletes; a price "0" row only advances the sequence
                                        (no record)
  level2 (/spotMarket/level2Depth5/50) -> BOOK snapshot levels (no sequence)
  candles, snapshot                  -> nothing
  welcome, ack, pong, error, notice, ping -> nothing.

Trade ids: BOOK/TRADE `id` must be an int64. KuCoin's `tradeId` was a 24-hex-digit ObjectId in
older docs (now a decimal string) while the REST backfill (/api/v1/market/histories) only
returns `sequence`, so the TRADE id is int(data["sequence"]) on both paths: deterministic, the
same number for the stream and the backfill, increasing per symbol.

Book rule "kucoin": BookEvent(first=sequenceStart, last=sequenceEnd, prev=-1). Seed from REST
(snapshot_request: public GET /api/v1/market/orderbook/level2_100 -> data.sequence; the full
book /api/v3/market/orderbook/level2 needs an API key): discard events with
sequenceEnd <= seed, apply when sequenceStart <= last + 1 and sequenceEnd > last, else resync.
BOOK record id = the row's own sequence. No checksum.

The frames are decoded by KucoinDecoder of feeds/native/kucoin.pyx (compiled: no Python object
per value on the hot path), which implements the rules above; this module keeps the rest. The
worker subscribes once a frame holds '"welcome"' (extra["wait_for"]) and matches the pong by
'"pong"' (Ping.pong); both frames still reach the decoder, which makes nothing of them.
"""
from __future__ import annotations

import itertools
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

from orjson import dumps

from .native.kucoin import KucoinDecoder
from .venue import Limits, Ping, Venue
from .wire import SIDES, rest_json, rest_levels

TOPICS = {"trades": "/market/match", "quotes": "/spotMarket/level1", "book": "/market/level2"}
TOKEN_PATH = "/api/v1/bullet-public"


# ----------------------------------------------------------------------------- declaration

_ids = itertools.count(int(time.time() * 1000))


def subscribe(symbols: list[str], channels: list[str]) -> list[tuple[str, list[bytes]]]:
    """One connection: [("", [subscribe messages])], sent after the welcome message.
    One topic per channel with up to 100 comma-joined symbols ("/market/match:BTC-USDT,...")."""
    per = LIMITS.symbols_per_subscribe
    msgs = []
    for c in channels:
        topic = TOPICS.get(c)
        if topic is None:
            raise ValueError(f"kucoin has no channel {c!r}")
        for i in range(0, len(symbols), per):
            msgs.append(dumps({"id": str(next(_ids)), "type": "subscribe",
                               "topic": topic + ":" + ",".join(symbols[i:i + per]),
                               "privateChannel": False, "response": True}))
    return [("", msgs)]


def connect_url(body: bytes | str | dict, connect_id: str | None = None,
                ws_base: str | None = None) -> tuple[str, float, float]:
    """The bullet-public answer -> (wss URL with token and connectId, ping interval s, ping
    timeout s). The first instance server is used (KuCoin returns one; any is valid).

    ws_base: when the feed is pointed somewhere other than the live default (the simulator, a
    proxy), its scheme://host:port replaces the endpoint's, keeping the endpoint's path."""
    doc = body if isinstance(body, dict) else rest_json(body, "kucoin")
    if doc.get("code") not in ("200000", None):
        raise ValueError(f"kucoin: bullet-public error {doc.get('code')}: {doc.get('msg')}")
    data = doc["data"]
    server = data["instanceServers"][0]
    endpoint = server["endpoint"]
    if ws_base:
        base = urlsplit(ws_base)
        ep = urlsplit(endpoint)
        endpoint = urlunsplit((base.scheme, base.netloc, ep.path or "/", ep.query, ""))
    cid = connect_id or uuid.uuid4().hex
    sep = "&" if "?" in endpoint else "?"
    url = f"{endpoint}{sep}token={data['token']}&connectId={cid}"
    return url, server.get("pingInterval", 18000) / 1000.0, server.get("pingTimeout", 10000) / 1000.0


def snapshot_request(symbol: str) -> tuple[str, dict]:
    return "/api/v1/market/orderbook/level2_100", {"symbol": symbol}


def parse_snapshot(body: bytes) -> tuple[int, list, list]:
    """{"code", "data": {"sequence", "time", "bids", "asks"}} -> (sequence, bids, asks)."""
    doc = rest_json(body, "kucoin")
    if doc.get("code") not in ("200000", None):
        raise ValueError(f"kucoin: order book error {doc.get('code')}: {doc.get('msg')}")
    d = doc["data"]
    return int(d["sequence"]), rest_levels(d["bids"]), rest_levels(d["asks"])


def parse_instruments(body: bytes) -> list[dict]:
    """GET /api/v2/symbols -> [{symbol, base, quote, market, tick_size, lot_size}]."""
    doc = rest_json(body, "kucoin")
    return [{
        "symbol": p["symbol"], "base": p["baseCurrency"], "quote": p["quoteCurrency"],
        "market": "spot", "tick_size": float(p["priceIncrement"]),
        "lot_size": float(p["baseIncrement"]),
    } for p in doc["data"]]


def trades_request(symbol: str, from_id: int = 0) -> tuple[str, dict]:
    """GET /api/v1/market/histories: the newest 100 trades (no cursor; keep id > from_id)."""
    return "/api/v1/market/histories", {"symbol": symbol}


def parse_trades(body: bytes) -> list[tuple]:
    """-> [(sequence, ts_ns, price, size, taker side)]; `time` is in ns."""
    doc = rest_json(body, "kucoin")
    return [(int(t["sequence"]), int(t["time"]), float(t["price"]), float(t["size"]),
             SIDES[t["side"]]) for t in doc["data"]]


def _ping() -> bytes:
    return dumps({"id": str(next(_ids)), "type": "ping"})


LIMITS = Limits(
    streams_per_connection=300,     # topics per connection (one symbol = one topic)
    subscribe_msgs_per_s=10.0,      # 100 messages per 10 s sent to the server
    connect_attempts=30,            # connection limit: 30 per minute
    connect_window_s=60.0,
    max_connection_age_s=0.0,       # none stated (the token expires after 24 h: new token on reconnect)
    symbols_per_subscribe=100,      # max 100 symbols in one subscribe topic
    stale_after_s=30.0,
)

VENUE = Venue(
    name="kucoin",
    ws_url="wss://ws-api-spot.kucoin.com/",   # a default: the real one comes from bullet-public
    rest_url="https://api.kucoin.com",
    decoder=KucoinDecoder,
    limits=LIMITS,
    ping=Ping(mode="text", interval_s=18.0, payload=_ping, pong=b'"pong"'),
    channels=("trades", "quotes", "book"),
    markets=("spot",),
    book_rule="kucoin",
    book_depth=20,
    subscribe=subscribe,
    snapshot_request=snapshot_request,
    parse_snapshot=parse_snapshot,
    instruments_request=("/api/v2/symbols", {}),
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=10.0,
    extra={
        "connect_url": connect_url,              # (bullet-public body) -> (url, ping_s, timeout_s)
        "token_request": ("POST", TOKEN_PATH),   # fetch before every (re)connect
        "wait_for": b'"welcome"',                # subscribe only after this message
        "full_snapshot_request": ("/api/v3/market/orderbook/level2", "needs an API key"),
    },
)
