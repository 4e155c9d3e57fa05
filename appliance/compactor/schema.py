"""What the compactor writes: the candle record, its shm table slots, the quality slot, the
Parquet columns of every dataset and the schema version stamped into each file.

Parquet columns are named exactly like the RECORD fields they come from, so a Parquet file can be
replayed into a ring by field name (`tickring replay`). Dataset <- record kinds:

    trades        TRADE        seq ts_event ts_recv instrument side flags price size id
    liquidations  LIQUIDATION  same columns as trades
    book          BOOK         same columns as trades (id = book update id)
    mark          MARK         seq ts_event ts_recv instrument flags price size ask_price id
    quotes        QUOTE        seq ts_event ts_recv instrument flags bid_price bid_size ask_price ask_size
    status        STATUS       seq ts_event ts_recv instrument flags price size id (id = Status code)
    candles       forged       ts timeframe clean instrument open high low close volume buy_volume
                               vwap trades first_id last_id ts_recv (ts_recv = when it closed)
    quality       graded       ts_recv instrument grade reasons + the measures
Every dataset also has `symbol` (the venue's native symbol, dictionary encoded).

No pyarrow here: the compactor process imports this module and never loads pyarrow (only its
short-lived Parquet writer does, see parquet_job.py).
"""
from __future__ import annotations

import re

import numpy as np

from shm.record import Kind

SCHEMA_VERSION = "1"
METADATA_KEY = b"tickring.schema_version"

# -------------------------------------------------------------------------------- timeframes
DEFAULT_TIMEFRAMES = ("1s", "1m", "5m", "15m", "1h", "1d")
_UNITS = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
          "d": 86_400_000_000_000}


def timeframe_ns(label: str) -> int:
    """'1s' -> 1_000_000_000. Units ms, s, m, h, d; at least 1 ms."""
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|h|d)\s*", str(label))
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"bad timeframe {label!r}: use a positive number and a unit in ms, s, m, h, d (e.g. 1s, 5m, 1h)")
    return int(m.group(1)) * _UNITS[m.group(2)]


# -------------------------------------------------------------------------------- candle record
CANDLE_CLEAN = 1      # `flags` bit: forged without the trades flagged as wicks

# A closed (or forming) candle; also the dtype of the candle ring (seq first, 128 bytes).
CANDLE = np.dtype({
    "names": ["seq", "ts", "ts_recv", "timeframe", "instrument", "flags", "open", "high", "low",
              "close", "volume", "buy_volume", "vwap", "trades", "first_id", "last_id"],
    "formats": ["<u8", "<i8", "<i8", "<i8", "<u4", "<u4", "<f8", "<f8", "<f8", "<f8", "<f8",
                "<f8", "<f8", "<u8", "<i8", "<i8"],
    "offsets": [0, 8, 16, 24, 32, 36, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112],
    "itemsize": 128,
})
# ts = interval start (ns); ts_recv = receive-clock time the candle closed (0 while forming);
# timeframe in ns; first_id/last_id = ids of the opening and closing trades.

# One slot of the candle table: the forming and the last closed candle of one
# (instrument, timeframe); slot index = instrument * len(timeframes) + timeframe index.
# Flat (a table's dtype is stored as JSON, nested records would not survive): forming_<field>
# and closed_<field> for every CANDLE field.
CANDLE_SLOT = np.dtype({
    "names": [f"{w}_{n}" for w in ("forming", "closed") for n in CANDLE.names],
    "formats": [CANDLE.fields[n][0] for _ in range(2) for n in CANDLE.names],
    "offsets": [base + CANDLE.fields[n][1] for base in (0, CANDLE.itemsize) for n in CANDLE.names],
    "itemsize": 2 * CANDLE.itemsize,
})


def slot_part(rows: np.ndarray, which: str) -> np.ndarray:
    """The `which` ("forming"/"closed") half of candle-table rows, as CANDLE records (a copy)."""
    out = np.zeros(len(rows), CANDLE)
    for n in CANDLE.names:
        out[n] = rows[f"{which}_{n}"]
    return out

# One slot of the quality table (slot index = instrument id).
GRADES = ("excellent", "good", "degraded", "limited")
QUALITY_SLOT = np.dtype([
    ("ts", "<i8"), ("instrument", "<u4"), ("grade", "u1"), ("pad", "u1", (3,)),
    ("msg_rate", "<f8"), ("staleness_ns", "<i8"), ("skew_p50_ns", "<i8"), ("skew_p99_ns", "<i8"),
    ("gaps", "<u4"), ("resyncs", "<u4"), ("reconnects", "<u4"), ("out_of_order", "<u4"),
    ("crossed", "<u4"), ("wicks", "<u4"), ("lost", "<u8"), ("venue", "S16"), ("reasons", "S104"),
])

# -------------------------------------------------------------------------------- Parquet
RECORD_DATASETS = {
    Kind.TRADE: "trades", Kind.QUOTE: "quotes", Kind.BOOK: "book", Kind.MARK: "mark",
    Kind.LIQUIDATION: "liquidations", Kind.STATUS: "status",
}
DATASETS = tuple(RECORD_DATASETS.values()) + ("candles", "quality")

_LEVEL = ("seq", "ts_event", "ts_recv", "instrument", "side", "flags", "price", "size", "id")
RECORD_COLUMNS = {
    "trades": _LEVEL,
    "liquidations": _LEVEL,
    "book": _LEVEL,
    "status": _LEVEL,
    "mark": ("seq", "ts_event", "ts_recv", "instrument", "flags", "price", "size", "ask_price", "id"),
    "quotes": ("seq", "ts_event", "ts_recv", "instrument", "flags", "bid_price", "bid_size",
               "ask_price", "ask_size"),
}
CANDLE_COLUMNS = ("ts", "timeframe", "clean", "instrument", "open", "high", "low", "close",
                  "volume", "buy_volume", "vwap", "trades", "first_id", "last_id", "ts_recv")
QUALITY_COLUMNS = ("ts_recv", "instrument", "grade", "reasons", "msg_rate", "staleness_ns",
                   "skew_p50_ns", "skew_p99_ns", "gaps", "resyncs", "reconnects", "out_of_order",
                   "crossed", "wicks", "lost", "late_trades")
# quality rows as the compactor buffers them until a flush: ~130 bytes a row (a dict was ~660;
# 1,000 instruments graded once a minute for an hourly file made ~40 MB of dicts); the grade is
# GRADES' index, reasons a str ("" shared)
QUALITY_ROW = np.dtype([("ts_recv", "<i8"), ("instrument", "<u4"), ("grade", "u1"), ("reasons", "O"),
                        ("msg_rate", "<f8"), ("staleness_ns", "<i8"), ("skew_p50_ns", "<i8"),
                        ("skew_p99_ns", "<i8")] + [(c, "<i8") for c in QUALITY_COLUMNS[8:]])
assert QUALITY_ROW.names == QUALITY_COLUMNS


def file_metadata(dataset: str, venue: str) -> dict[bytes, bytes]:
    return {METADATA_KEY: SCHEMA_VERSION.encode(), b"tickring.dataset": dataset.encode(),
            b"tickring.venue": venue.encode()}
