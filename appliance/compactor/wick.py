"""Cross-venue wick detection: a trade or quote whose price leaves the other venues' median
for the same instrument (same normalized BASE-QUOTE and market) by more than a threshold, and
which the other venues do not confirm within a short window, is a wick.

How, vectorized: each venue keeps a short price history (trades' prices, quotes' mids) sorted
by (group, ts_recv); "venue u's price of group g at time t" is one `searchsorted`. For a batch of
records of venue v: median over the other venues at t; if the record deviates (a suspect), it is
confirmed when any other venue's price came within the threshold of it during
[t - window, t + window] (a real move that venue led, or a laggard deviating); else it is a wick. Times are ts_recv (one local clock for every venue).
The caller only resolves records once every other venue's data up to t + window is in.
With only two venues the "median" of the other is that venue; with three or more it is robust
to one bad venue.
"""
from __future__ import annotations

import warnings

import numpy as np

from shm.record import Kind

_TS_BITS = 44
_MAX_UNMERGED = 200_000     # rows of a venue's history waiting to be merged, at most


class _History:
    """One venue's recent prices, queried by (group, time)."""

    def __init__(self):
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.g = np.empty(0, np.int64)
        self.ts = np.empty(0, np.int64)
        self.price = np.empty(0, np.float64)
        self.keys = np.empty(0, np.int64)
        self.base = 0

    def add(self, g, ts, price) -> None:
        if len(g):
            self.chunks.append((g, ts, price))

    def rebuild(self, horizon: int) -> None:
        """Merge new chunks, drop what is older than `horizon` but keep each group's last
        price before it (carried forward)."""
        if not self.chunks:
            return
        g = np.concatenate([self.g] + [c[0] for c in self.chunks])
        ts = np.concatenate([self.ts] + [c[1] for c in self.chunks])
        p = np.concatenate([self.price] + [c[2] for c in self.chunks])
        self.chunks = []
        order = np.lexsort((ts, g))
        g, ts, p = g[order], ts[order], p[order]
        old = ts < horizon
        if old.any():
            nxt_same_old = np.zeros(len(g), bool)
            nxt_same_old[:-1] = (g[1:] == g[:-1]) & old[1:]
            keep = ~old | ~nxt_same_old          # the newest old row of each group stays
            g, ts, p = g[keep], ts[keep], p[keep]
        self.g, self.ts, self.price = g, ts, p
        self.base = int(ts.min()) if len(ts) else 0
        span = np.clip(ts - self.base, 0, (1 << _TS_BITS) - 1)
        self.keys = (g << _TS_BITS) | span

    def near(self, g: int, t0: int, t1: int, price: float, tol: float) -> bool:
        """Did this venue's price of group g come within tol of price during [t0, t1]
        (its price standing at t0 included)?"""
        if not len(self.keys):
            return False
        lo_rel, hi_rel = t0 - self.base, t1 - self.base
        if hi_rel < 0:
            return False
        top = (1 << _TS_BITS) - 1
        lo = int(np.searchsorted(self.keys, (g << _TS_BITS) | min(max(lo_rel, 0), top), side="right")) - 1
        hi = int(np.searchsorted(self.keys, (g << _TS_BITS) | min(hi_rel, top), side="right"))
        lo = max(lo, 0)
        sel = self.g[lo:hi] == g
        return bool(np.any(np.abs(self.price[lo:hi][sel] - price) <= tol))

    def at(self, g: np.ndarray, t: np.ndarray, max_age: int) -> np.ndarray:
        """Price of group g at time t (last observation <= t, not older than max_age), NaN if none."""
        out = np.full(len(g), np.nan)
        if not len(self.keys):
            return out
        rel = t - self.base
        ok = rel >= 0
        q = (g << _TS_BITS) | np.clip(rel, 0, (1 << _TS_BITS) - 1)
        k = np.searchsorted(self.keys, q, side="right") - 1
        kk = np.maximum(k, 0)
        ok &= (k >= 0) & (self.g[kk] == g) & (t - self.ts[kk] <= max_age)
        out[ok] = self.price[kk[ok]]
        return out


def prices(records: np.ndarray, group_of: np.ndarray):
    """(index, group, ts_recv, price) of the records the check applies to: trades, quotes (mid)."""
    kind = records["kind"]
    inst = records["instrument"].astype(np.int64)
    g = np.where(inst < len(group_of), group_of[np.minimum(inst, len(group_of) - 1)], -1)
    is_trade = kind == int(Kind.TRADE)
    is_quote = kind == int(Kind.QUOTE)
    bid, ask = records["bid_price"], records["ask_price"]
    price = np.where(is_trade, records["price"], (bid + ask) * 0.5)
    sel = (is_trade | (is_quote & (bid > 0) & (ask > 0))) & (g >= 0) & (price > 0)
    idx = np.flatnonzero(sel)
    return idx, g[idx], records["ts_recv"][idx], price[idx]


class WickDetector:
    def __init__(self, threshold: float = 0.01, window_ns: int = 200_000_000,
                 max_age_ns: int = 10_000_000_000, keep_ns: int = 2_000_000_000):
        self.threshold = float(threshold)
        self.window = int(window_ns)
        self.max_age = int(max_age_ns)
        self.keep = int(keep_ns)
        self.hist: dict[str, _History] = {}
        self._dirty: set[str] = set()
        self.checked = 0
        self.flagged = 0

    def observe(self, venue: str, records: np.ndarray, group_of: np.ndarray) -> None:
        """Remember a venue's prices (call as soon as records are read)."""
        h = self.hist.setdefault(venue, _History())
        _, g, ts, p = prices(records, group_of)
        h.add(g, ts, p)
        self._dirty.add(venue)
        if len(ts) and sum(len(c[0]) for c in h.chunks) > _MAX_UNMERGED:
            # nobody asked for a while (the other venues are idle): bound the memory
            h.rebuild(int(ts.max()) - self.keep - self.window)
            self._dirty.discard(venue)

    def check(self, venue: str, records: np.ndarray, group_of: np.ndarray) -> np.ndarray:
        """Boolean mask over `records`: True where the record is a wick."""
        out = np.zeros(len(records), bool)
        others = [u for u in self.hist if u != venue]
        if not others or not len(records):
            return out
        idx, g, ts, p = prices(records, group_of)
        if not len(idx):
            return out
        horizon = int(ts.min()) - self.keep
        for u in others:
            if u in self._dirty:
                self.hist[u].rebuild(horizon)
                self._dirty.discard(u)
        self.checked += len(idx)
        thr = self.threshold
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN columns: no reference
            med = np.nanmedian(np.vstack([self.hist[u].at(g, ts, self.max_age) for u in others]), axis=0)
            suspect = np.abs(p - med) > thr * med                 # NaN compares False
            if not suspect.any():
                return out
            s = np.flatnonzero(suspect)
        # confirmed: some other venue traded/quoted within the threshold of this price within
        # the window around it (it led a real move, or it was the laggards that deviated).
        # Suspects are rare, so a loop over them is fine.
        w = self.window
        confirmed = np.array([any(self.hist[u].near(int(g[j]), int(ts[j]) - w, int(ts[j]) + w,
                                                   float(p[j]), thr * float(p[j])) for u in others)
                              for j in s], bool)
        wick = s[~confirmed]
        out[idx[wick]] = True
        self.flagged += len(wick)
        return out

    def trim(self, now_ns: int) -> None:
        """Drop history nobody will ask about (called now and then)."""
        for u, h in self.hist.items():
            h.rebuild(now_ns - self.keep - self.window) if h.chunks else None
