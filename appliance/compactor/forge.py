"""The candle forge: OHLCV candles from TRADE records, vectorized over ring batches.

Why this shape: a batch is sorted once by (instrument, trade time) — a radix sort on the
instrument id plus a check that trade times already increase per instrument, which they do
unless a frame came late — and then every timeframe is a `reduceat` over group boundaries. The
finest timeframe is aggregated from the trades; coarser ones are rolled up from the finer
partial candles they divide (1s -> 1m -> 5m -> 15m -> 1h -> 1d), so the per-trade cost hardly
grows with the number of timeframes.

Semantics (documented in docs/parquet.md):
- trade time = ts_event, or ts_recv when the venue sends no event time; a candle's `ts` is the
  start of its interval; an interval without trades has no candle (no flat filler candles).
- open/close = the trade with the earliest/latest trade time (ties: arrival order);
  first_id/last_id = the ids of those trades; vwap = sum(price*size)/sum(size).
- the forge's clock is the highest ts_recv seen on its ring (any record kind). A candle
  [start, end) closes once clock >= end + watermark. A trade whose candle had closed when it
  arrived (clock including itself >= end + watermark) is a late trade: counted per timeframe
  in `late_trades`, kept in the raw Parquet data, left out of that candle. This makes the set of
  candles independent of how the stream was cut into batches.
"""
from __future__ import annotations

import numpy as np

from shm.record import Kind, Side

from .schema import CANDLE, CANDLE_CLEAN, DEFAULT_TIMEFRAMES, timeframe_ns

_PART_FIELDS = ("instrument", "start", "open", "high", "low", "close", "volume", "buy_volume",
                "notional", "trades", "first_id", "last_id", "open_ts", "close_ts")
_PART_DTYPES = {"instrument": np.int64, "start": np.int64, "trades": np.int64, "first_id": np.int64,
                "last_id": np.int64, "open_ts": np.int64, "close_ts": np.int64}


def _empty_parts() -> dict:
    return {f: np.empty(0, _PART_DTYPES.get(f, np.float64)) for f in _PART_FIELDS}


def _cat(parts: list[dict]) -> dict:
    parts = [p for p in parts if len(p["start"])]
    if not parts:
        return _empty_parts()
    if len(parts) == 1:
        return parts[0]
    return {f: np.concatenate([p[f] for p in parts]) for f in _PART_FIELDS}


def _take(parts: dict, idx) -> dict:
    return {f: v[idx] for f, v in parts.items()}


def _boundaries(inst: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    """Start index of every (instrument, bucket) run in arrays sorted by both."""
    n = len(inst)
    brk = np.empty(n, bool)
    brk[0] = True
    np.not_equal(inst[1:], inst[:-1], out=brk[1:])
    brk[1:] |= bucket[1:] != bucket[:-1]
    return np.flatnonzero(brk)


def _sort_inst_ts(inst: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Order by (instrument, ts, arrival). One int64 key when the bits fit (an unstable sort is
    safe once the arrival index is in the key), else numpy's lexsort."""
    n = len(inst)
    t0 = int(ts.min())
    ib = int(inst.max()).bit_length()
    tb = (int(ts.max()) - t0).bit_length()
    nb = max(1, (n - 1).bit_length())
    if ib + tb + nb <= 63:
        key = (inst.astype(np.int64) << (tb + nb)) | ((ts - t0) << nb) | np.arange(n, dtype=np.int64)
        return np.argsort(key)
    if ib + tb <= 63:
        return np.argsort((inst.astype(np.int64) << tb) | (ts - t0), kind="stable")
    return np.lexsort((ts, inst))


def aggregate_trades(inst, ts, price, size, buy, ids, tf: int) -> dict:
    """Partial candles of trades sorted by (instrument, ts) for one timeframe."""
    n = len(inst)
    if n == 0:
        return _empty_parts()
    bucket = ts // tf
    starts = _boundaries(inst, bucket)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = n - 1
    counts = ends - starts + 1
    return {
        "instrument": inst[starts].astype(np.int64), "start": bucket[starts] * tf,
        "open": price[starts], "high": np.maximum.reduceat(price, starts),
        "low": np.minimum.reduceat(price, starts), "close": price[ends],
        "volume": np.add.reduceat(size, starts), "buy_volume": np.add.reduceat(buy, starts),
        "notional": np.add.reduceat(price * size, starts), "trades": counts,
        "first_id": ids[starts], "last_id": ids[ends], "open_ts": ts[starts], "close_ts": ts[ends],
    }


def rollup(parts: dict, tf: int) -> dict:
    """Coarser partial candles from finer ones sorted by (instrument, start); tf a multiple."""
    n = len(parts["start"])
    if n == 0:
        return _empty_parts()
    bucket = parts["start"] // tf
    inst = parts["instrument"]
    starts = _boundaries(inst, bucket)
    if len(starts) == n:                       # nothing to merge: relabel only
        out = dict(parts)
        out["start"] = bucket * tf
        return out
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = n - 1
    return {
        "instrument": inst[starts], "start": bucket[starts] * tf,
        "open": parts["open"][starts], "high": np.maximum.reduceat(parts["high"], starts),
        "low": np.minimum.reduceat(parts["low"], starts), "close": parts["close"][ends],
        "volume": np.add.reduceat(parts["volume"], starts),
        "buy_volume": np.add.reduceat(parts["buy_volume"], starts),
        "notional": np.add.reduceat(parts["notional"], starts),
        "trades": np.add.reduceat(parts["trades"], starts),
        "first_id": parts["first_id"][starts], "last_id": parts["last_id"][ends],
        "open_ts": parts["open_ts"][starts], "close_ts": parts["close_ts"][ends],
    }


def combine(parts: dict) -> dict:
    """One partial candle per (instrument, start) from partials in arrival order (any order of
    keys). Open = the earliest open_ts (ties: first arrived), close = the latest close_ts (ties:
    last arrived)."""
    n = len(parts["start"])
    if n <= 1:
        return parts
    inst, start = parts["instrument"], parts["start"]
    o1 = np.lexsort((parts["open_ts"], start, inst))
    i1, s1 = inst[o1], start[o1]
    starts = _boundaries(i1, s1)
    if len(starts) == n:
        return _take(parts, o1)
    o2 = np.lexsort((parts["close_ts"], start, inst))
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:] - 1
    ends[-1] = n - 1
    p = _take(parts, o1)
    out = {
        "instrument": i1[starts], "start": s1[starts], "open": p["open"][starts],
        "high": np.maximum.reduceat(p["high"], starts), "low": np.minimum.reduceat(p["low"], starts),
        "volume": np.add.reduceat(p["volume"], starts),
        "buy_volume": np.add.reduceat(p["buy_volume"], starts),
        "notional": np.add.reduceat(p["notional"], starts),
        "trades": np.add.reduceat(p["trades"], starts),
        "first_id": p["first_id"][starts], "open_ts": p["open_ts"][starts],
    }
    last = o2[ends]
    out["close"] = parts["close"][last]
    out["last_id"] = parts["last_id"][last]
    out["close_ts"] = parts["close_ts"][last]
    return out


def merge_unique(state: dict, new: dict, tf: int) -> dict:
    """`combine` for the common case: both sides sorted by (instrument, start) with unique
    keys (the forming candles and one batch's partials). Matching keys merge field-wise; new
    keys are inserted in order. No sort."""
    if not len(new["start"]):
        return state
    if not len(state["start"]):
        return new
    ks = (state["instrument"] << 42) | (state["start"] // tf)
    kn = (new["instrument"] << 42) | (new["start"] // tf)
    pos = np.searchsorted(ks, kn)
    posc = np.minimum(pos, len(ks) - 1)
    hit = ks[posc] == kn
    out = dict(state)
    if hit.any():
        si, ni = posc[hit], np.flatnonzero(hit)
        g = {f: new[f][ni] for f in _PART_FIELDS}
        earlier = g["open_ts"] < state["open_ts"][si]          # ties: the state arrived first
        later = g["close_ts"] >= state["close_ts"][si]         # ties: the new one arrived last
        upd = {
            "open": np.where(earlier, g["open"], state["open"][si]),
            "first_id": np.where(earlier, g["first_id"], state["first_id"][si]),
            "open_ts": np.where(earlier, g["open_ts"], state["open_ts"][si]),
            "close": np.where(later, g["close"], state["close"][si]),
            "last_id": np.where(later, g["last_id"], state["last_id"][si]),
            "close_ts": np.where(later, g["close_ts"], state["close_ts"][si]),
            "high": np.maximum(g["high"], state["high"][si]),
            "low": np.minimum(g["low"], state["low"][si]),
        }
        for f in ("volume", "buy_volume", "notional", "trades"):
            upd[f] = state[f][si] + g[f]
        for f, v in upd.items():
            a = out[f].copy()
            a[si] = v
            out[f] = a
    if not hit.all():
        # np.insert per field costs ~6 us of Python each (14 fields, 6 timeframes, 2 forges per
        # venue and step); the rows' places are the same for every field: scatter them (~0.7 us)
        miss = ~hit
        at = pos[miss]
        dest = at + np.arange(len(at))             # where each new row lands (np.insert's rule)
        old = np.ones(len(ks) + len(at), bool)
        old[dest] = False
        for f in _PART_FIELDS:
            a = np.empty(len(old), out[f].dtype)
            a[dest] = new[f][miss]
            a[old] = out[f]
            out[f] = a
    return out


def to_candles(parts: dict, tf: int, closed_at: int, clean: bool) -> np.ndarray:
    """Partial candles -> CANDLE records."""
    n = len(parts["start"])
    out = np.zeros(n, CANDLE)
    if n == 0:
        return out
    out["ts"] = parts["start"]
    out["ts_recv"] = closed_at
    out["timeframe"] = tf
    out["instrument"] = parts["instrument"]
    out["flags"] = CANDLE_CLEAN if clean else 0
    for f in ("open", "high", "low", "close", "volume", "buy_volume", "trades", "first_id", "last_id"):
        out[f] = parts[f]
    vol = parts["volume"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["vwap"] = np.where(vol > 0, parts["notional"] / np.where(vol > 0, vol, 1.0), parts["close"])
    return out


class Forge:
    """Candles of one ring (one venue) for a set of timeframes.

    `update(records)` takes a ring batch (any kinds, ring order) and returns the candles it
    closed; `advance(clock)` closes candles when the ring is idle; `flush()` closes all.
    """

    def __init__(self, timeframes=DEFAULT_TIMEFRAMES, watermark_ns: int = 250_000_000,
                 clean: bool = False):
        tfs = sorted({timeframe_ns(t) if isinstance(t, str) else int(t) for t in timeframes})
        if not tfs:
            raise ValueError("the forge needs at least one timeframe")
        if tfs[0] < 1_000_000:
            raise ValueError("timeframes must be at least 1 ms")
        self.timeframes = tfs
        self.watermark = int(watermark_ns)
        self.clean = clean
        # source[k]: index of the largest finer timeframe dividing tf k (rolled up), or -1 (raw)
        self.source = []
        for k, tf in enumerate(tfs):
            src = -1
            for j in range(k - 1, -1, -1):
                if tf % tfs[j] == 0:
                    src = j
                    break
            self.source.append(src)
        self.root = []
        for k in range(len(tfs)):
            r = k
            while self.source[r] >= 0:
                r = self.source[r]
            self.root.append(r)
        self.clock = 0
        self.state = [_empty_parts() for _ in tfs]
        self.late_trades = [0] * len(tfs)
        self.late_instruments: list[np.ndarray] = []    # drained by the compactor's quality
        self.trades_in = 0

    # -- feeding -----------------------------------------------------------------------------
    def update(self, records: np.ndarray, trade_mask: np.ndarray | None = None) -> np.ndarray:
        """Feed a ring batch; returns the candles it closed (CANDLE array).

        trade_mask optionally narrows which TRADE records count (the clean forge drops wicks);
        every record moves the clock.
        """
        if len(records) == 0:
            return np.empty(0, CANDLE)
        ts_recv = records["ts_recv"]
        is_trade = records["kind"] == int(Kind.TRADE)
        if trade_mask is not None:
            is_trade &= trade_mask
        idx = np.flatnonzero(is_trade)
        end_clock = max(self.clock, int(ts_recv.max()))
        if len(idx):
            # clock seen by each trade: running max of ts_recv up to and including it
            clk = np.maximum.accumulate(ts_recv)
            if len(idx) != len(records):
                clk = clk[idx]
            else:
                idx = None          # all trades: no gather
            if clk[0] < self.clock:
                np.maximum(clk, self.clock, out=clk)
            self._add(records, idx, clk)
        self.clock = end_clock
        return self._close()

    def _add(self, records: np.ndarray, idx, clk: np.ndarray) -> None:
        # gather field by field: fancy-indexing the structured array itself is ~100x slower
        def col(name):
            c = records[name]
            return np.ascontiguousarray(c) if idx is None else c[idx]
        self.trades_in += len(clk)
        inst = col("instrument")
        ts = col("ts_event")
        if not ts.all():
            ts = np.where(ts > 0, ts, col("ts_recv"))
        if int(inst.max()) < 65536:
            order = np.argsort(inst.astype(np.uint16), kind="stable")     # radix sort
        else:
            order = np.argsort(inst, kind="stable")
        inst_s = inst[order]
        ts_s = ts[order]
        if np.any((ts_s[1:] < ts_s[:-1]) & (inst_s[1:] == inst_s[:-1])):
            order = _sort_inst_ts(inst, ts)                                 # late frames: full sort
            inst_s = inst[order]
            ts_s = ts[order]
        price = col("price")[order]
        size = col("size")[order]
        buy = np.where(col("side")[order] == Side.BUY, size, 0.0)
        ids = col("id")[order]
        clk_s = clk[order]
        wm = self.watermark
        tfs = self.timeframes
        main: list[dict | None] = [None] * len(tfs)
        late: list[np.ndarray | None] = [None] * len(tfs)
        cols = (inst_s, ts_s, price, size, buy, ids)
        # an interval ends after its trades, so a trade less than the watermark behind the clock
        # is on time for every timeframe: the common case skips the per-timeframe checks
        any_late = bool((clk_s - ts_s >= wm).any())
        for k, tf in enumerate(tfs):
            r = self.root[k]
            # late for tf k: its interval had closed when it arrived. Nested along a rollup
            # chain (a finer interval ends no later), so no late root trade => none here.
            if any_late and (k == r or late[r] is not None):
                lk = (ts_s // tf * tf + (tf + wm)) <= clk_s
                late[k] = lk if lk.any() else None
            if late[k] is not None:
                self.late_trades[k] += int(np.count_nonzero(lk))
                if k == 0:                      # per instrument, finest timeframe (quality)
                    self.late_instruments.append(inst_s[lk])
            if k == r:
                if late[k] is None:
                    main[k] = aggregate_trades(*cols, tf)
                else:
                    keep = ~late[k]
                    main[k] = aggregate_trades(*(c[keep] for c in cols), tf)
                extra = None
            else:
                main[k] = rollup(main[self.source[k]], tf)
                extra = None
                if late[r] is not None:
                    # trades too late for the root timeframe but still on time for this one
                    sel = late[r] if late[k] is None else (late[r] & ~late[k])
                    if sel.any():
                        extra = aggregate_trades(*(c[sel] for c in cols), tf)
            self.state[k] = merge_unique(self.state[k], main[k], tf)
            if extra is not None:               # late trades: rare, the general merge
                self.state[k] = combine(_cat([self.state[k], extra]))

    # -- closing -----------------------------------------------------------------------------
    def _close(self, everything: bool = False) -> np.ndarray:
        out = []
        for k, tf in enumerate(self.timeframes):
            st = self.state[k]
            if not len(st["start"]):
                continue
            if everything:
                done = np.ones(len(st["start"]), bool)
            else:
                done = st["start"] + (tf + self.watermark) <= self.clock
                if not done.any():
                    continue
            out.append(to_candles(_take(st, done), tf, self.clock, self.clean))
            self.state[k] = _take(st, ~done)
        if not out:
            return np.empty(0, CANDLE)
        return np.concatenate(out, dtype=CANDLE) if len(out) > 1 else out[0]   # dtype: keep the 128-byte layout

    def advance(self, clock_ns: int) -> np.ndarray:
        """Move the clock without data (the ring is drained: nothing older can still come)."""
        if clock_ns > self.clock:
            self.clock = int(clock_ns)
        return self._close()

    def flush(self) -> np.ndarray:
        """Close every forming candle now (end of a test or a replay)."""
        return self._close(everything=True)

    def forming(self) -> np.ndarray:
        """The candles still open, as CANDLE records (ts_recv = 0)."""
        out = [to_candles(st, tf, 0, self.clean) for tf, st in zip(self.timeframes, self.state)]
        return np.concatenate(out, dtype=CANDLE)

    # -- checkpoint --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """JSON-able forming state, so a restart continues the same candles."""
        return {"clock": self.clock, "late_trades": list(self.late_trades),
                "timeframes": list(self.timeframes),
                "state": [{f: v.tolist() for f, v in st.items()} for st in self.state]}

    def load_state(self, d: dict) -> None:
        if list(d.get("timeframes", [])) != self.timeframes:
            return                              # timeframes changed: start fresh
        self.clock = int(d["clock"])
        self.late_trades = [int(x) for x in d["late_trades"]]
        self.state = [{f: np.asarray(st[f], dtype=_PART_DTYPES.get(f, np.float64)) for f in _PART_FIELDS}
                      for st in d["state"]]
