"""Gate.io spot websocket v4 as the simulator speaks it (api.gateio.ws/ws/v4/ + /api/v4).

Websocket at /ws/v4/: {"time", "channel", "event": "subscribe"|"unsubscribe", "payload"}
answered with {"time", "time_ms", "channel", "event", "error": null, "result": {"status":
"success"}} (error {code, message} for a bad request); {"channel": "spot.ping"} ->
spot.pong. Channels: spot.trades (taker side), spot.book_ticker (on every best bid/offer
change, with u), spot.order_book_update (payload [pair, "100ms"], one pair per request; U/u
update ids: the next message has U = previous u + 1, so a `gap` fault skips ids).
The `time` of requests is not checked against the clock here (Gate allows +-60 s).
No server pings here, no forced-disconnect notice.
REST: /api/v4/spot/order_book (with_id=true -> id consistent with U/u), /api/v4/spot/currency_pairs,
/api/v4/spot/trades (last_id, reverse), /api/v4/spot/time.
"""
from __future__ import annotations

import orjson

from .protocol import Session, VenueProtocol

HEAD = b'{"time":%d,"time_ms":%d,"channel":"%s","event":"update","result":'
TRADE = (b'{"id":%d,"id_market":%d,"create_time":%d,"create_time_ms":"%d.000","side":"%s",'
         b'"currency_pair":"%s","amount":"%s","price":"%s","range":"%d-%d"}}')
OBU = b'{"t":%d,"e":"depthUpdate","E":%d,"s":"%s","U":%d,"u":%d,"b":[%s],"a":[%s]}}'
TICKER = b'{"t":%d,"u":%d,"s":"%s","b":"%s","B":"%s","a":"%s","A":"%s"}}'
SIDE = (b"buy", b"sell")            # buyer_is_maker 1 -> the seller was the aggressor
CHANNELS = {"spot.trades": "trades", "spot.book_ticker": "ticker", "spot.order_book_update": "obu"}


def _levels(changes) -> bytes:
    if not changes:
        return b""
    return b",".join([b'["%s","%s"]' % lv for lv in changes])


class Gateio(VenueProtocol):
    name = "gateio"
    markets = ("spot",)
    ping_interval = 0.0
    max_incoming_per_s = 50
    ids_per_update = (1, 4)
    notice_supported = False

    def native(self, inst, market: str) -> str:
        return f"{inst.base}_{inst.quote}"

    # --- websocket -----------------------------------------------------------------------
    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        if path.rstrip("/") != "/ws/v4":
            return False
        session.market = "spot"
        return True

    def _reply(self, session: Session, channel, event, error=None, result=None, req_id=None) -> None:
        ms = self.now_ms()
        msg = {"time": ms // 1000, "time_ms": ms, "channel": channel, "event": event, "error": error,
               "result": result}
        if req_id is not None:
            msg["id"] = req_id
        session.send_json(msg)

    def on_text(self, session: Session, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._reply(session, "", "", {"code": 1, "message": "Invalid request body format"})
            return
        if not isinstance(msg, dict):
            self._reply(session, "", "", {"code": 1, "message": "Invalid request body format"})
            return
        channel, event, rid = msg.get("channel"), msg.get("event"), msg.get("id")
        if channel == "spot.ping":
            self._reply(session, "spot.pong", "", req_id=rid)
            return
        sub = CHANNELS.get(channel)
        payload = msg.get("payload")
        if sub is None or event not in ("subscribe", "unsubscribe") or not isinstance(payload, list):
            self._reply(session, channel, event, {"code": 2, "message": "Invalid argument provided"}, req_id=rid)
            return
        pairs = payload[:1] if sub == "obu" else payload
        if sub == "obu" and (len(payload) != 2 or payload[1] not in ("100ms", "20ms")):
            self._reply(session, channel, event, {"code": 2, "message": "Invalid argument provided"}, req_id=rid)
            return
        books = [self.book("spot", p) for p in pairs]
        if not pairs or any(b is None for b in books):
            bad = [p for p, b in zip(pairs, books) if b is None]
            self._reply(session, channel, event, {"code": 2, "message": f"unknown currency pair {','.join(bad)}"},
                        req_id=rid)
            return
        for p, b in zip(pairs, books):
            if event == "subscribe":
                session.subscribe(f"{sub}:{p}", b, sub)
            else:
                session.unsubscribe(f"{sub}:{p}")
        self._reply(session, channel, event, None, {"status": "success"}, req_id=rid)

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, tr, ts_ms: int) -> None:
        lst = book.subs.get("trades")
        if lst:
            tid, px, sz, bm, ts, _ = tr
            data = (HEAD % (ts_ms // 1000, ts_ms, b"spot.trades") +
                    TRADE % (tid, tid, ts // 1000, ts, SIDE[bm], book.native_b, sz, px, tid, tid))
            for s, _, _ in lst:
                s.push(data)

    def on_book(self, book, ev, ts_ms: int) -> None:
        first, last, _prev, bch, ach, top = ev
        subs = book.subs
        lst = subs.get("obu")
        if lst:
            data = (HEAD % (ts_ms // 1000, ts_ms, b"spot.order_book_update") +
                    OBU % (ts_ms, ts_ms // 1000, book.native_b, first, last, _levels(bch), _levels(ach)))
            for s, _, _ in lst:
                s.push(data)
        if top:
            lst = subs.get("ticker")
            if lst:
                data = (HEAD % (ts_ms // 1000, ts_ms, b"spot.book_ticker") +
                        TICKER % (ts_ms, last, book.native_b, book.px(book.bid), book.bids[book.bid],
                                  book.px(book.ask), book.asks[book.ask]))
                for s, _, _ in lst:
                    s.push(data)

    def malformed(self, book, ts_ms: int) -> bytes:
        return b'{"time":%d,"channel":"spot.trades","event":"update","result":{"id":1,"currency_pair":"%s' % (
            ts_ms // 1000, book.native_b)

    # --- REST ----------------------------------------------------------------------------
    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if method != "GET":
            return 405, {"label": "METHOD_NOT_ALLOWED", "message": f"{method} not supported"}
        p = "/api/v4/spot"
        if path == p + "/time":
            return 200, {"server_time": self.now_ms()}
        if path == p + "/currency_pairs":
            return 200, [{"id": b.native, "base": b.inst.base, "quote": b.inst.quote, "fee": "0.2",
                          "min_base_amount": f"{b.inst.lot:.{b.inst.lot_dec}f}", "min_quote_amount": "1",
                          "amount_precision": b.inst.lot_dec, "precision": b.inst.tick_dec,
                          "trade_status": "tradable", "sell_start": 0, "buy_start": 0}
                         for b in self.engine.book_list]
        if path in (p + "/order_book", p + "/trades"):
            b = self.book("spot", query.get("currency_pair", ""))
            if b is None:
                return 400, {"label": "INVALID_CURRENCY_PAIR", "message": "Invalid currency pair"}
            if path.endswith("order_book"):
                lim = max(1, min(int(query.get("limit", 10)), 1000))
                bids, asks = b.top(lim)
                ms = self.now_ms()
                body = {"current": ms, "update": ms,
                        "asks": [[x.decode(), y.decode()] for x, y in asks],
                        "bids": [[x.decode(), y.decode()] for x, y in bids]}
                if query.get("with_id") == "true":
                    body = {"id": b.uid, **body}
                return 200, body
            lim = max(1, min(int(query.get("limit", 100)), 1000))
            if "last_id" in query and query.get("reverse", "false") == "false":
                trades = b.trades_from(int(query["last_id"]) + 1, lim)
            else:
                trades = list(reversed(b.trades_from(None, lim)))
            return 200, [{"id": str(t[0]), "create_time": str(t[4] // 1000), "create_time_ms": f"{t[4]}.000",
                          "currency_pair": b.native, "side": SIDE[t[3]].decode(), "amount": t[2].decode(),
                          "price": t[1].decode()} for t in trades]
        return 404, {"label": "NOT_FOUND", "message": f"no such endpoint {path} on the simulator's gateio"}
