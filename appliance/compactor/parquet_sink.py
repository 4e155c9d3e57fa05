"""Crash-safe Parquet files: build Arrow tables from records/candles/quality rows, stage them
outside the dataset root (row group by row group), fsync, and rename them into their hive
partition.

Layout: <root>/<dataset>/venue=<venue>/date=YYYY-MM-DD/<start>_<end>.parquet where start/end
are the first ts_recv and the last ts_recv + 1 (ns, end-exclusive) of the file's rows; rows are
sorted by ts_recv (row groups follow each other in ts_recv order too: a part that would go back in
time, e.g. after a wall-clock step, starts a new file). A file is only ever visible under the root once it is complete and fsynced,
so a crash at any instant leaves only whole files there (half-written ones stay in
<root>/.staging/ and are removed at the next start).

Encodings (measured on realistic trades, see `tickring bench compactor`): zstd; dictionary for
symbol, instrument, side, flags, ts_event (millisecond venue clocks repeat) and price/size (tick
and lot sized values repeat); DELTA_BINARY_PACKED for seq, ts_recv and id, which grow steadily.
"""
from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .schema import CANDLE_COLUMNS, QUALITY_COLUMNS, RECORD_COLUMNS, file_metadata
from .staging import STAGING, Staging, fsync_dir  # noqa: F401  (fsync_dir: re-exported)

DAY_NS = 86_400_000_000_000
_DELTA = ("seq", "ts_recv", "id", "ts", "first_id", "last_id")
_DICT = ("symbol", "instrument", "side", "flags", "ts_event", "price", "size", "bid_price",
         "bid_size", "ask_price", "ask_size", "timeframe", "clean", "grade", "reasons")


_ARROW = {"u8": pa.uint64(), "i8": pa.int64(), "u4": pa.uint32(), "u2": pa.uint16(),
          "u1": pa.uint8(), "f8": pa.float64()}


def arrow_type(np_dtype: np.dtype) -> pa.DataType:
    return _ARROW[np_dtype.str[1:]]


def _symbols(instrument: np.ndarray, symbol_of) -> pa.DictionaryArray:
    """Dictionary-encoded native symbols for an instrument id column."""
    instrument = instrument.astype(np.int64, copy=False)
    if len(instrument) and 0 <= int(instrument.min()) and int(instrument.max()) < 1 << 24:
        uniq = np.flatnonzero(np.bincount(instrument))       # O(n), no sort
        slot = np.zeros(int(uniq[-1]) + 1, np.int32)
        slot[uniq] = np.arange(len(uniq), dtype=np.int32)
        inv = slot[instrument]
    else:
        uniq, inv = np.unique(instrument, return_inverse=True)
    names = [symbol_of(int(i)) for i in uniq]
    return pa.DictionaryArray.from_arrays(pa.array(inv.astype(np.int32)), pa.array(names, pa.string()))


def records_table(dataset: str, columns: dict[str, np.ndarray], symbol_of) -> pa.Table:
    """Columns (RECORD field name -> contiguous array) of one dataset -> Arrow table."""
    names = list(RECORD_COLUMNS[dataset])
    arrays = [pa.array(np.ascontiguousarray(columns[n]), arrow_type(columns[n].dtype)) for n in names]
    arrays.append(_symbols(columns["instrument"], symbol_of))
    return pa.Table.from_arrays(arrays, names=names + ["symbol"])


def candles_table(candles: np.ndarray, symbol_of, label_of) -> pa.Table:
    """CANDLE records -> the candles dataset (timeframe as its label, clean as a bool)."""
    from .schema import CANDLE_CLEAN
    cols = {}
    for n in CANDLE_COLUMNS:
        if n == "timeframe":
            tfs = candles["timeframe"]
            uniq, inv = np.unique(tfs, return_inverse=True)
            cols[n] = pa.DictionaryArray.from_arrays(pa.array(inv.astype(np.int32)),
                                                     pa.array([label_of(int(t)) for t in uniq], pa.string()))
        elif n == "clean":
            cols[n] = pa.array((candles["flags"] & CANDLE_CLEAN) != 0)
        else:
            a = np.ascontiguousarray(candles[n])
            cols[n] = pa.array(a, arrow_type(a.dtype))
    cols["symbol"] = _symbols(candles["instrument"], symbol_of)
    return pa.Table.from_arrays(list(cols.values()), names=list(cols))


def quality_table(columns: dict, symbol_of) -> pa.Table:
    """Quality rows as columns ({name: list} for every QUALITY_COLUMNS name, grades by
    name; spool.quality_entries) -> the quality dataset."""
    types = {"ts_recv": pa.int64(), "instrument": pa.uint32(), "grade": pa.string(),
             "reasons": pa.string(), "msg_rate": pa.float64()}
    cols = {n: pa.array(columns[n], types.get(n, pa.int64())) for n in QUALITY_COLUMNS}
    cols["symbol"] = pa.array([symbol_of(int(i)) for i in columns["instrument"]], pa.string())
    return pa.Table.from_arrays(list(cols.values()), names=list(cols))


def write_options(schema: pa.Schema) -> dict:
    names = schema.names
    enc = {n: "DELTA_BINARY_PACKED" for n in _DELTA if n in names
           and pa.types.is_integer(schema.field(n).type)}
    return dict(compression="zstd", use_dictionary=[n for n in _DICT if n in names],
                column_encoding=enc, write_statistics=True)


def by_date(table: pa.Table) -> list[tuple[str, pa.Table, int, int]]:
    """Sort by ts_recv, split by UTC date: [(YYYY-MM-DD, part, first ts_recv, last ts_recv)]."""
    if table.num_rows == 0:
        return []
    ts = table.column("ts_recv").to_numpy()
    if len(ts) > 1 and np.any(ts[1:] < ts[:-1]):
        order = np.argsort(ts, kind="stable")
        table = table.take(pa.array(order))
        ts = ts[order]
    days = ts // DAY_NS
    cuts = np.flatnonzero(np.diff(days)) + 1
    return [(time.strftime("%Y-%m-%d", time.gmtime(int(days[lo]) * 86_400)),
             table.slice(int(lo), int(hi - lo)), int(ts[lo]), int(ts[hi - 1]))
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ts)])]


class StagedFile:
    """One Parquet file of one (dataset, venue, date) written row group by row group in
    .staging, so the compactor holds a row group in memory, not a whole file. Appends must come
    in ts_recv order (`accepts` says whether a part may follow); `finish()` closes and fsyncs
    it and names its final place; `abort()` drops it."""

    def __init__(self, sink: "ParquetSink", dataset: str, venue: str, date: str, schema: pa.Schema,
                 staged: str | None = None):
        self.sink = sink
        self.rel_dir = os.path.join(dataset, f"venue={venue}", f"date={date}")
        self.staged = staged or os.path.join(STAGING, f"{dataset}.{venue}.{uuid.uuid4().hex}.parquet")
        self.path = os.path.join(sink.root, self.staged)
        self.schema = schema
        self._file = open(self.path, "wb")
        self._writer = pq.ParquetWriter(self._file, schema.with_metadata(file_metadata(dataset, venue)),
                                        **write_options(schema))
        self.first_ts = self.last_ts = None
        self.rows = 0

    def accepts(self, part: pa.Table, first_ts: int) -> bool:
        return first_ts >= self.last_ts and part.schema.equals(self.schema)

    def append(self, part: pa.Table, first_ts: int, last_ts: int) -> None:
        """One row group (rows sorted by ts_recv, none before what the file already has)."""
        self._writer.write_table(part, row_group_size=max(1, part.num_rows))
        if self.first_ts is None:
            self.first_ts = first_ts
        self.last_ts = last_ts
        self.rows += part.num_rows

    def close(self) -> int:
        """Close and fsync it in .staging; its size in bytes."""
        self._writer.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        size = os.path.getsize(self.path)
        self.sink.bytes_written += size
        self.sink.rows_written += self.rows
        return size

    def finish(self) -> tuple[str, str]:
        """Close and fsync; (staged, final) paths relative to the root, nothing visible yet."""
        self.close()
        return self.staged, self.sink.final_name(self.rel_dir, self.first_ts, self.last_ts + 1)

    def abort(self) -> None:
        """Close without publishing (the next start removes any staged file no checkpoint names)."""
        try:
            self._writer.close()
            self._file.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)


class ParquetSink(Staging):
    """Stages Parquet files (Arrow tables in this process) and moves them into the dataset root.
    The compactor itself spools row groups instead (spool.py) and leaves Arrow to a short-lived
    writer process (parquet_job.py); tools and tests write tables directly with this."""

    def open(self, dataset: str, venue: str, date: str, schema: pa.Schema, staged: str | None = None) -> StagedFile:
        """A file to append row groups to (see StagedFile)."""
        return StagedFile(self, dataset, venue, date, schema, staged)

    def stage(self, dataset: str, venue: str, table: pa.Table) -> list[tuple[str, str]]:
        """A whole table at once: sorted by ts_recv, one file per UTC date, each fsynced in
        .staging. Returns (staged, final) paths relative to the root; nothing is visible yet."""
        out = []
        for date, part, first, last in by_date(table):
            f = self.open(dataset, venue, date, part.schema)
            f.append(part, first, last)
            out.append(f.finish())
        return out
