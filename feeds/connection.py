"""One planned websocket connection, kept open for ever.

A `Connection` owns one entry of the connection plan (a set of subscriptions) and keeps a
picows socket open for it: connect (through the venue's connect-attempt limiter), send the
subscribe messages (through a token bucket at the venue's control-message rate), keep it alive
per `Venue.ping`, detect staleness (no data frame - pongs do not count - for
`Limits.stale_after_s`: the socket may be alive while the feed is not), reconnect with capped
exponential backoff and full jitter for ever, and rotate before a forced disconnect
(`Limits.max_connection_age_s`, or a venue "shutdown" notice, or a book resync that needs the
venue's snapshot): the new socket is opened and subscribed BEFORE the old one is closed.

During a rotation both sockets deliver; the worker (feeds/worker.py) dedupes what they both
carry (`Socket.incoming` marks the new one). The old socket is closed once, for every
instrument the new one delivered trades of, both sockets delivered one same trade: the old one
has then passed the point where the new subscription started, so nothing is lost between them.

Data frames go straight from picows's callback to the worker's per-frame path in C
(`Socket` is a feeds.native.lane.FastSocket: picows calls it through the C vtable, and it hands
the lane a pointer into picows's receive buffer): no queue, no task, no Python call, no copy.
Other frames (close, fragments, pongs, a greeting still awaited) take `on_other_frame`, and
sockets of a Connection without a lane hand every payload to `handler(payload, socket, more)`
(more: frames of the same socket read follow, so the worker may publish them together).
"""
from __future__ import annotations

import asyncio
import socket
import logging
import ssl
import time
from typing import Callable

from picows import WSAutoPingStrategy, WSCloseCode, WSMsgType, ws_connect

from .backoff import Backoff
from .native.lane import FastSocket
from .planner import ConnectionPlan
from .ratelimit import TokenBucket, WindowLimiter
from .venue import Venue

log = logging.getLogger("tickring.feed")

HANDOVER_GRACE_S = 0.2      # old socket kept this long once it caught up with the new one
HANDOVER_TIMEOUT_S = 10.0   # hand over anyway (a quiet market sends no trade to compare)
NO_TRADES_HANDOVER_S = 1.0  # a socket with data but no trades (book-only route) after this
CONNECT_TIMEOUT_S = 10.0
BURST_NS = 5_000_000
RCVBUF_BYTES = 512 << 10        # a flooded socket lets the rest of the loop run at least this often
# picows's message types, fetched once: on Python 3.11 `WSMsgType.TEXT` goes through the enum
# metaclass's attribute hook, ~0.34 us a lookup - per frame, 3 % of a flooded worker's CPU
TEXT, BINARY, CONTINUATION, CLOSE, PONG = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION,
                                           WSMsgType.CLOSE, WSMsgType.PONG)


def rotate_before(max_age_s: float) -> float:
    """Age at which a planned rotation starts: 10 % (at most 10 min) before the forced cut."""
    return max_age_s - min(600.0, max_age_s * 0.1)


def subscribe_bucket(rate: float) -> TokenBucket:
    """The control-message limiter of one connection.

    A per-second limit (Binance: 5/s, pings and pongs included) gets 90 % of the rate and no
    burst. A long-window limit declared as a small rate (OKX: 480 per hour = 0.133/s) is an
    hourly budget: half of it may go at once (a connection's initial subscribes) and the rest
    refills at half the rate, so no hour ever sees more than the budget.
    """
    if rate >= 1.0:
        return TokenBucket(rate * 0.9, burst=1.0)
    hourly = rate * 3600.0
    return TokenBucket(max(rate / 2, 1e-6), burst=max(1.0, hourly / 2))


class Socket(FastSocket):
    """One picows websocket of a Connection. Data frames: the lane (FastSocket.on_ws_frame, in
    C); the rest: on_other_frame."""

    def __init__(self, conn: "Connection", serial: int):
        self.conn = conn
        self.serial = serial
        self.handler = conn.handler
        self.lane = conn.lane
        self.decoder = conn.make_decoder()
        self.transport = None
        self.opened_ns = time.time_ns()
        self.last_frame_ns = 0
        self.incoming = False          # the new socket of a rotation in progress
        self.retired = False           # closed on purpose (rotation, stop)
        self.got_data = False          # delivered market records (set by the worker)
        self.got_data_at = 0.0
        self.closed = asyncio.get_running_loop().create_future()
        self.wait_for = conn.wait_for          # greeting expected before subscribing (or None)
        self.greeted = asyncio.Event()
        self._partial: bytearray | None = None
        self._burst = 0                # frames since the event loop last had a turn
        self._burst_end = 0            # monotonic ns at which this socket yields the loop
        self._loop = asyncio.get_running_loop()
        ping = conn.venue.ping
        self._pong = ping.pong
        self._payload = ping.payload
        self._ping_mode = ping.mode
        # requests that carry a clock the venue checks (Gate.io's `time`, rejected when more
        # than 60 s off) are re-stamped as they go out: a reconnect hours later resends the plan
        self._restamp = conn.venue.extra.get("restamp")

    # -- picows callbacks --------------------------------------------------------------------
    def on_ws_connected(self, transport) -> None:
        self.transport = transport
        sock = transport.underlying_transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            except OSError:
                pass

    def on_other_frame(self, transport, frame) -> None:
        """Every frame FastSocket.on_ws_frame does not hand to the lane (it counted the burst)."""
        mt = frame.msg_type
        if mt is TEXT or mt is BINARY:
            if frame.fin:
                payload = frame.get_payload_as_bytes()
                if self.wait_for is not None and self.wait_for in payload:
                    self.wait_for = None
                    self.greeted.set()
                self.handler(payload, self, not frame.last_in_buffer)
            else:                                   # fragmented message: rare, assemble it
                self._partial = bytearray(frame.get_payload_as_bytes())
        elif mt is CONTINUATION:
            if self._partial is not None:
                self._partial += frame.get_payload_as_bytes()
                if frame.fin:
                    payload, self._partial = bytes(self._partial), None
                    self.handler(payload, self, not frame.last_in_buffer)
        elif mt is CLOSE:
            self.conn.close_reason = f"server closed: {frame.get_close_code()} {frame.get_close_reason()}"
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def _fair_share(self) -> None:
        """Under a flood the socket is always readable and its read callback never returns, so
        the loop's other work (REST snapshots, pings, timers, other sockets) starves: books
        that wait for a REST snapshot never sync, pongs go unsent. After BURST_NS of frames
        without a turn, pause reading until the loop has run everything else once. Nothing is
        lost: the bytes wait in the kernel's socket buffer (TCP back-pressure on the sender)."""
        now = time.monotonic_ns()
        if self._burst == 64:
            self._burst_end = now + BURST_NS
            self._loop.call_soon(self._turn)        # runs once the loop gets a turn
        elif now >= self._burst_end and self.transport is not None:
            try:
                self.transport.underlying_transport.pause_reading()
            except (AttributeError, RuntimeError):      # closing, or a transport without it
                return
            self._loop.call_soon(self._resume)

    def _turn(self) -> None:
        self._burst = 0

    def _resume(self) -> None:
        self._burst = 0
        if self.transport is not None and not self.transport.is_disconnected:
            try:
                self.transport.underlying_transport.resume_reading()
            except (AttributeError, RuntimeError):
                pass

    def on_ws_disconnected(self, transport) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self.conn._wake.set()

    def send_user_specific_ping(self, transport) -> None:
        if self._ping_mode == "text":
            p = self._payload() if callable(self._payload) else self._payload
            transport.send(WSMsgType.TEXT, p)
        else:
            transport.send_ping()

    def is_user_specific_pong(self, frame) -> bool:
        """Asked by picows only while a ping awaits its answer. A text pong is matched by
        substring, so a market frame could match by accident: every matched frame is still
        handed to the worker (the decoder makes no records of a real pong), nothing is lost."""
        mt = frame.msg_type
        if mt is PONG:
            return True
        if self._ping_mode == "text" and self._pong and mt is TEXT and frame.fin:
            payload = frame.get_payload_as_bytes()
            if self._pong in payload:
                if not self.retired:
                    fresh = self.last_frame_ns
                    self.handler(payload, self, not frame.last_in_buffer)
                    self.last_frame_ns = fresh     # a pong proves the socket, not the feed
                return True
        return False

    # -- ours ----------------------------------------------------------------------------------
    def send(self, msg) -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            if self._restamp is not None:
                msg = self._restamp(msg)
            if isinstance(msg, str):
                msg = msg.encode()
            self.transport.send(WSMsgType.TEXT, msg)

    def close(self) -> None:
        self.retired = True
        if self.transport is not None and not self.transport.is_disconnected:
            try:
                self.transport.send_close(WSCloseCode.OK)
            except Exception:                    # already closing
                pass
            self.transport.disconnect()


class Connection:
    """Keeps one plan entry subscribed for ever. `run()` is the task; `rotate()` asks for a
    make-before-break rotation; `stop()` ends it.

    events: the worker, told about state changes (STATUS records, counters):
        connected(conn, sock, reconnect: bool), disconnected(conn, sock, reason), stale(conn, sock),
        overlap(conn, on: bool), rotated(conn, reason, old_was_open: bool)
    """

    def __init__(self, plan: ConnectionPlan, venue: Venue, base_url: str,
                 handler: Callable, make_decoder: Callable, events,
                 connect_limiter: WindowLimiter | None = None,
                 ssl_context: ssl.SSLContext | None = None, backoff: Backoff | None = None,
                 stale_after_s: float | None = None, max_age_s: float | None = None,
                 url_provider: Callable | None = None, lane=None):
        self.plan = plan
        self.index = plan.index
        self.venue = venue
        self.url = base_url.rstrip("/") + plan.path
        self.handler = handler
        self.lane = lane                     # the worker's per-frame path (None: handler)
        self.make_decoder = make_decoder
        self.events = events
        lim = venue.limits
        self.connect_limiter = connect_limiter or WindowLimiter(lim.connect_attempts, lim.connect_window_s)
        self.subscribe_bucket = subscribe_bucket(lim.subscribe_msgs_per_s)
        self.ssl_context = ssl_context
        self.backoff = backoff or Backoff()
        self.stale_after_s = stale_after_s if stale_after_s is not None else lim.stale_after_s
        age = max_age_s if max_age_s is not None else lim.max_connection_age_s
        self.rotate_after_s = rotate_before(age) if age > 0 else 0.0
        # venues that hand out the URL per connection (KuCoin's bullet token): async () -> url
        self.url_provider = url_provider
        # venues that must greet first (KuCoin "welcome"): subscribe only after this frame
        self.wait_for: bytes | None = venue.extra.get("wait_for")
        self.current: Socket | None = None
        self.incoming: Socket | None = None
        # rotation handover bookkeeping, filled by the worker (see _caught_up)
        self.new_trades: set[tuple[int, int]] = set()
        self.new_insts: set[int] = set()     # instruments the new socket delivered trades of
        self.old_insts: set[int] = set()     # ... and the old one, during the overlap
        self.caught_up: set[int] = set()
        self.close_reason = ""
        self.connects = 0
        self.rotations = 0
        self._serial = 0
        self._wake = asyncio.Event()
        self._rotate_reason = ""
        self._stopping = False
        self._pending: set[asyncio.Task] = set()

    # -- control ---------------------------------------------------------------------------------
    def rotate(self, reason: str) -> None:
        """Ask for a planned rotation (idempotent while one is pending or running)."""
        if not self._rotate_reason and self.incoming is None:
            self._rotate_reason = reason
            self._wake.set()

    def resubscribe(self, messages: list) -> None:
        """Send control messages (a book's unsubscribe + subscribe) on the live socket, through
        the subscribe rate limiter; the venue answers with a fresh snapshot."""
        sock = self.current
        if sock is None:
            return

        async def send():
            for m in messages:
                await self.subscribe_bucket.acquire()
                if sock.closed.done():
                    return
                sock.send(m)
        task = asyncio.get_running_loop().create_task(send())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for t in list(self._pending):
            t.cancel()
        for s in (self.current, self.incoming):
            if s is not None:
                s.retired = True       # frames picows still has buffered are not delivered after stop
                s.close()

    # -- the task ----------------------------------------------------------------------------------
    async def run(self) -> None:
        if self.plan.start_delay_s:
            await asyncio.sleep(self.plan.start_delay_s)
        sock = None
        while not self._stopping:
            if sock is None:
                sock = await self._open(reconnect=self.connects > 0)
                if sock is None:
                    break
                self.current = sock
            reason = await self._watch(sock)
            if self._stopping:
                break
            if reason == "rotate":
                why = self._rotate_reason or "age"
                new = await self._rotate(sock, why)
                self._rotate_reason = ""
                if new is not None:
                    sock = self.current = new
                elif not self._stopping and not sock.closed.done():
                    await self._sleep(self.backoff.next_delay())   # try the rotation again
                    self._rotate_reason = self._rotate_reason or why
                continue
            # unplanned: the socket dropped or went stale
            if reason == "stale":
                self.events.stale(self, sock)
                sock.close()
            self.backoff.disconnected()
            self.events.disconnected(self, sock, self.close_reason or reason)
            self.close_reason = ""
            self.current = sock = None
            delay = self.backoff.next_delay()
            log.info("%s#%d: reconnecting in %.2f s (attempt %d)", self.venue.name, self.index,
                     delay, self.backoff.attempt)
            await self._sleep(delay)
        self.current = None

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once on stop()."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _open(self, reconnect: bool, incoming: bool = False) -> Socket | None:
        """Connect and subscribe, retrying with backoff until it works (or we stop)."""
        while not self._stopping:
            await self.connect_limiter.acquire()
            self._serial += 1
            serial = self._serial
            sock_box: list[Socket] = []

            def factory():
                s = Socket(self, serial)
                s.incoming = incoming
                s.retired = self._stopping
                sock_box.append(s)
                return s
            try:
                if self.url_provider is not None:
                    self.url = await self.url_provider()
                await asyncio.wait_for(
                    ws_connect(factory, self.url, ssl_context=self.ssl_context,
                               websocket_handshake_timeout=CONNECT_TIMEOUT_S,
                               logger_name=f"{self.venue.name}.{self.index}",
                               **self._ping_kwargs()),
                    CONNECT_TIMEOUT_S)
            except Exception as e:                 # refused, DNS, TLS, handshake, timeout...
                delay = self.backoff.next_delay()
                log.warning("%s#%d: connect to %s failed (%s); retry in %.2f s", self.venue.name,
                            self.index, self.url, e or type(e).__name__, delay)
                await self._sleep(delay)
                continue
            sock = sock_box[-1]
            if self._stopping:                 # stop() came while connecting
                sock.close()
                return None
            self.connects += 1
            self.backoff.connected()
            if incoming:
                self.incoming = sock
            self.events.connected(self, sock, reconnect)
            try:
                if self.wait_for:
                    deadline = time.monotonic() + CONNECT_TIMEOUT_S
                    while not sock.greeted.is_set() and not sock.closed.done():
                        if time.monotonic() > deadline:
                            log.warning("%s#%d: no %r greeting; subscribing anyway", self.venue.name,
                                        self.index, self.wait_for)
                            break
                        try:
                            await asyncio.wait_for(sock.greeted.wait(), 0.1)
                        except asyncio.TimeoutError:
                            pass
                for msg in self.plan.messages:
                    await self.subscribe_bucket.acquire()
                    if sock.closed.done():
                        break
                    sock.send(msg)
            except Exception as e:
                log.warning("%s#%d: subscribe failed: %s", self.venue.name, self.index, e)
            return sock
        return None

    def _ping_kwargs(self) -> dict:
        p = self.venue.ping
        if p.mode in ("text", "ws"):
            return dict(enable_auto_ping=True, auto_ping_idle_timeout=p.interval_s,
                        auto_ping_reply_timeout=min(p.interval_s, 10.0),   # picows: <= interval
                        auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY)
        return {}

    async def _watch(self, sock: Socket) -> str:
        """Wait until the socket drops, goes stale, ages out, or a rotation is asked for."""
        stale_ns = int(self.stale_after_s * 1e9) if self.stale_after_s > 0 else 0
        tick = max(0.05, min(1.0, self.stale_after_s / 4 if self.stale_after_s > 0 else 1.0))
        while not self._stopping:
            if sock.closed.done():
                return "disconnected"
            if self._rotate_reason:
                return "rotate"
            now = time.time_ns()
            if self.rotate_after_s and now - sock.opened_ns > self.rotate_after_s * 1e9:
                self._rotate_reason = "age"
                return "rotate"
            if stale_ns and now - max(sock.last_frame_ns, sock.opened_ns) > stale_ns:
                return "stale"
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), tick)
            except asyncio.TimeoutError:
                pass
        return "stopped"

    async def _caught_up(self, old: Socket, new: Socket) -> None:
        """Wait until the old socket can go without losing anything the new one will not send.

        The worker notes, per instrument, trades the new socket delivered (`new_trades`) and
        marks an instrument caught up (`caught_up`) once both sockets delivered one same trade:
        from then on the old socket has passed the point where the new subscription started.
        Every instrument either socket delivered trades of during the overlap must be caught up.
        Sockets without trades (book-only routes) hand over shortly after their first data;
        a quiet market hands over after HANDOVER_TIMEOUT_S."""
        deadline = time.monotonic() + HANDOVER_TIMEOUT_S
        while time.monotonic() < deadline:
            if new.closed.done() or old.closed.done() or self._stopping:
                return
            if new.got_data:
                insts = self.new_insts | self.old_insts
                if self.new_insts and insts <= self.caught_up:
                    break
                if not insts and time.monotonic() - new.got_data_at > NO_TRADES_HANDOVER_S:
                    break
            await asyncio.sleep(0.01)
        await asyncio.sleep(HANDOVER_GRACE_S)    # quotes/book frames of the old still in flight

    async def _rotate(self, old: Socket, reason: str) -> Socket | None:
        """Make-before-break: open + subscribe the new socket, overlap, then close the old one."""
        log.info("%s#%d: rotating connection (%s)", self.venue.name, self.index, reason)
        self.new_trades.clear()
        self.new_insts.clear()
        self.old_insts.clear()
        self.caught_up.clear()
        self.events.overlap(self, True)
        try:
            new = await self._open(reconnect=True, incoming=True)
            if new is None:
                return None
            await self._caught_up(old, new)
            if new.closed.done():
                log.warning("%s#%d: new socket dropped during rotation; keeping the old one",
                            self.venue.name, self.index)
                self.incoming = None
                new.close()
                # it was counted as connected: its drop is a disconnection like any other
                self.events.disconnected(self, new, self.close_reason or "dropped during rotation")
                self.close_reason = ""
                return None
            old_was_open = not old.closed.done()
            if not old_was_open:
                self.events.disconnected(self, old, self.close_reason or "closed during rotation")
                self.close_reason = ""
            new.incoming = False
            self.incoming = None
            old.close()
            self.rotations += 1
            self.events.rotated(self, reason, old_was_open)
            return new
        finally:
            self.incoming = None
            self.events.overlap(self, False)
