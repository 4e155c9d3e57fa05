"""Kraken spot websocket v2 as the simulator speaks it (ws.kraken.com/v2 + api.kraken.com).

Websocket at /v2: {"method": "subscribe"|"unsubscribe", "params": {"channel", "symbol": [..],
...}, "req_id"} answered per symbol with {"method", "result": {...}, "success", "time_in",
"time_out"} (success false + "error" for an unknown pair or channel); {"method": "ping"} ->
{"method": "pong"}. On connect a `status` message (system online); a `heartbeat` message every
second while subscribed. Channels: trade (side = taker), ticker (event_trigger "bbo": on every
best bid/offer change; default "trades": on every trade), book (depth 10/25/100/...; snapshot on
subscribe, then updates), all with RFC 3339 timestamps and prices/quantities as JSON numbers.
Every book message carries `checksum`: CRC32 of the top 10 asks then top 10 bids, each price and
qty in the pair's fixed precision without '.' and leading zeros, so a client that lost an update
(`gap` fault) finds out at the next message. The book model keeps exactly `depth` levels and
sends deletes for levels that leave it: subscribe with depth >= the sim's depth (25).
Forced-disconnect notice: status with system "maintenance".
REST: /0/public/AssetPairs (wsname XBT/.. and XDG/.. as on Kraken), /0/public/Trades,
/0/public/Depth, /0/public/Time.
"""
from __future__ import annotations

import zlib

import orjson

from .coinbase import iso
from .protocol import Session, VenueProtocol

CHECKSUM_LEVELS = 10
TRADE = (b'{"channel":"trade","type":"update","data":[{"symbol":"%s","side":"%s","price":%s,"qty":%s,'
         b'"ord_type":"market","trade_id":%d,"timestamp":"%s"}]}')
TICKER = (b'{"channel":"ticker","type":"update","data":[{"symbol":"%s","bid":%s,"bid_qty":%s,"ask":%s,'
          b'"ask_qty":%s,"last":%s,"volume":0,"vwap":%s,"low":%s,"high":%s,"change":0,"change_pct":0,'
          b'"timestamp":"%s"}]}')
BOOK = b'{"channel":"book","type":"%s","data":[{"symbol":"%s","bids":[%s],"asks":[%s],"checksum":%d,"timestamp":"%s"}]}'
LEVEL = b'{"price":%s,"qty":%s}'
SIDE = (b"buy", b"sell")            # buyer_is_maker 1 -> the seller was the aggressor
REST_ASSET = {"BTC": "XBT", "DOGE": "XDG"}
DEPTHS = (10, 25, 100, 500, 1000)


def _ck(b: bytes) -> bytes:
    return b.replace(b".", b"").lstrip(b"0")


def checksum(book) -> int:
    """Kraken v2 CRC32 of the model book (prices/sizes are already in fixed precision)."""
    px = book.px
    n = min(CHECKSUM_LEVELS, book.depth)
    parts = []
    asks = book.asks
    for t in range(book.ask, book.ask + n):
        parts.append(_ck(px(t)))
        parts.append(_ck(asks[t]))
    bids = book.bids
    for t in range(book.bid, book.bid - n, -1):
        parts.append(_ck(px(t)))
        parts.append(_ck(bids[t]))
    return zlib.crc32(b"".join(parts))


def _levels(changes) -> bytes:
    return b",".join([LEVEL % lv for lv in changes])


class Kraken(VenueProtocol):
    name = "kraken"
    markets = ("spot",)
    ping_interval = 0.0
    max_incoming_per_s = 20
    ids_per_update = (1, 1)
    notice_supported = True

    def __init__(self, engine):
        super().__init__(engine)
        self._pairs: dict[str, object] | None = None

    def native(self, inst, market: str) -> str:
        return f"{inst.base}/{inst.quote}"

    # --- websocket -----------------------------------------------------------------------
    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        if path.rstrip("/") != "/v2":
            return False
        session.market = "spot"
        return True

    def on_open(self, session: Session) -> None:
        session.send_json({"channel": "status", "type": "update", "data": [
            {"version": "2.0.0", "system": "online", "api_version": "v2", "connection_id": session.id}]})

    def _answer(self, session: Session, method: str, req_id, ok: bool, t: str, **fields) -> None:
        msg = {"method": method, "success": ok, "time_in": t, "time_out": t, **fields}
        if req_id is not None:
            msg["req_id"] = req_id
        session.send_json(msg)

    def on_text(self, session: Session, data: bytes) -> None:
        t = iso(self.now_ms()).decode()
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            session.send_json({"error": "Malformed request", "success": False, "time_in": t, "time_out": t})
            return
        if not isinstance(msg, dict):
            session.send_json({"error": "Malformed request", "success": False, "time_in": t, "time_out": t})
            return
        method = msg.get("method")
        rid = msg.get("req_id")
        if method == "ping":
            session.send_json({"method": "pong", "req_id": rid, "time_in": t, "time_out": t}
                              if rid is not None else {"method": "pong", "time_in": t, "time_out": t})
            return
        if method not in ("subscribe", "unsubscribe"):
            self._answer(session, str(method), rid, False, t, error=f"Method {method!r} not supported")
            return
        params = msg.get("params") or {}
        channel = params.get("channel")
        symbols = params.get("symbol") or []
        if channel not in ("trade", "ticker", "book"):
            self._answer(session, method, rid, False, t, error=f"Channel {channel!r} not supported")
            return
        depth = int(params.get("depth", 10))
        if channel == "book" and depth not in DEPTHS:
            self._answer(session, method, rid, False, t, error="Invalid depth")
            return
        for sym in symbols:
            book = self.book("spot", sym)
            if book is None:
                self._answer(session, method, rid, False, t, symbol=sym,
                             error=f"Currency pair not supported {sym}")
                continue
            key = f"{channel}:{sym}"
            result = {"channel": channel, "symbol": sym}
            if method == "unsubscribe":
                session.unsubscribe(key)
                if channel == "book":
                    result["depth"] = depth
                self._answer(session, method, rid, True, t, result=result)
                continue
            if channel == "ticker":
                sub = "ticker_bbo" if params.get("event_trigger") == "bbo" else "ticker_trades"
                result["event_trigger"] = "bbo" if sub == "ticker_bbo" else "trades"
            else:
                sub = channel
            if channel == "book":
                result.update(depth=depth, snapshot=bool(params.get("snapshot", True)))
            elif channel == "trade":
                result["snapshot"] = bool(params.get("snapshot", True))
            fresh = session.subscribe(key, book, sub)
            self._answer(session, method, rid, True, t, result=result)
            if fresh and channel == "book" and params.get("snapshot", True):
                bids, asks = book.top(min(depth, book.depth))
                session.send(BOOK % (b"snapshot", book.native_b, _levels(bids), _levels(asks),
                                     checksum(book), t.encode()))

    # --- market data ---------------------------------------------------------------------
    def on_trade(self, book, tr, ts_ms: int) -> None:
        subs = book.subs
        tid, px, sz, bm, _ts, _ = tr
        lst = subs.get("trade")
        if lst:
            data = TRADE % (book.native_b, SIDE[bm], px, sz, tid, iso(ts_ms))
            for s, _, _ in lst:
                s.push(data)
        lst = subs.get("ticker_trades")
        if lst:
            data = self._ticker(book, px, ts_ms)
            for s, _, _ in lst:
                s.push(data)

    def _ticker(self, book, last: bytes, ts_ms: int) -> bytes:
        bid, ask = book.px(book.bid), book.px(book.ask)
        return TICKER % (book.native_b, bid, book.bids[book.bid], ask, book.asks[book.ask], last,
                         last, bid, ask, iso(ts_ms))

    def on_book(self, book, ev, ts_ms: int) -> None:
        _first, _last, _prev, bch, ach, top = ev
        subs = book.subs
        lst = subs.get("book")
        if lst:
            data = BOOK % (b"update", book.native_b, _levels(bch), _levels(ach), checksum(book), iso(ts_ms))
            for s, _, _ in lst:
                s.push(data)
        if top:
            lst = subs.get("ticker_bbo")
            if lst:
                tr = book.trades[-1][1] if book.trades else book.px(book.bid)
                data = self._ticker(book, tr, ts_ms)
                for s, _, _ in lst:
                    s.push(data)

    def on_timer(self, ts_ms: int) -> None:
        for s in list(self.engine.sessions):
            if s.subs:
                s.push(b'{"channel":"heartbeat"}')

    def notice(self, session: Session, ts_ms: int) -> bytes:
        return (b'{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"maintenance",'
                b'"api_version":"v2","connection_id":%d}]}' % session.id)

    def malformed(self, book, ts_ms: int) -> bytes:
        return b'{"channel":"trade","type":"update","data":[{"symbol":"%s","side":"buy","pri' % book.native_b

    # --- REST ----------------------------------------------------------------------------
    @staticmethod
    def rest_name(inst) -> tuple[str, str]:
        """(altname "XBTUSDT", wsname "XBT/USDT") as Kraken's REST spells a pair."""
        base = REST_ASSET.get(inst.base, inst.base)
        return f"{base}{inst.quote}", f"{base}/{inst.quote}"

    def _pair(self, name: str):
        if self._pairs is None:
            self._pairs = {}
            for b in self.engine.book_list:
                alt, ws = self.rest_name(b.inst)
                for k in (alt, ws, b.native, b.native.replace("/", "")):
                    self._pairs[k] = b
        return self._pairs.get(name)

    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        if method != "GET":
            return 405, {"error": [f"EGeneral:{method} not supported"], "result": {}}
        if path == "/0/public/Time":
            ms = self.now_ms()
            return 200, {"error": [], "result": {"unixtime": ms // 1000, "rfc1123": ""}}
        if path == "/0/public/AssetPairs":
            out = {}
            for b in self.engine.book_list:
                inst = b.inst
                alt, ws = self.rest_name(inst)
                out[alt] = {"altname": alt, "wsname": ws, "aclass_base": "currency",
                            "base": REST_ASSET.get(inst.base, inst.base), "aclass_quote": "currency",
                            "quote": inst.quote, "pair_decimals": inst.tick_dec, "cost_decimals": 8,
                            "lot_decimals": inst.lot_dec, "lot_multiplier": 1,
                            "tick_size": b.px(1).decode(), "ordermin": f"{inst.lot:.{inst.lot_dec}f}",
                            "status": "online"}
            return 200, {"error": [], "result": out}
        if path in ("/0/public/Trades", "/0/public/Depth"):
            b = self._pair(query.get("pair", ""))
            if b is None:
                return 200, {"error": ["EQuery:Unknown asset pair"]}
            alt, _ = self.rest_name(b.inst)
            n = max(1, min(int(query.get("count", 1000)), 1000))
            if path.endswith("Trades"):
                rows = [[t[1].decode(), t[2].decode(), t[4] / 1000.0, "s" if t[3] else "b", "m", "", t[0]]
                        for t in b.trades_from(None, n)]
                last = str(b.trades[-1][4] * 1_000_000) if b.trades else "0"
                return 200, {"error": [], "result": {alt: rows, "last": last}}
            bids, asks = b.top(min(n, 500))
            ts = self.now_ms() // 1000
            return 200, {"error": [], "result": {alt: {"asks": [[p.decode(), s.decode(), ts] for p, s in asks],
                                                       "bids": [[p.decode(), s.decode(), ts] for p, s in bids]}}}
        return 404, {"error": [f"EGeneral:Unknown method {path}"]}
