"""`tickring replay`: a recorded day (Parquet in the compactor's layout, written here) back into a
ring, compared record by record with what the live rings held."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import shm
from shm.record import RECORD, Flag, Kind, Status
from tools.replay import command as replay_cmd
from tools.timeparse import day_of, parse_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAY_END = parse_time("2026-11-21T00:00:00Z")
T0 = DAY_END - 1_000_000_000                 # one second before midnight: a partial first day
COLUMNS = {
    "trades": ["seq", "ts_event", "ts_recv", "instrument", "side", "flags", "price", "size", "id"],
    "quotes": ["seq", "ts_event", "ts_recv", "instrument", "flags", "bid_price", "bid_size",
               "ask_price", "ask_size"],
    "book": ["seq", "ts_event", "ts_recv", "instrument", "side", "flags", "price", "size", "id"],
    "mark": ["seq", "ts_event", "ts_recv", "instrument", "flags", "price", "size", "ask_price", "id"],
    "liquidations": ["seq", "ts_event", "ts_recv", "instrument", "side", "flags", "price", "size", "id"],
    "status": ["seq", "ts_event", "ts_recv", "instrument", "flags", "price", "size", "id"],
}
DATASET = {Kind.TRADE: "trades", Kind.QUOTE: "quotes", Kind.BOOK: "book", Kind.MARK: "mark",
           Kind.LIQUIDATION: "liquidations", Kind.STATUS: "status"}
SYMBOLS = {1: ("binance", "BTCUSDT"), 2: ("binance", "ETHUSDT"), 3: ("okx", "BTC-USDT-SWAP")}


def recorded_ring(venue: str, n: int, ids, parity: int, seed: int) -> np.ndarray:
    """What a venue's ring held: every kind, book snapshots sharing one ts_recv (ties broken by
    seq), ts_recv across midnight. Venues get even/odd ns so the cross-venue order is defined."""
    rng = np.random.default_rng(seed)
    r = np.zeros(n, RECORD)
    r["seq"] = np.arange(100, 100 + n)
    gaps = rng.integers(0, 2, n) * rng.integers(1, 500_000, n) * 2    # some zero gaps: ties
    r["ts_recv"] = T0 + parity + np.cumsum(gaps)
    r["ts_event"] = r["ts_recv"] - 700_000
    r["instrument"] = rng.choice(ids, n)
    kind = rng.choice([Kind.TRADE, Kind.QUOTE, Kind.BOOK, Kind.MARK, Kind.LIQUIDATION, Kind.STATUS],
                      n, p=[0.35, 0.25, 0.3, 0.04, 0.03, 0.03])
    r["kind"] = kind
    r["flags"] = Flag.LAST
    lv = kind != Kind.QUOTE
    r["side"][lv & (kind != Kind.STATUS) & (kind != Kind.MARK)] = rng.integers(1, 3, n)[
        lv & (kind != Kind.STATUS) & (kind != Kind.MARK)]
    r["price"][lv] = np.round(50_000 + rng.standard_normal(int(lv.sum())).cumsum(), 2)
    r["size"][lv] = np.round(rng.random(int(lv.sum())), 4)
    r["id"][lv] = np.arange(int(lv.sum())) + 1000
    r["flags"][(kind == Kind.BOOK) & (rng.random(n) < 0.2)] = Flag.LAST | Flag.SNAPSHOT
    m = kind == Kind.MARK
    r["ask_price"][m] = r["price"][m] + 1.5
    s = kind == Kind.STATUS
    r["id"][s] = Status.GAP
    q = kind == Kind.QUOTE
    r["bid_price"][q] = 49_999.5
    r["bid_size"][q] = rng.random(int(q.sum()))
    r["ask_price"][q] = 50_000.5
    r["ask_size"][q] = rng.random(int(q.sum()))
    return r


def write_parquet(root: str, venue: str, r: np.ndarray, rows_per_file: int = 97) -> None:
    """The compactor's layout: <root>/<dataset>/venue=V/date=D/<start>_<end>.parquet, zstd,
    sorted by ts_recv (stable, so equal times keep seq order), RECORD-named columns + symbol."""
    for kind, ds in DATASET.items():
        sel = r[r["kind"] == kind]
        days = np.array([day_of(int(t)) for t in sel["ts_recv"]])
        for day in sorted(set(days)):
            part = sel[days == day]
            for a in range(0, len(part), rows_per_file):
                chunk = part[a:a + rows_per_file]
                cols = {c: chunk[c] for c in COLUMNS[ds]}
                cols["symbol"] = pa.array([SYMBOLS[int(i)][1] for i in chunk["instrument"]])
                d = os.path.join(root, ds, f"venue={venue}", f"date={day}")
                os.makedirs(d, exist_ok=True)
                name = f"{int(chunk['ts_recv'][0])}_{int(chunk['ts_recv'][-1]) + 1}.parquet"
                pq.write_table(pa.table(cols), os.path.join(d, name), compression="zstd",
                               row_group_size=20)    # small groups: range pruning is exercised


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("parquet"))
    a = recorded_ring("binance", 1500, [1, 2], 0, 1)
    b = recorded_ring("okx", 900, [3], 1, 2)
    write_parquet(root, "binance", a)
    write_parquet(root, "okx", b)
    both = np.concatenate([a.view(np.dtype((np.void, 64))), b.view(np.dtype((np.void, 64)))]).view(RECORD)
    expected = both[np.lexsort((both["seq"], both["ts_recv"]))]
    return root, a, b, expected


def replay(*args):
    res = CliRunner().invoke(replay_cmd, list(args), catch_exceptions=False)
    return res


def read_all(name: str) -> np.ndarray:
    ring = shm.Ring.attach(name)
    try:
        rd = ring.reader(start="oldest", register=False)
        out = []
        while True:
            b = rd.read(1 << 16, timeout=0)
            if not len(b):
                break
            out.append(b)
        assert rd.lost == 0
        got = np.concatenate([x.view(np.dtype((np.void, 64))) for x in out]).view(RECORD)
        return got[(got["flags"] & Flag.REPLAY) != 0]       # drop the writer's own EPOCH record
    finally:
        ring.close()


def assert_same_records(got: np.ndarray, expected: np.ndarray) -> None:
    assert len(got) == len(expected)
    assert ((got["flags"] & Flag.REPLAY) != 0).all()
    for f in RECORD.names:
        if f == "seq":
            continue
        g, e = got[f], expected[f]
        if f == "flags":
            g = g & ~np.uint16(Flag.REPLAY)
        bad = np.flatnonzero(g != e)
        assert not len(bad), f"field {f} differs at {bad[:5]}: {g[bad[:5]]} != {e[bad[:5]]}"


def test_replay_reproduces_the_recorded_records_in_order(day, shm_names):
    root, _, _, expected = day
    ring = shm_names("replay")
    res = replay(root, "--into", ring, "--create", "--capacity", str(1 << 14), "--speed", "max")
    assert res.exit_code == 0, res.output
    assert f"replayed {len(expected):,} records" in res.output
    got = read_all(ring)
    assert_same_records(got, expected)
    assert (np.diff(got["seq"].astype(np.int64)) == 1).all()      # new, dense ring seqs


def test_replay_at_finite_speed_keeps_the_records(day, shm_names):
    root, _, _, expected = day
    ring = shm_names("paced")
    shm.Ring.create(ring, capacity=1 << 14).close()
    res = replay(root, "--into", ring, "--speed", "20", "--json")    # ~2 s of data in ~0.1 s
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["records"] == len(expected) and summary["speed"] == 20
    assert_same_records(read_all(ring), expected)


def trade_candles(r: np.ndarray, tf_ns: int) -> dict:
    """Reference candles from trades: interval start -> (open, high, low, close, volume, count)."""
    t = r[r["kind"] == Kind.TRADE]
    out = {}
    for inst in np.unique(t["instrument"]):
        x = t[t["instrument"] == inst]
        start = x["ts_recv"] - x["ts_recv"] % tf_ns
        for s in np.unique(start):
            y = x[start == s]
            out[(int(inst), int(s))] = (y["price"][0], y["price"].max(), y["price"].min(),
                                        y["price"][-1], round(float(y["size"].sum()), 9), len(y))
    return out


def test_candles_from_a_replay_equal_the_original_candles(day, shm_names):
    """The compactor's forge, fed the live ring and the replayed ring, forges the same candles
    (compared field by field except ts_recv, the receive-clock close time)."""
    from appliance.compactor.forge import Forge
    root, a, _, _ = day
    ring = shm_names("candles")
    assert replay(root, "--into", ring, "--create", "--speed", "max", "--venues", "binance").exit_code == 0
    got = read_all(ring)
    for tfs in (("10ms",), ("10ms", "50ms", "1s")):
        f1, f2 = Forge(tfs, 250_000_000), Forge(tfs, 250_000_000)
        c1 = np.concatenate([f1.update(a), f1.flush()])
        c2 = np.concatenate([f2.update(got), f2.flush()])
        assert len(c1) > 10 and len(c1) == len(c2)
        k1, k2 = np.lexsort((c1["ts"], c1["timeframe"], c1["instrument"])), \
            np.lexsort((c2["ts"], c2["timeframe"], c2["instrument"]))
        for f in c1.dtype.names:
            if f not in ("seq", "ts_recv"):
                assert (c1[f][k1] == c2[f][k2]).all(), f


def test_replay_of_files_written_by_the_compactor_sink(shm_names, tmp_path):
    """The compactor's own writer (records_table + ParquetSink) and replay agree on the layout."""
    from appliance.compactor.parquet_sink import ParquetSink, records_table
    from appliance.compactor.schema import RECORD_COLUMNS
    r = recorded_ring("binance", 600, [1, 2], 0, 5)
    sink = ParquetSink(str(tmp_path))
    for kind, ds in DATASET.items():
        sel = r[r["kind"] == kind]
        cols = {c: np.ascontiguousarray(sel[c]) for c in RECORD_COLUMNS[ds]}
        sink.commit(sink.stage(ds, "binance", records_table(ds, cols, lambda i: SYMBOLS[i][1])))
    ring = shm_names("sink")
    res = replay(str(tmp_path), "--into", ring, "--create", "--speed", "max", "--symbols", "BTCUSDT")
    assert res.exit_code == 0, res.output
    want = r[r["instrument"] == 1]
    assert_same_records(read_all(ring), want[np.lexsort((want["seq"], want["ts_recv"]))])


def test_replay_time_range_is_start_inclusive_end_exclusive(day, shm_names):
    root, _, _, expected = day
    ts = expected["ts_recv"]
    start, end = int(ts[300]), int(ts[1700])
    ring = shm_names("range")
    res = replay(root, "--into", ring, "--create", "--speed", "max",
                 "--start", str(start), "--end", str(end))
    assert res.exit_code == 0, res.output
    want = expected[(ts >= start) & (ts < end)]
    assert_same_records(read_all(ring), want)


def test_replay_venue_and_symbol_filters(day, shm_names):
    root, a, _, _ = day
    ring = shm_names("filter")
    res = replay(root, "--into", ring, "--create", "--speed", "max", "--venues", "binance",
                 "--symbols", "ETHUSDT", "--datasets", "trades,quotes")
    assert res.exit_code == 0, res.output
    want = a[(a["instrument"] == 2) & np.isin(a["kind"], [Kind.TRADE, Kind.QUOTE])]
    want = want[np.lexsort((want["seq"], want["ts_recv"]))]
    assert_same_records(read_all(ring), want)


def test_replay_remaps_ids_through_a_registry(day, shm_names):
    from shm.registry import Registry
    root, _, b, _ = day
    reg = Registry.create(shm_names("reg"))
    try:
        reg.add("binance", "XRPUSDT", "XRP-USDT", "spot")
        new_id = reg.add("okx", "BTC-USDT-SWAP", "BTC-USDT", "perp")
        ring = shm_names("remap")
        res = replay(root, "--into", ring, "--create", "--speed", "max", "--venues", "okx",
                     "--registry", reg.name)
        assert res.exit_code == 0, res.output
        got = read_all(ring)
        assert len(got) == len(b) and (got["instrument"] == new_id).all() and new_id != 3
    finally:
        reg.close()


def test_replay_missing_ring_offers_create(day, shm_names):
    root = day[0]
    res = CliRunner().invoke(replay_cmd, [root, "--into", shm_names("absent"), "--speed", "max"])
    assert res.exit_code != 0
    assert "no ring named" in res.output and "--create" in res.output


def test_replay_bad_range_and_empty_range(day, shm_names):
    root = day[0]
    ring = shm_names("err")
    res = CliRunner().invoke(replay_cmd, [root, "--into", ring, "--create",
                                          "--start", "2026-11-21T00:00:01", "--end", "2026-11-21"])
    assert res.exit_code != 0 and "not after start" in res.output
    res = CliRunner().invoke(replay_cmd, [root, "--into", ring, "--create", "--start", "yesterday"])
    assert res.exit_code != 0 and "cannot read time 'yesterday'" in res.output
    res = CliRunner().invoke(replay_cmd, [root, "--into", ring, "--create", "--speed", "max",
                                          "--start", "2026-11-21T00:00:05Z", "--end", "2026-11-21T01:00Z"])
    assert res.exit_code != 0 and "nothing" in res.output
    res = CliRunner().invoke(replay_cmd, [root, "--into", ring, "--create", "--venues", "kraken"])
    assert res.exit_code != 0 and "no data for venue 'kraken'" in res.output and "binance" in res.output


def test_replay_notes_missing_partitions(day, shm_names):
    root = day[0]
    ring = shm_names("notes")
    res = replay(root, "--into", ring, "--create", "--speed", "max", "--start", "2026-11-19",
                 "--end", "2026-11-22")
    assert res.exit_code == 0, res.output
    assert "no data for binance on 2026-11-19, 2026-11-22" not in res.output    # end is exclusive
    assert "no data for binance on 2026-11-19" in res.output


def test_replay_errors_without_traceback(tmp_path, shm_names):
    r = subprocess.run([sys.executable, "-m", "tools.cli", "replay", str(tmp_path / "nope"),
                        "--into", shm_names("x")], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "no such directory" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "tools.cli", "replay", str(tmp_path / "empty"),
                        "--into", shm_names("x")], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "no record datasets" in r.stderr and "Traceback" not in r.stderr


def test_time_parsing_iso_ns_relative_and_ranges():
    from tools.timeparse import format_ns, parse_range
    base = 1_795_219_200 * 10**9                                   # 2026-11-21T00:00:00Z
    assert parse_time("2026-11-21") == base
    assert parse_time("2026-11-21T00:00:00Z") == base
    assert parse_time("2026-11-21T02:00:00+02:00") == base
    assert parse_time("2026-11-21 00:00:01.000000001") == base + 10**9 + 1
    assert parse_time(str(base + 5)) == base + 5
    assert parse_time("-1m", now_ns=base) == base - 60 * 10**9
    assert parse_time("now", now_ns=base) == base
    assert format_ns(base + 123) == "2026-11-21T00:00:00.000000123Z"
    assert parse_range("2026-11-21", "2026-11-22") == (base, base + 86400 * 10**9)
    for bad, msg in (("1700000000", "too small"), ("21/11/2026", "cannot read time"),
                     ("2026-13-01", "bad time"), ("", "empty time")):
        with pytest.raises(ValueError, match=msg):
            parse_time(bad)
    with pytest.raises(ValueError, match="not after start"):
        parse_range("2026-11-21", "2026-11-21")
