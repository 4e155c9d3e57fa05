"""Injectable faults: what each kind does to one venue of a running simulator.

Injected at run time by `POST /_sim/fault?venue=..&kind=..[&symbol=..]` (any port of the sim)
or scripted with `tickring sim --fault 'at=5,venue=okx,kind=gap,symbol=BTC-USDT'`.

kind        params                       effect
disconnect  graceful=0|1                 every websocket of the venue is dropped (TCP abort, no
                                         close frame; graceful=1 sends close 1001 first)
gap         symbol, count=1              the next `count` book updates of the symbol are applied
                                         to the book but never sent: the stream skips update ids
malformed   symbol[, market]             one frame that is not JSON (a truncated market message)
                                         to every connection subscribed to the symbol (in any
                                         market unless named; all connections without a symbol)
stall       seconds=5                    no data and no server pings for that long (connections
                                         stay open), then generation resumes at the current rate
notice      then_disconnect=0 (seconds)  the venue's forced-disconnect notice (Binance
                                         serverShutdown, OKX notice 64008); optionally drop the
                                         connections that many seconds later. Venues that document
                                         no notice (Bybit) answer 400.
wick        symbol, pct=5                the symbol's next trade prints pct % off the book (and off
                                         every other venue), once; the book is not moved
ping        -                            a server ws PING frame now (venues whose rule has them)
"""
from __future__ import annotations

import asyncio
import time

KINDS = ("disconnect", "gap", "malformed", "stall", "notice", "wick", "ping")


def inject(engine, params: dict[str, str]) -> dict:
    """Apply one fault to an engine. Raises KeyError/ValueError with a clear message."""
    kind = params.get("kind", "")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; kinds: {', '.join(KINDS)}")
    symbol = params.get("symbol") or None
    market = params.get("market") or None
    engine.sync()
    engine.changed()              # a replayed flood cycle ends here: faults act on the live model
    now_ms = int(time.time() * 1000)
    sessions = list(engine.sessions)
    result = {"venue": engine.venue, "kind": kind, "connections": len(sessions)}
    if kind == "disconnect":
        graceful = params.get("graceful", "0") not in ("0", "", "false")
        for s in sessions:
            s.close(1001, b"simulated disconnect") if graceful else s.abort()
    elif kind == "gap":
        b = engine.find(symbol, market)
        count = int(params.get("count", 1))
        if count < 1:
            raise ValueError("gap count must be >= 1")
        b.gap += count
        result.update(symbol=b.native, market=b.market, update_id=b.uid, book_messages=b.nmsg)
    elif kind == "malformed":
        b = engine.find(symbol, market)
        frame = engine.proto.malformed(b, now_ms)
        # every connection subscribed to that symbol, in any market unless one is named
        books = [x for x in engine.book_list if x.native == b.native
                 and (not market or x.market == market)]
        targets = {e[0] for x in books for lst in x.subs.values() for e in lst} if symbol else set(sessions)
        for s in targets:
            s.send(frame)
        result.update(symbol=b.native, sent_to=len(targets))
    elif kind == "stall":
        seconds = float(params.get("seconds", 5))
        if seconds < 0:
            raise ValueError("stall seconds must be >= 0")
        engine.stall_until = time.monotonic() + seconds
        result.update(seconds=seconds)
    elif kind == "notice":
        if not engine.proto.notice_supported:
            raise ValueError(f"{engine.venue} documents no forced-disconnect notice; use kind=disconnect")
        for s in sessions:
            frame = engine.proto.notice(s, now_ms)
            if frame is not None:
                s.send(frame)
        delay = float(params.get("then_disconnect", 0) or 0)
        if delay > 0:
            def drop(targets=sessions):
                for s in targets:
                    s.close(1001, b"service upgrade")
            asyncio.get_running_loop().call_later(delay, drop)
        result.update(then_disconnect=delay)
    elif kind == "wick":
        b = engine.find(symbol, market)
        pct = float(params.get("pct", 5))
        if not -90 < pct < 1000 or pct == 0:
            raise ValueError("wick pct must be non-zero and between -90 and 1000")
        b.wick = pct / 100.0
        result.update(symbol=b.native, market=b.market, next_trade_id=b.trade_id + 1, pct=pct)
    elif kind == "ping":
        for s in sessions:
            s.ping_sent = time.monotonic()
            s.send(b"%d" % now_ms, opcode=0x9)
    return result


def parse_spec(spec: str) -> tuple[float, dict[str, str]]:
    """'at=5,venue=okx,kind=gap,symbol=BTC-USDT' -> (5.0, {...}) for scripted runs."""
    params = {}
    for part in spec.split(","):
        k, sep, v = part.partition("=")
        if not sep:
            raise ValueError(f"fault spec {spec!r}: expected key=value pairs separated by commas, got {part!r}")
        params[k.strip()] = v.strip()
    at = float(params.pop("at", 0))
    if params.get("kind") not in KINDS:
        raise ValueError(f"fault spec {spec!r}: kind must be one of {', '.join(KINDS)}")
    return at, params
