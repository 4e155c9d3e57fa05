"""Bitget v2 public websocket (spot) as the simulator speaks it (ws.bitget.com/v2/ws/public +
api.bitget.com).

Websocket at /v2/ws/public: {"op": "subscribe"|"unsubscribe", "args": [{"instType": "SPOT",
"channel", "instId"}, ...]} answered per arg with {"event": "subscribe", "arg": {...}} (or
{"event": "error", "code": 30001, ...} for an unknown instrument or channel); the text "ping"
is answered "pong". Channels: trade (side = taker), books1 (best bid/offer snapshot on every
change), books (full snapshot on subscribe, then updates). `books` messages carry `seq` (one
more per book message of the instrument, so a `gap` fault shows as a skipped seq) and
`checksum`: CRC32 as a signed int32 of the top 25 levels "bid1p:bid1s:ask1p:ask1s:..." in the
exact strings sent. More than 10 incoming messages a second close the connection. No server
pings; the 24 h forced disconnect comes without a notice.
REST: /api/v2/spot/public/symbols, /api/v2/spot/market/fills, /api/v2/spot/market/orderbook,
/api/v2/public/time.
"""
from __future__ import annotations

import zlib

import orjson

from .protocol import Session, VenueProtocol

CHECKSUM_LEVELS = 25
ARG = b'"arg":{"instType":"SPOT","channel":"%s","instId":"%s"}'
TRADE = (b'{"action":"update",' + ARG % (b"trade", b"%s") +
         b',"data":[{"ts":"%d","price":"%s","size":"%s","side":"%s","tradeId":"%d"}],"ts":%d}')
BOOKS = (b'{"action":"%s",' + ARG % (b"books", b"%s") +
         b',"data":[{"asks":[%s],"bids":[%s],"checksum":%d,"seq":%d,"ts":"%d"}],"ts":%d}')
BOOKS1 = (b'{"action":"snapshot",' + ARG % (b"books1", b"%s") +
          b',"data":[{"asks":[["%s","%s"]],"bids":[["%s","%s"]],"checksum":0,"seq":%d,"ts":"%d"}],"ts":%d}')
SIDE = (b"buy", b"sell")            # buyer_is_maker 1 -> the seller was the aggressor
CHANNELS = ("trade", "books", "books1")


def _levels(changes) -> bytes:
    if not changes:
        return b""
    return b",".join([b'["%s","%s"]' % lv for lv in changes])


def checksum(book) -> int:
    """Bitget's signed CRC32 of the model book's top 25 levels, interleaved bid, ask."""
    px = book.px
    n = min(CHECKSUM_LEVELS, book.depth)
    bids, asks = book.bids, book.asks
    parts = []
    for i in range(n):
        t = book.bid - i
        parts.append(px(t))
        parts.append(bids[t])
        t = book.ask + i
        parts.append(px(t))
        parts.append(asks[t])
    v = zlib.crc32(b":".join(parts))
    return v - (1 << 32) if v & 0x8000_0000 else v


class Bitget(VenueProtocol):
    name = "bitget"
    markets = ("spot",)
    ping_interval = 0.0
    max_incoming_per_s = 10
    ids_per_update = (1, 1)
    notice_supported = False

    def native(self, inst, market: str) -> str:
        return f"{inst.base}{inst.quote}"

    # --- websocket -----------------------------------------------------------------------
    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        if path.rstrip("/") != "/v2/ws/public":
            return False
        session.market = "spot"
        return True

    def on_text(self, session: Session, data: bytes) -> None:
        if data == b"ping":
            session.send(b"pong")
            return
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            session.send_json({"event": "error", "code": 30012, "msg": "Invalid request"})
            return
        if not isinstance(msg, dict) or msg.get("op") not in ("subscribe", "unsubscribe") \
                or not isinstance(msg.get("args"), list):
            session.send_json({"event": "error", "code": 30001, "msg": "op or args missing"})
            return
        op = msg["op"]
        for arg in msg["args"]:
            if not isinstance(arg, dict):
                session.send_json({"event": "error", "code": 30001, "msg": "arg must be an object"})
                continue
            channel, inst_id = arg.get("channel"), arg.get("instId", "")
            book = self.book("spot", inst_id) if arg.get("instType") in ("SPOT", "spot") else None
            if channel not in CHANNELS or book is None:
                session.send_json({"event": "error", "arg": arg, "code": 30001,
                                   "msg": f"instType:{arg.get('instType')},channel:{channel},instId:{inst_id} "
                                          "doesn't exist"})
                continue
            key = f"{channel}:{inst_id}"
            if op == "unsubscribe":
                session.unsubscribe(key)
                session.send_json({"event": "unsubscribe", "arg": arg})
                continue
            fresh = session.subscribe(key, book, channel)
            session.send_json({"event": "subscribe", "arg": arg})
            if fresh and channel == "books":
                ms = self.now_ms()
                bids, asks = book.top(book.depth)
                session.send(BOOKS % (b"snapshot", book.native_b, _levels(asks), _levels(bids),
                                      checksum(book), book.nmsg, ms, ms))

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, tr, ts_ms: int) -> None:
        lst = book.subs.get("trade")
        if lst:
            tid, px, sz, bm, ts, _ = tr
            data = TRADE % (book.native_b, ts, px, sz, SIDE[bm], tid, ts_ms)
            for s, _, _ in lst:
                s.push(data)

    def on_book(self, book, ev, ts_ms: int) -> None:
        _first, _last, _prev, bch, ach, top = ev
        subs = book.subs
        lst = subs.get("books")
        if lst:
            data = BOOKS % (b"update", book.native_b, _levels(ach), _levels(bch), checksum(book),
                            book.nmsg, ts_ms, ts_ms)
            for s, _, _ in lst:
                s.push(data)
        if top:
            lst = subs.get("books1")
            if lst:
                data = BOOKS1 % (book.native_b, book.px(book.ask), book.asks[book.ask],
                                 book.px(book.bid), book.bids[book.bid], book.nmsg, ts_ms, ts_ms)
                for s, _, _ in lst:
                    s.push(data)

    def malformed(self, book, ts_ms: int) -> bytes:
        return b'{"action":"update","arg":{"instType":"SPOT","channel":"trade","instId":"%s"},"data":[{"ts' % book.native_b

    # --- REST ----------------------------------------------------------------------------
    def _ok(self, data) -> tuple[int, dict]:
        return 200, {"code": "00000", "msg": "success", "requestTime": self.now_ms(), "data": data}

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if method != "GET":
            return 405, {"code": "40404", "msg": "Request URL NOT FOUND"}
        if path == "/api/v2/public/time":
            return self._ok({"serverTime": str(self.now_ms())})
        if path == "/api/v2/spot/public/symbols":
            return self._ok([{"symbol": b.native, "baseCoin": b.inst.base, "quoteCoin": b.inst.quote,
                              "minTradeAmount": "0", "maxTradeAmount": "10000000000",
                              "takerFeeRate": "0.001", "makerFeeRate": "0.001",
                              "pricePrecision": str(b.inst.tick_dec), "quantityPrecision": str(b.inst.lot_dec),
                              "quotePrecision": "8", "status": "online", "minTradeUSDT": "1"}
                             for b in self.engine.book_list])
        if path in ("/api/v2/spot/market/fills", "/api/v2/spot/market/orderbook"):
            b = self.book("spot", query.get("symbol", ""))
            if b is None:
                return 400, {"code": "40034", "msg": "Parameter symbol does not exist"}
            lim = max(1, min(int(query.get("limit", 100)), 500))
            if path.endswith("fills"):
                return self._ok([{"symbol": b.native, "tradeId": str(t[0]), "side": SIDE[t[3]].decode(),
                                  "price": t[1].decode(), "size": t[2].decode(), "ts": str(t[4])}
                                 for t in reversed(b.trades_from(None, lim))])
            bids, asks = b.top(lim)
            return self._ok({"asks": [[p.decode(), s.decode()] for p, s in asks],
                             "bids": [[p.decode(), s.decode()] for p, s in bids], "ts": str(self.now_ms())})
        return 404, {"code": "40404", "msg": f"no such endpoint {path} on the simulator's bitget"}
