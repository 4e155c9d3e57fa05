"""The built-in exchange simulator (`tickring sim`): each venue's real wire protocol on loopback.

What it serves, per venue, on its own port (websocket and REST on the same port):
- binance       /ws, /ws/<streams>, /stream?streams=..  + /api/v3/{exchangeInfo,depth,trades,
                historicalTrades,aggTrades,ping,time}
- binance_usdm  /public|/market + /ws, /ws/<streams>, /stream?streams=.. (legacy unrouted /ws,
                /stream = /public)  + /fapi/v1/{exchangeInfo,depth,trades,historicalTrades,
                aggTrades,premiumIndex,ping,time}
- bybit         /v5/public/spot, /v5/public/linear  + /v5/market/{instruments-info,orderbook,
                recent-trade,time}
- okx           /ws/v5/public  + /api/v5/public/instruments, /api/v5/market/{books,trades,
                history-trades}, /api/v5/public/time
plus on every port the control endpoints
- POST /_sim/fault?venue=..&kind=..&symbol=..   (kinds and params: feeds/sim/faults.py)
- GET  /_sim/state?venue=..&symbol=..[&market=..&depth=10&trades=100]  the book and trades sent
- GET  /_sim/info (URLs and symbols), GET /_sim/stats (events generated per venue)
- POST /_sim/rate?venue=..&rate=..  change a venue's event rate at run time (0 = flood)
Per-venue protocol rules live in feeds/sim/<venue>.py (a VenueProtocol subclass registered in
feeds.sim.protocol.PROTOCOLS); the market model in market.py; the generation loop in engine.py;
the HTTP/websocket server in server.py.

Python API (tests, benchmarks, the demo):

    from feeds.sim import start_in_background, running

    sim = start_in_background(["binance", "okx"], symbols=10, rate=2000, seed=7, tls=False)
    sim.url("binance")        # 'ws://127.0.0.1:41234'   (ws base URL; add the venue's path)
    sim.rest_url("binance")   # 'http://127.0.0.1:41234'
    sim.fault("okx", "gap", symbol="BTC-USDT")      # -> dict describing what was done
    sim.state("binance", "BTCUSDT", depth=5)        # -> book, update id, trades generated
    sim.stop()                                      # SIGTERM, wait, returns the exit code

    with running(["bybit"], symbols=5, rate=500) as sim:   # pytest-friendly
        ...

start_in_background launches `python -m feeds.sim ... --json` in a subprocess, reads its one
JSON announcement line (no sleeps) and returns a SimHandle. Extra CLI flags go in `args`
(e.g. args=["--ping-interval", "0.5", "--fault", "at=2,kind=stall,seconds=1"]).

Semantics worth knowing:
- `rate` counts market *events* (a trade or a book change) per second, split evenly across the
  venues of the process (set_rate() changes one venue's rate at run time); an event becomes
  one frame per subscribed channel and connection (a top-of-book change also feeds quote
  channels). rate=0 (or --flood) generates as fast as the clients read, and only while some
  connection is subscribed.
- Flood replay: a flood renders a closed cycle of events live a few times, then replays it
  from a template with update ids, trade ids, sequence numbers and clocks advanced (several
  times faster than live rendering; contiguous and consistent with REST; see engine.py and
  replay.py). TICKRING_SIM_FLOOD=live in the sim's environment renders every frame live.
- The market advances whether or not anyone is subscribed (rate mode), like a real venue:
  /_sim/state's trade count/ids are every trade generated; `recent` is what a subscriber of
  that symbol received (bounded by --history, which also bounds REST backfill: 2000 trades
  per book by default, fewer in big sims so that a process keeps at most 400,000 trades).
- Back-pressure: a connection above 512 KiB of unsent data pauses its venue's generator until
  it drains (one slow client slows that venue for everyone; memory stays bounded).
- Prices of one base asset agree across venues and across sim processes with the same seed
  (a shared reference of wall time), so a wick on one venue is off the others' price.
- --tls serves wss:// and https:// with a self-signed certificate (CN=localhost, SAN
  localhost/127.0.0.1) made at start by the `cryptography` package when installed, else by
  `openssl req -x509` (feeds/sim/tls.py); connect without verification (tls.client_context()).
- Speed: `python -m feeds.sim.bench [--venues ..|all] [--flood replay|live] [--json]` floods
  byte-counting sinks (subscribed like the feed worker) from one sim process per venue and
  reports frames/s, sim CPU and CPU us per frame (with a calibration loop so runs on a busy
  box can be compared).
"""
from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class SimError(RuntimeError):
    """The simulator process failed to start or a control request failed."""


class SimHandle:
    """A running simulator subprocess and its control API."""

    def __init__(self, proc: subprocess.Popen, info: dict):
        self.proc = proc
        self.info = info
        self.pid = proc.pid
        self.venues: dict[str, dict] = info["venues"]
        self.tls = bool(info.get("tls"))
        self.final: dict | None = None

    # --- addresses -----------------------------------------------------------------------
    def _venue(self, venue: str) -> dict:
        try:
            return self.venues[venue]
        except KeyError:
            raise KeyError(f"venue {venue!r} is not simulated by this sim; it runs: {', '.join(self.venues)}") from None

    def url(self, venue: str) -> str:
        """The venue's websocket base URL (ws:// or wss://host:port), without a path."""
        return self._venue(venue)["ws"]

    def rest_url(self, venue: str) -> str:
        """The venue's REST base URL (http:// or https://host:port)."""
        return self._venue(venue)["rest"]

    def port(self, venue: str) -> int:
        return self._venue(venue)["port"]

    # --- control -------------------------------------------------------------------------
    def request(self, venue: str, path: str, params: dict | None = None, method: str = "GET",
                timeout: float = 10.0):
        """A JSON request to the sim's HTTP port of a venue; returns the decoded body."""
        q = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = f"{self.rest_url(venue)}{path}" + (f"?{q}" if q else "")
        req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace")
            raise SimError(f"sim {method} {path} -> HTTP {e.code}: {body}") from None

    def fault(self, venue: str, kind: str, **params) -> dict:
        """Inject a fault (see feeds/sim/faults.py for kinds and params)."""
        return self.request(venue, "/_sim/fault", {"venue": venue, "kind": kind, **params}, method="POST")

    def state(self, venue: str, symbol: str | None = None, market: str | None = None, depth: int = 10,
              trades: int = 100) -> dict:
        """The sim's current book (top `depth`) and generated trades for a symbol (no symbol: a
        summary line per book)."""
        return self.request(venue, "/_sim/state", {"venue": venue, "symbol": symbol, "market": market,
                                                   "depth": depth, "trades": trades})

    def stats(self) -> dict:
        return self.request(next(iter(self.venues)), "/_sim/stats")

    def set_rate(self, venue: str, rate: float) -> dict:
        """Change a venue's event rate from now on (0 = flood)."""
        return self.request(venue, "/_sim/rate", {"venue": venue, "rate": rate}, method="POST")

    def symbols(self, venue: str) -> list[str]:
        return self.request(venue, "/_sim/info")["symbols"][venue]

    # --- lifecycle -----------------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait for a clean exit (SIGKILL after timeout); returns the exit code.
        The sim's final stats line (JSON) is kept in .final."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout and not self.proc.stdout.closed:
            out = self.proc.stdout.read()
            self.proc.stdout.close()
            for line in out.splitlines():
                with contextlib.suppress(ValueError):
                    self.final = json.loads(line)
        return self.proc.returncode

    def __enter__(self) -> "SimHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_in_background(venues, symbols: int = 20, rate: float = 1000.0, seed: int = 1, tls: bool = False,
                        args=(), timeout: float = 20.0, python: str | None = None, env: dict | None = None) -> SimHandle:
    """Start `python -m feeds.sim` in a subprocess and return once it listens.

    venues: list or comma-separated string; rate: events/s total (0 = flood); args: extra CLI
    flags. Raises SimError (with the sim's stderr) if it exits or does not announce in time."""
    names = venues if isinstance(venues, str) else ",".join(venues)
    cmd = [python or sys.executable, "-m", "feeds.sim", "--venues", names, "--symbols", str(symbols),
           "--rate", str(rate), "--seed", str(seed), "--json", *(["--tls"] if tls else []), *map(str, args)]
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = ROOT + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e, cwd=ROOT)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = ""
    try:
        while time.monotonic() < deadline:
            if sel.select(timeout=max(0.0, deadline - time.monotonic())):
                line = proc.stdout.readline()
                break
        if line.strip():
            info = json.loads(line)
            # keep draining stderr so a chatty sim never blocks on a full pipe
            _drain_stderr(proc)
            return SimHandle(proc, info)
    except ValueError:
        pass
    finally:
        sel.close()
    proc.kill()
    _, err = proc.communicate()
    raise SimError(f"simulator did not start ({' '.join(cmd)}): {err.strip()[-2000:] or 'no output'}")


def _drain_stderr(proc: subprocess.Popen) -> None:
    """Copy the child's stderr to ours in a daemon thread (so a chatty sim never blocks on a full pipe)."""
    import threading

    def pump():
        for line in proc.stderr:
            sys.stderr.write(line)
    threading.Thread(target=pump, daemon=True, name=f"sim-stderr-{proc.pid}").start()


@contextlib.contextmanager
def running(venues, **kwargs):
    """Context manager: a simulator for the duration of the block, stopped (SIGTERM) after."""
    sim = start_in_background(venues, **kwargs)
    try:
        yield sim
    finally:
        sim.stop()


__all__ = ["start_in_background", "running", "SimHandle", "SimError"]
