"""KuCoin spot public websocket: declaration, token handshake and pure decoder.

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
  welcome, ack, pong, error, notice  -> nothing.

Trade ids: BOOK/TRADE `id` must be an int64. KuCoin's `tradeId` was a 24-hex-digit ObjectId in
older docs (now a decimal string) while the REST backfill (/api/v1/market/histories) only
returns `sequence`, so the TRADE id is int(data["sequence"]) on both paths: deterministic, the
same number for the stream and the backfill, increasing per symbol.

Book rule "kucoin": BookEvent(first=sequenceStart, last=sequenceEnd, prev=-1). Seed from REST
(snapshot_request: public GET /api/v1/market/orderbook/level2_100 -> data.sequence; the full
book /api/v3/market/orderbook/level2 needs an API key): discard events with
sequenceEnd <= seed, apply when sequenceStart <= last + 1 and sequenceEnd > last, else resync.
BOOK record id = the row's own sequence. No checksum.
"""
from __future__ import annotations

import itertools
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

from orjson import dumps, loads

from shm.batch import LAST, LAST_BYTE_FROM_END, pack_level, pack_quote

from .decoder import BookEvent, DecodeError, Decoder
from .venue import Limits, Ping, Venue
from .wire import (ASK, BID, BOOK, MALFORMED, MS, QUOTE, SIDES, SNAPSHOT, TNEW, TRADE, fail,
                   pack_book, rest_json, rest_levels)

_CONTROL = frozenset(("welcome", "ack", "pong", "error", "notice", "ping"))
_IGNORED_SUBJECTS = frozenset(("trade.candles.update", "trade.candles.add", "trade.snapshot"))
TOPICS = {"trades": "/market/match", "quotes": "/spotMarket/level1", "book": "/market/level2"}
TOKEN_PATH = "/api/v1/bullet-public"


class KucoinDecoder(Decoder):
    venue = "kucoin"

    def feed(self, frame: bytes, ts_recv: int) -> None:
        out = self.out
        n0 = out.n
        nb0 = len(self.book_events)
        try:
            m = loads(frame)
            t = m.get("type")
            if t != "message":
                if t in _CONTROL:
                    return
                raise DecodeError(f"kucoin: unexpected message type {t!r}")
            subj = m["subject"]
            if subj in _IGNORED_SUBJECTS:
                return
            topic = m["topic"]
            symbol = topic[topic.index(":") + 1:]
            d = m["data"]
            # records are packed inline (shm/batch.py): add() per record is a call too many
            if subj == "trade.l3match":
                inst = self._ids.get(symbol) or self._inst(symbol)
                n = out.n
                pack_level(out.buf if n < out.cap else out.reserve(1), n << 6, 0, int(d["time"]),
                           ts_recv, inst, TRADE, SIDES[d["side"]], 0, float(d["price"]),
                           float(d["size"]), 0.0, int(d["sequence"]))
                out.n = n + 1
            elif subj == "trade.l2update":
                self._l2update(self._ids.get(symbol) or self._inst(symbol), d, ts_recv)
            elif subj == "level1":
                b = d["bids"]
                a = d["asks"]
                inst = self._ids.get(symbol) or self._inst(symbol)
                n = out.n
                pack_quote(out.buf if n < out.cap else out.reserve(1), n << 6, 0,
                           int(d["timestamp"]) * MS, ts_recv, inst, QUOTE, 0, 0, float(b[0]),
                           float(b[1]), float(a[0]), float(a[1]))
                out.n = n + 1
            elif subj == "trade.ticker":
                tm = d.get("Time") or d.get("time")
                out.add_quote(self.instruments.id(symbol, self.market),
                              int(tm) * MS if tm else ts_recv, ts_recv, 0, float(d["bestBid"]),
                              float(d["bestBidSize"]), float(d["bestAsk"]),
                              float(d["bestAskSize"]))
            elif subj == "level2":
                self._depth(self.instruments.id(symbol, self.market), d, ts_recv)
            else:
                raise DecodeError(f"kucoin: unexpected subject {subj!r}")
        except (DecodeError, *MALFORMED) as e:
            raise fail(self, n0, nb0, "kucoin", e) from None
        n = out.n
        if n > n0:
            out.buf[(n << 6) - LAST_BYTE_FROM_END] |= LAST      # out.mark_last()

    def _l2update(self, inst: int, d, ts_recv: int) -> None:
        out = self.out
        ts = int(d["time"]) * MS
        ch = d["changes"]
        start = out.n
        off = start << 6
        rows = ch["bids"]
        buf = out.reserve(len(rows))
        for row in rows:
            if row[0] != "0":
                pack_level(buf, off, 0, ts, ts_recv, inst, BOOK, BID, 0, float(row[0]),
                           float(row[1]), 0.0, int(row[2]))
                off += 64
        out.n = off >> 6
        rows = ch["asks"]
        buf = out.reserve(len(rows))
        for row in rows:
            if row[0] != "0":
                pack_level(buf, off, 0, ts, ts_recv, inst, BOOK, ASK, 0, float(row[0]),
                           float(row[1]), 0.0, int(row[2]))
                off += 64
        out.n = off >> 6
        self.book_events.append(TNEW(BookEvent, (inst, start, out.n, False, int(d["sequenceStart"]),
                                                 int(d["sequenceEnd"]), -1, None)))

    def _depth(self, inst: int, d, ts_recv: int) -> None:
        out = self.out
        start = pack_book(out, d["bids"], d["asks"], inst, int(d["timestamp"]) * MS, ts_recv,
                          SNAPSHOT, 0)
        self.book_events.append(TNEW(BookEvent, (inst, start, out.n, True, -1, -1, -1, None)))


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
