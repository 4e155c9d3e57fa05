"""The simulator's seeded market model: instruments, a shared reference price, and per-venue books.

Why it looks like this:
- Every venue in every sim process sees the same *reference* price for a base asset at the same
  wall-clock time (a seeded sum of slow sinusoids of absolute time), so books on different venues
  (and in different sim processes started with the same seed) agree, and a "wick" fault on one
  venue is really off the others' price.
- Each venue's book walks tick by tick around that reference (mean-reverting random walk, with
  bursts of activity and trend on one instrument at a time), so consecutive messages look like
  a random walk while venues never drift apart.
- The book is exact: a fixed number of levels per side (`depth`), every change is emitted as a
  delta and applied here first, so a REST snapshot (taken between batches) always matches the
  websocket sequence ids. Trades print at the best ask (buyer aggressor) or best bid (seller
  aggressor), so best bid <= trade price <= best ask.
- Everything per message is plain ints and cached bytes: no Decimal, no floats formatted per
  message (prices are integer ticks rendered through a small cache, sizes come from a
  pre-generated table).
"""
from __future__ import annotations

import collections
import math
import random
import time
import zlib

# base, reference price (USDT), tick decimals, lot decimals. Then generated ones (S001, ...).
KNOWN = [
    ("BTC", 65000.0, 2, 5), ("ETH", 3500.0, 2, 4), ("SOL", 150.0, 2, 3), ("BNB", 600.0, 2, 3),
    ("XRP", 0.6, 4, 1), ("DOGE", 0.15, 5, 0), ("ADA", 0.45, 4, 1), ("AVAX", 35.0, 2, 2),
    ("LINK", 15.0, 3, 2), ("DOT", 7.0, 3, 2), ("TRX", 0.12, 5, 0), ("LTC", 80.0, 2, 3),
    ("BCH", 450.0, 2, 3), ("NEAR", 5.0, 3, 1), ("UNI", 9.0, 3, 2), ("ATOM", 8.0, 3, 2),
    ("XLM", 0.11, 5, 0), ("ETC", 25.0, 3, 2), ("FIL", 5.5, 3, 2), ("APT", 9.0, 3, 2),
    ("ARB", 0.9, 4, 1), ("OP", 2.0, 4, 1), ("INJ", 25.0, 3, 2), ("SUI", 1.2, 4, 1),
    ("TON", 6.0, 3, 2), ("AAVE", 100.0, 2, 3), ("MKR", 2500.0, 1, 4), ("ICP", 10.0, 3, 2),
    ("HBAR", 0.08, 5, 0), ("ALGO", 0.18, 4, 0), ("SAND", 0.4, 4, 0), ("AXS", 7.0, 3, 2),
    ("EGLD", 35.0, 2, 2), ("THETA", 1.8, 4, 1), ("FTM", 0.7, 4, 0), ("GRT", 0.25, 4, 0),
    ("CRV", 0.5, 4, 1), ("LDO", 2.0, 4, 1), ("RUNE", 5.0, 3, 1), ("IMX", 2.0, 4, 1),
]
QUOTE = "USDT"


class Instrument:
    """One base asset quoted in USDT, the same on every venue (native names differ)."""
    __slots__ = ("index", "base", "quote", "price", "tick_dec", "lot_dec", "tick", "lot",
                 "waves", "weight")

    def __init__(self, index, base, price, tick_dec, lot_dec, seed):
        self.index = index
        self.base = base
        self.quote = QUOTE
        self.price = price
        self.tick_dec = tick_dec
        self.lot_dec = lot_dec
        self.tick = 10.0 ** -tick_dec
        self.lot = 10.0 ** -lot_dec
        r = random.Random(zlib.crc32(f"{seed}:{base}".encode()))
        # (amplitude of log price, angular frequency rad/s, phase): periods 30 s .. 6 h
        self.waves = [(a * r.uniform(0.5, 1.0), 2 * math.pi / (p * r.uniform(0.7, 1.3)), r.uniform(0, 6.3))
                      for a, p in ((0.0001, 30), (0.0003, 120), (0.001, 600), (0.003, 3600), (0.008, 21600))]
        self.weight = 1.0 / (index + 1) ** 0.8     # Zipf-ish: BTC busiest

    def reference(self, t_s: float) -> float:
        """The shared reference price at wall time t_s (seconds since the epoch)."""
        x = 0.0
        for a, w, ph in self.waves:
            x += a * math.sin(w * t_s + ph)
        return self.price * math.exp(x)


def instruments(n: int, seed: int) -> list[Instrument]:
    """The first n instruments: the well-known names, then S001, S002, ... (generated)."""
    out = []
    r = random.Random(seed)
    for i in range(n):
        if i < len(KNOWN):
            base, price, td, ld = KNOWN[i]
        else:
            base = f"S{i - len(KNOWN) + 1:03d}"
            price = round(r.uniform(0.5, 200.0), 2)
            td, ld = (3, 2) if price >= 5 else (4, 1)
        out.append(Instrument(i, base, price, td, ld, seed))
    return out


def _fmt(value: int, dec: int) -> bytes:
    """Integer count of 10**-dec units -> decimal bytes ("65000.01")."""
    if dec == 0:
        return b"%d" % value
    s = b"%0*d" % (dec + 1, value)
    return s[:-dec] + b"." + s[-dec:]


_SIZE_TABLES: dict[tuple[int, int], list[bytes]] = {}


def size_table(lot_dec: int, notional_lots: int, seed: int) -> list[bytes]:
    """1024 seeded sizes (bytes) for instruments with this lot precision and typical size, shared."""
    key = (lot_dec, notional_lots)
    t = _SIZE_TABLES.get(key)
    if t is None:
        r = random.Random(seed * 7919 + lot_dec * 131 + notional_lots)
        t = [_fmt(max(1, int(notional_lots * r.lognormvariate(0, 1.2))), lot_dec) for _ in range(1024)]
        _SIZE_TABLES[key] = t
    return t


class Book:
    """One instrument of one market on one venue: exact L2 book, update ids, trade ids, history.

    Levels exist at every tick from `bid` down `depth` ticks and from `ask` up `depth` ticks.
    `uid` is the last book update id; each book message consumes 1..k ids (venue rule).
    `nmsg` counts book messages (Bybit's consecutive `u`). Trade ids are contiguous.
    """
    __slots__ = ("inst", "market", "native", "native_b", "key", "depth", "bid", "ask", "bids", "asks",
                 "uid", "nmsg", "trade_id", "agg_offset", "trades", "ntrades", "sizes", "size_i",
                 "pxcache", "target", "ref_ts", "gap", "wick", "subs", "rng", "trend", "dec")

    def __init__(self, inst: Instrument, market: str, native: str, depth: int, rng: random.Random,
                 history: int, seed: int):
        self.inst = inst
        self.market = market
        self.native = native
        self.native_b = native.encode()
        self.key = (market, native)
        self.depth = depth
        self.rng = rng
        self.dec = inst.tick_dec
        notional_lots = max(1, int(round(500.0 / inst.price / inst.lot)))  # ~500 USDT per fill
        self.sizes = size_table(inst.lot_dec, notional_lots, seed)
        self.size_i = rng.randrange(1024)
        self.pxcache: dict[int, bytes] = {}
        mid = int(round(inst.reference(time.time()) / inst.tick))
        self.bid = mid
        self.ask = mid + 1
        self.bids = {t: self._size() for t in range(self.bid - depth + 1, self.bid + 1)}
        self.asks = {t: self._size() for t in range(self.ask, self.ask + depth)}
        self.uid = rng.randrange(10**8, 5 * 10**8)
        self.nmsg = rng.randrange(10**6, 10**7)
        self.trade_id = rng.randrange(10**7, 10**8)
        self.agg_offset = -rng.randrange(10**6, 10**7)
        self.trades: collections.deque = collections.deque(maxlen=history)
        self.ntrades = 0
        self.target = mid
        self.ref_ts = -1
        self.gap = 0          # pending "skip an update" faults
        self.wick = 0.0       # pending wick: relative offset of the next trade price
        self.trend = 0
        self.subs: dict[str, list] = {}   # channel -> [(session, prefix, suffix)]

    # --- small helpers -------------------------------------------------------------------
    def _size(self) -> bytes:
        # the table is random already: a fixed odd stride through it is random enough and cheap
        self.size_i = i = (self.size_i + 389) & 1023
        return self.sizes[i]

    def px(self, ticks: int) -> bytes:
        """Price bytes of a tick count (cached; the cache is bounded)."""
        c = self.pxcache
        b = c.get(ticks)
        if b is None:
            if len(c) > 512:                     # the working set is ~2 x depth ticks
                c.clear()
            b = c[ticks] = _fmt(ticks, self.dec)
        return b

    def price(self, ticks: int) -> float:
        return ticks * self.inst.tick

    def refresh_target(self, ts_ms: int) -> None:
        """Re-read the shared reference price (at most every 100 ms per book)."""
        if ts_ms - self.ref_ts >= 100:
            self.ref_ts = ts_ms
            self.target = int(round(self.inst.reference(ts_ms / 1000.0) / self.inst.tick))

    # --- events --------------------------------------------------------------------------
    def trade(self, ts_ms: int) -> tuple:
        """Next trade: at the best ask (buyer aggressor) or best bid (seller aggressor).

        Returns (trade_id, price_bytes, size_bytes, buyer_is_maker, ts_ms, ticks)."""
        self.trade_id += 1
        self.ntrades += 1
        buyer_maker = self.rng.getrandbits(1)
        ticks = self.bid if buyer_maker else self.ask
        if self.wick:
            ticks = int(ticks * (1.0 + self.wick))
            self.wick = 0.0
        c = self.pxcache.get(ticks)
        self.size_i = i = (self.size_i + 389) & 1023
        t = (self.trade_id, c if c is not None else self.px(ticks), self.sizes[i], buyer_maker, ts_ms, ticks)
        self.trades.append(t)
        return t

    def update(self, ids: int, burst: bool, render: bool = False) -> tuple:
        """Next book change, applied to the book. Returns (first_id, last_id, prev_last_id,
        bid_changes, ask_changes, top_changed); size "0" deletes a level. The changes are lists of
        (price_bytes, size_bytes), or with render=True already rendered as the inside of a JSON
        array of ["price","size"] pairs (b'["1.5","2"],["1.4","0"]'), the format Binance and
        Bybit send as-is and OKX extends: rendering here, once, is the cheapest place on the
        hot path (VenueProtocol.rendered_levels picks the form)."""
        prev = self.uid
        first = prev + 1
        self.uid = last = prev + ids
        self.nmsg += 1
        r = self.rng.getrandbits(30)                  # one-digit Python ints: cheapest bit ops
        k = r & 1023
        r >>= 10
        bid, ask, depth = self.bid, self.ask, self.depth
        if k < (512 if burst else 225):
            # move the inside toward the reference (or with the burst's trend), 1 tick
            mid2 = bid + ask
            tgt2 = 2 * self.target
            far = abs(tgt2 - mid2) // 2
            if burst and self.trend:
                step = self.trend * (1 + (r & 3))
            elif far > 8 * depth:                     # far off (e.g. after a long stall): jump
                step = (tgt2 - mid2) // 2
            elif far:                                 # approach: bigger steps when further away
                step = min(1 + far // 16, depth // 2)
                if mid2 > tgt2:
                    step = -step
            else:
                step = 1 if r & 1 else -1
            if step == 1 or step == -1:
                return first, last, prev, *self._shift(step, render), True
            return first, last, prev, *self._reshape(bid + step, ask + step, render), True
        if k < 330:
            spread = 1 + (r & 3) % 3
            if r & 4:
                return first, last, prev, *self._reshape(ask - spread, ask, render), True
            return first, last, prev, *self._reshape(bid, bid + spread, render), True
        # size changes on 1 or 2 random levels, nearer the top more often
        bch = []
        ach = []
        top = False
        sizes = self.sizes
        i = self.size_i
        pc = self.pxcache
        if render:                                    # the hot form: no lists, no joins
            d = (((r >> 1) & 31) * ((r >> 6) & 31) * depth) >> 10
            self.size_i = i = (i + 389) & 1023
            s = sizes[i]
            bb = ab = b""
            if r & 2048:
                t = bid - d
                self.bids[t] = s
                bb = b'["%s","%s"]' % (pc.get(t) or self.px(t), s)
            else:
                t = ask + d
                self.asks[t] = s
                ab = b'["%s","%s"]' % (pc.get(t) or self.px(t), s)
            if r & 1:                                 # a second level (may repeat the first)
                r = self.rng.getrandbits(30)
                d2 = (((r >> 1) & 31) * ((r >> 6) & 31) * depth) >> 10
                self.size_i = i = (i + 389) & 1023
                s = sizes[i]
                if r & 2048:
                    t = bid - d2
                    self.bids[t] = s
                    lv = b'["%s","%s"]' % (pc.get(t) or self.px(t), s)
                    bb = bb + b"," + lv if bb else lv
                else:
                    t = ask + d2
                    self.asks[t] = s
                    lv = b'["%s","%s"]' % (pc.get(t) or self.px(t), s)
                    ab = ab + b"," + lv if ab else lv
                d *= d2
            return first, last, prev, bb, ab, not d
        for _ in range(1 + (r & 1)):
            d = (((r >> 1) & 31) * ((r >> 6) & 31) * depth) >> 10
            i = (i + 389) & 1023
            s = sizes[i]
            if r & 2048:
                t = bid - d
                self.bids[t] = s
                lv = (pc.get(t) or self.px(t), s)
                bch.append(b'["%s","%s"]' % lv if render else lv)
            else:
                t = ask + d
                self.asks[t] = s
                lv = (pc.get(t) or self.px(t), s)
                ach.append(b'["%s","%s"]' % lv if render else lv)
            if not d:
                top = True
            r = self.rng.getrandbits(30) & ~1
        self.size_i = i
        return first, last, prev, bch, ach, top

    def _shift(self, step: int, render: bool) -> tuple:
        """The common move, both sides one tick up (step 1) or down (-1): 2 changes per side."""
        bid, ask, d1 = self.bid, self.ask, self.depth - 1
        if step == 1:
            drop_b, add_b, drop_a, add_a = bid - d1, bid + 1, ask, ask + d1 + 1
        else:
            drop_b, add_b, drop_a, add_a = bid, bid - d1 - 1, ask + d1, ask - 1
        bids, asks, pc, px = self.bids, self.asks, self.pxcache, self.px
        del bids[drop_b]
        del asks[drop_a]
        sizes = self.sizes
        self.size_i = i = (self.size_i + 389) & 1023
        bids[add_b] = sb = sizes[i]
        self.size_i = i = (i + 389) & 1023
        asks[add_a] = sa = sizes[i]
        self.bid, self.ask = bid + step, ask + step
        if render:
            return (b'["%s","0"],["%s","%s"]' % (pc.get(drop_b) or px(drop_b), pc.get(add_b) or px(add_b), sb),
                    b'["%s","0"],["%s","%s"]' % (pc.get(drop_a) or px(drop_a), pc.get(add_a) or px(add_a), sa))
        return ([(pc.get(drop_b) or px(drop_b), b"0"), (pc.get(add_b) or px(add_b), sb)],
                [(pc.get(drop_a) or px(drop_a), b"0"), (pc.get(add_a) or px(add_a), sa)])

    def _reshape(self, nbid: int, nask: int, render: bool = False) -> tuple:
        """Move the inside to (nbid, nask), keeping `depth` levels per side; the deltas."""
        if nask <= nbid:
            nask = nbid + 1
        d1 = self.depth - 1
        bch = self._move(self.bids, self.bid - d1, self.bid, nbid - d1, nbid)
        ach = self._move(self.asks, self.ask, self.ask + d1, nask, nask + d1)
        self.bid, self.ask = nbid, nask
        if render:
            return (b",".join([b'["%s","%s"]' % lv for lv in bch]), b",".join([b'["%s","%s"]' % lv for lv in ach]))
        return bch, ach

    def _move(self, levels: dict, olo: int, ohi: int, nlo: int, nhi: int) -> list:
        """Levels [olo, ohi] become [nlo, nhi]: delete what left, add what came; the changes."""
        pc = self.pxcache
        px = self.px
        ch = []
        if nlo > olo:                                   # window moved up: drop the bottom
            for t in range(olo, (nlo if nlo <= ohi else ohi + 1)):
                del levels[t]
                ch.append((pc.get(t) or px(t), b"0"))
        if nhi < ohi:                                   # window moved down: drop the top
            for t in range((nhi + 1 if nhi >= olo else olo), ohi + 1):
                del levels[t]
                ch.append((pc.get(t) or px(t), b"0"))
        if nlo < olo:                                   # new levels below
            for t in range(nlo, (olo if olo <= nhi else nhi + 1)):
                levels[t] = s = self._size()
                ch.append((pc.get(t) or px(t), s))
        if nhi > ohi:                                   # new levels above
            for t in range((ohi + 1 if ohi >= nlo else nlo), nhi + 1):
                levels[t] = s = self._size()
                ch.append((pc.get(t) or px(t), s))
        return ch

    # --- flood replay (engine.Engine builds closed cycles from these) ---------------------
    def save(self) -> tuple:
        """The model state a cycle starts from (levels, inside, randomness; not the counters)."""
        return (self.bid, self.ask, dict(self.bids), dict(self.asks), self.size_i, self.rng.getstate(),
                self.target, self.ref_ts)

    def load(self, st: tuple) -> None:
        """Back to a saved model state; ids, trade ids and history keep counting."""
        self.bid, self.ask, bids, asks, self.size_i, rs, self.target, self.ref_ts = st
        self.bids, self.asks = dict(bids), dict(asks)
        self.rng.setstate(rs)

    def close_to(self, st: tuple, ids: int, render: bool = False) -> tuple | None:
        """One book change that brings the levels back to those of a saved state (the end of a
        closed cycle), applied like update(); None if they are equal already."""
        bid0, ask0, bids0, asks0 = st[:4]
        bch = self._delta(self.bids, bids0, True)
        ach = self._delta(self.asks, asks0, False)
        if not bch and not ach:
            return None
        self.bids, self.asks = dict(bids0), dict(asks0)
        self.bid, self.ask = bid0, ask0
        prev = self.uid
        self.uid = last = prev + ids
        self.nmsg += 1
        if render:
            bch = b",".join([b'["%s","%s"]' % lv for lv in bch])
            ach = b",".join([b'["%s","%s"]' % lv for lv in ach])
        return prev + 1, last, prev, bch, ach, True

    def _delta(self, cur: dict, target: dict, desc: bool) -> list:
        px = self.px
        ticks = sorted({t for t in cur if t not in target} | {t for t, s in target.items() if cur.get(t) != s},
                       reverse=desc)
        return [(px(t), target.get(t, b"0")) for t in ticks]

    # --- views ---------------------------------------------------------------------------
    def top_json(self, n: int) -> tuple[bytes, bytes]:
        """Best n levels per side rendered like update()'s changes (for snapshots)."""
        bids, asks = self.top(n)
        return (b",".join([b'["%s","%s"]' % lv for lv in bids]), b",".join([b'["%s","%s"]' % lv for lv in asks]))

    def top(self, n: int) -> tuple[list, list]:
        """Best n levels per side as [(price_bytes, size_bytes)], best first."""
        n = min(n, self.depth)
        bids = [(self.px(t), self.bids[t]) for t in range(self.bid, self.bid - n, -1)]
        asks = [(self.px(t), self.asks[t]) for t in range(self.ask, self.ask + n)]
        return bids, asks

    def trades_from(self, from_id: int | None, limit: int) -> list[tuple]:
        """Kept trades with id >= from_id (oldest kept if older), at most limit; or the latest."""
        tr = self.trades
        if not tr:
            return []
        if from_id is None:
            return list(tr)[-limit:]
        start = max(0, from_id - tr[0][0])
        return [tr[i] for i in range(start, min(len(tr), start + limit))]
