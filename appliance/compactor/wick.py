"""Cross-venue wick detection: a trade or quote whose price leaves the other venues' median
for the same instrument (same normalized BASE-QUOTE and market) by more than a threshold, and
which the other venues do not confirm within a short window, is a wick.

How, vectorized: each venue keeps a short price history (trades' prices, quotes' mids) sorted
by (group, ts_recv); "venue u's price of group g at time t" is one `searchsorted`. For a batch of
records of venue v: median over the other venues at t; if the record deviates (a suspect), it is
confirmed when any other venue's prices during [t - window, t + window] (its standing price at
t - window included) ranged to within the threshold of it (a real move that venue led, or a
laggard deviating); else it is a wick. All vectorized (searchsorted + reduceat). Times are ts_recv (one local clock for every venue).
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
_FORGET_NS = 60_000_000_000        # a carried-forward price older than this is dropped
_REBASE_NS = 3_600_000_000_000     # re-base the keys when their base is this old (44 bits = 4.9 h)


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
        price before it (carried forward). The history is already sorted and the new rows are
        few: sort those, then a stable sort of the two runs is a linear merge (timsort)."""
        if not self.chunks:
            return
        ng = np.concatenate([c[0] for c in self.chunks])
        nts = np.concatenate([c[1] for c in self.chunks])
        npx = np.concatenate([c[2] for c in self.chunks])
        self.chunks = []
        base = min(int(nts.min()), int(self.ts.min())) if len(self.ts) else int(nts.min())
        top = (1 << _TS_BITS) - 1
        nkeys = (ng << _TS_BITS) | np.clip(nts - base, 0, top)
        o = np.argsort(nkeys, kind="stable")
        keys = self.keys if base == self.base else (self.g << _TS_BITS) | np.clip(self.ts - base, 0, top)
        keys = np.concatenate([keys, nkeys[o]])
        order = np.argsort(keys, kind="stable")
        g = np.concatenate([self.g, ng[o]])[order]
        ts = np.concatenate([self.ts, nts[o]])[order]
        p = np.concatenate([self.price, npx[o]])[order]
        keys = keys[order]
        old = ts < horizon
        if old.any():
            nxt_same_old = np.zeros(len(g), bool)
            nxt_same_old[:-1] = (g[1:] == g[:-1]) & old[1:]
            keep = ~old | ~nxt_same_old          # the newest old row of each group stays...
            keep &= ts >= horizon - _FORGET_NS   # ...unless nobody could still use it
            g, ts, p, keys = g[keep], ts[keep], p[keep], keys[keep]
        if len(ts) and int(ts.min()) - base > _REBASE_NS:
            base = int(ts.min())                 # keep ts - base far from the key's 44 bits
            keys = (g << _TS_BITS) | np.clip(ts - base, 0, top)
        self.g, self.ts, self.price, self.keys, self.base = g, ts, p, keys, base

    def near(self, g: np.ndarray, t0: np.ndarray, t1: np.ndarray, price: np.ndarray,
             tol: np.ndarray) -> np.ndarray:
        """For each query: did this venue's price of group g span to within tol of price during
        [t0, t1] (its price standing at t0 included)? I.e. price in [min - tol, max + tol] of
        its prices in the window; vectorized with reduceat over (lo, hi) index pairs."""
        out = np.zeros(len(g), bool)
        if not len(self.keys) or not len(g):
            return out
        top = (1 << _TS_BITS) - 1
        q0 = (g << _TS_BITS) | np.clip(t0 - self.base, 0, top)
        q1 = (g << _TS_BITS) | np.clip(t1 - self.base, 0, top)
        lo = np.searchsorted(self.keys, q0, side="right") - 1       # the price standing at t0
        lo = np.where((lo >= 0) & (self.g[np.maximum(lo, 0)] == g), lo, lo + 1)
        hi = np.searchsorted(self.keys, q1, side="right")
        ok = (hi > lo) & (t1 - self.base >= 0)
        if not ok.any():
            return out
        qi = np.flatnonzero(ok)
        order = np.argsort(lo[qi], kind="stable")                  # keeps the gaps between pairs short
        qi = qi[order]
        idx = np.empty(2 * len(qi), np.int64)
        idx[0::2] = lo[qi]
        idx[1::2] = hi[qi]
        ext = np.append(self.price, 0.0)                            # hi may equal len(price)
        mn = np.minimum.reduceat(ext, idx)[0::2]
        mx = np.maximum.reduceat(ext, idx)[0::2]
        out[qi] = (price[qi] >= mn - tol[qi]) & (price[qi] <= mx + tol[qi])
        return out

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


def _median_rows(a: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaN (NaN where a column has none); a few rows, many
    columns: a sort along the short axis beats np.nanmedian by far."""
    srt = np.sort(a, axis=0)                        # NaN sorts last
    cnt = np.count_nonzero(~np.isnan(a), axis=0)
    lo = np.maximum(cnt - 1, 0) // 2
    hi = cnt // 2
    hi = np.where(cnt > 0, hi, 0)
    cols = np.arange(a.shape[1])
    med = (srt[lo, cols] + srt[np.minimum(hi, a.shape[0] - 1), cols]) * 0.5
    return np.where(cnt > 0, med, np.nan)


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
        # queries in (group, time) order: every searchsorted below then walks its keys forward
        span = np.clip(ts - int(ts.min()), 0, (1 << _TS_BITS) - 1)
        order = np.argsort((g << _TS_BITS) | span)
        idx, g, ts, p = idx[order], g[order], ts[order], p[order]
        horizon = int(ts.min()) - self.keep
        for u in others:
            if u in self._dirty:
                self.hist[u].rebuild(horizon)
                self._dirty.discard(u)
        self.checked += len(idx)
        # a run of the same price on one group is judged once, at its first record (within one
        # batch, a repeated price is the same print or quote level)
        head = np.ones(len(g), bool)
        head[1:] = (g[1:] != g[:-1]) | (p[1:] != p[:-1])
        run = np.cumsum(head) - 1
        heads = np.flatnonzero(head)
        wick_heads = self._judge(others, g[heads], ts[heads], p[heads])
        out[idx[wick_heads[run]]] = True
        self.flagged += int(np.count_nonzero(wick_heads[run]))
        return out

    def _judge(self, others: list[str], g, ts, p) -> np.ndarray:
        """Wick verdict for each (group, time, price) query, sorted by (group, time)."""
        out = np.zeros(len(g), bool)
        thr = self.threshold
        med = _median_rows(np.vstack([self.hist[u].at(g, ts, self.max_age) for u in others]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            suspect = np.abs(p - med) > thr * med                 # NaN (no reference) compares False
        if not suspect.any():
            return out
        s = np.flatnonzero(suspect)
        # confirmed: some other venue's price reached within the threshold of this price in
        # the window around it (it led a real move, or it was the laggards that deviated)
        w = self.window
        gs, ts_s, ps = g[s], ts[s], p[s]
        confirmed = np.zeros(len(s), bool)
        for u in others:
            todo = np.flatnonzero(~confirmed)
            if not len(todo):
                break
            confirmed[todo] = self.hist[u].near(gs[todo], ts_s[todo] - w, ts_s[todo] + w, ps[todo],
                                                thr * ps[todo])
        out[s[~confirmed]] = True
        return out

    def trim(self, now_ns: int) -> None:
        """Drop history nobody will ask about (called now and then)."""
        for u, h in self.hist.items():
            h.rebuild(now_ns - self.keep - self.window) if h.chunks else None
