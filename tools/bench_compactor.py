"""`tickring bench compactor`: candle forge throughput, Parquet write rate and bytes per trade,
and the whole compactor loop (ring -> candles/quality/Parquet) on realistic synthetic trades:
per-instrument random walks rounded to the tick, sizes rounded to the lot, increasing trade ids,
millisecond venue clocks, ts_recv increasing with jitter.

Rates are per wall-clock second; `*_cpu` figures are per CPU second of this process (and, for
the whole loop, of the Parquet writer process it starts), which is what to read on a box
shared with other work (pyarrow may also use a second thread).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

import click
import numpy as np

TARGETS = {"forge_trades_per_s": 10_000_000, "parquet_write_rps": 2_000_000,
           "parquet_bytes_per_trade": 12.0}
T0 = 1_767_225_600 * 1_000_000_000


def synthetic_trades(n: int, instruments: int = 200, rate: float = 200_000.0, seed: int = 0) -> np.ndarray:
    """n TRADE records of `instruments` instruments arriving at ~rate/s."""
    from shm.record import RECORD, Kind
    rng = np.random.default_rng(seed)
    inst = rng.integers(1, instruments + 1, n)
    gaps = rng.exponential(1e9 / rate, n).astype(np.int64)
    ts_event = (T0 + np.cumsum(gaps)) // 1_000_000 * 1_000_000          # venue clock in ms
    latency = 4_000_000 + rng.integers(0, 300_000, n)                  # ~4 ms, with jitter
    ts_recv = np.maximum.accumulate(ts_event + latency)
    base = rng.uniform(0.5, 60_000, instruments + 1)
    tick = 10.0 ** np.floor(np.log10(base / 10_000))
    lot = 10.0 ** np.floor(np.log10(100 / base))
    order = np.argsort(inst, kind="stable")
    steps = rng.integers(-2, 3, n)[order]
    head = np.r_[0, np.flatnonzero(np.diff(inst[order])) + 1]
    run = np.diff(np.r_[head, n])
    walk = np.empty(n, np.int64)
    cs = np.cumsum(steps)
    walk[order] = cs - np.repeat(cs[head] - steps[head], run)
    ids = np.empty(n, np.int64)
    ids[order] = np.arange(n) - np.repeat(head, run) + 1_000_000_000
    rec = np.zeros(n, RECORD)
    rec["seq"] = np.arange(n)
    rec["ts_recv"] = ts_recv
    rec["ts_event"] = ts_event
    rec["instrument"] = inst
    rec["kind"] = Kind.TRADE
    rec["side"] = rng.integers(1, 3, n)
    rec["flags"] = 2
    rec["price"] = (np.round(base[inst] / tick[inst]) + walk) * tick[inst]
    rec["size"] = np.maximum(np.round(rng.exponential(500 / base[inst]) / lot[inst]), 1) * lot[inst]
    rec["id"] = ids
    return rec


def bench_forge(rec: np.ndarray, batch: int, seconds: float) -> dict:
    from appliance.compactor.forge import Forge
    f = Forge()
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    candles = 0
    while True:
        for i in range(0, len(rec), batch):
            candles += len(f.update(rec[i:i + batch]))
        done += len(rec)
        dt = time.perf_counter() - t0
        if dt >= seconds:
            break
        f = Forge()
    return {"forge_trades_per_s": done / dt, "forge_trades_per_cpu_s": done / (time.process_time() - c0),
            "forge_candles": candles}


def bench_parquet(rec: np.ndarray, root: str, row_group_rows: int) -> dict:
    """Trades written as the compactor writes them: spooled in pieces of 2,048 records, then the
    writer's code (parquet_job.write, here in-process so its CPU is measured) makes one staged
    file with row groups of row_group_rows. Same run: the same rows as one row group (bytes), and
    the writer process's fixed cost (a fork from the compactor's fork server, pyarrow's import
    and an empty manifest: what every writer run pays)."""
    import json as _json
    import sys
    from appliance.compactor.forkserver import ForkServer
    assert "pyarrow" not in sys.modules, "the fork server must be forked before pyarrow is loaded"
    server = ForkServer.start()                  # as the compactor does, before pyarrow
    from appliance.compactor.parquet_job import write as write_job
    from appliance.compactor.parquet_sink import ParquetSink, records_table
    from appliance.compactor.schema import RECORD_COLUMNS
    from appliance.compactor.spool import SpoolFile, by_date
    sink = ParquetSink(root)
    names = {str(i): f"SYM{i}USDT" for i in range(1, int(rec["instrument"].max()) + 1)}
    t0, c0 = time.perf_counter(), time.process_time()
    files, entries = {}, []
    for lo in range(0, len(rec), 2048):
        for date, part, first, last in by_date(rec[lo:lo + 2048]):
            f = files.get(date)
            if f is None or not f.accepts(first):
                if f is not None:
                    entries.append(f.finish(sink))
                f = files[date] = SpoolFile(root, "trades", "bench", date, "record", row_group_rows)
            f.append(part, first, last)
    entries += [f.finish(sink) for f in files.values()]
    spooled_cpu = time.process_time() - c0
    write_job({"root": root, "files": entries, "symbols": names, "labels": {}})
    pairs = [(e["staged"], e["final"]) for e in entries]
    sink.commit(pairs)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = sum(os.path.getsize(os.path.join(root, p[1])) for p in pairs)
    cols = {n: rec[n] for n in RECORD_COLUMNS["trades"]}
    whole = sink.stage("trades", "bench1", records_table("trades", cols, lambda i: names.get(str(i), "")))
    sink.commit(whole)
    size1 = sum(os.path.getsize(os.path.join(root, p[1])) for p in whole)
    empty = os.path.join(root, "empty.json")
    with open(empty, "w") as f:
        _json.dump({"root": root, "files": [], "symbols": {}, "labels": {}}, f)
    w0 = time.perf_counter()
    try:
        server.run(empty)
        code, _ = server.wait()
    finally:
        server.close()
    if code != 0:
        raise click.ClickException(f"bench compactor: the Parquet writer exited with {code}")
    return {"parquet_write_rps": len(rec) / dt, "parquet_write_rps_cpu": len(rec) / cpu,
            "parquet_spool_share_of_cpu": round(spooled_cpu / cpu, 3),
            "parquet_bytes_per_trade": size / len(rec), "parquet_row_group_rows": row_group_rows,
            "parquet_bytes_per_trade_one_row_group": size1 / len(rec),
            "parquet_files": len(pairs), "writer_process_start_s": round(time.perf_counter() - w0, 3)}


def bench_wicks(n: int, venues: int = 7, batch: int = 8192) -> dict:
    """Cross-venue wick check: `venues` venues trading the same instruments (same prices, own
    arrival jitter), observed and checked batch by batch as the compactor does."""
    from appliance.compactor.wick import WickDetector
    base = synthetic_trades(n // venues, 200, seed=1)
    per = []
    for v in range(venues):
        r = base.copy()
        r["ts_recv"] += np.random.default_rng(v).integers(0, 2_000_000, len(r))
        per.append(r)
    group_of = np.arange(0, 1000)
    w = WickDetector()
    done, c0 = 0, time.process_time()
    for i in range(0, len(base), batch):
        for v in range(venues):
            w.observe(f"v{v}", per[v][i:i + batch], group_of)
        for v in range(venues):
            w.check(f"v{v}", per[v][i:i + batch], group_of)
            done += len(per[v][i:i + batch])
    return {"wick_checks_per_cpu_s": done / (time.process_time() - c0), "wick_venues": venues}


def _children_cpu() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_process(rec: np.ndarray, root: str, ring_name: str) -> dict:
    """The whole loop: a ring full of trades drained by an in-process Compactor."""
    from appliance.compactor.process import Compactor
    from shm.ring import Ring
    cap = 1 << int(np.ceil(np.log2(len(rec) + 16)))
    ring = Ring.create(ring_name, cap)
    try:
        w = ring.writer(announce=False)
        w.publish(rec.copy())
        clock = [int(rec["ts_recv"][-1]) + 10**9]
        comp = Compactor({"rings": {"bench": ring_name}, "root": root, "registry": None,
                          "backfill": False}, clock=lambda: clock[0])
        t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
        while comp.step():
            pass
        comp.flush()
        dt = time.perf_counter() - t0
        own = time.process_time() - c0
        comp.close()              # reaps the fork server, which reaped its writers: their CPU
        writer = _children_cpu() - k0     # reaches this process's children's account only now
        w.close()
        # whole loop, with its Parquet writers' CPU (two runs here: at max_rows and at the end,
        # each a fork and pyarrow's import, amortized over max_rows x venues in real use)
        return {"process_rps": len(rec) / dt, "process_rps_cpu": len(rec) / (own + writer),
                "process_rps_cpu_compactor_only": len(rec) / own, "process_writer_runs": comp.jobs.runs,
                "process_writer_cpu_s": round(writer, 3)}
    finally:
        ring.unlink()
        ring.close()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option("--trades", default=1_000_000, show_default=True, help="Synthetic trades per phase.")
@click.option("--instruments", default=200, show_default=True)
@click.option("--batch", default=65536, show_default=True, help="Records per forge update (a ring batch).")
@click.option("--seconds", default=1.0, show_default=True, help="Minimum duration of the forge phase.")
@click.option("--row-group-rows", default=16384, show_default=True,
              help="Rows per Parquet row group (the compactor's compactor.row_group_rows).")
def command(as_json, trades, instruments, batch, seconds, row_group_rows):
    """Candle forge trades/s, Parquet rows/s and bytes per trade, whole compactor loop rows/s."""
    rec = synthetic_trades(trades, instruments)
    res = {"trades": trades, "instruments": instruments, "batch": batch}
    res.update(bench_forge(rec, batch, seconds))
    tmp = tempfile.mkdtemp(prefix="tickring-bench-")
    try:
        res.update(bench_parquet(rec, os.path.join(tmp, "pq"), row_group_rows))
        res.update(bench_wicks(min(trades, 700_000)))
        res.update(bench_process(rec, os.path.join(tmp, "pq2"), f"bench-compactor-{os.getpid()}"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["targets"] = TARGETS
    if as_json:
        click.echo(json.dumps(res))
        return
    click.echo(f"forge_trades_per_s      {res['forge_trades_per_s']:>14,.0f}   ({res['forge_trades_per_cpu_s']:,.0f} per CPU second; target {TARGETS['forge_trades_per_s']:,})")
    click.echo(f"parquet_write_rps       {res['parquet_write_rps']:>14,.0f}   ({res['parquet_write_rps_cpu']:,.0f} per CPU second; target {TARGETS['parquet_write_rps']:,})")
    click.echo(f"parquet_bytes_per_trade {res['parquet_bytes_per_trade']:>14.2f}   (target <= {TARGETS['parquet_bytes_per_trade']})")
    click.echo(f"writer_process_start_s  {res['writer_process_start_s']:>14.3f}   (the Parquet writer's fixed cost per run: a fork, pyarrow's import)")
    click.echo(f"process_rps             {res['process_rps']:>14,.0f}   ({res['process_rps_cpu']:,.0f} per CPU second; ring -> candles, quality, wicks, Parquet)")
    click.echo(f"wick_checks_per_cpu_s   {res['wick_checks_per_cpu_s']:>14,.0f}   ({res['wick_venues']} venues, same instruments)")
    click.echo("(a busy machine lowers the per-second figures; the per-CPU-second ones hold)")
