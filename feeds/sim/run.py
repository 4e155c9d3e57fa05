"""The simulator process: build engines, listen, announce the URLs, run until told to stop.

Announcement (stdout, flushed, so a parent can read it without sleeping): one line per venue
`<venue> ws://127.0.0.1:<port> rest http://127.0.0.1:<port>`, or with json=True exactly one JSON
line {"pid":..,"tls":..,"venues":{venue:{"port","ws","rest"}},"symbols":..,"rate":..}. On exit
(SIGTERM, SIGINT, --duration) it prints the per-venue stats (one JSON line with json=True) and
returns 0.
"""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time

import orjson

from . import faults
from .engine import Engine
from .market import instruments
from .protocol import PROTOCOLS, protocol_class

# trades kept for REST backfill and /_sim/state across all books of a process (~170 bytes each):
# 2000 per book for small sims, fewer per book for big ones so memory stays ~70 MB
TRADE_BUDGET = 400_000
from .server import SimServer


def parse_venues(venues: str | list[str]) -> list[str]:
    names = [v.strip() for v in venues.split(",")] if isinstance(venues, str) else list(venues)
    names = [v for v in names if v]
    if not names:
        raise ValueError("no venues given; e.g. --venues binance,okx")
    bad = [v for v in names if v not in PROTOCOLS]
    if bad:
        raise ValueError(f"the simulator does not speak {', '.join(map(repr, bad))}; it speaks: {', '.join(PROTOCOLS)}")
    if len(set(names)) != len(names):
        raise ValueError("a venue is listed twice in --venues")
    return names


async def serve(venues: list[str], symbols: int, rate: float, seed: int, tls: bool, host: str, port: int,
                duration: float, json_out: bool, depth: int, history: int, ping_interval: float | None,
                fault_specs: list[tuple[float, dict]], cert_out: str | None = None,
                trade_share: float = 0.35, max_age: float = 0.0) -> dict:
    insts = instruments(symbols, seed)
    per_venue = rate / len(venues) if rate > 0 else 0.0
    if not history:                      # auto: 2000 trades per book within a process-wide budget
        books = sum(len(protocol_class(v).markets) for v in venues) * symbols
        history = max(200, min(2000, TRADE_BUDGET // books))
    engines = {v: Engine(v, insts, per_venue, seed, depth, history, ping_interval, trade_share) for v in venues}
    for e in engines.values():
        e.max_age = max_age
    ctx, how = (None, None)
    if tls:
        from .tls import server_context
        ctx, how = server_context(cert_out)
    server = SimServer(engines, host, ctx)
    await server.start(port)
    urls = server.urls()
    if json_out:
        line = {"pid": os.getpid(), "tls": tls, "cert": how, "venues": urls, "symbols": symbols,
                "rate": rate, "seed": seed}
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
    else:
        for v, u in urls.items():
            sys.stdout.write(f"{v} {u['ws']} rest {u['rest']}\n")
        if tls:
            sys.stdout.write(f"(self-signed certificate made with {how}; connect without verification)\n")
    sys.stdout.flush()

    # start-up garbage is long-lived: keep it out of the collector's way during the flood
    gc.collect()
    gc.freeze()

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if duration > 0:
        loop.call_later(duration, stop.set)
    for at, params in fault_specs:
        venue = params.get("venue") or venues[0]
        if venue not in engines:
            raise ValueError(f"--fault names venue {venue!r}, which is not simulated here")

        def fire(e=engines[venue], p=dict(params)):
            try:
                res = faults.inject(e, p)
                print(f"sim: fault {res}", file=sys.stderr)
            except (KeyError, ValueError) as err:
                print(f"sim: fault {p} failed: {err.args[0] if err.args else err}", file=sys.stderr)
        loop.call_later(at, fire)
    t0 = time.monotonic()
    await stop.wait()
    await server.stop()
    el = time.monotonic() - t0
    stats = {v: e.stats() for v, e in engines.items()}
    return {"stats": stats, "seconds": round(el, 3)}


def main(venues, symbols=20, rate=1000.0, seed=1, tls=False, host="127.0.0.1", port=0, duration=0.0,
         json_out=False, depth=25, history=0, ping_interval=None, fault_specs=(), cert_out=None,
         trade_share=0.35, max_age=0.0) -> int:
    names = parse_venues(venues)
    if symbols < 1:
        raise ValueError("--symbols must be at least 1")
    if rate < 0:
        raise ValueError("--rate must be >= 0 (0 = flood)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the simulator binds loopback only (127.0.0.1, localhost or ::1)")
    if depth < 5:
        raise ValueError("--depth must be at least 5")
    if history < 0:
        raise ValueError("--history must be >= 0 (0 = automatic)")
    if not 0.0 <= trade_share <= 1.0:
        raise ValueError("--trade-share must be between 0 and 1")
    specs = [faults.parse_spec(s) if isinstance(s, str) else s for s in fault_specs]
    try:
        import uvloop  # noqa: F401  (not a dependency; used when present)
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(serve(names, symbols, rate, seed, tls, host, port, duration, json_out, depth, history,
                          ping_interval, specs, cert_out, trade_share, max_age))
    if json_out:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
    else:
        for v, s in result["stats"].items():
            sys.stdout.write(f"{v}: {s['events']} events, {s['events_per_s']}/s\n")
    sys.stdout.flush()
    return 0
