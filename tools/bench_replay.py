"""`tickring bench replay`: records/s of Parquet -> ring replay at --speed max.

Writes a synthetic recorded day (trades, quotes, book levels on two venues) in the compactor's
layout to a temporary directory, then measures in the same run: the raw pyarrow read rate of
those files (the baseline: decoding Parquet alone), and the full replay (read, convert to RECORD,
merge across datasets and venues, publish into a ring). The ratio tells how much replay adds to
just reading the data; records per CPU second is the figure least disturbed by other load.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import click
import numpy as np

from shm.record import RECORD, Flag, Kind

DATASET_COLUMNS = {
    "trades": ["seq", "ts_event", "ts_recv", "instrument", "side", "flags", "price", "size", "id"],
    "quotes": ["seq", "ts_event", "ts_recv", "instrument", "flags", "bid_price", "bid_size",
               "ask_price", "ask_size"],
    "book": ["seq", "ts_event", "ts_recv", "instrument", "side", "flags", "price", "size", "id"],
}
KIND_DATASET = {Kind.TRADE: "trades", Kind.QUOTE: "quotes", Kind.BOOK: "book"}


def synthetic_day(n: int, venues=("binance", "okx"), instruments_per_venue: int = 4,
                  t0: int = 1_763_683_200 * 10**9, seed: int = 7):
    """n records spread over venues as each venue's ring would hold them; returns
    {venue: RECORD array in seq order} and {instrument id: (venue, symbol)}."""
    rng = np.random.default_rng(seed)
    out, names = {}, {}
    per = n // len(venues)
    iid = 1
    for v in venues:
        ids = np.arange(iid, iid + instruments_per_venue, dtype=np.uint32)
        for j, i in enumerate(ids):
            names[int(i)] = (v, f"SYM{j}USDT")
        iid += instruments_per_venue
        r = np.zeros(per, RECORD)
        r["seq"] = np.arange(per, dtype=np.uint64)
        gaps = rng.integers(1_000, 200_000, per)               # 1-200 us between frames
        r["ts_recv"] = t0 + np.cumsum(gaps)
        r["ts_event"] = r["ts_recv"] - rng.integers(100_000, 2_000_000, per)
        r["instrument"] = rng.choice(ids, per)
        kinds = rng.choice([Kind.TRADE, Kind.QUOTE, Kind.BOOK], per, p=[0.3, 0.3, 0.4])
        r["kind"] = kinds
        r["flags"] = Flag.LAST
        px = 100.0 + rng.standard_normal(per).cumsum() * 0.01
        sz = rng.random(per) + 0.001
        lv = kinds != Kind.QUOTE
        r["side"][lv] = rng.integers(1, 3, int(lv.sum()))
        r["price"][lv] = px[lv]
        r["size"][lv] = sz[lv]
        r["id"][lv] = np.arange(int(lv.sum()))
        q = kinds == Kind.QUOTE
        r["bid_price"][q] = px[q] - 0.01
        r["bid_size"][q] = sz[q]
        r["ask_price"][q] = px[q] + 0.01
        r["ask_size"][q] = sz[q] * 2
        out[v] = r
    return out, names


def write_root(root: str, rings: dict, names: dict, rows_per_file: int = 1 << 20) -> int:
    """Write records in the compactor's layout: <root>/<dataset>/venue=V/date=D/<start>_<end>.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tools.timeparse import day_of
    files = 0
    for venue, r in rings.items():
        symtab = np.array([names.get(i, ("", f"#{i}"))[1] for i in range(max(names) + 1)], object)
        for kind, ds in KIND_DATASET.items():
            sel = r[r["kind"] == kind]
            if not len(sel):
                continue
            days = np.array([day_of(int(t)) for t in sel["ts_recv"][[0, -1]]])
            for day in sorted(set(days)):
                for a in range(0, len(sel), rows_per_file):
                    part = sel[a:a + rows_per_file]
                    cols = {c: part[c] for c in DATASET_COLUMNS[ds]}
                    cols["symbol"] = pa.array(symtab[part["instrument"]].tolist(), pa.string())
                    table = pa.table(cols)
                    d = os.path.join(root, ds, f"venue={venue}", f"date={day}")
                    os.makedirs(d, exist_ok=True)
                    name = f"{int(part['ts_recv'][0])}_{int(part['ts_recv'][-1])}.parquet"
                    pq.write_table(table, os.path.join(d, name), compression="zstd")
                    files += 1
    return files


@click.command()
@click.option("--records", "n", type=int, default=4_000_000, show_default=True,
              help="Records in the synthetic day.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(n, as_json):
    """Replay rate at --speed max (records/s), with the raw Parquet read rate as the baseline.

    The replay runs twice over the same files: replay_rps is the second (steady-state) pass,
    replay_rps_cold the first."""
    import pyarrow.compute  # noqa: F401  (one-time import, not part of the rate)
    import pyarrow.parquet as pq

    import shm
    from tools.replay import merged, plan, publish_paced, tune_malloc

    tmp = tempfile.mkdtemp(prefix="tickring-bench-replay-")
    ring_name = f"bench-replay-{os.getpid()}"
    ring = None
    try:
        rings, names = synthetic_day(n)
        write_root(tmp, rings, names)
        del rings
        p = plan(tmp)
        files = [f for s in p.sources for f in s.files]
        # baseline: pyarrow reading the same columns of the same files, nothing else
        t = time.perf_counter()
        rows = 0
        for f in files:
            for b in pq.ParquetFile(f).iter_batches(batch_size=1 << 18):
                rows += b.num_rows
        raw_s = time.perf_counter() - t
        tune_malloc()                          # what `tickring replay` does
        ring = shm.Ring.create(ring_name, capacity=1 << 20)
        w = ring.writer()
        # first pass cold (fresh ring pages, allocator growing), second pass steady state,
        # which is what a long replay runs at
        t = time.perf_counter()
        cold = publish_paced(w, merged(p), None, 1 << 16)
        cold_s = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        res = publish_paced(w, merged(p), None, 1 << 16)
        replay_s, replay_cpu = time.perf_counter() - t, time.process_time() - c
        w.close()
        out = {"records": res["records"], "files": len(files),
               "replay_rps": round(res["records"] / replay_s),
               "replay_rps_cold": round(cold["records"] / cold_s),
               "pyarrow_read_rps": round(rows / raw_s),
               "replay_vs_read": round(raw_s / replay_s, 3),
               # CPU seconds of this process (all threads): less sensitive to a busy machine
               "replay_cpu_s": round(replay_cpu, 3),
               "replay_records_per_cpu_s": round(res["records"] / max(replay_cpu, 1e-9)),
               "target_rps": 2_000_000}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if ring is not None:
            ring.unlink()
            ring.close()
    if as_json:
        import orjson
        click.echo(orjson.dumps(out).decode())
    else:
        w = max(map(len, out))
        for k, v in out.items():
            click.echo(f"{k:>{w}}: {v:,}" if isinstance(v, int) else f"{k:>{w}}: {v}")
