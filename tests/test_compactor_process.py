"""The compactor as a real process: SIGKILLed at random moments while a producer process
publishes trades, restarted each time; afterwards every file reads with pyarrow, DuckDB and
Polars, and saved rows + rows recorded as lost == rows published, with no duplicates."""
from __future__ import annotations

import glob
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from shm import Registry, Ring
from shm.record import Flag, Status

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRODUCER = r"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
from shm import Ring, RECORD, Kind, Side
ring = Ring.attach(sys.argv[2]); total = int(sys.argv[3]); inst = [int(x) for x in sys.argv[4].split(",")]
w = ring.writer()
rng = np.random.default_rng(1)
done, tid = 0, 1000
while done < total:
    n = min(200, total - done)
    rec = np.zeros(n, RECORD)
    now = time.time_ns()
    rec["ts_recv"] = now + np.arange(n) * 1000
    rec["ts_event"] = rec["ts_recv"] - 1_000_000
    rec["kind"] = Kind.TRADE
    rec["instrument"] = rng.choice(inst, n)
    rec["side"] = rng.choice([Side.BUY, Side.SELL], n)
    rec["price"] = np.round(100 + rng.normal(0, 0.1, n), 2)
    rec["size"] = np.round(rng.exponential(1, n), 3) + 0.001
    rec["id"] = np.arange(tid, tid + n)
    tid += n
    w.publish(rec)
    done += n
    time.sleep(0.012)
w.close()
"""


def compactor_cmd(ring, registry, root, extra=()):
    return [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from tools.cli import main; main(sys.argv[2:])",
            ROOT, "compactor", "--ring", f"sim={ring}", "--root", root, "--registry", registry,
            "--max-rows", "3000", "--rotate-s", "1", "--no-backfill", *extra]


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def compactor_attached(ring: Ring, proc) -> bool:
    return any(c["pid"] == proc.pid and c["name"] == "compactor" for c in ring.consumers())


def test_sigkill_restart_no_loss_no_duplicates(tmp_path, shm_names):
    ring_name, reg_name = shm_names("ring"), shm_names("reg")
    cring, ctab, qtab = shm_names("cring"), shm_names("ctab"), shm_names("qtab")
    ring = Ring.create(ring_name, 1 << 13)
    reg = Registry.create(reg_name, 64)
    ids = [reg.add("sim", s, n, "spot", 0.01, 0.001) for s, n in (("BTCUSDT", "BTC-USDT"), ("ETHUSDT", "ETH-USDT"))]
    root = str(tmp_path / "pq")
    # row groups of 500 records: files are appended to in .staging while the kills land
    extra = ("--candle-ring", cring, "--candle-table", ctab, "--quality-table", qtab, "--timeframes", "1s,1m",
             "--row-group-rows", "500")
    total = 60_000
    rnd = random.Random(7)
    procs = []
    try:
        comp = subprocess.Popen(compactor_cmd(ring_name, reg_name, root, extra))
        procs.append(comp)
        wait_for(lambda: compactor_attached(ring, comp), 30, "the compactor to attach")
        prod = subprocess.Popen([sys.executable, "-c", PRODUCER, ROOT, ring_name, str(total), ",".join(map(str, ids))])
        procs.append(prod)
        kills = 0
        while prod.poll() is None or kills < 3:
            time.sleep(rnd.uniform(0.2, 1.5))     # a random moment, not a synchronization
            comp.send_signal(signal.SIGKILL)
            comp.wait()
            kills += 1
            comp = subprocess.Popen(compactor_cmd(ring_name, reg_name, root, extra))
            procs.append(comp)
            wait_for(lambda: compactor_attached(ring, comp), 30, "the compactor to re-attach")
        assert prod.wait(timeout=60) == 0
        published = ring.published
        wait_for(lambda: any(c["pid"] == comp.pid and c["position"] >= published for c in ring.consumers()),
                 30, "the compactor to catch up")
        comp.send_signal(signal.SIGTERM)
        assert comp.wait(timeout=30) == 0, "SIGTERM must flush and exit 0"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    files = sorted(glob.glob(f"{root}/**/*.parquet", recursive=True))
    assert files and not glob.glob(f"{root}/.staging/*"), "only whole files under the root"
    assert max(pq.read_metadata(f).num_row_groups for f in files) > 1, "files written row group by row group"
    for f in files:                                       # every file reads with pyarrow
        t = pq.read_table(f)
        assert t.schema.metadata[b"tickring.schema_version"] == b"1"
        ts = t.column("ts_recv").to_numpy()
        assert np.all(ts[1:] >= ts[:-1]), f"{f} is not sorted by ts_recv"
    import duckdb
    import polars as pl
    con = duckdb.connect()
    for ds in ("trades", "status"):
        pattern = f"{root}/{ds}/**/*.parquet"
        n_duck = con.execute(f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning=true)").fetchone()[0]
        n_pl = pl.scan_parquet(pattern, hive_partitioning=True).select(pl.len()).collect().item()
        n_pa = sum(pq.read_metadata(f).num_rows for f in glob.glob(pattern, recursive=True))
        assert n_duck == n_pl == n_pa
    trades = pl.read_parquet(f"{root}/trades/**/*.parquet", hive_partitioning=True)
    status = pl.read_parquet(f"{root}/status/**/*.parquet", hive_partitioning=True)
    assert set(trades["venue"].unique()) == {"sim"}
    assert set(trades["symbol"].unique()) <= {"BTCUSDT", "ETHUSDT"}
    derived = (status["flags"] & int(Flag.DERIVED)) != 0
    real_status = status.filter(~derived)
    lapped = status.filter(derived & (status["id"] == int(Status.LAPPED)))
    saved = np.concatenate([trades["seq"].to_numpy(), real_status["seq"].to_numpy()])
    assert len(np.unique(saved)) == len(saved), "duplicate rows"
    covered = np.zeros(published, np.int64)
    covered[saved.astype(np.int64)] += 1
    for count, first in zip(lapped["price"].to_list(), lapped["size"].to_list()):
        covered[int(first):int(first) + int(count)] += 1
    assert covered.min() == 1 and covered.max() == 1, \
        f"{int((covered == 0).sum())} rows neither saved nor recorded lost, {int((covered > 1).sum())} twice"
    print(f"published {published} saved {len(saved)} lost {int(lapped['price'].sum() or 0)} files {len(files)} kills {kills}")
    assert len(trades) + int(lapped["price"].sum() or 0) + len(real_status) == published
    # the trade-level columns round-trip
    assert trades["id"].n_unique() == len(trades)
    candles = pl.read_parquet(f"{root}/candles/**/*.parquet", hive_partitioning=True)
    assert set(candles["timeframe"].unique()) <= {"1s", "1m"} and len(candles) > 0


def test_backfill_from_simulator(tmp_path, shm_names):
    """End to end: trades with an id gap in a ring; the compactor fetches the missing ones from
    the simulator's REST endpoint (the binance declaration's historicalTrades) and saves them
    flagged BACKFILL, with the simulator's prices."""
    try:
        from feeds.sim import running
        import feeds
        feeds.venue("binance")
    except (ImportError, KeyError) as e:
        pytest.skip(f"simulator or binance declaration not available: {e}")
    import polars as pl
    from appliance.compactor.process import Compactor
    from shm.record import RECORD, Kind, Side
    with running(["binance"], symbols=2, rate=400, seed=3) as sim:
        symbol = sim.symbols("binance")[0]
        st = {}

        def enough():
            st.update(sim.state("binance", symbol, trades=200))
            return len(st["trades"]["recent"]) >= 60
        wait_for(enough, 30, "the simulator to make 60 trades")
        recent = st["trades"]["recent"]                         # [id, price, size, side, ts_ms]
        reg_name = shm_names("reg")
        reg = Registry.create(reg_name, 16)
        inst = reg.add("binance", symbol, "BTC-USDT", "spot", 0.01, 0.00001)
        ring = Ring.create(shm_names("ring"), 1 << 10)
        w = ring.writer(announce=False)
        keep = recent[:20] + recent[40:60]                        # ids of recent[20:40] are missing
        rec = np.zeros(len(keep), RECORD)
        now = time.time_ns()
        rec["ts_recv"] = now + np.arange(len(keep))
        rec["ts_event"] = [t[4] * 1_000_000 for t in keep]
        rec["kind"] = Kind.TRADE
        rec["instrument"] = inst
        rec["price"] = [float(t[1]) for t in keep]
        rec["size"] = [float(t[2]) for t in keep]
        rec["side"] = [Side.SELL if t[3] == "sell" else Side.BUY for t in keep]
        rec["id"] = [t[0] for t in keep]
        w.publish(rec)
        comp = Compactor({"rings": {"binance": ring.name}, "root": str(tmp_path / "pq"),
                          "registry": reg_name, "timeframes": ["1s"],
                          "rest_urls": {"binance": sim.rest_url("binance")}})
        try:
            wait_for(lambda: comp.step() >= 0 and comp.streams[0].backfill.filled >= 20, 30,
                     "the backfill to fetch 20 trades")
            comp.step()
            comp.flush()
        finally:
            comp.close()
            ring.close()
            reg.close()
    t = pl.read_parquet(f"{tmp_path}/pq/trades/**/*.parquet", hive_partitioning=True)
    bf = t.filter((pl.col("flags") & int(Flag.BACKFILL)) != 0).sort("id")
    assert bf["id"].to_list() == [r[0] for r in recent[20:40]]
    assert bf["price"].to_list() == [float(r[1]) for r in recent[20:40]]
    assert set(bf["symbol"].to_list()) == {symbol}


def test_registry_growing_while_it_is_read_sizes_the_groups_from_one_read():
    """Workers append to the registry while the compactor maps instruments to cross-venue
    groups: len() before all() was smaller than the ids all() returned (IndexError, a compactor
    restart at the start of a soak)."""
    from types import SimpleNamespace

    from appliance.compactor.process import Compactor

    class GrowingRegistry:
        def __init__(self):
            self.items = [SimpleNamespace(id=i, venue="v", normalized=f"A{i}-USDT", market="spot")
                          for i in range(1, 4)]

        def __len__(self):          # what the registry held a moment before all() was called
            return 2

        def all(self):
            return list(self.items)

    fake = SimpleNamespace(registry=GrowingRegistry(), _reg_count=-1, group_of=np.full(1, -1),
                           _groups={})
    Compactor.refresh_registry(fake, max_id=1)
    assert len(fake.group_of) == 4 and fake.group_of[3] >= 0 and fake._reg_count == 3
