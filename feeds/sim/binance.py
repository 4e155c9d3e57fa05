"""Binance spot as the simulator speaks it (stream.binance.com + api.binance.com).

Websocket: raw streams at /ws and /ws/<stream>[/<stream>...], combined at
/stream?streams=<a>/<b> ({"stream":..,"data":..} wrapper). JSON control: SUBSCRIBE /
UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY with {"result":..,"id":..} acks,
{"code":..,"msg":..,"id":..} errors. Streams: <symbol>@trade, @aggTrade, @bookTicker,
@depth, @depth@100ms, @depth@1000ms (all lowercase). Unknown symbols are accepted and silent,
as on Binance. The server sends ws PING frames (every 20 s) and drops a connection that sends
no PONG within a minute; more than 5 incoming messages a second close the connection;
serverShutdown event as the forced-disconnect notice.
Diff depth: U = first update id, u = last; the next event has U = previous u + 1.
REST: /api/v3/exchangeInfo, /api/v3/depth (lastUpdateId consistent with the stream),
/api/v3/trades, /api/v3/historicalTrades (fromId), /api/v3/aggTrades (fromId), /api/v3/ping,
/api/v3/time.
"""
from __future__ import annotations

import orjson

from .protocol import Session, VenueProtocol, fanout

TF = (b"false", b"true")

# E (and T: trades print at the batch time) come pre-rendered as bytes (VenueProtocol.ts_b)
TRADE = b'{"e":"trade","E":%s,"s":"%s","t":%d,"p":"%s","q":"%s","T":%s,"m":%s,"M":true}'
AGG = b'{"e":"aggTrade","E":%s,"s":"%s","a":%d,"p":"%s","q":"%s","f":%d,"l":%d,"T":%s,"m":%s,"M":true}'
DEPTH = b'{"e":"depthUpdate","E":%s,"s":"%s","U":%d,"u":%d,"b":[%s],"a":[%s]}'
TICKER = b'{"u":%d,"s":"%s","b":"%s","B":"%s","a":"%s","A":"%s"}'


class Binance(VenueProtocol):
    name = "binance"
    markets = ("spot",)
    rendered_levels = True
    ping_interval = 20.0
    pong_timeout = 60.0
    max_incoming_per_s = 5
    max_streams = 1024
    rest_prefix = "/api/v3"
    # stream channel name -> model channel it listens to
    CHANNELS = {"trade": "trade", "aggTrade": "aggTrade", "bookTicker": "bookTicker",
                "depth": "depth", "depth@100ms": "depth", "depth@1000ms": "depth"}

    def native(self, inst, market: str) -> str:
        return f"{inst.base}{inst.quote}"

    # --- websocket -----------------------------------------------------------------------
    def split_path(self, path: str) -> str | None:
        """The part of the URL path after the venue's route prefix (None: not a ws route)."""
        return path

    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        rest = self.split_path(path)
        if rest is None:
            return False
        session.market = self.markets[0]
        if rest == "/ws" or rest == "/ws/":
            return True
        if rest.startswith("/ws/"):
            streams = [s for s in rest[4:].split("/") if s]
        elif rest in ("/stream", "/stream/"):
            session.combined = True
            streams = [s for s in query.get("streams", "").split("/") if s]
        else:
            return False
        if len(streams) > self.max_streams:
            return False
        for name in streams:
            self._subscribe(session, name)
        return True

    def stream_allowed(self, session: Session, channel: str) -> bool:
        """Whether this connection's route delivers this channel (USD-M routes; spot: all)."""
        return True

    def _subscribe(self, session: Session, name: str) -> None:
        sym, _, chan = name.partition("@")
        channel = self.CHANNELS.get(chan)
        book = self.book(session.market, sym.upper()) if sym == sym.lower() else None
        if channel is None or book is None or not self.stream_allowed(session, channel):
            # Binance accepts any stream name and simply sends nothing for it
            session.subs.setdefault(name, None)
            return
        prefix, suffix = (b'{"stream":"%s","data":' % name.encode(), b"}") if session.combined else (b"", b"")
        session.subscribe(name, book, channel, prefix, suffix)

    def on_text(self, session: Session, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            session.send_json({"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1", "id": None})
            return
        if not isinstance(msg, dict):
            session.send_json({"code": 2, "msg": "Invalid request: request must be a JSON object", "id": None})
            return
        rid = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", [])
        if method is None:
            session.send_json({"code": 2, "msg": "Invalid request: missing field `method`", "id": rid})
            return
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                session.send_json({"code": 1, "msg": "Invalid value type: expected array of strings", "id": rid})
                return
            if method == "SUBSCRIBE":
                if len(set(session.subs) | set(params)) > self.max_streams:
                    session.send_json({"code": 2, "msg": f"Invalid request: too many streams (max {self.max_streams})",
                                       "id": rid})
                    return
                for name in params:
                    if name not in session.subs:
                        self._subscribe(session, name)
            else:
                for name in params:
                    if session.subs.get(name) is None:
                        session.subs.pop(name, None)
                    else:
                        session.unsubscribe(name)
            session.send_json({"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            session.send_json({"result": list(session.subs), "id": rid})
        elif method == "SET_PROPERTY":
            if params and params[0] == "combined" and len(params) == 2 and isinstance(params[1], bool):
                session.combined = params[1]
                session.send_json({"result": None, "id": rid})
            else:
                session.send_json({"code": 0, "msg": "Unknown property", "id": rid})
        elif method == "GET_PROPERTY":
            if params == ["combined"]:
                session.send_json({"result": session.combined, "id": rid})
            else:
                session.send_json({"code": 0, "msg": "Unknown property", "id": rid})
        else:
            session.send_json({"code": 2, "msg": f"Invalid request: unknown variant `{method}`, expected one of "
                               "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
                               "id": rid})

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, t, ts_ms: int) -> None:
        subs = book.subs
        tid, px, sz, bm, ts, _ = t
        lst = subs.get("trade")
        if lst:
            tsb = self.ts_b
            data = TRADE % (tsb, book.native_b, tid, px, sz, tsb, TF[bm])
            fanout(lst, data)
        lst = subs.get("aggTrade")
        if lst:
            tsb = self.ts_b
            data = AGG % (tsb, book.native_b, tid + book.agg_offset, px, sz, tid, tid, tsb, TF[bm])
            fanout(lst, data)

    def on_book(self, book, ev, ts_ms: int) -> None:
        subs = book.subs
        first, last, prev, bch, ach, top = ev
        lst = subs.get("depth")
        if lst:
            data = DEPTH % (self.ts_b, book.native_b, first, last, bch, ach)
            fanout(lst, data)
        if top:
            lst = subs.get("bookTicker")
            if lst:
                bid, ask, pc = book.bid, book.ask, book.pxcache
                data = TICKER % (last, book.native_b, pc.get(bid) or book.px(bid), book.bids[bid],
                                 pc.get(ask) or book.px(ask), book.asks[ask])
                fanout(lst, data)

    # --- faults --------------------------------------------------------------------------
    def notice(self, session: Session, ts_ms: int) -> bytes:
        return b'{"e":"serverShutdown","E":%d}' % ts_ms

    # --- REST ----------------------------------------------------------------------------
    def _book_arg(self, query):
        sym = query.get("symbol")
        if not sym:
            return None, (400, {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."})
        b = self.book(self.markets[0], sym)
        if b is None:
            return None, (400, {"code": -1121, "msg": "Invalid symbol."})
        return b, None

    def _limit(self, query, default, top):
        lim = int(query.get("limit", default))
        return max(1, min(lim, top))

    def symbol_info(self, book) -> dict:
        inst = book.inst
        return {
            "symbol": book.native, "status": "TRADING", "baseAsset": inst.base, "baseAssetPrecision": 8,
            "quoteAsset": inst.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "isSpotTradingAllowed": True, "isMarginTradingAllowed": True,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": book.px(1).decode(), "maxPrice": "1000000.00000000",
                 "tickSize": book.px(1).decode()},
                {"filterType": "LOT_SIZE", "minQty": _unit(inst.lot_dec),
                 "maxQty": "9000000.00000000", "stepSize": _unit(inst.lot_dec)},
            ],
            "permissions": [], "permissionSets": [["SPOT"]],
        }

    def exchange_info(self, books) -> dict:
        return {"timezone": "UTC", "serverTime": self.now_ms(), "rateLimits": [], "exchangeFilters": [],
                "symbols": [self.symbol_info(b) for b in books]}

    def depth_body(self, book, limit) -> dict:
        bids, asks = book.top(limit)
        return {"lastUpdateId": book.uid,
                "bids": [[p.decode(), s.decode()] for p, s in bids],
                "asks": [[p.decode(), s.decode()] for p, s in asks]}

    @staticmethod
    def trade_json(book, t) -> dict:
        tid, px, sz, bm, ts, ticks = t
        return {"id": tid, "price": px.decode(), "qty": sz.decode(),
                "quoteQty": f"{book.price(ticks) * float(sz):.8f}", "time": ts, "isBuyerMaker": bool(bm),
                "isBestMatch": True}

    @staticmethod
    def agg_json(book, t) -> dict:
        tid, px, sz, bm, ts, _ = t
        return {"a": tid + book.agg_offset, "p": px.decode(), "q": sz.decode(), "f": tid, "l": tid,
                "T": ts, "m": bool(bm), "M": True}

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        p = self.rest_prefix
        if method != "GET":
            return 405, {"code": -1000, "msg": f"{method} is not supported on {path}"}
        if path == p + "/ping":
            return 200, {}
        if path == p + "/time":
            return 200, {"serverTime": self.now_ms()}
        if path == p + "/exchangeInfo":
            books = self.engine.book_list
            if "symbol" in query:
                b, err = self._book_arg(query)
                if err:
                    return err
                books = [b]
            elif "symbols" in query:
                names = set(orjson.loads(query["symbols"]))
                books = [b for b in books if b.native in names]
            return 200, self.exchange_info(books)
        if path == p + "/depth":
            b, err = self._book_arg(query)
            if err:
                return err
            return 200, self.depth_body(b, self._limit(query, 100, 5000))
        if path in (p + "/trades", p + "/historicalTrades"):
            b, err = self._book_arg(query)
            if err:
                return err
            lim = self._limit(query, 500, 1000)
            from_id = int(query["fromId"]) if "fromId" in query and path.endswith("historicalTrades") else None
            return 200, [self.trade_json(b, t) for t in b.trades_from(from_id, lim)]
        if path == p + "/aggTrades":
            b, err = self._book_arg(query)
            if err:
                return err
            lim = self._limit(query, 500, 1000)
            from_id = int(query["fromId"]) - b.agg_offset if "fromId" in query else None
            trades = b.trades_from(from_id, lim)
            if "startTime" in query:
                st = int(query["startTime"])
                trades = [t for t in b.trades if t[4] >= st][:lim]
            if "endTime" in query:
                et = int(query["endTime"])
                trades = [t for t in trades if t[4] <= et]
            return 200, [self.agg_json(b, t) for t in trades]
        return 404, {"code": -1000, "msg": f"no such endpoint {path} on the simulator's {self.name}"}


def _unit(dec: int) -> str:
    """The smallest step with dec decimals, Binance style ("0.00001000")."""
    return f"{10.0 ** -dec:.8f}"
