"""Coinbase Advanced Trade as the simulator speaks it (advanced-trade-ws.coinbase.com + the public
market REST API of api.coinbase.com).

Websocket at "/": {"type": "subscribe"|"unsubscribe", "product_ids": [...], "channel": ...}
for market_trades, ticker, level2 and heartbeats; every subscribe/unsubscribe is answered by a
`subscriptions` message listing what the connection has. Every message carries the envelope
{"channel", "client_id", "timestamp", "sequence_num", "events"} with sequence_num counting the
messages of the connection (all channels). level2 (channel "l2_data") sends a snapshot of the
whole book on subscribe, then updates (new_quantity absolute, "0" deletes, side bid|offer).
market_trades `side` is the MAKER side (as documented; the aggressor is the opposite).
ticker: one message per trade with the best bid/offer at that moment. heartbeats: once a
second. A `gap` fault loses book messages: the connection's sequence_num skips one number per
lost message, as a dropped message would. No server pings, no forced-disconnect notice.
REST: /api/v3/brokerage/market/products, .../market/products/{id}/ticker (recent trades),
.../market/product_book, /api/v3/brokerage/time.
"""
from __future__ import annotations

import time

import orjson

from .protocol import Session, VenueProtocol

_ISO: dict[int, bytes] = {}


def iso(ts_ms: int) -> bytes:
    """RFC 3339 UTC with milliseconds ("2023-02-09T20:19:35.396Z"), cached per second."""
    s, ms = divmod(ts_ms, 1000)
    head = _ISO.get(s)
    if head is None:
        if len(_ISO) > 64:
            _ISO.clear()
        head = _ISO[s] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)).encode()
    return b"%s.%03dZ" % (head, ms)


ENV = b'{"channel":"%s","client_id":"","timestamp":"%s","sequence_num":'
TRADE = (b',"events":[{"type":"update","trades":[{"trade_id":"%d","product_id":"%s","price":"%s",'
         b'"size":"%s","side":"%s","time":"%s"}]}]}')
TICKER = (b',"events":[{"type":"update","tickers":[{"type":"ticker","product_id":"%s","price":"%s",'
          b'"volume_24_h":"0","low_24_h":"0","high_24_h":"0","low_52_w":"0","high_52_w":"0",'
          b'"price_percent_chg_24_h":"0","best_bid":"%s","best_bid_quantity":"%s","best_ask":"%s",'
          b'"best_ask_quantity":"%s"}]}]}')
L2 = b',"events":[{"type":"%s","product_id":"%s","updates":[%s]}]}'
LEVEL = b'{"side":"%s","event_time":"%s","price_level":"%s","new_quantity":"%s"}'
MAKER_SIDE = (b"SELL", b"BUY")      # buyer_is_maker 0 -> the seller was the maker
CHANNELS = {"market_trades": "trade", "ticker": "ticker", "level2": "l2"}


def _send_seq(session: Session, head: bytes, tail: bytes, push: bool = True) -> None:
    """One enveloped message with the connection's next sequence_num."""
    d = session.data
    n = d["seq"] = d.get("seq", -1) + 1
    data = head + b"%d" % n + tail
    if push:
        session.push(data)
    else:
        session.send(data)


class Coinbase(VenueProtocol):
    name = "coinbase"
    markets = ("spot",)
    ping_interval = 0.0
    max_incoming_per_s = 8          # unauthenticated: 8 messages per second
    ids_per_update = (1, 1)
    notice_supported = False

    def __init__(self, engine):
        super().__init__(engine)
        self.sent_uid: dict[tuple, int] = {}     # book -> last update id sent on level2

    def native(self, inst, market: str) -> str:
        return f"{inst.base}-{inst.quote}"

    # --- websocket -----------------------------------------------------------------------
    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        if path not in ("/", ""):
            return False
        session.market = "spot"
        session.data["seq"] = -1
        return True

    def _error(self, session: Session, message: str) -> None:
        session.send_json({"type": "error", "message": message})

    def on_text(self, session: Session, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error(session, "failure to parse message")
            return
        if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
            self._error(session, "unknown message type")
            return
        channel = msg.get("channel")
        products = msg.get("product_ids") or []
        if channel != "heartbeats" and channel not in CHANNELS:
            self._error(session, f"unknown channel {channel!r}")
            return
        if not isinstance(products, list):
            self._error(session, "product_ids must be a list")
            return
        ts = iso(self.now_ms())
        if msg["type"] == "subscribe":
            if channel == "heartbeats":
                session.data["hb"] = 0
            else:
                for p in products:
                    self._subscribe(session, channel, p, ts)
        else:
            if channel == "heartbeats":
                session.data.pop("hb", None)
            for p in products:
                session.unsubscribe(f"{channel}:{p}")
        subs: dict[str, list] = {}
        for key in session.subs:
            ch, _, p = key.partition(":")
            subs.setdefault(ch, []).append(p)
        if "hb" in session.data:
            subs["heartbeats"] = []
        _send_seq(session, ENV % (b"subscriptions", ts),
                  b',"events":[{"subscriptions":' + orjson.dumps(subs) + b"}]}", push=False)

    def _subscribe(self, session: Session, channel: str, product: str, ts: bytes) -> None:
        book = self.book("spot", product)
        key = f"{channel}:{product}"
        if book is None:
            session.subs.setdefault(key, None)       # accepted, nothing will come
            return
        if not session.subscribe(key, book, CHANNELS[channel]):
            return
        if channel == "level2":
            bids, asks = book.top(book.depth)
            lv = [LEVEL % (b"bid", ts, p, s) for p, s in bids] + [LEVEL % (b"offer", ts, p, s) for p, s in asks]
            self.sent_uid[book.key] = book.uid
            _send_seq(session, ENV % (b"l2_data", ts),
                      L2 % (b"snapshot", book.native_b, b",".join(lv)), push=False)

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, t, ts_ms: int) -> None:
        subs = book.subs
        tid, px, sz, bm, _ts, _ = t
        ts = None
        lst = subs.get("trade")
        if lst:
            ts = iso(ts_ms)
            head = ENV % (b"market_trades", ts)
            tail = TRADE % (tid, book.native_b, px, sz, MAKER_SIDE[bm], ts)
            for s, _, _ in lst:
                _send_seq(s, head, tail)
        lst = subs.get("ticker")
        if lst:
            ts = ts or iso(ts_ms)
            head = ENV % (b"ticker", ts)
            tail = TICKER % (book.native_b, px, book.px(book.bid), book.bids[book.bid],
                             book.px(book.ask), book.asks[book.ask])
            for s, _, _ in lst:
                _send_seq(s, head, tail)

    def replayed(self) -> None:
        books = self.engine.books
        for key in self.sent_uid:
            self.sent_uid[key] = books[key].uid

    def on_book(self, book, ev, ts_ms: int) -> None:
        first, last, _prev, bch, ach, _top = ev
        sent = self.sent_uid.get(book.key)
        self.sent_uid[book.key] = last
        lst = book.subs.get("l2")
        if not lst:
            return
        if sent is not None and first > sent + 1:
            for s, _, _ in lst:                      # messages lost on the way: a sequence gap
                s.data["seq"] = s.data.get("seq", -1) + (first - sent - 1)
        ts = iso(ts_ms)
        lv = [LEVEL % (b"bid", ts, p, s) for p, s in bch] + [LEVEL % (b"offer", ts, p, s) for p, s in ach]
        head = ENV % (b"l2_data", ts)
        tail = L2 % (b"update", book.native_b, b",".join(lv))
        for s, _, _ in lst:
            _send_seq(s, head, tail)

    def on_timer(self, ts_ms: int) -> None:
        ts = iso(ts_ms)
        for s in list(self.engine.sessions):
            n = s.data.get("hb")
            if n is None:
                continue
            s.data["hb"] = n + 1
            _send_seq(s, ENV % (b"heartbeats", ts),
                      b',"events":[{"current_time":"%s","heartbeat_counter":"%d"}]}' % (ts, n + 1))

    def malformed(self, book, ts_ms: int) -> bytes:
        return b'{"channel":"market_trades","client_id":"","timestamp":"%s","sequence_num":1,"ev' % iso(ts_ms)

    # --- REST ----------------------------------------------------------------------------
    def product(self, book) -> dict:
        inst = book.inst
        return {"product_id": book.native, "price": book.px(book.bid).decode(),
                "base_increment": f"{inst.lot:.{inst.lot_dec}f}", "quote_increment": book.px(1).decode(),
                "price_increment": book.px(1).decode(), "base_min_size": f"{inst.lot:.{inst.lot_dec}f}",
                "product_type": "SPOT", "status": "online", "trading_disabled": False,
                "base_currency_id": inst.base, "quote_currency_id": inst.quote,
                "base_display_symbol": inst.base, "quote_display_symbol": inst.quote}

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if method != "GET":
            return 405, {"error": "NOT_FOUND", "message": f"{method} not supported"}
        p = "/api/v3/brokerage"
        if path == p + "/time":
            ms = self.now_ms()
            return 200, {"iso": iso(ms).decode(), "epochSeconds": str(ms // 1000), "epochMillis": str(ms)}
        if path == p + "/market/products":
            books = self.engine.book_list
            return 200, {"products": [self.product(b) for b in books], "num_products": len(books)}
        if path.startswith(p + "/market/products/") and path.endswith("/ticker"):
            b = self.book("spot", path[len(p + "/market/products/"):-len("/ticker")])
            if b is None:
                return 404, {"error": "NOT_FOUND", "message": "ProductID is invalid"}
            lim = max(1, min(int(query.get("limit", 100)), 1000))
            trades = [{"trade_id": str(t[0]), "product_id": b.native, "price": t[1].decode(),
                       "size": t[2].decode(), "time": iso(t[4]).decode(),
                       "side": MAKER_SIDE[t[3]].decode(), "bid": "", "ask": ""}
                      for t in reversed(b.trades_from(None, lim))]
            return 200, {"trades": trades, "best_bid": b.px(b.bid).decode(), "best_ask": b.px(b.ask).decode()}
        if path == p + "/market/product_book":
            b = self.book("spot", query.get("product_id", ""))
            if b is None:
                return 404, {"error": "NOT_FOUND", "message": "ProductID is invalid"}
            bids, asks = b.top(int(query.get("limit", 50)))
            return 200, {"pricebook": {"product_id": b.native,
                                       "bids": [{"price": x.decode(), "size": y.decode()} for x, y in bids],
                                       "asks": [{"price": x.decode(), "size": y.decode()} for x, y in asks],
                                       "time": iso(self.now_ms()).decode()}}
        return 404, {"error": "NOT_FOUND", "message": f"no such endpoint {path} on the simulator's coinbase"}
