"""`tickring candles`: candles forged by the compactor's forge, written by its Parquet sink, read
back by the CLI (table, CSV, JSON), plus the live candle ring and forming-candle table."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import shm
from appliance.compactor.forge import Forge
from appliance.compactor.parquet_sink import ParquetSink, candles_table
from appliance.compactor.schema import CANDLE, CANDLE_CLEAN, CANDLE_SLOT, timeframe_ns
from shm.record import RECORD, Kind, Side
from tools.candles import command as candles_cmd
from tools.timeparse import parse_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = parse_time("2026-11-20T23:57:00Z")      # the last minutes of a day and the next one
MIN = 60 * 10**9
SYMBOL = {1: "BTCUSDT", 2: "ETHUSDT"}
WICK_SEQ = 37                                 # one trade the clean candles leave out


def trades() -> np.ndarray:
    rng = np.random.default_rng(3)
    n = 400
    r = np.zeros(n, RECORD)
    r["seq"] = np.arange(n)
    r["ts_event"] = T0 + np.sort(rng.integers(0, 6 * MIN, n))
    r["ts_recv"] = r["ts_event"] + 1_000_000
    r["instrument"] = rng.choice([1, 2], n)
    r["kind"] = Kind.TRADE
    r["side"] = rng.choice([Side.BUY, Side.SELL], n)
    r["price"] = np.round(100 + rng.standard_normal(n).cumsum(), 2)
    r["price"][WICK_SEQ] = 500.0
    r["size"] = np.round(rng.random(n) + 0.01, 3)
    r["id"] = np.arange(n) + 1
    return r


def reference(r: np.ndarray, inst: int, tf: int, drop=()) -> list[tuple]:
    """(ts, open, high, low, close, volume, trades) per interval, computed here from the trades."""
    x = r[(r["instrument"] == inst) & ~np.isin(r["seq"], list(drop))]
    start = x["ts_event"] - x["ts_event"] % tf
    out = []
    for s in np.unique(start):
        y = x[start == s]
        out.append((int(s), y["price"][0], y["price"].max(), y["price"].min(), y["price"][-1],
                    round(float(y["size"].sum()), 9), len(y)))
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A Parquet root written by the compactor's own forge and sink (raw and clean candles)."""
    root = str(tmp_path_factory.mktemp("parquet"))
    r = trades()
    raw = Forge(("1m", "5m"), 0)
    clean = Forge(("1m", "5m"), 0, clean=True)
    c_raw = np.concatenate([raw.update(r), raw.flush()])
    c_clean = np.concatenate([clean.update(r, trade_mask=r["seq"] != WICK_SEQ), clean.flush()])
    both = np.concatenate([c_raw, c_clean])
    sink = ParquetSink(root)
    labels = {timeframe_ns("1m"): "1m", timeframe_ns("5m"): "5m"}
    pairs = sink.stage("candles", "binance", candles_table(both, SYMBOL.get, labels.get))
    sink.commit(pairs)
    return root


def invoke(*args):
    return CliRunner().invoke(candles_cmd, list(args), catch_exceptions=False)


def parse_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_candles_csv_equal_a_reference_from_the_trades(root, shm_names):
    res = invoke("--venue", "binance", "--symbol", "BTCUSDT", "--tf", "1m", "--root", root,
                 "--format", "csv", "--namespace", shm_names("nons"), "--no-live")
    assert res.exit_code == 0, res.output
    rows = parse_csv(res.stdout)
    want = reference(trades(), 1, MIN)
    assert len(rows) == len(want) == 6
    for row, (ts, o, h, lo, c, v, n) in zip(rows, want):
        assert int(row["ts"]) == ts
        assert (float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"])) == (o, h, lo, c)
        assert float(row["volume"]) == pytest.approx(v) and int(row["trades"]) == n
        assert row["state"] == "closed"


def test_candles_clean_leave_the_wick_out(root):
    r = trades()
    inst = int(r["instrument"][WICK_SEQ])
    sym = SYMBOL[inst]
    raw = parse_csv(invoke("-v", "binance", "-s", sym, "--tf", "1m", "--root", root, "--format",
                           "csv", "--no-live").stdout)
    clean = parse_csv(invoke("-v", "binance", "-s", sym, "--tf", "1m", "--root", root, "--format",
                             "csv", "--clean", "--no-live").stdout)
    assert max(float(x["high"]) for x in raw) == 500.0
    assert max(float(x["high"]) for x in clean) < 500.0
    want = reference(r, inst, MIN, drop=[WICK_SEQ])
    assert [(int(x["ts"]), float(x["high"])) for x in clean] == [(w[0], w[2]) for w in want]


def test_candles_json_time_range_start_inclusive_end_exclusive(root):
    start, end = T0 + MIN, T0 + 4 * MIN          # 23:58 .. 00:01 (across midnight)
    res = invoke("-v", "binance", "-s", "ETHUSDT", "--tf", "1m", "--root", root, "--json",
                 "--start", str(start), "--end", "2026-11-21T00:01:00Z", "--no-live")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert [c["ts"] for c in got] == [start, start + MIN, start + 2 * MIN]
    assert got[-1]["ts"] < end and got[0]["time"] == "2026-11-20T23:58:00Z"


def test_candles_table_for_humans(root):
    res = invoke("-v", "binance", "-s", "BTCUSDT", "--tf", "5m", "--root", root, "--no-live")
    assert res.exit_code == 0, res.output
    lines = res.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["time", "(UTC)", "open"]
    assert len(lines) == 1 + len(reference(trades(), 1, 5 * MIN))
    assert lines[1].startswith("2026-11-20 23:55:00")


def test_candles_live_ring_and_forming_candle(root, shm_names):
    """Candles not yet in Parquet come from the candle ring; the forming one from the table."""
    from shm.registry import Registry
    from shm.table import Table
    ns = shm_names("ns")
    reg = Registry.create(f"{ns}.registry")
    iid = reg.add("binance", "BTCUSDT", "BTC-USDT", "spot")
    assert iid == 1
    ring = shm.Ring.create(f"{ns}.candles", capacity=64, dtype=CANDLE)
    table = Table.create(f"{ns}.candles.latest", CANDLE_SLOT, 8)
    try:
        c = np.zeros(1, CANDLE)
        c["ts"], c["timeframe"], c["instrument"], c["flags"] = T0 + 10 * MIN, MIN, iid, CANDLE_CLEAN
        c["open"] = c["high"] = c["low"] = c["close"] = 123.0
        c["volume"], c["trades"] = 2.0, 3
        with ring.writer(announce=False) as w:
            w.publish(c.copy())
        row = np.zeros(1, CANDLE_SLOT)
        row["forming_ts"], row["forming_timeframe"], row["forming_instrument"] = T0 + 11 * MIN, MIN, iid
        row["forming_open"] = row["forming_close"] = 124.0
        row["forming_trades"] = 1
        table.write(iid * 2, row[0])
        res = invoke("-v", "binance", "-s", "BTC-USDT", "--tf", "1m", "--root", root, "--clean",
                     "--namespace", ns, "--format", "json")
        assert res.exit_code == 0, res.output
        got = json.loads(res.stdout)
        assert len(got) == 8
        assert got[-2]["ts"] == T0 + 10 * MIN and got[-2]["open"] == 123.0 and got[-2]["state"] == "closed"
        assert got[-1]["ts"] == T0 + 11 * MIN and got[-1]["state"] == "forming"
    finally:
        ring.close()
        table.close()
        reg.close()


def test_candles_errors_and_empty_results(root, shm_names):
    res = CliRunner().invoke(candles_cmd, ["-v", "binance", "-s", "DOGEUSDT", "--root", root,
                                           "--no-live", "--namespace", shm_names("none")])
    assert res.exit_code != 0 and "DOGEUSDT" in res.output and "BTCUSDT" in res.output
    res = CliRunner().invoke(candles_cmd, ["-v", "binance", "-s", "BTCUSDT", "--tf", "7x", "--root", root])
    assert res.exit_code != 0 and "bad timeframe" in res.output
    res = CliRunner().invoke(candles_cmd, ["-v", "binance", "-s", "BTCUSDT", "--root", root,
                                           "--start", "2026-11-21", "--end", "2026-11-20"])
    assert res.exit_code != 0 and "not after start" in res.output
    res = invoke("-v", "binance", "-s", "BTCUSDT", "--root", root, "--no-live",
                 "--start", "2026-11-22", "--end", "2026-11-23")
    assert res.exit_code == 0 and res.stdout == "" and "no 1m candles" in res.stderr


def test_candles_cli_has_no_traceback_for_a_missing_root(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tools.cli", "candles", "-v", "binance", "-s", "X",
                        "--root", str(tmp_path / "nope")], cwd=ROOT, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "no such Parquet root" in r.stderr and "Traceback" not in r.stderr
