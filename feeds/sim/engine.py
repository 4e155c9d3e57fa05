"""One simulated venue at run time: its books, the generation loop, server pings, faults, state.

The generation loop is the simulator's hot path. Each batch draws `n` events (trade or book
change) over the venue's books, lets the venue protocol encode each event once and push the
bytes to the subscribed sessions, then writes one buffer per connection. Back-pressure: when any
connection's transport is above its high-water mark the loop waits for it to drain, so a slow
client slows the venue down instead of growing server memory (documented trade-off: one slow
client slows every client of that venue, as a single matching engine would not wait, but a
simulator must never buffer without bound).

Rates: `rate` events/s for this venue (0 = flood: as fast as the clients read, only while some
connection is subscribed). An event is one trade or one book change; it becomes one frame per
subscribed channel and connection.

Flood replay (the default flood; TICKRING_SIM_FLOOD=live turns it off): live rendering costs a
few microseconds of Python per frame, less than a feed worker needs to be measured at its limit.
So the flood renders a *closed* cycle (CYCLE_EVENTS events, then one delta per book back to the
levels it started from) three times from the same model state (all three are sent: they are
real, contiguous data), makes a template per connection of the last two (feeds/sim/replay.py)
and then replays it with ids, sequence numbers and clocks advanced, for at most REBUILD_S
seconds; then the model walks on live for a batch and a new cycle is rendered. Any change of
connections or subscriptions, an incoming text message, the periodic timer's frames, a fault,
or a pending gap/wick ends the replay at once (all of them may move a counter the template
holds as an absolute number). Counters
(update ids, trade ids, sequence numbers) advance per replayed cycle, so a REST snapshot taken
between cycles matches the stream; the REST trade history is filled in when read (sync()).
"""
from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import zlib

from .market import Book, Instrument
from .protocol import Session, VenueProtocol, protocol_class
from .replay import Template, Unusable

TRADE_SHARE = 0.35        # share of events that are trades (the rest are book changes)
FLOOD_BATCH = 512         # events per batch when flooding
MAX_BATCH = 4096          # events per batch when catching up with a rate
PICKS = 1 << 16           # pre-drawn instrument choices (weighted), cycled
CYCLE_EVENTS = 1024       # events of one replayed flood cycle, at least; and at least
CYCLE_PER_BOOK = 16       # this many per book, so the closing deltas stay a small share
MAX_CYCLE = 16384
REBUILD_S = 1.0           # a replayed cycle is re-rendered from the live model this often


class Replay:
    """The flood cycle being replayed: per-connection templates and per-cycle counter steps."""
    __slots__ = ("version", "templates", "steps", "sdata", "trades", "events", "k", "kmax", "until",
                 "synced", "last_ts")

    def __init__(self, version, templates, steps, sdata, trades, events, kmax, until, ts_ms):
        self.version = version
        self.templates = templates    # [(session, Template)]
        self.steps = steps            # [(book, d_uid, d_nmsg, d_trades)]
        self.sdata = sdata            # [(session, [(data key, delta)])]
        self.trades = trades          # [(book, d_trades, trades of the last rendering)]
        self.events = events
        self.k = 0                    # cycles replayed
        self.kmax = kmax
        self.until = until
        self.synced = 0               # cycles whose trades are in the books' history
        self.last_ts = ts_ms


class Engine:
    """Books, sessions and the event loop tasks of one venue."""

    def __init__(self, venue: str, insts: list[Instrument], rate: float, seed: int, depth: int = 25,
                 history: int = 2000, ping_interval: float | None = None, trade_share: float = TRADE_SHARE):
        self.venue = venue
        self.seed = seed
        self.rng = random.Random(zlib.crc32(f"{seed}:{venue}".encode()))
        self.proto: VenueProtocol = protocol_class(venue)(self)
        self.insts = insts
        self.books: dict[tuple[str, str], Book] = {}
        self.book_list: list[Book] = []
        for market in self.proto.markets:
            for inst in insts:
                native = self.proto.native(inst, market)
                b = Book(inst, market, native, depth, random.Random(self.rng.getrandbits(64)), history, seed)
                self.books[(market, native)] = b
                self.book_list.append(b)
        weights = [b.inst.weight for b in self.book_list]
        # pre-drawn (book index << 3 | 2 random bits << 1 | is_trade): one table lookup per event
        lo, hi = self.proto.ids_per_update
        self.picks = [(i << 3) | (self.rng.randrange(4) << 1) | (self.rng.random() < trade_share)
                      for i in self.rng.choices(range(len(self.book_list)), weights=weights, k=PICKS)]
        # update ids a book message consumes, indexed by those 2 random bits
        self.ids_table = [lo + (x % (hi - lo + 1)) for x in range(4)]
        self.pick_i = 0
        self.rate = float(rate)
        # --ping-interval overrides only venues whose rule has server pings; the pong timeout
        # then scales with it (3 intervals) so tests can exercise it quickly
        self.ping_interval = self.proto.ping_interval
        self.pong_timeout = self.proto.pong_timeout or 3 * self.ping_interval
        if ping_interval is not None and self.ping_interval > 0:
            self.ping_interval = ping_interval
            self.pong_timeout = 3 * ping_interval
        self.sessions: set[Session] = set()
        self.paused: set = set()
        self._resume = asyncio.Event()
        self._resume.set()
        self._subscribed = asyncio.Event()
        self.stall_until = 0.0
        self.max_age = 0.0        # drop connections older than this (s); 0 = never
        self.burst_book: Book | None = None
        self.burst_end = 0.0
        self.running = True
        self.events = 0           # events generated
        self.frames = 0           # market-data frames written (all connections)
        self.bytes = 0            # bytes of those frames
        self.started = time.monotonic()
        self.flood_mode = os.environ.get("TICKRING_SIM_FLOOD", "replay")
        if self.flood_mode not in ("replay", "live"):
            raise ValueError(f"TICKRING_SIM_FLOOD must be 'replay' or 'live', not {self.flood_mode!r}")
        self.version = 0          # bumped by every change of connections or subscriptions
        self.replay: Replay | None = None
        self.replay_off_until = 0.0
        self.replayed = 0         # cycles replayed (stats)
        self.rebuild_s = REBUILD_S
        self._live_next = False

    # --- connection bookkeeping (called by server.Conn) ---------------------------------
    def attach(self, session: Session) -> None:
        self.sync()
        self.version += 1
        self.sessions.add(session)

    def detach(self, session: Session) -> None:
        self.version += 1
        session.drop_all()
        self.sessions.discard(session)
        self.paused.discard(session.conn)
        if not self.paused:
            self._resume.set()

    def pause(self, conn) -> None:
        self.paused.add(conn)
        self._resume.clear()

    def resume(self, conn) -> None:
        self.paused.discard(conn)
        if not self.paused:
            self._resume.set()

    def subscribed(self) -> None:
        self.version += 1
        self._subscribed.set()

    def set_rate(self, rate: float) -> None:
        """Events per second from now on (0 = flood); the generation loop picks it up."""
        if rate < 0:
            raise ValueError("rate must be >= 0 (0 = flood)")
        self.rate = float(rate)
        self._subscribed.set()                     # wake a flood loop waiting for subscribers

    def changed(self) -> None:
        """Connections, subscriptions or faults changed: a replayed flood cycle is stale."""
        self.version += 1

    def stalled(self) -> bool:
        return time.monotonic() < self.stall_until

    # --- the hot path --------------------------------------------------------------------
    def generate(self, n: int, ts_ms: int, flush: bool = True) -> None:
        """Draw n events, encode and push them, write one buffer per connection."""
        books = self.book_list
        picks = self.picks
        k = self.pick_i
        rnd = self.rng.random
        on_trade = self.proto.on_trade
        on_book = self.proto.on_book
        ids_table = self.ids_table
        render = self.proto.rendered_levels
        self.proto.ts_b = b"%d" % ts_ms
        burst_book = self.burst_book
        for _ in range(n):
            p = picks[k & (PICKS - 1)]
            k += 1
            if burst_book is not None and rnd() < 0.3:
                b = burst_book
            else:
                b = books[p >> 3]
            if p & 1:
                t = b.trade(ts_ms)
                if b.subs:
                    on_trade(b, t, ts_ms)
            else:
                if ts_ms - b.ref_ts >= 100:
                    b.refresh_target(ts_ms)
                ev = b.update(ids_table[(p >> 1) & 3], b is burst_book, render)
                if b.gap:                      # fault: this update is applied but never sent
                    b.gap -= 1
                    continue
                if b.subs:
                    on_book(b, ev, ts_ms)
        self.pick_i = k
        self.events += n
        if flush:
            self.flush()

    # --- flood replay --------------------------------------------------------------------
    def flood(self, ts_ms: int) -> None:
        """One flood step: a replayed cycle while the template is current, else live events."""
        rp = self.replay
        if rp is not None:
            if (rp.version == self.version and rp.k < rp.kmax and time.monotonic() < rp.until
                    and not self._pending()):
                self._replay(rp, ts_ms)
                return
            self.sync()
            self.replay = None
            self._live_next = True               # let the model walk on before the next cycle
        if (self.flood_mode != "replay" or self._live_next or self._pending()
                or time.monotonic() < self.replay_off_until):
            self._live_next = False
            self.generate(FLOOD_BATCH, ts_ms)
            return
        self._build(ts_ms)

    def _pending(self) -> bool:
        """A fault waits for the live model (a skipped update, a wick)."""
        for b in self.book_list:
            if b.gap or b.wick:
                return True
        return False

    def _cycle(self, n: int, ts_ms: int, saved: list) -> int:
        """n live events then one delta per book back to its saved levels; nothing written.
        Returns the events generated."""
        self.generate(n, ts_ms, flush=False)
        ids = self.ids_table[0]
        render = self.proto.rendered_levels
        on_book = self.proto.on_book
        closes = 0
        for b, st in zip(self.book_list, saved):
            ev = b.close_to(st, ids, render)
            if ev is not None:
                closes += 1
                if b.subs:
                    on_book(b, ev, ts_ms)
        self.events += closes
        return n + closes

    def _build(self, ts_ms: int) -> None:
        """Render the closed cycle three times (sent as they are), template the last two."""
        self.flush()
        books = self.book_list
        saved = [b.save() for b in books]
        rng_state, pick = self.rng.getstate(), self.pick_i
        renders = []
        events = 0
        for r in range(3):
            if r:
                for b, st in zip(books, saved):
                    b.load(st)
                self.rng.setstate(rng_state)
                self.pick_i = pick
            events = self._cycle(min(MAX_CYCLE, max(CYCLE_EVENTS, CYCLE_PER_BOOK * len(books))), ts_ms, saved)
            out = {}
            for s in self.sessions:
                if s.out:
                    data = b"".join(s.out)
                    out[s] = (data, len(s.out) >> 1)
                    s.out.clear()
                    s.conn.write(data)
                    self.frames += out[s][1]
                    self.bytes += len(data)
            renders.append((out, [(b.uid, b.nmsg, b.trade_id) for b in books],
                            {s: {k: v for k, v in s.data.items() if type(v) is int} for s in self.sessions}))
        (out2, c2, d2), (out3, c3, d3) = renders[1], renders[2]
        if set(out2) != set(out3):
            return
        try:
            templates = [(s, Template(out2[s][0], out3[s][0], ts_ms, out3[s][1])) for s in out3]
        except Unusable as err:
            if err.retry:
                return
            print(f"sim {self.venue}: flood replay off for 10 s ({err}); rendering live", file=sys.stderr)
            self.replay_off_until = time.monotonic() + 10.0
            return
        steps, trades = [], []
        for b, x, y in zip(books, c2, c3):
            du, dn, dt = y[0] - x[0], y[1] - x[1], y[2] - x[2]
            if du or dn or dt:
                steps.append((b, du, dn, dt))
            if dt:
                trades.append((b, dt, list(b.trades)[-dt:]))
        sdata = [(s, [(k, v - d2[s].get(k, v)) for k, v in d3[s].items() if v != d2[s].get(k, v)])
                 for s in self.sessions if s in d2]
        kmax = min([t.kmax for _, t in templates] or [0])
        self.replay = Replay(self.version, templates, steps, [x for x in sdata if x[1]], trades, events,
                             kmax, time.monotonic() + self.rebuild_s, ts_ms)

    def _replay(self, rp: Replay, ts_ms: int) -> None:
        rp.k += 1
        k = rp.k
        for s, tpl in rp.templates:
            s.conn.write(tpl.render(k, ts_ms))
            self.frames += tpl.frames
            self.bytes += tpl.size
        for b, du, dn, dt in rp.steps:
            b.uid += du
            b.nmsg += dn
            b.trade_id += dt
            b.ntrades += dt
        for s, items in rp.sdata:
            d = s.data
            for key, delta in items:
                d[key] += delta
        self.events += rp.events
        self.replayed += 1
        rp.last_ts = ts_ms

    def sync(self) -> None:
        """Bring what replayed cycles skipped up to date: the books' trade history (REST
        backfill, state) and the venue protocol's own bookkeeping. Cheap when nothing to do."""
        rp = self.replay
        if rp is None or rp.synced == rp.k:
            return
        for b, dt, tail in rp.trades:
            dq = b.trades
            first = rp.synced + 1
            if len(tail) < dt:                       # history shorter than one cycle
                first = rp.k
                dq.clear()
            elif (rp.k - first + 1) * dt > (dq.maxlen or 1 << 62):
                first = rp.k - (dq.maxlen or 0) // dt
                dq.clear()
            ts = rp.last_ts
            for j in range(first, rp.k + 1):
                sh = j * dt
                dq.extend([(t[0] + sh, t[1], t[2], t[3], ts, t[5]) for t in tail])
        rp.synced = rp.k
        self.proto.replayed()

    def flush(self) -> None:
        """Write every session's batched frames (one transport.write each)."""
        for s in self.sessions:
            if s.out:
                self.frames += len(s.out) >> 1
                self.bytes += s.flush()

    def _bursts(self, now: float) -> None:
        """Start/stop a burst: one instrument gets a third of the events and trends."""
        if self.burst_book is not None:
            if now >= self.burst_end:
                self.burst_book.trend = 0
                self.burst_book = None
        elif self.rng.random() < 0.002:
            b = self.book_list[self.picks[self.rng.randrange(PICKS)] >> 3]
            b.trend = 1 if self.rng.random() < 0.5 else -1
            self.burst_book = b
            self.burst_end = now + self.rng.uniform(0.2, 1.5)

    async def run(self) -> None:
        """Generate events at `rate` (or flood) until stopped, honouring back-pressure."""
        loop_time = time.monotonic
        t0 = loop_time()
        produced = 0
        rate = self.rate
        while self.running:
            now = loop_time()
            if self.rate != rate:                   # changed at run time (/_sim/rate)
                rate, t0, produced = self.rate, now, 0
                self.sync()                         # rate mode renders live from here
                self.replay = None
            if now < self.stall_until:
                await asyncio.sleep(self.stall_until - now)
                t0, produced = loop_time(), 0
                continue
            if self.paused:
                await self._resume.wait()
                t0, produced = loop_time(), 0      # slow client: slow down, do not catch up
                continue
            self._bursts(now)
            if rate <= 0:
                if not any(v is not None for s in self.sessions for v in s.subs.values()):
                    self._subscribed.clear()
                    await self._subscribed.wait()
                    continue
                self.flood(int(time.time() * 1000))
                await asyncio.sleep(0)
                continue
            due = int((now - t0) * rate) - produced
            if due <= 0:
                await asyncio.sleep(min(0.05, max(0.001, (produced + 1) / rate - (now - t0))))
                continue
            if due > rate:                          # more than a second behind: re-base
                t0, produced, due = now - 1.0 / rate, 0, 1
            n = min(due, MAX_BATCH)
            self.generate(n, int(time.time() * 1000))
            produced += n
            if n == MAX_BATCH:
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.001)

    async def pinger(self) -> None:
        """Server-sent ws PING frames (venues whose rule says so) and the pong timeout."""
        interval = self.ping_interval
        if interval <= 0:
            return
        timeout = self.pong_timeout
        while self.running:
            await asyncio.sleep(interval)
            if self.stalled():
                continue
            now = time.monotonic()
            payload = b"%d" % int(time.time() * 1000)
            for s in list(self.sessions):
                if s.ping_sent and s.last_pong < s.ping_sent and now - s.ping_sent > timeout:
                    s.close(1008, b"pong timeout")
                    continue
                if not s.ping_sent or s.last_pong >= s.ping_sent:
                    s.ping_sent = now
                s.send(payload, opcode=0x9)

    async def timer(self) -> None:
        """About once a second: venue periodic pushes (mark price, ...), and the connection
        lifetime cap (--max-connection-age: Binance drops connections at 24 h)."""
        tick = min(1.0, self.max_age / 4) if self.max_age > 0 else 1.0
        last = 0.0
        while self.running:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self.max_age > 0:
                for s in [s for s in self.sessions if now - s.opened >= self.max_age]:
                    s.abort()
            if now - last >= 1.0 and not self.stalled():
                last = now
                self.tick(int(time.time() * 1000))

    def tick(self, ts_ms: int) -> None:
        """The once-a-second venue pushes (mark prices, heartbeats)."""
        self.sync()
        self.proto.on_timer(ts_ms)
        self.flush()
        # periodic frames may advance per-connection sequences (Coinbase heartbeats): a
        # replayed cycle's absolute numbers would repeat them
        self.changed()

    # --- lookups for faults and state ----------------------------------------------------
    def find(self, symbol: str | None, market: str | None = None) -> Book:
        """A book by native symbol (any market unless given) or base asset; clear error otherwise."""
        if not symbol:
            return self.book_list[0]
        markets = [market] if market else list(self.proto.markets)
        for m in markets:
            b = self.books.get((m, symbol))
            if b is not None:
                return b
        low = symbol.lower()
        for b in self.book_list:
            if (not market or b.market == market) and (b.native.lower() == low or b.inst.base.lower() == low):
                return b
        examples = ", ".join(b.native for b in self.book_list[:4])
        raise KeyError(f"{self.venue} has no symbol {symbol!r}"
                       f"{' in market ' + market if market else ''}; e.g. {examples}")

    def state(self, symbol: str | None, market: str | None = None, depth: int = 10, trades: int = 100) -> dict:
        """The simulator's current book (top `depth`) and the trades it generated for a symbol;
        without a symbol, a one-line summary of every book."""
        if not symbol:
            return {"venue": self.venue, "books": [
                {"market": b.market, "symbol": b.native, "update_id": b.uid, "book_messages": b.nmsg,
                 "bid": b.px(b.bid).decode(), "ask": b.px(b.ask).decode(), "trades": b.ntrades,
                 "last_trade_id": b.trade_id} for b in self.book_list if not market or b.market == market]}
        b = self.find(symbol, market)
        bids, asks = b.top(depth)
        recent = list(b.trades)[-trades:] if trades else []
        return {
            "venue": self.venue, "market": b.market, "symbol": b.native, "base": b.inst.base,
            "tick_size": b.px(1).decode(), "update_id": b.uid, "book_messages": b.nmsg,
            "bids": [[p.decode(), s.decode()] for p, s in bids],
            "asks": [[p.decode(), s.decode()] for p, s in asks],
            "trades": {
                "count": b.ntrades, "last_id": b.trade_id,
                "first_id": b.trade_id - b.ntrades + 1 if b.ntrades else None,
                "kept_from_id": b.trades[0][0] if b.trades else None,
                "recent": [[t[0], t[1].decode(), t[2].decode(), "sell" if t[3] else "buy", t[4]] for t in recent],
            },
            "subscribers": {ch: len(v) for ch, v in b.subs.items()},
        }

    def stats(self) -> dict:
        el = max(1e-9, time.monotonic() - self.started)
        return {"events": self.events, "events_per_s": round(self.events / el, 1), "frames": self.frames,
                "bytes": self.bytes, "connections": len(self.sessions), "paused": len(self.paused),
                "flood_mode": self.flood_mode, "replayed_cycles": self.replayed}
