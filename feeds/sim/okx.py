"""OKX v5 public streams as the simulator speaks them (ws.okx.com:8443 + www.okx.com REST).

Websocket path /ws/v5/public, spot ("BTC-USDT", market "spot") and perpetual swaps
("BTC-USDT-SWAP", market "perp") on the same connection. Control: {"id":..,"op":"subscribe"|
"unsubscribe","args":[{"channel":..,"instId":..}|{"channel":..,"instType":..}]} -> one
{"id","event":"subscribe","arg","connId"} per arg, errors {"id","event":"error","code","msg",
"connId"} (60012 invalid request, 60018 unknown channel/instId). Plain text "ping" -> "pong".
Channels: trades (tradeId, seqId, count "1"), books (snapshot on subscribe, then updates with
seqId/prevSeqId, checksum 0 as OKX now sends; levels [px, sz, "0", orders]), books5 and
bbo-tbt (snapshots with seqId), tickers (on top-of-book changes), mark-price and funding-rate
(SWAP, every second), liquidation-orders (per instType SWAP). Notice event 64008 is the
forced-disconnect notice. The 30 s no-subscription idle cut is not simulated.
REST: /api/v5/public/instruments (SPOT, SWAP), /api/v5/market/books (with seqId),
/api/v5/market/trades (latest, newest first), /api/v5/market/history-trades (type=1 trade-id
pagination: after=<id> older than id, before=<id> the next ones newer than id; newest first),
/api/v5/public/time.
"""
from __future__ import annotations

import orjson

from .binance_usdm import FUNDING_MS
from .protocol import Session, VenueProtocol, fanout

SIDE = (b"buy", b"sell")      # index: buyer_is_maker -> aggressor sell

TRADE = (b'{"arg":{"channel":"trades","instId":"%s"},"data":[{"instId":"%s","tradeId":"%d","px":"%s","sz":"%s",'
         b'"side":"%s","ts":"%s","count":"1","source":"0","seqId":%d}]}')
BOOKS = (b'{"arg":{"channel":"books","instId":"%s"},"action":"%s","data":[{"asks":[%s],"bids":[%s],"ts":"%s",'
         b'"checksum":0,"prevSeqId":%d,"seqId":%d}]}')
BBO = b'{"arg":{"channel":"bbo-tbt","instId":"%s"},"data":[{"asks":[%s],"bids":[%s],"ts":"%d","seqId":%d}]}'
BOOKS5 = b'{"arg":{"channel":"books5","instId":"%s"},"data":[{"asks":[%s],"bids":[%s],"instId":"%s","ts":"%d","seqId":%d}]}'
TICKER = (b'{"arg":{"channel":"tickers","instId":"%s"},"data":[{"instType":"%s","instId":"%s","last":"%s",'
          b'"lastSz":"%s","askPx":"%s","askSz":"%s","bidPx":"%s","bidSz":"%s","open24h":"%s","high24h":"%s",'
          b'"low24h":"%s","volCcy24h":"1000000","vol24h":"1000","sodUtc0":"%s","sodUtc8":"%s","ts":"%d"}]}')
MARK = b'{"arg":{"channel":"mark-price","instId":"%s"},"data":[{"instType":"SWAP","instId":"%s","markPx":"%s","ts":"%d"}]}'
FUNDING = (b'{"arg":{"channel":"funding-rate","instId":"%s"},"data":[{"fundingRate":"%s","fundingTime":"%d",'
           b'"instId":"%s","instType":"SWAP","interestRate":"0","maxFundingRate":"0.0075","method":"current_period",'
           b'"minFundingRate":"-0.0075","nextFundingRate":"","nextFundingTime":"%d","premium":"0.0001",'
           b'"settFundingRate":"%s","settState":"settled","ts":"%d"}]}')
LIQ = (b'{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0","bkPx":"%s",'
       b'"ccy":"","posSide":"%s","side":"%s","sz":"%s","ts":"%d"}],"instFamily":"%s","instId":"%s",'
       b'"instType":"SWAP","uly":"%s"}]}')
NOTICE = b'{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"%s"}'
INST_TYPE = {"spot": b"SPOT", "perp": b"SWAP"}
INST_CHANNELS = {"trades", "books", "books5", "bbo-tbt", "tickers", "mark-price", "funding-rate"}


def levels(rendered: bytes) -> bytes:
    """OKX levels [px, sz, "0", orders] from the model's rendered ["px","sz"] pairs (orders: 1)."""
    return rendered.replace(b'"]', b'","0","1"]')


class Okx(VenueProtocol):
    name = "okx"
    markets = ("spot", "perp")
    rendered_levels = True

    def native(self, inst, market: str) -> str:
        return f"{inst.base}-{inst.quote}" + ("-SWAP" if market == "perp" else "")

    def _book_of(self, inst_id: str):
        return self.book("perp" if inst_id.endswith("-SWAP") else "spot", inst_id)

    # --- websocket -----------------------------------------------------------------------
    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        return path.rstrip("/") == "/ws/v5/public"

    def _conn(self, session) -> str:
        return session.conn_id[:8]

    def on_text(self, session: Session, data: bytes) -> None:
        if data == b"ping":
            session.send(b"pong")
            return
        try:
            msg = orjson.loads(data)
            op = msg.get("op")
        except (orjson.JSONDecodeError, AttributeError):
            session.send_json({"event": "error", "code": "60012",
                               "msg": f"Invalid request: {data[:200].decode(errors='replace')}",
                               "connId": self._conn(session)})
            return
        rid = msg.get("id")
        head = {"id": rid} if rid is not None else {}
        args = msg.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not all(isinstance(a, dict) for a in args):
            session.send_json({**head, "event": "error", "code": "60012",
                               "msg": f"Invalid request: {data[:200].decode(errors='replace')}",
                               "connId": self._conn(session)})
            return
        for arg in args:
            key = orjson.dumps(arg, option=orjson.OPT_SORT_KEYS).decode()
            if op == "unsubscribe":
                if key in session.data.get("liq", ()):
                    session.data["liq"].discard(key)
                    for k in [k for k in session.subs if k.startswith(key + "|")]:
                        session.unsubscribe(k)
                session.unsubscribe(key)
                session.send_json({**head, "event": "unsubscribe", "arg": arg, "connId": self._conn(session)})
                continue
            ch = arg.get("channel")
            if ch == "liquidation-orders" and arg.get("instType") == "SWAP":
                session.send_json({**head, "event": "subscribe", "arg": arg, "connId": self._conn(session)})
                for b in self.engine.book_list:
                    if b.market == "perp":
                        session.subscribe(f"{key}|{b.native}", b, "liquidation-orders")
                session.data.setdefault("liq", set()).add(key)
                continue
            book = self._book_of(arg.get("instId", "")) if ch in INST_CHANNELS else None
            if book is None or (ch in ("mark-price", "funding-rate") and book.market != "perp"):
                session.send_json({**head, "event": "error", "code": "60018",
                                   "msg": f"Wrong URL or channel:{ch},instId:{arg.get('instId')} doesn't exist. "
                                          "Please use the correct URL, channel and parameters referring to API document.",
                                   "connId": self._conn(session)})
                continue
            session.send_json({**head, "event": "subscribe", "arg": arg, "connId": self._conn(session)})
            if not session.subscribe(key, book, ch):
                continue
            ts = self.now_ms()
            if ch == "books":
                bids, asks = book.top_json(book.depth)
                session.send(BOOKS % (book.native_b, b"snapshot", levels(asks), levels(bids), b"%d" % ts, -1, book.uid))
            elif ch == "tickers":
                session.send(self.ticker(book, ts))

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, t, ts_ms: int) -> None:
        lst = book.subs.get("trades")
        if lst:
            tid, px, sz, bm, ts, _ = t
            data = TRADE % (book.native_b, book.native_b, tid, px, sz, SIDE[bm], self.ts_b, book.uid)
            fanout(lst, data)

    def on_book(self, book, ev, ts_ms: int) -> None:
        subs = book.subs
        first, last, prev, bch, ach, top = ev
        lst = subs.get("books")
        if lst:
            data = BOOKS % (book.native_b, b"update", levels(ach), levels(bch), self.ts_b, prev, last)
            fanout(lst, data)
        if top:
            lst = subs.get("bbo-tbt")
            if lst:
                bids, asks = book.top_json(1)
                data = BBO % (book.native_b, levels(asks), levels(bids), ts_ms, last)
                fanout(lst, data)
            lst = subs.get("tickers")
            if lst:
                data = self.ticker(book, ts_ms)
                fanout(lst, data)
        lst = subs.get("books5")
        if lst:
            bids, asks = book.top_json(5)
            data = BOOKS5 % (book.native_b, levels(asks), levels(bids), book.native_b, ts_ms, last)
            fanout(lst, data)

    def ticker(self, book, ts: int) -> bytes:
        last = book.trades[-1] if book.trades else None
        lpx, lsz = (last[1], last[2]) if last else (book.px(book.bid), book.bids[book.bid])
        ref = book.px(book.target)
        return TICKER % (book.native_b, INST_TYPE[book.market], book.native_b, lpx, lsz, book.px(book.ask),
                         book.asks[book.ask], book.px(book.bid), book.bids[book.bid], ref,
                         book.px(book.ask + 50), book.px(book.bid - 50), ref, ref, ts)

    def on_timer(self, ts_ms: int) -> None:
        nxt = (ts_ms // FUNDING_MS + 1) * FUNDING_MS
        for book in self.engine.book_list:
            subs = book.subs
            if not subs or book.market != "perp":
                continue
            book.refresh_target(ts_ms)
            lst = subs.get("mark-price")
            if lst:
                data = MARK % (book.native_b, book.native_b, book.px((book.bid + book.ask) // 2), ts_ms)
                fanout(lst, data)
            lst = subs.get("funding-rate")
            if lst:
                rate = b"%.8f" % (0.0001 * (1 + (book.bid - book.target) / max(1, book.depth)))
                data = FUNDING % (book.native_b, rate, nxt, book.native_b, nxt + FUNDING_MS, rate, ts_ms)
                fanout(lst, data)
            lst = subs.get("liquidation-orders")
            if lst and book.rng.random() < 0.2:
                sell = book.rng.random() < 0.5
                fam = book.native_b[:-5]
                data = LIQ % (book.px(book.bid - 2 if sell else book.ask + 2), b"long" if sell else b"short",
                              b"sell" if sell else b"buy", book._size(), ts_ms, fam, book.native_b, fam)
                fanout(lst, data)

    # --- faults --------------------------------------------------------------------------
    def notice(self, session: Session, ts_ms: int) -> bytes:
        return NOTICE % self._conn(session).encode()

    def malformed(self, book, ts_ms: int) -> bytes:
        return b'{"arg":{"channel":"trades","instId":"%s"},"data":[{"instId":"%s","px":' % (book.native_b, book.native_b)

    # --- REST ----------------------------------------------------------------------------
    def _ok(self, data: list) -> tuple[int, dict]:
        return 200, {"code": "0", "msg": "", "data": data}

    def _err(self, code: str, msg: str) -> tuple[int, dict]:
        return 200, {"code": code, "msg": msg, "data": []}

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if method != "GET":
            return 405, {"code": "50000", "msg": f"{method} not supported", "data": []}
        if path == "/api/v5/public/time":
            return self._ok([{"ts": str(self.now_ms())}])
        if path == "/api/v5/public/instruments":
            market = {"SPOT": "spot", "SWAP": "perp"}.get(query.get("instType", ""))
            if query.get("instType") == "FUTURES":
                return self._ok([])
            if market is None:
                return self._err("51000", "Parameter instType error")
            books = [b for b in self.engine.book_list if b.market == market]
            if query.get("instId"):
                books = [b for b in books if b.native == query["instId"]]
            return self._ok([self.instrument(b) for b in books])
        if path in ("/api/v5/market/books", "/api/v5/market/trades", "/api/v5/market/history-trades"):
            book = self._book_of(query.get("instId", ""))
            if book is None:
                return self._err("51001", "Instrument ID does not exist")
            if path == "/api/v5/market/books":
                n = max(1, min(int(query.get("sz", 1)), 400))
                bids, asks = book.top(n)
                return self._ok([{"asks": [[p.decode(), s.decode(), "0", "1"] for p, s in asks],
                                  "bids": [[p.decode(), s.decode(), "0", "1"] for p, s in bids],
                                  "ts": str(self.now_ms()), "seqId": book.uid}])
            limit = max(1, min(int(query.get("limit", 100)), 500 if path.endswith("/trades") else 100))
            rows = list(book.trades)
            if path.endswith("history-trades") and query.get("type", "1") == "1":
                if query.get("after"):
                    a = int(query["after"])
                    rows = [t for t in rows if t[0] < a][-limit:]
                elif query.get("before"):
                    b = int(query["before"])
                    rows = [t for t in rows if t[0] > b][:limit]
                else:
                    rows = rows[-limit:]
            else:
                rows = rows[-limit:]
            return self._ok([{"instId": book.native, "side": "sell" if t[3] else "buy", "sz": t[2].decode(),
                              "px": t[1].decode(), "source": "0", "tradeId": str(t[0]), "ts": str(t[4])}
                             for t in reversed(rows)])
        return 404, {"code": "50000", "msg": f"no such endpoint {path} on the simulator's okx", "data": []}

    def instrument(self, book) -> dict:
        inst = book.inst
        lot = f"{inst.lot:.{inst.lot_dec}f}" if inst.lot_dec else "1"
        d = {"instType": INST_TYPE[book.market].decode(), "instId": book.native, "tickSz": book.px(1).decode(),
             "lotSz": lot, "minSz": lot, "state": "live", "listTime": "1606468572000", "expTime": "",
             "instFamily": "", "uly": "", "baseCcy": inst.base, "quoteCcy": inst.quote, "settleCcy": "",
             "ctVal": "", "ctMult": "", "ctValCcy": "", "ctType": "", "lever": "10", "alias": ""}
        if book.market == "perp":
            fam = f"{inst.base}-{inst.quote}"
            d.update({"instFamily": fam, "uly": fam, "baseCcy": "", "quoteCcy": "", "settleCcy": inst.quote,
                      "ctVal": "1", "ctMult": "1", "ctValCcy": inst.base, "ctType": "linear", "lever": "100"})
        return d
