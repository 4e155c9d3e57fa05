"""Row groups on their way to Parquet, kept as raw records in spool files under <root>/.staging/.

Why: pyarrow costs a long-lived process 35-45 MB (library pages, module objects, allocator
arenas) that it never gives back, and the compactor runs for months. So the compactor does not
load it: each row group's rows (RECORD or CANDLE records, byte for byte as in the ring) are
appended to a spool file per (dataset, venue, date) in small pieces, and at a flush a
short-lived writer process (parquet_job.py) turns every spool into a Parquet file with row groups
of row_group_rows. Quality rows
are few and travel in the writer's manifest. Nothing is visible before the checkpoint, as before:
a crash leaves spools and staged files that the next start removes, and the rows are read
again from the ring.
"""
from __future__ import annotations

import os
import time
import uuid

import numpy as np

from shm.record import RECORD

from .schema import CANDLE, GRADES, QUALITY_COLUMNS, QUALITY_ROW
from .staging import STAGING, Staging

DAY_NS = 86_400_000_000_000
LAYOUTS = {"record": RECORD, "candle": CANDLE}


def day_of(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(int(ts_ns) // DAY_NS * 86_400))


def by_date(rows: np.ndarray) -> list[tuple[str, np.ndarray, int, int]]:
    """Sort by ts_recv (stable), split by UTC date: [(YYYY-MM-DD, part, first ts_recv, last)]."""
    if not len(rows):
        return []
    ts = rows["ts_recv"]
    if len(ts) > 1 and (ts[1:] < ts[:-1]).any():
        rows = rows[np.argsort(ts, kind="stable")]
        ts = rows["ts_recv"]
    first, last = int(ts[0]), int(ts[-1])
    if first // DAY_NS == last // DAY_NS:                  # the usual case: one day
        return [(day_of(first), rows, first, last)]
    cuts = (np.flatnonzero(np.diff(ts // DAY_NS)) + 1).tolist()
    return [(day_of(ts[lo]), rows[lo:hi], int(ts[lo]), int(ts[hi - 1]))
            for lo, hi in zip([0] + cuts, cuts + [len(ts)])]


def _names(dataset: str, venue: str) -> tuple[str, str, str]:
    token = uuid.uuid4().hex
    return (os.path.join(dataset, f"venue={venue}"), os.path.join(STAGING, f"{dataset}.{venue}.{token}.spool"),
            os.path.join(STAGING, f"{dataset}.{venue}.{token}.parquet"))


class SpoolFile:
    """The rows of one future Parquet file of (dataset, venue, date), appended piece by piece.
    Appends come in ts_recv order (`accepts` says whether a part may follow); `finish()` names
    the file's final place and returns its entry for the writer's manifest."""

    def __init__(self, root: str, dataset: str, venue: str, date: str, layout: str, row_group_rows: int):
        self.root, self.dataset, self.venue, self.date, self.layout = root, dataset, venue, date, layout
        self.row_group_rows = row_group_rows
        self.dtype = LAYOUTS[layout]
        part_dir, self.spool, self.staged = _names(dataset, venue)
        self.rel_dir = os.path.join(part_dir, f"date={date}")
        self._file = open(os.path.join(root, self.spool), "wb")
        self.instruments: set[int] = set()
        self.first_ts = self.last_ts = None
        self.rows = 0

    def accepts(self, first_ts: int) -> bool:
        return first_ts >= self.last_ts

    def append(self, rows: np.ndarray, first_ts: int, last_ts: int) -> None:
        """Rows sorted by ts_recv, none before what the file already has."""
        if rows.dtype != self.dtype:
            raise TypeError(f"spool of {self.layout} rows got {rows.dtype}")
        self._file.write(np.ascontiguousarray(rows).view(np.uint8).data)   # raw bytes (fields overlap)
        inst = rows["instrument"]
        ids = np.flatnonzero(np.bincount(inst)) if int(inst.max()) < 1 << 20 else np.unique(inst)
        self.instruments.update(ids.tolist())
        if self.first_ts is None:
            self.first_ts = first_ts
        self.last_ts = last_ts
        self.rows += len(rows)

    def finish(self, staging: Staging) -> dict:
        """Close the spool; its manifest entry, with the final name claimed (nothing visible yet)."""
        self._file.close()
        return {"dataset": self.dataset, "venue": self.venue, "date": self.date, "layout": self.layout,
                "spool": self.spool, "rows": self.rows, "row_group_rows": self.row_group_rows,
                "instruments": sorted(self.instruments), "staged": self.staged,
                "final": staging.final_name(self.rel_dir, self.first_ts, self.last_ts + 1)}

    def abort(self) -> None:
        """Drop it (the ring still has the rows)."""
        self._file.close()
        path = os.path.join(self.root, self.spool)
        if os.path.exists(path):
            os.unlink(path)


def quality_array(rows: list[dict]) -> np.ndarray:
    """Grade rows (quality.grades) -> QUALITY_ROW, the compact form they wait in for a flush."""
    out = np.zeros(len(rows), QUALITY_ROW)
    for n in QUALITY_COLUMNS:
        if n == "grade":
            out[n] = [r["grade_code"] for r in rows]
        else:
            out[n] = [r[n] for r in rows]
    return out


def quality_entries(staging: Staging, venue: str, parts: list[np.ndarray]) -> list[dict]:
    """Manifest entries for buffered quality rows (QUALITY_ROW arrays), one file per UTC date;
    the rows go into the manifest as columns (JSON lists), grades as their names."""
    out = []
    for date, part, first, last in by_date(np.concatenate(parts)):
        cols = {n: part[n].tolist() for n in QUALITY_COLUMNS}
        cols["grade"] = [GRADES[g] for g in cols["grade"]]
        part_dir, _, staged = _names("quality", venue)
        out.append({"dataset": "quality", "venue": venue, "date": date, "layout": "quality",
                    "rows": len(part), "quality_columns": cols, "staged": staged,
                    "instruments": np.unique(part["instrument"]).tolist(),
                    "final": staging.final_name(os.path.join(part_dir, f"date={date}"), first, last + 1)})
    return out
