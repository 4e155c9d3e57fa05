"""The feed worker: one venue's websockets -> decoder -> book keeper -> one ring.

One asyncio loop, the connections of the venue's plan, one decoder per socket. On every frame
(feeds/native/lane.pyx, `Lane.frame`, called from the socket's picows callback in C):

    ts_recv = clock_gettime(CLOCK_REALTIME)   # once per frame
    decoder.feed(frame, ts_recv)              # records packed into decoder.out
    keeper.check(book_events)                 # only if the frame had book messages
    writer.commit(out, n)                     # one copy into the ring, once per socket read
    counters: frames, messages, bytes_in, last_recv_ns

A frame that is not the last of its socket read (picows's `last_in_buffer`; a flooded socket
reads dozens at once) leaves its records in the batch and the read's last frame publishes them
all, at most BATCH_RECORDS held back. A socket read that ends with a control frame is
published by a call_soon backstop. Order in the ring is kept: anything else written there
(the keeper's STATUS records and snapshots, the worker's STATUS) first publishes what is held
back (`_flush_held`). A quiet socket reads one frame at a time: nothing waits. The rare cases
come back here, to Python: a malformed frame, a keeper error, venue notices, a rotation's
dedupe.

A malformed frame is counted (`decode_errors`), logged at most once a second with a sample,
and skipped; a STATUS DECODE_ERROR record (price = running count) goes in-band at most once a
second. The worker never waits on a consumer or a disk: the ring producer never waits and
nothing else here does I/O besides sockets and the rare REST snapshot.

During a connection rotation (feeds/connection.py) frames take a slower path that drops what
both sockets deliver: trades by (instrument, trade id) - the set is seeded from the ring's
recent records, so trades a venue replays on subscribe are caught too, and kept DEDUPE_TAIL_S
after the handover because the new socket may lag the old one -, book messages of the new
socket while the book is in sync (the keeper checks continuity after the handover), and
quotes/marks of the new socket until the old one is closed. The same path notes which trades
each socket delivered, so the connection knows when the old one has caught up.

Book resyncs: a REST-seeded venue (Binance, Gate.io, KuCoin) gets its snapshot fetched here
(feeds/rest.py, through the venue's rate limiter); a venue that sends snapshots on subscribe
gets its book resubscribed on the socket carrying it (Venue.extra["resync_messages"]) or, when
it declares none (Bybit, OKX), that socket rotated.
"""
from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import ssl
import time
import urllib.parse
from time import time_ns

import numpy as np

import feeds
from shm import layout as L
from shm.record import RECORD, Flag, Kind, Status
from shm.ring import Ring

from .backoff import Backoff
from .book import BookKeeper
from .connection import Connection
from .decoder import InstrumentMap
from .native.lane import BATCH_RECORDS, Lane  # noqa: F401  (BATCH_RECORDS: documented here)
from .planner import plan as make_plan
from .ratelimit import TokenBucket, WindowLimiter
from .rest import RestClient

log = logging.getLogger("tickring.feed")

_I = {name: w.index for name, w in L.RING.items()}
FRAMES, MESSAGES, BYTES_IN, LAST_RECV, DECODE_ERRORS = (
    _I["frames"], _I["messages"], _I["bytes_in"], _I["last_recv_ns"], _I["decode_errors"])
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "EUR", "GBP", "TRY", "BRL", "JPY",
          "BTC", "ETH", "BNB", "DAI")
SNAPSHOT_OVERDUE_NS = 10_000_000_000   # ask again for a book snapshot after 10 s
SEEN_SEED_RECORDS = 1 << 16            # ring records scanned for trade ids when a rotation starts
DEDUPE_TAIL_S = 3.0                    # trade dedupe kept on this long after a handover
# Venue book checksums (Kraken, Bitget) are verified on every message, as the venues prescribe:
# with no sequence numbers the checksum is the only gap signal, and a skipped update can be
# overwritten by later ones before a throttled check sees the book diverge (the gap would go
# unnoticed). Throttling (e.g. 50_000_000 = at most every 50 ms) cut Bitget from ~36 to ~13 us
# per message in `tickring bench feed`; it stays available in BookKeeper for those who prefer it.
CHECKSUM_INTERVAL_NS = 0


def normalize(symbol: str) -> str:
    """Best-effort BASE-QUOTE of a native symbol ("BTCUSDT", "BTC-USDT-SWAP", "XBT/USD")."""
    s = symbol.upper()
    for sep in ("-", "_", "/", ":"):
        if sep in s:
            parts = s.split(sep)
            return f"{parts[0]}-{parts[1]}"
    for q in QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return f"{s[:-len(q)]}-{q}"
    return s


def with_default_path(url: str | None, default: str) -> str:
    """An overriding base URL without a path keeps the default's path (Kraken's /v2 on the
    simulator's ws://127.0.0.1:PORT)."""
    if not url:
        return default
    u = urllib.parse.urlsplit(url)
    if u.path in ("", "/"):
        path = urllib.parse.urlsplit(default).path
        if path not in ("", "/"):
            return url.rstrip("/") + path
    return url


class _InOrder:
    """The keeper's writer: the worker's held-back records reach the ring before anything the
    keeper writes (a gap's STATUS, a snapshot), in the order they would without batching."""

    __slots__ = ("_before", "_w")

    def __init__(self, writer, before):
        self._w = writer
        self._before = before

    def status(self, *a, **k):
        self._before()
        return self._w.status(*a, **k)

    def publish_buffer(self, buf, n: int):
        self._before()
        return self._w.publish_buffer(buf, n)

    def publish(self, records):
        self._before()
        return self._w.publish(records)

    def __getattr__(self, name):
        return getattr(self._w, name)


class FeedWorker:
    """One venue's feed into one ring. Build it, then `await run(stop_event)`."""

    def __init__(self, venue: str, symbols: list[str], ring: str, *, channels: list[str] | None = None,
                 url: str | None = None, rest_url: str | None = None, registry: str | None = None,
                 book_table: str | None = None, insecure: bool = False, ring_capacity: int = 1 << 20,
                 stale_after_s: float | None = None, max_age_s: float | None = None,
                 ping_interval_s: float | None = None, status_cb=None):
        self.venue = feeds.venue(venue)
        if ping_interval_s:               # tests/ops: ping more often than the venue asks
            self.venue = dataclasses.replace(
                self.venue, ping=dataclasses.replace(self.venue.ping, interval_s=ping_interval_s))
        self.symbols = list(symbols)
        self.channels = list(channels) if channels else list(self.venue.channels)
        self.ring_name = ring
        self.ring_capacity = ring_capacity
        self.url = with_default_path(url, self.venue.ws_url)
        self.rest_url = with_default_path(rest_url, self.venue.rest_url)
        self.registry_name = registry
        self.book_table_name = book_table
        self.insecure = insecure
        self.stale_after_s = stale_after_s
        self.max_age_s = max_age_s
        self.status_cb = status_cb
        self.plan = make_plan(self.venue, self.symbols, self.channels)
        self.connections: list[Connection] = []
        self.ring = self.writer = self.registry = self.table = self.keeper = None
        self._info: dict[str, dict] = {}
        self._tasks: set[asyncio.Task] = set()
        self._fetching: set[int] = set()
        self._dedupe_until = 0.0
        self._seen: set[tuple[int, int]] = set()
        self._err_log = TokenBucket(1.0, 1.0)
        self._err_status = TokenBucket(1.0, 1.0)
        self.decode_errors = 0
        self.stopped = False
        self.lane = None                   # the per-frame path (feeds/native/lane.pyx), with the shm
        self._loop = None

    # -- set-up ----------------------------------------------------------------------------------
    def _open_shm(self) -> None:
        self.ring = Ring.create(self.ring_name, self.ring_capacity, exist_ok=True)
        self.writer = self.ring.writer()
        self._u64 = self.ring._u64
        self.ring.set_word("connections", 0)
        if self.registry_name:
            from shm.registry import Registry
            self.registry = Registry.create(self.registry_name, exist_ok=True)
        if self.book_table_name and "book" in self.channels:
            from .book_table import BookTable
            self.table = BookTable.create(self.book_table_name, depth=self.venue.book_depth)
        self.instruments = InstrumentMap(self.venue.name, self._register)
        self.keeper = BookKeeper(self.venue.book_rule, writer=_InOrder(self.writer, self._flush_held),
                                 ring=self.ring,
                                 request_snapshot=self._request_snapshot, table=self.table,
                                 depth=self.venue.book_depth,
                                 checksum=self.venue.extra.get("book_checksum"),
                                 checksum_interval_ns=CHECKSUM_INTERVAL_NS)
        self.lane = Lane(self, self.writer, self.keeper, self.table)
        self._check = self.keeper.check

    def _register(self, symbol: str, market: str) -> int:
        """InstrumentMap callback: a global id from the shm registry (local ids without one)."""
        if self.registry is None:
            return len(self.instruments._ids) + 1
        info = self._info.get((symbol, market)) or self._info.get(symbol) or {}
        norm = info.get("normalized") or (f"{info['base']}-{info['quote']}" if info.get("base")
                                          else normalize(symbol))
        reg_market = market if market in ("spot", "perp", "future") else "spot"
        return self.registry.add(self.venue.name, symbol, norm[:24], reg_market,
                                 float(info.get("tick_size") or 0.0), float(info.get("lot_size") or 0.0))

    async def _load_instruments(self) -> None:
        """Tick/lot sizes and BASE-QUOTE from the venue's instrument list (best effort)."""
        v = self.venue
        if not (self.registry and v.instruments_request and v.parse_instruments):
            return
        try:
            body = await self.rest.get(*v.instruments_request)
            for d in v.parse_instruments(body):
                self._info[(d["symbol"], d.get("market", "spot"))] = d
                self._info.setdefault(d["symbol"], d)
        except Exception as e:
            log.info("%s: instrument list unavailable (%s); using symbol names only", v.name, e)

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.url.startswith("wss"):
            return None
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _url_provider(self, path: str):
        """KuCoin-style venues: a fresh tokenized URL from REST before every (re)connect."""
        v = self.venue
        make = v.extra.get("connect_url")
        token = v.extra.get("token_request")
        if make is None or token is None:
            return None
        method, token_path = token
        ws_base = self.url if self.url != v.ws_url else None

        async def provide() -> str:
            body = await self.rest.request(method, token_path)
            url = make(body, ws_base=ws_base)[0]
            return url + path if path else url
        return provide

    def _make_decoder_for(self, path: str):
        market_for = self.venue.extra.get("market_for_path")
        market = market_for(path) if callable(market_for) else None
        return lambda: self.venue.decoder(self.instruments, market=market)

    # -- the per-frame path: feeds/native/lane.pyx --------------------------------------------------
    def on_frame(self, payload: bytes, sock, more: bool = False) -> None:
        """One websocket frame's payload (see the module docstring): what the sockets' C
        callback does, for a payload in hand (tests, matched text pongs).
        more: frames of the same socket read follow (their records may be published together)."""
        self.lane.on_payload(payload, sock, more)

    @property
    def _overlaps(self) -> int:
        return self.lane.overlaps

    @property
    def _dedupe(self) -> int:
        return self.lane.dedupe

    def _flush_held(self) -> None:
        """Publish the records the current socket read holds back (before anything else is
        written to the ring)."""
        if self.lane is not None:
            self.lane.flush_held()

    def _worker_error(self, payload: bytes, e: Exception, sock) -> None:
        """An error of ours after decoding (notices, publish): skip the frame, counted."""
        log.exception("%s#%d: frame skipped after a worker error", self.venue.name, sock.conn.index)
        self._bad_frame(payload, e, sock)

    def _books(self, bev: list, buf, sock, ts: int):
        """Book messages of one frame through the keeper; record ranges to hold back."""
        drops = None
        events = bev
        if sock.incoming and self.lane.overlaps:
            events, drops = self._incoming_book_events(bev)
        if events:
            d = self._check(events, buf)
            if d:
                drops = d if drops is None else drops + d
        if self.table is not None:
            self.keeper.flush_table(ts)
        bev.clear()                        # after the flush: _bad_books needs them if it raises
        return drops

    def _bad_books(self, payload: bytes, e: Exception, sock, ts: int, instruments=None) -> None:
        """A frame's book messages could not be taken whole: the keeper raised on them (e.g. a
        sequence id sent as "123" or 1.5), or a native decoder rejected a frame after it began
        a book message (`instruments`: NativeDecoder.failed_books). The frame is counted and
        skipped like a malformed one, none of its records are published, and every book it
        carried is resynced - the keeper may have applied part of the frame (or kept a bad
        id), and either way the book lost an update that consumers will never see."""
        if instruments is None:
            instruments = {ev[0] for ev in sock.decoder.book_events}
            sock.decoder.clear_events()
        keeper = self.keeper
        try:
            for inst in sorted(instruments):
                keeper.resync(inst)
            keeper.flush_table(ts)
        except Exception:                  # never the connection; the next frames still count
            log.exception("%s#%d: resync after a bad book frame failed", self.venue.name,
                          sock.conn.index)
            keeper.dirty.clear()
        self._bad_frame(payload, e, sock)

    def _bad_frame(self, payload: bytes, e: Exception, sock) -> None:
        self._flush_held()
        self.decode_errors += 1
        self._u64[DECODE_ERRORS] += 1
        if self._err_log.try_acquire():
            log.warning("%s#%d: skipped a malformed frame (%d so far): %s; sample: %r",
                        self.venue.name, sock.conn.index, self.decode_errors, e, payload[:200])
        if self._err_status.try_acquire():
            self.writer.status(Status.DECODE_ERROR, 0, float(self.decode_errors), float(sock.conn.index))

    def _notices(self, notices: list, sock) -> None:
        for n in notices:
            if n == "shutdown":
                log.info("%s#%d: venue announced a disconnect; rotating", self.venue.name, sock.conn.index)
                sock.conn.rotate("shutdown notice")
            else:
                log.info("%s#%d: venue notice %r", self.venue.name, sock.conn.index, n)
        notices.clear()

    # -- rotation overlap: the slow path -------------------------------------------------------------
    def _incoming_book_events(self, bev):
        """New socket during a rotation: only books waiting for a snapshot take its messages."""
        keep, drops = [], []
        keeper = self.keeper
        for ev in bev:
            if keeper.venue_snapshot_done(ev.instrument):
                drops.append((ev.start, ev.end))
            else:
                keep.append(ev)
        return keep, drops

    def _publish_filtered(self, out, n: int, drops, sock, start: int = 0) -> None:
        """Records [start, n) of the frame less the dropped ranges and duplicate trades."""
        out.n = 0
        self.lane.drop_held()
        arr = np.frombuffer(out.buf, RECORD, count=n)
        keep = np.ones(n, bool)
        keep[:start] = False               # published already (_flush_held)
        if drops:
            for s, e in drops:
                keep[s:e] = False
        if self.lane.dedupe:
            incoming = sock.incoming
            conn = sock.conn
            rotating = conn.incoming is not None
            if incoming and not sock.got_data:
                sock.got_data = True
                sock.got_data_at = time.monotonic()
            seen = self._seen
            kinds = arr["kind"]
            for i in np.flatnonzero(keep):
                k = kinds[i]
                if k == Kind.TRADE:
                    inst = int(arr["instrument"][i])
                    key = (inst, int(arr["id"][i]))
                    if incoming:
                        conn.new_trades.add(key)
                        conn.new_insts.add(inst)
                        if key in seen:            # the old socket is ahead: caught up
                            conn.caught_up.add(inst)
                    elif rotating:
                        conn.old_insts.add(inst)
                        if key in conn.new_trades:
                            conn.caught_up.add(inst)   # the old socket reached the new one's start
                    if key in seen:
                        keep[i] = False
                    else:
                        seen.add(key)
                elif incoming and k != Kind.BOOK:
                    keep[i] = False
        if keep[start:].all():
            self.writer.publish_buffer(memoryview(out.buf)[start << 6:], n - start)
            return
        sel = arr[keep]
        if len(sel):
            sel["flags"][-1] |= Flag.LAST
            self.writer.publish(sel)

    def _seed_seen(self) -> None:
        """Trade ids already in the ring (a venue may replay recent trades on subscribe)."""
        ring = self.ring
        pub = ring.published
        start = max(0, pub - min(SEEN_SEED_RECORDS, ring.capacity))
        if pub <= start:
            return
        slots = np.arange(start, pub, dtype=np.int64) & ring.mask
        recs = ring.records[slots]
        t = recs[recs["kind"] == Kind.TRADE]
        self._seen.update(zip(t["instrument"].tolist(), t["id"].tolist()))

    # -- connection events (called by feeds.connection) -------------------------------------------------
    def connected(self, conn, sock, reconnect: bool) -> None:
        if self.stopped:
            return
        self.ring.add("connections")
        if reconnect and not sock.incoming:
            self.ring.add("reconnects")
        self._flush_held()
        self.writer.status(Status.CONNECTED, 0, float(conn.index), float(sock.serial))
        log.info("%s#%d: connected to %s%s", self.venue.name, conn.index, conn.url,
                 " (rotation)" if sock.incoming else " (reconnect)" if reconnect else "")

    def disconnected(self, conn, sock, reason: str) -> None:
        if self.stopped:
            return
        self.ring.add("connections", -1)
        self._flush_held()
        self.writer.status(Status.DISCONNECTED, 0, float(conn.index), float(sock.serial))
        log.warning("%s#%d: disconnected (%s)", self.venue.name, conn.index, reason)

    def stale(self, conn, sock) -> None:
        if self.stopped:
            return
        self._flush_held()
        self.writer.status(Status.STALE, 0, float(conn.index), float(sock.serial))
        log.warning("%s#%d: no frame for %.1f s; reconnecting", self.venue.name, conn.index,
                    conn.stale_after_s)

    def overlap(self, conn, on: bool) -> None:
        """A rotation starts (on) or its old socket was closed (off). Trade dedupe goes on for
        DEDUPE_TAIL_S after the last handover: the new socket may lag the old one and still
        deliver trades the old one already published."""
        lane = self.lane
        if on:
            if not lane.dedupe:
                self._seed_seen()
            lane.overlaps += 1
            lane.dedupe = 1
            self.keeper.overlap = True
        else:
            lane.overlaps -= 1
            if lane.overlaps == 0:
                self._dedupe_until = time.monotonic() + DEDUPE_TAIL_S
                self.keeper.overlap = False

    def _end_dedupe(self) -> None:
        """Called once a second: leave the dedupe path once the tail after a handover passed."""
        lane = self.lane
        if lane.dedupe and not lane.overlaps and time.monotonic() >= self._dedupe_until:
            lane.dedupe = 0
            self._seen.clear()

    def rotated(self, conn, reason: str, old_was_open: bool = True) -> None:
        if self.stopped:
            return
        if old_was_open:
            self.ring.add("connections", -1)
        else:                             # the old one died first: disconnected() counted it,
            self.ring.add("reconnects")   # and the new socket is, in effect, a reconnect
        self._flush_held()
        self.writer.status(Status.ROTATED, 0, float(conn.index), float(conn.current.serial if conn.current else 0))
        log.info("%s#%d: rotated (%s)", self.venue.name, conn.index, reason)

    # -- book resyncs ------------------------------------------------------------------------------------
    def _request_snapshot(self, instrument: int) -> None:
        v = self.venue
        if self.keeper.rule.seed == "rest" and v.snapshot_request and v.parse_snapshot:
            if instrument not in self._fetching:
                self._fetching.add(instrument)
                self._spawn(self._fetch_snapshot(instrument))
            return
        # the venue sends a snapshot on subscribe: resubscribe the book on the socket that
        # carries it (Venue.extra["resync_messages"]), or rotate that socket
        native = self.instruments.symbol(instrument)
        conns = [c for c in self.connections if "book" in c.plan.channels]
        mine = [c for c in conns if native.lower() in (s.lower() for s in c.plan.symbols)]
        resub = v.extra.get("resync_messages")
        for c in mine or conns:
            if resub is not None and c.current is not None:
                c.resubscribe(resub(native))
            else:
                c.rotate("book resync")

    async def _fetch_snapshot(self, instrument: int) -> None:
        v = self.venue
        backoff = Backoff(0.2, 10.0)
        try:
            while not self.stopped:
                symbol = self.instruments.symbol(instrument)
                try:
                    body = await self.rest.get(*v.snapshot_request(symbol))
                    last_id, bids, asks = v.parse_snapshot(body)
                except Exception as e:
                    log.warning("%s: book snapshot of %s failed: %s", v.name, symbol, e)
                else:
                    if self.keeper.rest_snapshot(instrument, last_id, bids, asks, time.time_ns()):
                        return
                    log.info("%s: snapshot of %s older than the stream; fetching again", v.name, symbol)
                await asyncio.sleep(backoff.next_delay())
        finally:
            self._fetching.discard(instrument)

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    # -- run ------------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Connect everything and feed the ring until `stop` is set."""
        self._loop = asyncio.get_running_loop()
        self._open_shm()
        self.rest = RestClient(self.rest_url, self.venue.rest_weight_per_s, insecure=self.insecure)
        await self._load_instruments()
        lim = self.venue.limits
        limiter = WindowLimiter(lim.connect_attempts, lim.connect_window_s)
        ctx = self._ssl()
        for p in self.plan:
            self.connections.append(Connection(
                p, self.venue, self.url, self.on_frame, self._make_decoder_for(p.path), self, lane=self.lane,
                connect_limiter=limiter, ssl_context=ctx, stale_after_s=self.stale_after_s,
                max_age_s=self.max_age_s, url_provider=self._url_provider(p.path)))
        log.info("%s: %d symbol(s) x %s on %d connection(s) -> ring %s", self.venue.name,
                 len(self.symbols), ",".join(self.channels), len(self.connections), self.ring_name)
        conn_tasks = [self._spawn(c.run()) for c in self.connections]
        try:                            # collect, freeze start-up objects, raise gen-0 threshold
            from appliance.gctune import after_startup
            after_startup()
        except ImportError:
            gc.collect()
            gc.freeze()
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
                self.writer.heartbeat()
                self._end_dedupe()
                for inst in self.keeper.overdue(SNAPSHOT_OVERDUE_NS):
                    self._request_snapshot(inst)
                if self.status_cb is not None:
                    self.status_cb(self.status())
                for t in conn_tasks:
                    if t.done() and not t.cancelled() and t.exception() is not None:
                        raise t.exception()
        finally:
            await self.close()

    def status(self) -> dict:
        """Counters and connection states (for --json-status and tests)."""
        info = self.ring.info()
        return {"venue": self.venue.name, "ring": self.ring_name, "ts": time.time_ns(),
                "counters": info["counters"], "published": info["published"],
                "connections": [{"index": c.index, "url": c.url, "connects": c.connects,
                                 "rotations": c.rotations,
                                 "up": c.current is not None and not c.current.closed.done()}
                                for c in self.connections],
                "books": {i: {"state": "synced" if b.state == 0 else "waiting", "gaps": b.gaps,
                              "resyncs": b.resyncs} for i, b in self.keeper.books.items()}}

    async def close(self) -> None:
        """Stop reading sockets, detach from the ring (exit status stays 0)."""
        if self.stopped:
            return
        self.stopped = True
        for c in self.connections:
            await c.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.writer is not None:
            self._flush_held()
            self.writer.close()
        if self.table is not None:
            self.table.close()
        log.info("%s: stopped", self.venue.name)


def run_worker(worker: FeedWorker, cpu: int | None = None) -> int:
    """Run a worker in this process until SIGTERM/SIGINT; returns the exit status (0)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await worker.run(stop)

    asyncio.run(main())
    return 0


__all__ = ["FeedWorker", "run_worker", "normalize", "with_default_path"]
