"""Bybit v5 public streams as the simulator speaks them (stream.bybit.com + api.bybit.com).

Websocket paths /v5/public/spot (market "spot") and /v5/public/linear (market "perp"); the same
symbol (BTCUSDT) is a different book on each. Control: {"op":"subscribe"|"unsubscribe",
"args":[topics],"req_id":..} -> {"success":..,"ret_msg":..,"conn_id":..,"req_id":..,"op":..};
spot allows at most 10 args per request. {"op":"ping"} -> pong JSON (linear: success/ret_msg
"pong"/op "ping"; spot: op "pong" with args [ms]). Topics: publicTrade.S (i = trade id, seq),
orderbook.{1,50,200,1000}.S (snapshot on subscribe, then deltas; data.u consecutive per delta
of the book, seq = cross sequence; orderbook.1 always type snapshot), orderbook.full.S (spot,
delta-only, seed from REST), tickers.S (snapshot then deltas; linear carries bid/ask and
mark/index/funding), allLiquidation.S (linear). Trade ids are numeric strings on both markets
(Bybit linear sends UUIDs; numeric keeps contiguity checkable — documented difference).
No forced-disconnect notice is documented (the notice fault answers 400).
REST: /v5/market/instruments-info, /v5/market/orderbook (u consistent with the stream),
/v5/market/recent-trade (newest first), /v5/market/time.
"""
from __future__ import annotations

import orjson

from .binance_usdm import FUNDING_MS
from .protocol import Session, VenueProtocol, fanout

PATHS = {"/v5/public/spot": "spot", "/v5/public/linear": "perp"}
CATEGORY = {"spot": "spot", "perp": "linear"}
SIDE = (b"Buy", b"Sell")     # index: buyer_is_maker -> aggressor Sell

TRADE = (b'{"topic":"publicTrade.%s","type":"snapshot","ts":%s,"data":[{"T":%s,"s":"%s","S":"%s","v":"%s",'
         b'"p":"%s","L":"%s","i":"%d","BT":false,"seq":%d}]}')
# spot puts "ts" before "type" (documented field-order quirk); linear after
BOOK_SPOT = b'{"topic":"orderbook.%d.%s","ts":%d,"type":"%s","data":{"s":"%s","b":[%s],"a":[%s],"u":%d,"seq":%d},"cts":%d}'
BOOK_LIN = b'{"topic":"orderbook.%d.%s","type":"%s","ts":%d,"data":{"s":"%s","b":[%s],"a":[%s],"u":%d,"seq":%d},"cts":%d}'
FULL = b'{"topic":"orderbook.full.%s","ts":%d,"type":"delta","data":{"s":"%s","b":[%s],"a":[%s],"u":%d,"seq":%d},"cts":%d}'
TICK_LIN = (b'{"topic":"tickers.%s","type":"delta","data":{"symbol":"%s","bid1Price":"%s","bid1Size":"%s",'
            b'"ask1Price":"%s","ask1Size":"%s"},"cs":%d,"ts":%d}')
MARK_LIN = (b'{"topic":"tickers.%s","type":"delta","data":{"symbol":"%s","markPrice":"%s","indexPrice":"%s",'
            b'"fundingRate":"%s","nextFundingTime":"%d"},"cs":%d,"ts":%d}')
TICK_SPOT = (b'{"topic":"tickers.%s","ts":%d,"type":"snapshot","cs":%d,"data":{"symbol":"%s","lastPrice":"%s",'
             b'"highPrice24h":"%s","lowPrice24h":"%s","prevPrice24h":"%s","volume24h":"1000","turnover24h":"1000000",'
             b'"price24hPcnt":"0.01","usdIndexPrice":"%s"}}')
LIQ = b'{"topic":"allLiquidation.%s","type":"snapshot","ts":%d,"data":[{"T":%d,"s":"%s","S":"%s","v":"%s","p":"%s"}]}'
BOOK_DEPTHS = (1, 50, 200, 1000)
DELTA_TOPICS = (("orderbook.50", 50), ("orderbook.200", 200), ("orderbook.1000", 1000))


class Bybit(VenueProtocol):
    name = "bybit"
    markets = ("spot", "perp")
    rendered_levels = True
    ids_per_update = (1, 1)         # data.u is consecutive per delta
    notice_supported = False
    spot_args_max = 10

    def native(self, inst, market: str) -> str:
        return f"{inst.base}{inst.quote}"

    # --- websocket -----------------------------------------------------------------------
    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        market = PATHS.get(path.rstrip("/"))
        if market is None:
            return False
        session.market = market
        return True

    def _ack(self, session, op, rid, ok=True, msg=None):
        ret = msg if msg is not None else ("" if ok and session.market == "spot" else op)
        ack = {"success": ok, "ret_msg": ret, "conn_id": session.conn_id, "op": op}
        if rid is not None:
            ack["req_id"] = rid
        session.send_json(ack)

    def on_text(self, session: Session, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
            op = msg.get("op")
        except (orjson.JSONDecodeError, AttributeError):
            session.send_json({"success": False, "ret_msg": "error:request not supported, invalid json",
                               "conn_id": session.conn_id, "op": ""})
            return
        rid = msg.get("req_id")
        if op == "ping":
            if session.market == "spot":
                pong = {"op": "pong", "args": [str(self.now_ms())], "conn_id": session.conn_id}
                if rid is not None:
                    pong = {"req_id": rid, **pong}
                session.send_json(pong)
            else:
                self._ack(session, "ping", rid, True, "pong")
            return
        if op not in ("subscribe", "unsubscribe"):
            self._ack(session, op or "", rid, False, f"error:handler not found,op:{op}")
            return
        args = msg.get("args")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            self._ack(session, op, rid, False, "error:args must be an array of topic strings")
            return
        if session.market == "spot" and len(args) > self.spot_args_max:
            self._ack(session, op, rid, False, f"error:args size >{self.spot_args_max}")
            return
        if op == "unsubscribe":
            for a in args:
                session.unsubscribe(a)
            self._ack(session, op, rid)
            return
        plans = []
        for topic in args:
            plan = self._plan(session, topic)
            if plan is None:
                self._ack(session, op, rid, False, f"error:handler not found,topic:{topic}")
                return
            plans.append((topic, plan))
        if any(t in session.subs for t, _ in plans):
            dup = next(t for t, _ in plans if t in session.subs)
            self._ack(session, op, rid, False, f"error:already subscribed,topic:{dup}")
            return
        self._ack(session, op, rid)
        ts = self.now_ms()
        for topic, (book, channel, snapshot) in plans:
            session.subscribe(topic, book, channel)
            if snapshot:
                session.send(snapshot(book, ts))

    def _plan(self, session, topic):
        """topic -> (book, model channel, snapshot function or None), None if unknown."""
        parts = topic.split(".")
        market = session.market
        book = self.book(market, parts[-1]) if len(parts) >= 2 else None
        if book is None:
            return None
        kind = parts[0]
        if kind == "publicTrade" and len(parts) == 2:
            return book, "publicTrade", None
        if kind == "orderbook" and len(parts) == 3:
            if parts[1] == "full" and market == "spot":
                return book, "full", None
            if parts[1].isdigit() and int(parts[1]) in BOOK_DEPTHS:
                n = int(parts[1])
                return book, f"orderbook.{n}", (lambda b, ts, n=n: self.book_snapshot(b, n, ts))
        if kind == "tickers" and len(parts) == 2:
            return book, "tickers", self.ticker_snapshot
        if kind == "allLiquidation" and len(parts) == 2 and market == "perp":
            return book, "allLiquidation", None
        return None

    # --- snapshots -----------------------------------------------------------------------
    def book_snapshot(self, book, n: int, ts: int) -> bytes:
        bids, asks = book.top_json(n)
        tpl = BOOK_SPOT if book.market == "spot" else BOOK_LIN
        args = (n, book.native_b, ts, b"snapshot") if book.market == "spot" else (n, book.native_b, b"snapshot", ts)
        return tpl % (*args, book.native_b, bids, asks, book.nmsg, book.uid, ts)

    def ticker_snapshot(self, book, ts: int) -> bytes:
        last = book.trades[-1][1] if book.trades else book.px(book.bid)
        if book.market == "spot":
            return TICK_SPOT % (book.native_b, ts, book.uid, book.native_b, last, book.px(book.ask + 50),
                                book.px(book.bid - 50), last, book.px(book.target))
        mark, index, rate, nxt = self.mark(book, ts)
        d = {"symbol": book.native, "tickDirection": "PlusTick", "price24hPcnt": "0.01", "lastPrice": last.decode(),
             "prevPrice24h": last.decode(), "highPrice24h": book.px(book.ask + 50).decode(),
             "lowPrice24h": book.px(book.bid - 50).decode(), "prevPrice1h": last.decode(),
             "markPrice": mark.decode(), "indexPrice": index.decode(), "openInterest": "1000",
             "openInterestValue": "1000000", "turnover24h": "1000000", "volume24h": "1000",
             "fundingIntervalHour": "8", "fundingCap": "0.005", "nextFundingTime": str(nxt),
             "fundingRate": rate.decode(), "bid1Price": book.px(book.bid).decode(),
             "bid1Size": book.bids[book.bid].decode(), "ask1Price": book.px(book.ask).decode(),
             "ask1Size": book.asks[book.ask].decode(), "preOpenPrice": "", "preQty": "", "curPreListingPhase": ""}
        return orjson.dumps({"topic": f"tickers.{book.native}", "type": "snapshot", "data": d, "cs": book.uid, "ts": ts})

    @staticmethod
    def mark(book, ts: int):
        mark = book.px((book.bid + book.ask) // 2)
        index = book.px(book.target)
        rate = b"%.6f" % (0.0001 * (1 + (book.bid - book.target) / max(1, book.depth)))
        return mark, index, rate, (ts // FUNDING_MS + 1) * FUNDING_MS

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, t, ts_ms: int) -> None:
        lst = book.subs.get("publicTrade")
        if lst:
            tid, px, sz, bm, ts, _ = t
            data = TRADE % (book.native_b, self.ts_b, self.ts_b, book.native_b, SIDE[bm], sz, px,
                            b"MinusTick" if bm else b"PlusTick", tid, book.uid)
            fanout(lst, data)

    def on_book(self, book, ev, ts_ms: int) -> None:
        subs = book.subs
        first, last, prev, bch, ach, top = ev
        spot = book.market == "spot"
        cts = ts_ms - 2
        b, a = bch, ach
        for key, n in DELTA_TOPICS:
            lst = subs.get(key)
            if lst:
                if spot:
                    data = BOOK_SPOT % (n, book.native_b, ts_ms, b"delta", book.native_b, b, a, book.nmsg, last, cts)
                else:
                    data = BOOK_LIN % (n, book.native_b, b"delta", ts_ms, book.native_b, b, a, book.nmsg, last, cts)
                fanout(lst, data)
        lst = subs.get("full")
        if lst:
            data = FULL % (book.native_b, ts_ms, book.native_b, b, a, book.nmsg, last, cts)
            fanout(lst, data)
        if top:
            lst = subs.get("orderbook.1")
            if lst:
                data = self.book_snapshot(book, 1, ts_ms)
                fanout(lst, data)
            lst = subs.get("tickers")
            if lst and not spot:
                data = TICK_LIN % (book.native_b, book.native_b, book.px(book.bid), book.bids[book.bid],
                                   book.px(book.ask), book.asks[book.ask], last, ts_ms)
                fanout(lst, data)

    def on_timer(self, ts_ms: int) -> None:
        for book in self.engine.book_list:
            subs = book.subs
            if not subs:
                continue
            book.refresh_target(ts_ms)
            lst = subs.get("tickers")
            if lst:
                if book.market == "spot":
                    data = self.ticker_snapshot(book, ts_ms)
                else:
                    mark, index, rate, nxt = self.mark(book, ts_ms)
                    data = MARK_LIN % (book.native_b, book.native_b, mark, index, rate, nxt, book.uid, ts_ms)
                fanout(lst, data)
            lst = subs.get("allLiquidation")
            if lst and book.rng.random() < 0.2:
                sell = book.rng.random() < 0.5
                px = book.px(book.bid - 2 if sell else book.ask + 2)
                data = LIQ % (book.native_b, ts_ms, ts_ms, book.native_b, b"Sell" if sell else b"Buy",
                              book._size(), px)
                fanout(lst, data)

    # --- REST ----------------------------------------------------------------------------
    def _ok(self, result) -> tuple[int, dict]:
        return 200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": self.now_ms()}

    def _err(self, code: int, msg: str) -> tuple[int, dict]:
        return 200, {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": self.now_ms()}

    def _market(self, query) -> str | None:
        return {"spot": "spot", "linear": "perp"}.get(query.get("category", ""))

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if method != "GET":
            return 405, {"retCode": 10001, "retMsg": f"{method} not supported"}
        if path == "/v5/market/time":
            now = self.now_ms()
            return self._ok({"timeSecond": str(now // 1000), "timeNano": str(now * 1000000)})
        market = self._market(query)
        if path in ("/v5/market/instruments-info", "/v5/market/orderbook", "/v5/market/recent-trade"):
            if market is None:
                return self._err(10001, "params error: category must be spot or linear")
        else:
            return 404, {"retCode": 10001, "retMsg": f"no such endpoint {path} on the simulator's bybit"}
        if path == "/v5/market/instruments-info":
            books = [b for b in self.engine.book_list if b.market == market]
            if query.get("symbol"):
                books = [b for b in books if b.native == query["symbol"]]
            return self._ok({"category": CATEGORY[market], "list": [self.instrument(b) for b in books],
                             "nextPageCursor": ""})
        book = self.book(market, query.get("symbol", ""))
        if book is None:
            return self._err(10001, "params error: symbol invalid")
        if path == "/v5/market/orderbook":
            cap = 200 if market == "spot" else 500
            n = max(1, min(int(query.get("limit", 1 if market == "spot" else 25)), cap))
            bids, asks = book.top(n)
            now = self.now_ms()
            return self._ok({"s": book.native, "b": [[p.decode(), s.decode()] for p, s in bids],
                             "a": [[p.decode(), s.decode()] for p, s in asks], "ts": now, "u": book.nmsg,
                             "seq": book.uid, "cts": now - 2})
        cap = 60 if market == "spot" else 1000
        n = max(1, min(int(query.get("limit", 60 if market == "spot" else 500)), cap))
        rows = [{"execId": str(t[0]), "symbol": book.native, "price": t[1].decode(), "size": t[2].decode(),
                 "side": "Sell" if t[3] else "Buy", "time": str(t[4]), "isBlockTrade": False, "isRPITrade": False}
                for t in reversed(book.trades_from(None, n))]
        return self._ok({"category": CATEGORY[market], "list": rows})

    def instrument(self, book) -> dict:
        inst = book.inst
        lot = f"{inst.lot:.{inst.lot_dec}f}" if inst.lot_dec else "1"
        d = {"symbol": book.native, "baseCoin": inst.base, "quoteCoin": inst.quote, "status": "Trading",
             "priceFilter": {"tickSize": book.px(1).decode()}}
        if book.market == "spot":
            d.update({"innovation": "0", "marginTrading": "both",
                      "lotSizeFilter": {"basePrecision": lot, "quotePrecision": "0.00000001", "minOrderQty": lot,
                                        "maxOrderQty": "1000000", "minOrderAmt": "1", "maxOrderAmt": "2000000"}})
        else:
            d.update({"contractType": "LinearPerpetual", "settleCoin": inst.quote, "fundingInterval": 480,
                      "lotSizeFilter": {"qtyStep": lot, "minOrderQty": lot, "maxOrderQty": "1000000",
                                        "maxMktOrderQty": "100000", "minNotionalValue": "5"},
                      "priceScale": str(inst.tick_dec), "leverageFilter": {"minLeverage": "1", "maxLeverage": "100",
                                                                         "leverageStep": "0.01"}})
        return d
