"""Data quality per venue and instrument, and the grade it earns.

Measured per instrument over a rolling window (the current and the previous `window_ns`):
message rate, staleness (now - last ts_recv), sequence gaps (STATUS GAP and trade-id jumps),
resyncs (STATUS RESYNC/CHECKSUM), reconnects (venue-wide STATUS DISCONNECTED), records lost
to ring laps, clock skew (ts_recv - ts_event, p50/p99 of a sample), out-of-order events
(ts_event going backwards per instrument and kind), crossed books (a QUOTE with bid >= ask, a
CROSSED flag or STATUS CROSSED) and wicks (cross-venue check, wick.py).

Grades, worst reason wins:
  limited   stale (no data for longer than stale_ns), or never any data
  degraded  wicks, gaps, crossed books, lost records, skew p99 > 2 s, more than 3 resyncs
  good      resyncs, reconnects, out-of-order events, late trades (arrived after their
            candle closed: watermark too short for this venue's latency), skew p99 > 500 ms
  excellent nothing to report
"""
from __future__ import annotations

import numpy as np

from shm.record import Flag, Kind, Status

from .schema import GRADES

_COUNTERS = ("msgs", "gaps", "resyncs", "reconnects", "out_of_order", "crossed", "wicks", "lost",
             "late_trades")
_SKEW_SAMPLE = 512         # skew samples kept per batch (random subset)
_SKEW_KEEP = 4096          # per window, all instruments together (most recent kept)

EXCELLENT, GOOD, DEGRADED, LIMITED = range(4)


class VenueQuality:
    """Quality counters of one venue's instruments (arrays indexed by instrument id)."""

    def __init__(self, venue: str, stale_ns: int = 10_000_000_000, window_ns: int = 60_000_000_000):
        self.venue = venue
        self.stale_ns = int(stale_ns)
        self.window_ns = int(window_ns)
        self.size = 0
        self.cur = {c: np.zeros(0, np.int64) for c in _COUNTERS}
        self.prev = {c: np.zeros(0, np.int64) for c in _COUNTERS}
        self.last_recv = np.zeros(0, np.int64)
        self.last_event = np.zeros((0, 7), np.int64)          # per kind
        self.skew_cur: list[tuple[np.ndarray, np.ndarray]] = []
        self.skew_prev: list[tuple[np.ndarray, np.ndarray]] = []
        self.window_start = 0
        self.known: set[int] = set()
        self.venue_wide = {c: 0 for c in _COUNTERS}
        self._rng = np.random.default_rng(0)
        self._ring_last: dict[str, int] | None = None
        self.ring_reconnects = [0, 0]          # current, previous window (ring counter deltas)

    def _grow(self, n: int) -> None:
        if n <= self.size:
            return
        new = max(n, self.size * 2, 64)
        for d in (self.cur, self.prev):
            for c in _COUNTERS:
                a = np.zeros(new, np.int64)
                a[:self.size] = d[c]
                d[c] = a
        lr = np.zeros(new, np.int64)
        lr[:self.size] = self.last_recv
        self.last_recv = lr
        le = np.zeros((new, 7), np.int64)
        le[:self.size] = self.last_event
        self.last_event = le
        self.size = new

    def register(self, instruments) -> None:
        """Instruments this venue should have (from the registry), so silence is noticed."""
        for i in instruments:
            self.known.add(int(i))
        if self.known:
            self._grow(max(self.known) + 1)

    # -- observing -----------------------------------------------------------------------------
    def observe(self, records: np.ndarray) -> None:
        if not len(records):
            return
        inst = records["instrument"].astype(np.int64)
        self._grow(int(inst.max()) + 1)
        if self.window_start == 0:
            self.window_start = int(records["ts_recv"][0])
        kind = records["kind"]
        ts_recv = records["ts_recv"]
        ts_event = records["ts_event"]
        data = kind != int(Kind.STATUS)
        c = self.cur
        counts = np.bincount(inst[data], minlength=self.size)
        c["msgs"] += counts
        seen = np.zeros(self.size, np.int64)
        seen[inst[data]] = ts_recv[data]          # last one wins; ts_recv grows along a ring
        np.maximum(self.last_recv, seen, out=self.last_recv)
        self.known.update(np.flatnonzero(counts).tolist())
        # crossed: quotes with bid >= ask, CROSSED-flagged updates
        crossed = (records["flags"] & int(Flag.CROSSED)) != 0
        q = kind == int(Kind.QUOTE)
        if q.any():
            crossed |= q & (records["bid_price"] >= records["ask_price"]) & (records["ask_price"] > 0)
        crossed &= data
        if crossed.any():
            c["crossed"] += np.bincount(inst[crossed], minlength=self.size)
        # out of order: ts_event going backwards per (instrument, kind)
        ev = data & (ts_event > 0)
        n = int(np.count_nonzero(ev))
        if n:
            all_ev = n == len(ev)
            ii = inst if all_ev else inst[ev]
            kk = kind.astype(np.int64) if all_ev else kind[ev].astype(np.int64)
            tt = ts_event if all_ev else ts_event[ev]
            key = ii * 8 + kk
            # radix sort when the key fits 16 bits (up to 8191 instruments), else timsort
            order = np.argsort(key.astype(np.uint16) if int(key.max()) < 65536 else key, kind="stable")
            ks, ts_s = key[order], tt[order]
            brk = np.flatnonzero(ks[1:] != ks[:-1]) + 1
            heads = np.r_[0, brk]
            hi, hk = ks[heads] >> 3, ks[heads] & 7
            prev = np.empty_like(ts_s)
            prev[1:] = ts_s[:-1]
            prev[heads] = self.last_event[hi, hk]
            back = ts_s < prev
            if back.any():
                c["out_of_order"] += np.bincount(ks[back] >> 3, minlength=self.size)
            self.last_event[hi, hk] = np.maximum(np.maximum.reduceat(ts_s, heads), self.last_event[hi, hk])
            # clock skew sample
            pick = self._rng.integers(0, n, _SKEW_SAMPLE) if n > _SKEW_SAMPLE else slice(None)
            skew = (records["ts_recv"] if all_ev else ts_recv[ev])[pick] - tt[pick]
            self.skew_cur.append((ii[pick], skew))
            if len(self.skew_cur) > _SKEW_KEEP // _SKEW_SAMPLE * 4:
                self.skew_cur = self.skew_cur[-(_SKEW_KEEP // _SKEW_SAMPLE * 4):]
        # in-band status
        st = ~data
        if st.any():
            for i, code, a in zip(inst[st].tolist(), records["id"][st].tolist(), records["price"][st].tolist()):
                if code == Status.GAP:
                    self.count("gaps", i)
                elif code in (Status.RESYNC, Status.CHECKSUM):
                    self.count("resyncs", i)
                elif code == Status.DISCONNECTED:
                    self.count("reconnects", i)
                elif code == Status.CROSSED:
                    self.count("crossed", i)
                elif code == Status.LAPPED:
                    self.count("lost", i, int(a))

    def count(self, what: str, instrument: int, n: int = 1) -> None:
        """Add to a counter; instrument 0 = venue-wide (applies to every instrument)."""
        if instrument == 0:
            self.venue_wide[what] += n
            return
        self._grow(instrument + 1)
        self.cur[what][instrument] += n

    def count_many(self, what: str, instruments: np.ndarray) -> None:
        if len(instruments):
            self._grow(int(instruments.max()) + 1)
            self.cur[what] += np.bincount(instruments.astype(np.int64), minlength=self.size)

    def ring_counters(self, counters: dict) -> None:
        """The ring header's counters (ring.info()["counters"]): reconnects the worker counted
        but did not (or could not) announce with a STATUS record still lower the grade."""
        if self._ring_last is not None:
            d = counters.get("reconnects", 0) - self._ring_last.get("reconnects", 0)
            if d > 0:
                self.ring_reconnects[0] += d
        self._ring_last = dict(counters)

    def roll(self, now_ns: int) -> bool:
        """Start a new window when the current one is over; True if it rolled."""
        if self.window_start == 0:
            self.window_start = now_ns
            return False
        if now_ns - self.window_start < self.window_ns:
            return False
        self.prev = self.cur
        self.cur = {c: np.zeros(self.size, np.int64) for c in _COUNTERS}
        self.skew_prev, self.skew_cur = self.skew_cur, []
        self.prev_wide = dict(self.venue_wide)
        self.ring_reconnects = [0, self.ring_reconnects[0]]
        self.venue_wide = {c: 0 for c in _COUNTERS}
        self.window_start = now_ns
        return True

    # -- grading -----------------------------------------------------------------------------
    def grades(self, now_ns: int) -> list[dict]:
        """One row per known instrument: grade, reasons and the measures."""
        rows = []
        if not self.known:
            return rows
        ids = np.array(sorted(self.known), np.int64)
        self._grow(int(ids.max()) + 1)
        span = max(1, now_ns - self.window_start) + (self.window_ns if self.prev["msgs"].any() else 0)
        wide = {c: self.venue_wide[c] + getattr(self, "prev_wide", {}).get(c, 0) for c in _COUNTERS}
        wide["reconnects"] = max(wide["reconnects"], sum(self.ring_reconnects))
        tot = {c: self.cur[c][ids] + self.prev[c][ids] + wide[c] for c in _COUNTERS}
        p50, p99 = self._skew(ids)
        for j, i in enumerate(ids.tolist()):
            last = int(self.last_recv[i])
            stale = now_ns - last if last else -1
            reasons: list[tuple[int, str]] = []
            if last == 0:
                reasons.append((LIMITED, "stale: no data yet"))
            elif stale > self.stale_ns:
                reasons.append((LIMITED, f"stale: no data for {stale / 1e9:.1f} s"))
            n = {c: int(tot[c][j]) for c in _COUNTERS}
            for what, level, label in (("wicks", DEGRADED, "wicks"), ("gaps", DEGRADED, "gaps"),
                                       ("crossed", DEGRADED, "crossed books"),
                                       ("lost", DEGRADED, "records lost"),
                                       ("reconnects", GOOD, "reconnects"),
                                       ("out_of_order", GOOD, "out-of-order events"),
                                       ("late_trades", GOOD, "late trades")):
                if n[what]:
                    reasons.append((level, f"{label} {n[what]}"))
            if n["resyncs"]:
                reasons.append((DEGRADED if n["resyncs"] > 3 else GOOD, f"resyncs {n['resyncs']}"))
            if p99[j] > 2_000_000_000:
                reasons.append((DEGRADED, f"clock skew p99 {p99[j] / 1e6:.0f} ms"))
            elif p99[j] > 500_000_000:
                reasons.append((GOOD, f"clock skew p99 {p99[j] / 1e6:.0f} ms"))
            grade = max((lvl for lvl, _ in reasons), default=EXCELLENT)
            rows.append({"ts_recv": now_ns, "instrument": i, "venue": self.venue,
                         "grade": GRADES[grade], "grade_code": grade,
                         "reasons": "; ".join(r for _, r in reasons),
                         "msg_rate": n["msgs"] / (span / 1e9), "staleness_ns": stale,
                         "skew_p50_ns": int(p50[j]), "skew_p99_ns": int(p99[j]),
                         **{c: n[c] for c in _COUNTERS if c != "msgs"}})
        return rows

    def _skew(self, ids: np.ndarray):
        p50 = np.zeros(len(ids), np.int64)
        p99 = np.zeros(len(ids), np.int64)
        samples = self.skew_prev + self.skew_cur
        if not samples:
            return p50, p99
        inst = np.concatenate([s[0] for s in samples])
        skew = np.concatenate([s[1] for s in samples])
        order = np.lexsort((skew, inst))
        inst, skew = inst[order], skew[order]
        lo = np.searchsorted(inst, ids, "left")
        hi = np.searchsorted(inst, ids, "right")
        cnt = hi - lo
        has = cnt > 0
        p50[has] = skew[lo[has] + (cnt[has] - 1) // 2]
        p99[has] = skew[lo[has] + ((cnt[has] - 1) * 99) // 100]
        return p50, p99
