"""Trade gaps and their REST backfill.

A gap is a jump in a venue's contiguous trade ids on one instrument (a lost frame, a reconnect,
or records the compactor lost to a ring lap: the ids jump over them too). Where the venue
declares `trades_request`/`parse_trades` (feeds/<venue>.py), the missing ids are fetched from
its REST API through a token bucket (`VENUE.rest_weight_per_s`) on a background thread, so the
compactor's loop never waits on the network, and come back as TRADE records flagged BACKFILL.
A gap that cannot be filled (no REST support, errors, the venue no longer has the trades) is
reported as a STATUS GAP record flagged DERIVED (price = first missing id, size = last), so the
loss is never silent.

`fetch(url, params) -> bytes` is injectable (tests); the default is a plain urllib GET.
"""
from __future__ import annotations

import collections
import threading
import time
import urllib.parse
import urllib.request

import numpy as np

from shm.record import RECORD, Flag, Kind, Status

MAX_GAP = 100_000         # ids; a larger jump is reported, and only its first MAX_GAP are fetched


def http_get(url: str, params: dict, timeout: float = 10.0) -> bytes:
    q = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}?{q}" if q else url, timeout=timeout) as r:
        return r.read()


class TradeIds:
    """Last trade id per instrument; finds jumps in a batch (vectorized)."""

    def __init__(self):
        self.last: dict[int, int] = {}

    def gaps(self, records: np.ndarray) -> list[tuple[int, int, int]]:
        """(instrument, first missing id, last missing id) for every jump in these records."""
        t = records["kind"] == int(Kind.TRADE)
        t &= (records["flags"] & int(Flag.BACKFILL)) == 0
        if not t.any():
            return []
        inst = records["instrument"][t].astype(np.int64)
        ids = records["id"][t]
        order = np.argsort(inst, kind="stable")
        inst, ids = inst[order], ids[order]
        first = np.ones(len(inst), bool)
        first[1:] = inst[1:] != inst[:-1]
        prev = np.empty_like(ids)
        prev[1:] = ids[:-1]
        heads = np.flatnonzero(first)
        prev[heads] = [self.last.get(int(i), -1) for i in inst[heads]]
        known = prev >= 0
        jump = known & (ids > prev + 1)
        out = [(int(i), int(a) + 1, int(b) - 1) for i, a, b in zip(inst[jump], prev[jump], ids[jump])]
        for i, v in zip(inst[heads].tolist(), np.maximum.reduceat(ids, heads).tolist()):
            if v > self.last.get(i, -1):
                self.last[i] = v
        return out


def gap_status(instrument: int, first: int, last: int, ts_ns: int) -> np.ndarray:
    rec = np.zeros(1, RECORD)
    rec["ts_recv"] = ts_ns
    rec["instrument"] = instrument
    rec["kind"] = Kind.STATUS
    rec["flags"] = Flag.DERIVED
    rec["price"] = first
    rec["size"] = last
    rec["id"] = Status.GAP
    return rec


class Backfiller:
    """Fetches missing trades of one venue: `request()` gaps, `poll()` for records."""

    def __init__(self, venue_decl, symbol_of, fetch=None, base_url: str | None = None,
                 rate: float | None = None, clock=time.time_ns, retries: int = 3):
        from feeds.ratelimit import TokenBucket
        self.decl = venue_decl
        self.symbol_of = symbol_of
        self.fetch = fetch or http_get
        self.base_url = (base_url or venue_decl.rest_url).rstrip("/")
        self.bucket = TokenBucket(rate or venue_decl.rest_weight_per_s, burst=1)
        self.clock = clock
        self.retries = retries
        self.supported = venue_decl.trades_request is not None and venue_decl.parse_trades is not None
        self.queue: collections.deque = collections.deque()
        self.done: collections.deque = collections.deque()
        self.requests = 0
        self.filled = 0
        self.failed = 0
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False

    # -- the work ------------------------------------------------------------------------------
    def fill(self, instrument: int, first: int, last: int, symbol: str | None = None) -> np.ndarray:
        """Fetch trades first..last (inclusive) of one instrument now; BACKFILL records, plus
        a STATUS GAP record for whatever could not be recovered."""
        if not self.supported:
            return gap_status(instrument, first, last, self.clock())
        if symbol is None:
            symbol = self.symbol_of(instrument)
        want_last = min(last, first + MAX_GAP - 1)
        rows: list[tuple] = []
        nxt = first
        while nxt <= want_last:
            body = None
            for attempt in range(self.retries):
                wait = self.bucket.wait_time()
                while wait > 0:
                    time.sleep(wait)
                    wait = self.bucket.wait_time()
                self.bucket.try_acquire()
                path, params = self.decl.trades_request(symbol, nxt)
                self.requests += 1
                try:
                    body = self.fetch(self.base_url + path, params)
                    got = self.decl.parse_trades(body)
                    break
                except Exception:                     # network, HTTP or parse error: retry, then give up
                    body = None
                    time.sleep(min(2.0, 0.1 * 2 ** attempt))
            if body is None:
                break
            got = [r for r in got if nxt <= r[0] <= want_last]
            if not got:
                break                                 # the venue no longer has them
            rows.extend(got)
            nxt = max(r[0] for r in got) + 1
        recv = self.clock()
        rec = np.zeros(len(rows), RECORD)
        if rows:
            ids, ts, price, size, side = zip(*sorted(rows))
            rec["id"], rec["ts_event"], rec["price"], rec["size"], rec["side"] = ids, ts, price, size, side
            rec["ts_recv"] = recv
            rec["instrument"] = instrument
            rec["kind"] = Kind.TRADE
            rec["flags"] = Flag.BACKFILL
        have = set(r[0] for r in rows)
        missing = last - first + 1 - len(have)
        self.filled += len(have)
        if missing > 0:
            self.failed += missing
            lo = next((i for i in range(first, last + 1) if i not in have), first)
            from shm.record import concat
            rec = concat([rec, gap_status(instrument, lo, last, recv)])
        return rec

    # -- background thread -----------------------------------------------------------------------
    def request(self, instrument: int, first: int, last: int, symbol: str | None = None) -> None:
        """Queue a gap (symbol resolved here, on the caller's thread, if not given)."""
        if symbol is None:
            symbol = self.symbol_of(instrument)
        with self._cv:
            self.queue.append((instrument, first, last, symbol))
            self._cv.notify()

    def pending(self) -> list[tuple]:
        with self._cv:
            return [list(g) for g in self.queue]

    def poll(self) -> list[np.ndarray]:
        out = []
        while self.done:
            out.append(self.done.popleft())
        return out

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"backfill-{self.decl.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self.queue and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                gap = self.queue[0]
            self.done.append(self.fill(*gap))
            with self._cv:
                if self.queue and self.queue[0] == gap:
                    self.queue.popleft()
