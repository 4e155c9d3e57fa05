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
"""
from __future__ import annotations

import asyncio
import random
import time
import zlib

from .market import Book, Instrument
from .protocol import Session, VenueProtocol, protocol_class

TRADE_SHARE = 0.35        # share of events that are trades (the rest are book changes)
FLOOD_BATCH = 512         # events per batch when flooding
MAX_BATCH = 4096          # events per batch when catching up with a rate
PICKS = 1 << 16           # pre-drawn instrument choices (weighted), cycled


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

    # --- connection bookkeeping (called by server.Conn) ---------------------------------
    def attach(self, session: Session) -> None:
        self.sessions.add(session)

    def detach(self, session: Session) -> None:
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
        self._subscribed.set()

    def stalled(self) -> bool:
        return time.monotonic() < self.stall_until

    # --- the hot path --------------------------------------------------------------------
    def generate(self, n: int, ts_ms: int) -> None:
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
        self.flush()

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
                self.generate(FLOOD_BATCH, int(time.time() * 1000))
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
                self.proto.on_timer(int(time.time() * 1000))
                self.flush()

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
                "bytes": self.bytes, "connections": len(self.sessions), "paused": len(self.paused)}
