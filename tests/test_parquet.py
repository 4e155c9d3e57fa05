"""Parquet files: RECORD-named columns, schema version, ts_recv order, date partitions, the
queries of docs/parquet.md in DuckDB and Polars, and crash recovery of staged files."""
from __future__ import annotations

import glob
import os

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq

from appliance.compactor.checkpoint import Checkpoints, recover
from appliance.compactor.parquet_sink import ParquetSink, candles_table, records_table
from appliance.compactor.schema import CANDLE, CANDLE_CLEAN, RECORD_COLUMNS
from shm.record import RECORD, Kind, Side

S = 1_000_000_000
MIDNIGHT = 1_767_225_600 * S          # 2026-01-01T00:00:00Z


def sample(n=1000, start=MIDNIGHT - 30 * S, seed=0):
    rng = np.random.default_rng(seed)
    rec = np.zeros(n, RECORD)
    rec["seq"] = np.arange(n)
    rec["ts_recv"] = start + np.sort(rng.integers(0, 60 * S, n))
    rec["ts_event"] = rec["ts_recv"] - 1_000_000
    rec["instrument"] = rng.integers(1, 4, n)
    rec["kind"] = Kind.TRADE
    rec["side"] = rng.choice([Side.BUY, Side.SELL], n)
    rec["price"] = np.round(100 + rng.normal(0, 1, n), 2)
    rec["size"] = np.round(rng.exponential(1, n), 3)
    rec["id"] = np.arange(n) + 10
    return rec


def symbol_of(i):
    return {1: "BTCUSDT", 2: "ETHUSDT", 3: "SOLUSDT"}.get(i, "")


def write(sink, dataset, rec, venue="binance"):
    cols = {n: rec[n] for n in RECORD_COLUMNS[dataset]}
    pairs = sink.stage(dataset, venue, records_table(dataset, cols, symbol_of))
    sink.commit(pairs)
    return pairs


def test_columns_metadata_order_and_date_split(tmp_path):
    root = str(tmp_path)
    sink = ParquetSink(root)
    rec = sample()
    shuffled = rec[np.random.default_rng(1).permutation(len(rec))]
    pairs = write(sink, "trades", shuffled)
    assert len(pairs) == 2, "30 s before and after midnight: two date partitions"
    finals = sorted(p[1] for p in pairs)
    assert finals[0].startswith("trades/venue=binance/date=2025-12-31/")
    assert finals[1].startswith("trades/venue=binance/date=2026-01-01/")
    for f in finals:
        start, end = os.path.basename(f)[:-len(".parquet")].split("_")
        t = pq.read_table(os.path.join(root, f))
        ts = t.column("ts_recv").to_numpy()
        assert int(start) == ts[0] and int(end) == ts[-1] + 1
        assert np.all(np.diff(ts) >= 0)
        assert t.column_names == list(RECORD_COLUMNS["trades"]) + ["symbol"]
        assert t.schema.metadata[b"tickring.schema_version"] == b"1"
        assert t.schema.field("seq").type == "uint64" and t.schema.field("price").type == "double"
    back = pl.read_parquet(f"{root}/trades/**/*.parquet", hive_partitioning=True).sort("seq")
    for n in RECORD_COLUMNS["trades"]:
        assert back[n].to_list() == rec[n].tolist(), n
    assert back["symbol"].to_list() == [symbol_of(int(i)) for i in rec["instrument"]]
    assert not os.listdir(os.path.join(root, ".staging"))


def test_quotes_use_quote_fields(tmp_path):
    sink = ParquetSink(str(tmp_path))
    rec = sample(50, start=MIDNIGHT)
    rec["kind"] = Kind.QUOTE
    rec["bid_price"], rec["bid_size"], rec["ask_price"], rec["ask_size"] = 99.0, 1.5, 101.0, 2.5
    write(sink, "quotes", rec)
    t = pl.read_parquet(f"{tmp_path}/quotes/**/*.parquet")
    assert "price" not in t.columns and "id" not in t.columns
    assert t["bid_price"].unique().to_list() == [99.0] and t["ask_size"].unique().to_list() == [2.5]


def test_documented_queries(tmp_path):
    """The DuckDB and Polars queries of docs/parquet.md run and agree."""
    root = str(tmp_path)
    sink = ParquetSink(root)
    rec = sample(2000, start=MIDNIGHT + 3600 * S)
    write(sink, "trades", rec)
    c = np.zeros(3, CANDLE)
    c["ts"] = MIDNIGHT + np.array([0, 60, 120]) * S
    c["ts_recv"] = c["ts"] + 61 * S
    c["timeframe"] = 60 * S
    c["instrument"] = 1
    c["flags"] = CANDLE_CLEAN
    c["open"] = c["high"] = c["low"] = c["close"] = c["vwap"] = 100.0
    c["volume"] = 2.0
    c["trades"] = 3
    sink.commit(sink.stage("candles", "binance", candles_table(c, symbol_of, lambda tf: "1m")))
    con = duckdb.connect()
    duck = con.execute(f"""
        SELECT symbol, count(*) AS trades, sum(price * size) / sum(size) AS vwap
        FROM read_parquet('{root}/trades/*/*/*.parquet', hive_partitioning = true)
        WHERE venue = 'binance' AND date = '2026-01-01'
        GROUP BY symbol ORDER BY symbol""").fetchall()
    pol = (pl.scan_parquet(f"{root}/trades/**/*.parquet", hive_partitioning=True)
           .filter((pl.col("venue") == "binance") & (pl.col("date") == pl.date(2026, 1, 1)))
           .group_by("symbol").agg(pl.len().alias("trades"),
                                   ((pl.col("price") * pl.col("size")).sum() / pl.col("size").sum()).alias("vwap"))
           .sort("symbol").collect())
    assert [r[0] for r in duck] == pol["symbol"].to_list() == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert [r[1] for r in duck] == pol["trades"].to_list() and sum(r[1] for r in duck) == 2000
    np.testing.assert_allclose([r[2] for r in duck], pol["vwap"].to_list())
    candles = con.execute(f"""
        SELECT ts, open, high, low, close, volume FROM read_parquet('{root}/candles/*/*/*.parquet', hive_partitioning = true)
        WHERE timeframe = '1m' AND clean AND symbol = 'BTCUSDT' ORDER BY ts""").fetchall()
    assert [r[0] for r in candles] == c["ts"].tolist()


def test_crash_leftovers_are_recovered(tmp_path):
    """Staged files a checkpoint promised are moved into place; others (a crash before the
    checkpoint, a half-written file) are deleted; DuckDB/Polars then read everything."""
    root = str(tmp_path)
    sink = ParquetSink(root)
    rec = sample(300, start=MIDNIGHT)
    cols = {n: rec[n] for n in RECORD_COLUMNS["trades"]}
    promised = sink.stage("trades", "binance", records_table("trades", cols, symbol_of))
    Checkpoints(root).save("binance", {"next_seq": 300, "pending": promised})
    orphan = sink.stage("trades", "okx", records_table("trades", cols, symbol_of))
    with open(os.path.join(root, ".staging", "trades.okx.half.parquet"), "wb") as f:
        f.write(b"PAR1\x00\x01truncated")                 # a crash in the middle of a write
    assert not glob.glob(f"{root}/trades/**/*.parquet", recursive=True)
    moved, removed = recover(root)
    assert (moved, removed) == (1, 2)
    files = glob.glob(f"{root}/trades/**/*.parquet", recursive=True)
    assert [os.path.relpath(f, root) for f in files] == [promised[0][1]]
    assert not os.listdir(os.path.join(root, ".staging"))
    assert not os.path.exists(os.path.join(root, orphan[0][1]))
    n = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{root}/trades/**/*.parquet')").fetchone()[0]
    assert n == 300 == pl.read_parquet(f"{root}/trades/**/*.parquet").height
    assert recover(root) == (0, 0)                        # idempotent


def test_row_groups_appended_in_order_and_a_clock_step_starts_a_new_file(tmp_path):
    """The compactor appends rows to spool files piece by piece (its memory holds one piece, and
    it never loads pyarrow); a part that goes back in ts_recv (a wall-clock step) closes the file
    and opens another, so every file stays sorted and its name still says its range. The writer
    job regroups each spool into row groups of row_group_rows and removes the spools."""
    from types import SimpleNamespace

    from appliance.compactor.parquet_job import write as write_job
    from appliance.compactor.process import VenueStream
    root = str(tmp_path)
    sink = ParquetSink(root)
    stream = SimpleNamespace(files={}, finished=[], venue="binance",
                             c=SimpleNamespace(staging=sink, cfg=SimpleNamespace(row_group_rows=800)))
    rec = sample(3000, start=MIDNIGHT + 10 * S)
    for lo in range(0, 2000, 500):                 # four pieces, in order
        VenueStream._append(stream, "trades", rec[lo:lo + 500], "record")
    VenueStream._append(stream, "trades", rec[1000:1500], "record")     # ts_recv goes back
    assert len(stream.finished) == 1 and len(stream.files) == 1
    entries = stream.finished + [f.finish(sink) for f in stream.files.values()]
    assert [e["rows"] for e in entries] == [2000, 500]
    done = write_job({"root": root, "files": entries, "labels": {},
                      "symbols": {str(i): symbol_of(i) for i in (1, 2, 3)}})
    assert done == {"files": 2, "rows": 2500, "bytes": done["bytes"]} and done["bytes"] > 0
    pairs = [(e["staged"], e["final"]) for e in entries]
    sink.commit(pairs)
    first, second = (os.path.join(root, p[1]) for p in pairs)
    meta = pq.read_metadata(first)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [800, 800, 400]
    t = pq.read_table(first)
    assert t.column("seq").to_pylist() == list(range(2000))
    assert t.column("price").to_pylist() == rec["price"][:2000].tolist()
    assert t.column("symbol").to_pylist() == [symbol_of(i) for i in rec["instrument"][:2000]]
    start, end = os.path.basename(first)[:-len(".parquet")].split("_")
    assert int(start) == rec["ts_recv"][0] and int(end) == rec["ts_recv"][1999] + 1
    assert pq.read_table(second).column("seq").to_pylist() == list(range(1000, 1500))
    assert not os.listdir(os.path.join(root, ".staging"))
