"""Binance USD-M futures as the simulator speaks it (fstream.binance.com + fapi.binance.com).

Routes (2026): /public carries bookTicker and depth streams, /market carries aggTrade,
markPrice and forceOrder; each route has /ws, /ws/<streams> and /stream?streams=..; legacy
unrouted /ws and /stream behave as /public. A stream subscribed on the wrong route is acked but
sends nothing (as Binance does). Diff depth carries U, u and pu (= previous event's u);
bookTicker carries e, u, E, T; aggTrade carries nq. Server ws PING every 3 minutes, no PONG
within 10 minutes => disconnect; more than 10 incoming messages a second => disconnect.
The forced-disconnect notice reuses spot's serverShutdown event (futures docs name none;
documented assumption). REST: /fapi/v1/{exchangeInfo,depth,trades,historicalTrades,aggTrades,
premiumIndex,ping,time}.
"""
from __future__ import annotations

from .binance import TF, Binance
from .protocol import fanout

AGG = b'{"e":"aggTrade","E":%s,"s":"%s","a":%d,"p":"%s","q":"%s","nq":"%s","f":%d,"l":%d,"T":%s,"m":%s}'
DEPTH = b'{"e":"depthUpdate","E":%s,"T":%s,"s":"%s","U":%d,"u":%d,"pu":%d,"b":[%s],"a":[%s]}'
TICKER = b'{"e":"bookTicker","u":%d,"E":%s,"T":%s,"s":"%s","b":"%s","B":"%s","a":"%s","A":"%s"}'
MARK = b'{"e":"markPriceUpdate","E":%d,"s":"%s","p":"%s","i":"%s","P":"%s","r":"%s","T":%d}'
LIQ = (b'{"e":"forceOrder","E":%d,"o":{"s":"%s","S":"%s","o":"LIMIT","f":"IOC","q":"%s","p":"%s",'
       b'"ap":"%s","X":"FILLED","l":"%s","z":"%s","T":%d}}')

PUBLIC = {"bookTicker", "depth"}
MARKET = {"aggTrade", "markPrice", "markPrice1s", "forceOrder"}
FUNDING_MS = 8 * 3600 * 1000


class BinanceUsdm(Binance):
    name = "binance_usdm"
    markets = ("perp",)
    ping_interval = 180.0
    pong_timeout = 600.0
    max_incoming_per_s = 10
    rest_prefix = "/fapi/v1"
    CHANNELS = {"aggTrade": "aggTrade", "bookTicker": "bookTicker", "depth": "depth", "depth@100ms": "depth",
                "depth@250ms": "depth", "depth@500ms": "depth", "depth@0ms": "depth",
                "markPrice": "markPrice", "markPrice@1s": "markPrice1s", "forceOrder": "forceOrder"}

    def split_path(self, path: str) -> str | None:
        for route in ("/public", "/market"):
            if path == route or path.startswith(route + "/"):
                return path[len(route):] or "/ws"
        if path == "/ws" or path.startswith("/ws/") or path.startswith("/stream"):
            return path                     # legacy unrouted: public streams only
        return None

    def stream_allowed(self, session, channel: str) -> bool:
        allowed = MARKET if session.path.startswith("/market") else PUBLIC
        return channel in allowed

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, t, ts_ms: int) -> None:
        lst = book.subs.get("aggTrade")
        if lst:
            tid, px, sz, bm, ts, _ = t
            tsb = self.ts_b
            data = AGG % (tsb, book.native_b, tid + book.agg_offset, px, sz, sz, tid, tid, tsb, TF[bm])
            fanout(lst, data)

    def on_book(self, book, ev, ts_ms: int) -> None:
        subs = book.subs
        first, last, prev, bch, ach, top = ev
        lst = subs.get("depth")
        if lst:
            tsb = self.ts_b
            data = DEPTH % (tsb, tsb, book.native_b, first, last, prev, bch, ach)
            fanout(lst, data)
        if top:
            lst = subs.get("bookTicker")
            if lst:
                bid, ask, pc = book.bid, book.ask, book.pxcache
                data = TICKER % (last, self.ts_b, self.ts_b, book.native_b, pc.get(bid) or book.px(bid),
                                 book.bids[bid], pc.get(ask) or book.px(ask), book.asks[ask])
                fanout(lst, data)

    def mark(self, book, ts_ms: int) -> tuple[bytes, bytes, bytes, int]:
        """(mark, index, funding rate, next funding ms) of a perp book, from its book and the reference."""
        mark = book.px((book.bid + book.ask) // 2)
        index = book.px(book.target)
        rate = b"%.8f" % (0.0001 * (1 + (book.bid - book.target) / max(1, book.depth)))
        return mark, index, rate, (ts_ms // FUNDING_MS + 1) * FUNDING_MS

    def on_timer(self, ts_ms: int) -> None:
        second = ts_ms // 1000
        for book in self.engine.book_list:
            subs = book.subs
            if not subs:
                continue
            book.refresh_target(ts_ms)
            for ch in ("markPrice1s", "markPrice"):
                lst = subs.get(ch)
                if lst and (ch == "markPrice1s" or second % 3 == 0):
                    mark, index, rate, nxt = self.mark(book, ts_ms)
                    data = MARK % (ts_ms, book.native_b, mark, index, index, rate, nxt)
                    fanout(lst, data)
            lst = subs.get("forceOrder")
            if lst and book.rng.random() < 0.2:
                side = b"SELL" if book.rng.random() < 0.5 else b"BUY"
                px = book.px(book.bid - 2 if side == b"SELL" else book.ask + 2)
                sz = book._size()
                data = LIQ % (ts_ms, book.native_b, side, sz, px, px, sz, sz, ts_ms)
                fanout(lst, data)

    # --- REST ----------------------------------------------------------------------------
    def symbol_info(self, book) -> dict:
        info = super().symbol_info(book)
        inst = book.inst
        for k in ("isSpotTradingAllowed", "isMarginTradingAllowed", "permissions", "permissionSets",
                  "quoteAssetPrecision"):
            info.pop(k, None)
        info.update({"pair": book.native, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
                     "onboardDate": 1569398400000, "marginAsset": inst.quote, "pricePrecision": inst.tick_dec,
                     "quantityPrecision": inst.lot_dec, "underlyingType": "COIN",
                     "timeInForce": ["GTC", "IOC", "FOK", "GTX"]})
        return info

    def exchange_info(self, books) -> dict:
        body = super().exchange_info(books)
        body["assets"] = [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}]
        return body

    def depth_body(self, book, limit) -> dict:
        body = super().depth_body(book, limit)
        now = self.now_ms()
        return {"lastUpdateId": body["lastUpdateId"], "E": now, "T": now, "bids": body["bids"], "asks": body["asks"]}

    @staticmethod
    def trade_json(book, t) -> dict:
        d = Binance.trade_json(book, t)
        d.pop("isBestMatch")
        return d

    @staticmethod
    def agg_json(book, t) -> dict:
        d = Binance.agg_json(book, t)
        d.pop("M")
        return d

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if path == self.rest_prefix + "/premiumIndex":
            books = self.engine.book_list
            if "symbol" in query:
                b, err = self._book_arg(query)
                if err:
                    return err
                books = [b]
            now = self.now_ms()
            out = []
            for b in books:
                b.refresh_target(now)
                mark, index, rate, nxt = self.mark(b, now)
                out.append({"symbol": b.native, "markPrice": mark.decode(), "indexPrice": index.decode(),
                            "estimatedSettlePrice": index.decode(), "lastFundingRate": rate.decode(),
                            "interestRate": "0.00010000", "nextFundingTime": nxt, "time": now})
            return 200, out[0] if "symbol" in query else out
        return super().rest(method, path, query)
