"""The vectorized candle forge against a plain Python reference computed from the same trades."""
from __future__ import annotations

import numpy as np
import pytest

from appliance.compactor.forge import Forge
from appliance.compactor.schema import CANDLE_CLEAN, timeframe_ns
from shm.record import RECORD, Kind, Side

S = 1_000_000_000
MS = 1_000_000
T0 = 1_767_225_600 * S          # 2026-01-01


def make_stream(seed: int, n: int = 20_000, instruments: int = 5) -> np.ndarray:
    """Trades and quotes: bursts, quiet gaps (empty intervals), late frames, missing ts_event."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(20 * MS, n).astype(np.int64)
    gaps[rng.random(n) < 0.002] += rng.integers(2 * S, 90 * S, int((rng.random(n) < 0.002).sum()) or 1)[0]
    gaps[rng.random(n) < 0.3] = 0                                    # bursts: same receive time
    quiet = rng.random(n) < 0.003
    gaps[quiet] += rng.integers(1 * S, 200 * S, quiet.sum())          # empty intervals
    ts_recv = T0 + np.cumsum(gaps) + rng.integers(0, 1000, n)         # jitter
    ts_recv = np.maximum.accumulate(ts_recv)
    rec = np.zeros(n, RECORD)
    rec["seq"] = np.arange(n)
    rec["ts_recv"] = ts_recv
    rec["instrument"] = rng.integers(1, instruments + 1, n)
    rec["kind"] = np.where(rng.random(n) < 0.15, Kind.QUOTE, Kind.TRADE)
    latency = rng.integers(1 * MS, 40 * MS, n)
    late = rng.random(n) < 0.03
    latency[late] = rng.integers(100 * MS, 3 * S, late.sum())         # late frames in and out of the watermark
    rec["ts_event"] = ts_recv - latency
    rec["ts_event"][rng.random(n) < 0.02] = 0                          # venue sent no event time
    rec["side"] = rng.choice([Side.BUY, Side.SELL], n)
    rec["price"] = np.round(100 + np.cumsum(rng.normal(0, 0.05, n)), 2)
    rec["size"] = np.round(rng.exponential(0.5, n), 3) + 0.001
    rec["id"] = np.arange(n) + 1000
    q = rec["kind"] == Kind.QUOTE
    rec["id"][q] = 0
    return rec


def reference(rec: np.ndarray, tfs: list[int], wm: int, mask=None):
    """Pure Python: per record, advance the clock; a trade whose interval closed is late."""
    clock = 0
    open_ = {tf: {} for tf in tfs}
    closed = {tf: {} for tf in tfs}
    late = {tf: 0 for tf in tfs}
    for i, r in enumerate(rec.tolist()):
        # tolist of RECORD -> tuple in field order
        seq, ts_event, ts_recv, inst, kind, side, flags, price, size, _bp, _bs, _ap, _as, tid = r
        clock = max(clock, ts_recv)
        for tf in tfs:
            for key in [k for k in open_[tf] if k[1] + tf + wm <= clock]:
                closed[tf][key] = open_[tf].pop(key)
        if kind != Kind.TRADE or (mask is not None and not mask[i]):
            continue
        t = ts_event or ts_recv
        for tf in tfs:
            start = t // tf * tf
            if start + tf + wm <= clock:
                late[tf] += 1
                continue
            c = open_[tf].get((inst, start))
            if c is None:
                open_[tf][(inst, start)] = c = dict(open=price, high=price, low=price, close=price,
                                                   volume=0.0, buy=0.0, notional=0.0, trades=0,
                                                   first_id=tid, last_id=tid, ots=t, cts=t)
            if t < c["ots"]:
                c["open"], c["first_id"], c["ots"] = price, tid, t
            if t >= c["cts"]:
                c["close"], c["last_id"], c["cts"] = price, tid, t
            c["high"] = max(c["high"], price)
            c["low"] = min(c["low"], price)
            c["volume"] += size
            c["buy"] += size if side == Side.BUY else 0.0
            c["notional"] += price * size
            c["trades"] += 1
    for tf in tfs:
        closed[tf].update(open_[tf])
    return closed, late


def run_forge(rec, tfs, wm, seed, mask=None):
    forge = Forge(tfs, wm)
    rng = np.random.default_rng(seed + 99)
    out = []
    i = 0
    while i < len(rec):
        n = int(rng.integers(1, 3000))
        out.append(forge.update(rec[i:i + n], None if mask is None else mask[i:i + n]))
        i += n
    out.append(forge.flush())
    return np.concatenate(out), forge


def check(candles, closed, tfs):
    for tf in tfs:
        mine = candles[candles["timeframe"] == tf]
        ref = closed[tf]
        assert len(mine) == len(ref), f"tf {tf}: {len(mine)} candles, reference {len(ref)}"
        keys = set(zip(mine["instrument"].tolist(), mine["ts"].tolist()))
        assert keys == set(ref), f"tf {tf}: different intervals"
        for c in mine:
            r = ref[(int(c["instrument"]), int(c["ts"]))]
            assert (c["open"], c["high"], c["low"], c["close"]) == (r["open"], r["high"], r["low"], r["close"])
            assert c["trades"] == r["trades"]
            assert (c["first_id"], c["last_id"]) == (r["first_id"], r["last_id"])
            assert c["volume"] == pytest.approx(r["volume"], rel=1e-12)
            assert c["buy_volume"] == pytest.approx(r["buy"], rel=1e-12, abs=1e-12)
            assert c["vwap"] == pytest.approx(r["notional"] / r["volume"], rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_candles_equal_reference(seed):
    rec = make_stream(seed)
    tfs = [timeframe_ns(t) for t in ("1s", "7s", "1m", "5m", "15m", "1h")]
    wm = 250 * MS
    candles, forge = run_forge(rec, tfs, wm, seed)
    closed, late = reference(rec, tfs, wm)
    check(candles, closed, tfs)
    assert forge.late_trades == [late[tf] for tf in tfs]
    assert late[tfs[0]] > 0, "the stream should contain late trades"
    assert late[tfs[0]] < (rec["kind"] == Kind.TRADE).sum() * 0.05


def test_non_dividing_timeframes_and_clean_mask():
    """A timeframe that no finer one divides is forged from the trades; a mask drops trades."""
    rec = make_stream(7, n=8000)
    tfs = [timeframe_ns(t) for t in ("2s", "3s", "1m")]
    mask = np.random.default_rng(5).random(len(rec)) > 0.1
    candles, forge = run_forge(rec, tfs, 250 * MS, 7, mask=mask)
    closed, late = reference(rec, tfs, 250 * MS, mask=mask)
    check(candles, closed, tfs)
    assert forge.late_trades == [late[tf] for tf in tfs]


def test_no_candle_for_empty_interval_and_watermark():
    """Candles close only after the watermark; an interval without trades has no candle."""
    f = Forge(["1s"], 250 * MS, clean=True)
    rec = np.zeros(3, RECORD)
    rec["kind"] = Kind.TRADE
    rec["instrument"] = 1
    rec["ts_recv"] = [T0 + 100 * MS, T0 + 900 * MS, T0 + 1100 * MS]
    rec["ts_event"] = rec["ts_recv"]
    rec["price"] = [10.0, 12.0, 11.0]
    rec["size"] = [1.0, 1.0, 2.0]
    rec["id"] = [1, 2, 3]
    assert len(f.update(rec)) == 0                     # 1.1 s < 1 s + 250 ms: not closed yet
    late = rec[:1].copy()
    late["ts_recv"] = T0 + 1200 * MS
    late["ts_event"] = T0 + 950 * MS
    late["price"] = 9.0
    late["id"] = 4
    assert len(f.update(late)) == 0                    # inside the watermark: still counts
    out = f.advance(T0 + 1250 * MS)
    assert len(out) == 1
    c = out[0]
    assert (c["ts"], c["open"], c["high"], c["low"], c["close"], c["trades"]) == (T0, 10.0, 12.0, 9.0, 9.0, 3)
    assert c["flags"] & CANDLE_CLEAN
    again = late.copy()
    again["ts_recv"] = T0 + 5 * S
    again["ts_event"] = T0 + 500 * MS
    closed = f.update(again)
    assert f.late_trades == [1]
    assert closed["ts"].tolist() == [T0 + S]           # nothing for the empty seconds 2..4
    assert len(f.flush()) == 0


def test_state_roundtrip():
    rec = make_stream(11, n=3000)
    tfs = ["1s", "1m"]
    a = Forge(tfs, 250 * MS)
    out_a = [a.update(rec)]
    out_a.append(a.flush())
    b = Forge(tfs, 250 * MS)
    out_b = [b.update(rec[:1500])]
    c = Forge(tfs, 250 * MS)
    import json
    c.load_state(json.loads(json.dumps(b.state_dict())))
    out_b += [c.update(rec[1500:]), c.flush()]
    ca, cb = np.concatenate(out_a), np.concatenate(out_b)
    key = lambda x: sorted(zip(x["timeframe"].tolist(), x["instrument"].tolist(), x["ts"].tolist(), x["close"].tolist(), x["trades"].tolist()))
    assert key(ca) == key(cb)


@pytest.mark.parametrize("span", [10 * S, 2**50, 2**62])
def test_sort_by_instrument_then_time_every_key_width(span):
    """The late-frame sort equals lexsort, ties in arrival order, whatever the key width."""
    from appliance.compactor.forge import _sort_inst_ts
    rng = np.random.default_rng(3)
    n = 5000
    inst = rng.integers(1, 50, n).astype(np.uint32)
    ts = rng.integers(0, 64, n).astype(np.int64) * (span // 64)        # many exact ties
    assert (_sort_inst_ts(inst, ts) == np.lexsort((ts, inst))).all()


def test_closed_candles_keep_the_128_byte_layout():
    """Several timeframes closing at once must not come back packed (np.concatenate drops the
    padding of structured dtypes unless told the dtype): the candle ring takes CANDLE only."""
    from appliance.compactor.schema import CANDLE
    f = Forge(["1s", "1m"], 0)
    rec = make_stream(4, n=3000)
    out = f.update(rec)
    assert len(np.unique(out["timeframe"])) == 2
    assert out.dtype == CANDLE and out.dtype.itemsize == 128
    assert f.forming().dtype.itemsize == 128 and f.flush().dtype.itemsize == 128
