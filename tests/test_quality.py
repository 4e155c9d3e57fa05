"""Quality grades and the cross-venue wick check, driven in-process with a controlled clock:
a wick on one venue is flagged in the raw Parquet data, left out of the clean candles and lowers
that venue's grade; a move the other venues confirm is not a wick; a stalled venue turns
`limited` with the reason "stale"; trade-id gaps are backfilled through an injected fetch."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from appliance.compactor.process import Compactor
from appliance.compactor.quality import VenueQuality
from appliance.compactor.schema import GRADES, QUALITY_SLOT
from shm import Registry, Ring, Table
from shm.record import RECORD, Flag, Kind, Side, Status

MS = 1_000_000
S = 1_000_000_000
T0 = (time.time_ns() // S) * S


def trades(inst, t_from, t_to, price_at, first_id=1, step=10 * MS):
    ts = np.arange(t_from, t_to, step, dtype=np.int64)
    rec = np.zeros(len(ts), RECORD)
    rec["ts_recv"] = ts
    rec["ts_event"] = ts - MS
    rec["kind"] = Kind.TRADE
    rec["instrument"] = inst
    rec["side"] = Side.BUY
    rec["price"] = [price_at(int(t)) for t in ts]
    rec["size"] = 1.0
    rec["id"] = np.arange(first_id, first_id + len(ts))
    return rec


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def three_venues(shm_names, tmp_path):
    reg_name = shm_names("reg")
    reg = Registry.create(reg_name, 64)
    rings, ids = {}, {}
    for v in ("va", "vb", "vc"):
        rings[v] = Ring.create(shm_names(v), 1 << 14)
        ids[v] = reg.add(v, f"BTCUSDT-{v}", "BTC-USDT", "spot", 0.01, 0.001)
    yield reg_name, rings, ids, str(tmp_path / "pq"), shm_names
    for r in rings.values():
        r.close()
    reg.close()


def test_wick_flagged_clean_candles_and_grades(three_venues):
    reg_name, rings, ids, root, shm_names = three_venues
    writers = {v: r.writer(announce=False) for v, r in rings.items()}
    move = T0 + 1500 * MS                       # the market moves to 103 at 1.5 s, vb leads by 100 ms
    def path(lead):
        return lambda t: 103.0 if t >= move - lead else 100.0
    wick_at = T0 + 1000 * MS
    base_a = trades(ids["va"], T0, T0 + 2 * S, path(0))
    base_a["price"][base_a["ts_recv"] == wick_at] = 106.0       # only va prints it
    writers["va"].publish(base_a)
    writers["vb"].publish(trades(ids["vb"], T0, T0 + 2 * S, path(100 * MS)))
    writers["vc"].publish(trades(ids["vc"], T0, T0 + 2 * S, path(0)))
    clock = Clock(T0 + 2500 * MS)
    qtab, ctab, cring = shm_names("qtab"), shm_names("ctab"), shm_names("cring")
    comp = Compactor({"rings": {v: r.name for v, r in rings.items()}, "root": root,
                      "registry": reg_name, "timeframes": ["1s"], "stale_s": 1.0,
                      "quality_table": qtab, "candle_table": ctab, "candle_ring": cring,
                      "backfill": False}, clock=clock)
    try:
        for _ in range(4):
            comp.step()
        assert all(not s.pending for s in comp.streams)
        grades = {r["venue"]: r for r in comp.grades()}
        assert grades["va"]["grade"] == "degraded" and "wicks 1" in grades["va"]["reasons"]
        assert grades["vb"]["grade"] == "excellent", grades["vb"]     # its lead was confirmed
        assert grades["vc"]["grade"] == "excellent"
        # vc stalls: the others keep trading (received after the compactor's "now" of 2.5 s)
        writers["va"].publish(trades(ids["va"], T0 + 2600 * MS, T0 + 4 * S, path(0), first_id=1000))
        writers["vb"].publish(trades(ids["vb"], T0 + 2600 * MS, T0 + 4 * S, path(0), first_id=1000))
        clock.t = T0 + 4500 * MS
        for _ in range(4):
            comp.step()
        grades = {r["venue"]: r for r in comp.grades()}
        assert grades["vc"]["grade"] == "limited" and grades["vc"]["reasons"].startswith("stale")
        assert grades["vb"]["grade"] == "excellent"
        comp._grade(clock.t)
        table = Table.attach(qtab)
        row = table.read(ids["vc"])
        assert GRADES[row["grade"]] == "limited" and row["reasons"].startswith(b"stale")
        assert row["venue"] == b"vc"
        table.close()
        # live candles: the ring has raw and clean ones, the table the last closed clean one
        from appliance.compactor.schema import CANDLE_CLEAN, slot_part
        with Ring.attach(cring) as cr:
            live = cr.reader(start="oldest", register=False).read(1 << 12, timeout=0)
        va_sec0 = live[(live["instrument"] == ids["va"]) & (live["ts"] == T0)]
        assert sorted(va_sec0["high"].tolist()) == [100.0, 106.0]
        assert va_sec0["high"][(va_sec0["flags"] & CANDLE_CLEAN) != 0].tolist() == [100.0]
        comp._update_tables(clock.t)
        ct = Table.attach(ctab)
        closed = slot_part(np.array([ct.read(ids["va"])]), "closed")[0]    # one timeframe: slot = id
        assert closed["instrument"] == ids["va"] and closed["flags"] & CANDLE_CLEAN
        assert closed["ts"] == max(live["ts"][live["instrument"] == ids["va"]])
        ct.close()
        comp.flush()
    finally:
        comp.close()
        Table.attach(qtab).unlink()
        Table.attach(ctab).unlink()
    t = pl.read_parquet(f"{root}/trades/**/*.parquet", hive_partitioning=True)
    wicks = t.filter((pl.col("flags") & int(Flag.WICK)) != 0)
    assert wicks["venue"].to_list() == ["va"] and wicks["price"].to_list() == [106.0]
    assert wicks["ts_recv"].to_list() == [wick_at]
    c = pl.read_parquet(f"{root}/candles/**/*.parquet", hive_partitioning=True)
    sec = c.filter((pl.col("venue") == "va") & (pl.col("ts") == T0) & (pl.col("timeframe") == "1s"))   # ts_event = 999 ms
    raw = sec.filter(~pl.col("clean"))
    clean = sec.filter(pl.col("clean"))
    assert raw["high"].to_list() == [106.0] and clean["high"].to_list() == [100.0]
    assert clean["trades"][0] == raw["trades"][0] - 1
    q = pl.read_parquet(f"{root}/quality/**/*.parquet", hive_partitioning=True)
    last = {r["venue"]: r for r in q.sort("ts_recv").to_dicts()}
    assert last["va"]["grade"] == "degraded" and "wicks 1" in last["va"]["reasons"]
    assert last["vc"]["grade"] == "limited" and last["vb"]["grade"] == "excellent"
    assert last["va"]["symbol"] == "BTCUSDT-va"


def test_quality_measures():
    """Gaps, resyncs, reconnects, crossed quotes, out-of-order events and clock skew."""
    q = VenueQuality("v", stale_ns=10 * S)
    rec = np.zeros(8, RECORD)
    rec["instrument"] = 1
    rec["ts_recv"] = T0 + np.arange(8) * MS
    rec["ts_event"] = rec["ts_recv"] - 3 * S                 # 3 s skew
    rec["kind"] = Kind.QUOTE
    rec["bid_price"], rec["ask_price"] = 10.0, 11.0
    rec["bid_price"][2] = 12.0                                 # crossed
    rec["ts_event"][5] = rec["ts_event"][4] - 1                # out of order
    rec["kind"][6] = Kind.STATUS
    rec["id"][6] = Status.GAP
    rec["kind"][7] = Kind.STATUS
    rec["instrument"][7] = 0
    rec["id"][7] = Status.DISCONNECTED
    q.observe(rec)
    row = q.grades(T0 + 10 * MS)[0]
    assert (row["crossed"], row["out_of_order"], row["gaps"], row["reconnects"]) == (1, 1, 1, 1)
    assert 2_900 * MS < row["skew_p50_ns"] <= 3 * S
    assert row["grade"] == "degraded"
    assert "clock skew" in row["reasons"] and "crossed books 1" in row["reasons"]


def _fake_venue(pages):
    def trades_request(symbol, from_id):
        return "/trades", {"symbol": symbol, "fromId": from_id, "limit": 20}

    def parse_trades(body):
        return [tuple(r) for r in json.loads(body)]
    return SimpleNamespace(name="fake", rest_url="http://127.0.0.1:9", trades_request=trades_request,
                           parse_trades=parse_trades, rest_weight_per_s=1000.0, extra={})


def test_backfill_fills_trade_id_gap(shm_names, tmp_path):
    """A jump in trade ids is fetched through the injected fetch and saved flagged BACKFILL."""
    reg_name = shm_names("reg")
    reg = Registry.create(reg_name, 16)
    inst = reg.add("fake", "BTCUSDT", "BTC-USDT", "spot", 0.01, 0.001)
    ring = Ring.create(shm_names("ring"), 1 << 12)
    w = ring.writer(announce=False)
    a = trades(inst, T0, T0 + S, lambda t: 100.0, first_id=1)           # ids 1..100
    b = trades(inst, T0 + S, T0 + 2 * S, lambda t: 100.0, first_id=151)  # ids 151..250
    w.publish(a)
    w.publish(b)
    calls = []

    def fetch(url, params):
        calls.append((url, dict(params)))
        lo = params["fromId"]
        rows = [(i, T0 + 5 * S + i, 99.5, 0.5, int(Side.SELL)) for i in range(lo, min(lo + 20, 400))]
        return json.dumps(rows).encode()
    clock = Clock(T0 + 3 * S)
    comp = Compactor({"rings": {"fake": ring.name}, "root": str(tmp_path / "pq"), "registry": reg_name,
                      "timeframes": ["1s"]}, fetch=fetch, venue_decls={"fake": _fake_venue(None)}, clock=clock)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and comp.streams[0].backfill.filled < 50:
            comp.step()
            comp.wait(0.01)
        comp.step()
        comp.flush()
    finally:
        comp.close()
        ring.close()
        reg.close()
    assert calls[0] == ("http://127.0.0.1:9/trades", {"symbol": "BTCUSDT", "fromId": 101, "limit": 20})
    assert len(calls) == 3                                       # 20 + 20 + 10 ids, paged
    t = pl.read_parquet(f"{tmp_path}/pq/trades/**/*.parquet", hive_partitioning=True)
    bf = t.filter((pl.col("flags") & int(Flag.BACKFILL)) != 0).sort("id")
    assert bf["id"].to_list() == list(range(101, 151))
    assert set(bf["price"].to_list()) == {99.5} and set(bf["side"].to_list()) == {int(Side.SELL)}
    assert sorted(t["id"].to_list()) == list(range(1, 251))


def test_backfill_failure_is_recorded():
    """A venue that returns nothing leaves a STATUS GAP record: the loss is never silent."""
    from appliance.compactor.backfill import Backfiller, TradeIds
    bf = Backfiller(_fake_venue(None), lambda i: "BTCUSDT", fetch=lambda url, p: b"[]",
                    clock=lambda: T0)
    out = bf.fill(7, 10, 19)
    assert len(out) == 1 and out[0]["kind"] == Kind.STATUS and out[0]["id"] == Status.GAP
    assert (out[0]["price"], out[0]["size"]) == (10.0, 19.0) and out[0]["flags"] & Flag.DERIVED
    ids = TradeIds()
    rec = trades(3, T0, T0 + 50 * MS, lambda t: 1.0, first_id=5)       # ids 5..9
    assert ids.gaps(rec) == []
    rec2 = trades(3, T0, T0 + 20 * MS, lambda t: 1.0, first_id=12)     # ids 12, 13
    assert ids.gaps(rec2) == [(3, 10, 11)]


def test_ring_counter_reconnects_lower_the_grade():
    q = VenueQuality("v", stale_ns=10 * S)
    rec = trades(1, T0, T0 + 100 * MS, lambda t: 1.0)
    q.observe(rec)
    q.ring_counters({"reconnects": 5})
    assert q.grades(T0 + 200 * MS)[0]["grade"] == "excellent"     # the first reading is a baseline
    q.ring_counters({"reconnects": 7})
    row = q.grades(T0 + 200 * MS)[0]
    assert row["reconnects"] == 2 and row["grade"] == "good" and "reconnects 2" in row["reasons"]


def test_wick_history_over_hours():
    """Hours of history: old prices are forgotten, keys re-based, answers stay right."""
    from appliance.compactor.wick import WickDetector
    w = WickDetector(keep_ns=2 * S)
    group_of = np.array([-1, 0, 0, 0])
    for hour in range(7):
        t = T0 + hour * 3600 * S
        for v, inst in (("a", 1), ("b", 2), ("c", 3)):
            w.observe(v, trades(inst, t, t + S, lambda x: 100.0 + hour, step=100 * MS), group_of)
        wick = trades(1, t + S, t + S + MS, lambda x: 150.0)
        assert w.check("a", wick, group_of).tolist() == [True], hour
        fine = trades(1, t + S, t + S + MS, lambda x: 100.0 + hour)
        assert w.check("a", fine, group_of).tolist() == [False], hour
    assert len(w.hist["b"].ts) < 40                     # old hours forgotten


def test_late_trades_reach_the_grade(shm_names, tmp_path):
    """A trade that arrives after its candle closed is counted for its instrument."""
    reg_name = shm_names("reg")
    reg = Registry.create(reg_name, 16)
    inst = reg.add("solo", "BTCUSDT", "BTC-USDT", "spot", 0.01, 0.001)
    ring = Ring.create(shm_names("ring"), 1 << 10)
    w = ring.writer(announce=False)
    rec = trades(inst, T0, T0 + 2 * S, lambda t: 100.0)
    rec["ts_event"][-1] = T0 + 100 * MS                      # received at ~2 s: its 1s candle closed
    w.publish(rec)
    comp = Compactor({"rings": {"solo": ring.name}, "root": str(tmp_path / "pq"), "registry": reg_name,
                      "timeframes": ["1s"], "backfill": False}, clock=Clock(T0 + 2500 * MS))
    try:
        while comp.step():
            pass
        row = comp.grades()[0]
        assert row["late_trades"] == 1 and row["grade"] == "good" and "late trades 1" in row["reasons"]
        assert comp.streams[0].forge.late_trades == [1]
    finally:
        comp.close()
        ring.close()
        reg.close()
