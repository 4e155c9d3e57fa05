"""KuCoin spot public websocket as the simulator speaks it (api.kucoin.com + the endpoint the
token request returns).

REST POST /api/v1/bullet-public issues a token and one instance server. Its endpoint is the
live one ("wss://ws-api-spot.kucoin.com/"): the simulator does not know the address it is
reached at, so a client pointed at the simulator keeps the endpoint's path and query and uses
its own configured ws base (feeds.kucoin.connect_url(body, ws_base=...)).
Websocket at any path with ?token=<issued token>&connectId=<id> (anything else is refused);
first frame {"id": connectId, "type": "welcome"}. {"id", "type": "subscribe"|"unsubscribe",
"topic": "/market/match:BTC-USDT,ETH-USDT", "response": true} -> {"id", "type": "ack"}
(an unknown topic or symbol -> {"id", "type": "error", "code": 404, "data": ...});
{"id", "type": "ping"} -> {"id", "type": "pong"}. Topics: /market/match (trade.l3match, taker
side, ns time, sequence = tradeId = the trade id), /spotMarket/level1 (best bid/offer on every
change), /market/level2 (trade.l2update: sequenceStart/End = the update ids, so a `gap` fault
skips sequences; rows [price, size, sequence]). No server pings (the client pings), 100
messages per 10 s, no forced-disconnect notice.
REST: /api/v1/market/orderbook/level2_100 and /api/v3/market/orderbook/level2 (sequence
consistent with the stream), /api/v2/symbols, /api/v1/market/histories, /api/v1/timestamp.
"""
from __future__ import annotations

import orjson

from .protocol import Session, VenueProtocol

MATCH = (b'{"type":"message","topic":"/market/match:%s","subject":"trade.l3match","data":{"makerOrderId":"m%d",'
         b'"price":"%s","sequence":"%d","side":"%s","size":"%s","symbol":"%s","takerOrderId":"t%d",'
         b'"time":"%d","tradeId":"%d","type":"match"}}')
LEVEL1 = (b'{"type":"message","topic":"/spotMarket/level1:%s","subject":"level1","data":{"asks":["%s","%s"],'
          b'"bids":["%s","%s"],"timestamp":%d}}')
L2 = (b'{"type":"message","topic":"/market/level2:%s","subject":"trade.l2update","data":{"changes":'
      b'{"asks":[%s],"bids":[%s]},"sequenceEnd":%d,"sequenceStart":%d,"symbol":"%s","time":%d}}')
SIDE = (b"buy", b"sell")            # buyer_is_maker 1 -> the seller was the aggressor
TOPICS = {"/market/match": "match", "/spotMarket/level1": "level1", "/market/level2": "level2"}
ENDPOINT = "wss://ws-api-spot.kucoin.com/"


def _rows(changes, seq: int) -> bytes:
    if not changes:
        return b""
    return b",".join([b'["%s","%s","%d"]' % (p, s, seq) for p, s in changes])


class Kucoin(VenueProtocol):
    name = "kucoin"
    markets = ("spot",)
    ping_interval = 0.0
    max_incoming_per_s = 10
    ids_per_update = (1, 3)
    notice_supported = False

    def __init__(self, engine):
        super().__init__(engine)
        self.tokens: set[str] = set()

    def native(self, inst, market: str) -> str:
        return f"{inst.base}-{inst.quote}"

    # --- websocket -----------------------------------------------------------------------
    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        if query.get("token") not in self.tokens or not query.get("connectId"):
            return False
        session.market = "spot"
        session.data["connect_id"] = query["connectId"]
        return True

    def on_open(self, session: Session) -> None:
        session.send_json({"id": session.data["connect_id"], "type": "welcome"})

    def on_text(self, session: Session, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            session.send_json({"id": session.data["connect_id"], "type": "error", "code": 400,
                               "data": "malformed request"})
            return
        if not isinstance(msg, dict):
            session.send_json({"id": session.data["connect_id"], "type": "error", "code": 400,
                               "data": "malformed request"})
            return
        rid, typ = msg.get("id"), msg.get("type")
        if typ == "ping":
            session.send_json({"id": rid, "type": "pong", "timestamp": self.now_ms() * 1000})
            return
        if typ not in ("subscribe", "unsubscribe"):
            session.send_json({"id": rid, "type": "error", "code": 400, "data": f"unknown type {typ!r}"})
            return
        prefix, _, syms = str(msg.get("topic", "")).partition(":")
        channel = TOPICS.get(prefix)
        names = [s for s in syms.split(",") if s]
        books = [self.book("spot", s) for s in names]
        if channel is None or not names or len(names) > 100 or any(b is None for b in books):
            session.send_json({"id": rid, "type": "error", "code": 404,
                               "data": f"topic {msg.get('topic')} is not found"})
            return
        for name, b in zip(names, books):
            key = f"{prefix}:{name}"
            if typ == "subscribe":
                session.subscribe(key, b, channel)
            else:
                session.unsubscribe(key)
        if msg.get("response", True):
            session.send_json({"id": rid, "type": "ack"})

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, tr, ts_ms: int) -> None:
        lst = book.subs.get("match")
        if lst:
            tid, px, sz, bm, ts, _ = tr
            data = MATCH % (book.native_b, tid, px, tid, SIDE[bm], sz, book.native_b, tid, ts * 1_000_000, tid)
            for s, _, _ in lst:
                s.push(data)

    def on_book(self, book, ev, ts_ms: int) -> None:
        first, last, _prev, bch, ach, top = ev
        subs = book.subs
        lst = subs.get("level2")
        if lst:
            data = L2 % (book.native_b, _rows(ach, last), _rows(bch, last), last, first, book.native_b, ts_ms)
            for s, _, _ in lst:
                s.push(data)
        if top:
            lst = subs.get("level1")
            if lst:
                data = LEVEL1 % (book.native_b, book.px(book.ask), book.asks[book.ask], book.px(book.bid),
                                 book.bids[book.bid], ts_ms)
                for s, _, _ in lst:
                    s.push(data)

    def malformed(self, book, ts_ms: int) -> bytes:
        return b'{"type":"message","topic":"/market/match:%s","subject":"trade.l3match","data":{"pri' % book.native_b

    # --- REST ----------------------------------------------------------------------------
    def _ok(self, data) -> tuple[int, dict]:
        return 200, {"code": "200000", "data": data}

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if path == "/api/v1/bullet-public":
            if method != "POST":
                return 405, {"code": "400100", "msg": "use POST"}
            token = "sim" + format(self.engine.rng.getrandbits(96), "024x")
            self.tokens.add(token)
            return self._ok({"token": token, "instanceServers": [
                {"endpoint": ENDPOINT, "encrypt": True, "protocol": "websocket",
                 "pingInterval": 18000, "pingTimeout": 10000}]})
        if method != "GET":
            return 405, {"code": "400100", "msg": f"{method} not supported"}
        if path == "/api/v1/timestamp":
            return self._ok(self.now_ms())
        if path == "/api/v2/symbols":
            return self._ok([{"symbol": b.native, "name": b.native, "baseCurrency": b.inst.base,
                              "quoteCurrency": b.inst.quote, "feeCurrency": b.inst.quote, "market": "USDS",
                              "baseMinSize": f"{b.inst.lot:.{b.inst.lot_dec}f}", "quoteMinSize": "0.1",
                              "baseMaxSize": "10000000000", "quoteMaxSize": "99999999",
                              "baseIncrement": f"{b.inst.lot:.{b.inst.lot_dec}f}", "quoteIncrement": "0.000001",
                              "priceIncrement": b.px(1).decode(), "priceLimitRate": "0.1", "minFunds": "0.1",
                              "isMarginEnabled": False, "enableTrading": True}
                             for b in self.engine.book_list])
        if path in ("/api/v1/market/orderbook/level2_100", "/api/v3/market/orderbook/level2",
                    "/api/v1/market/histories"):
            b = self.book("spot", query.get("symbol", ""))
            if b is None:
                return 400, {"code": "400100", "msg": "Unsupported trading pair."}
            if path.endswith("histories"):
                return self._ok([{"sequence": str(t[0]), "price": t[1].decode(), "size": t[2].decode(),
                                  "side": SIDE[t[3]].decode(), "time": t[4] * 1_000_000}
                                 for t in b.trades_from(None, 100)])
            bids, asks = b.top(100)
            return self._ok({"time": self.now_ms(), "sequence": str(b.uid),
                             "bids": [[p.decode(), s.decode()] for p, s in bids],
                             "asks": [[p.decode(), s.decode()] for p, s in asks]})
        return 404, {"code": "404000", "msg": f"no such endpoint {path} on the simulator's kucoin"}
