"""The compactor's Parquet writer: a short-lived process, so that pyarrow's memory lives only
while files are written, never in the long-running compactor (see spool.py).

The compactor's fork server (forkserver.py) forks one per run and calls `run(MANIFEST)`;
`python -m appliance.compactor.parquet_job MANIFEST [PARENT]` does the same in a fresh
interpreter (by hand, for debugging). pyarrow is loaded lean (pyarrow_lean.py). The manifest
(JSON, written by jobs.py) lists the files of one or more flushes: each spool becomes one
Parquet file in .staging with row groups of its row_group_rows, fsynced; quality rows come
inline. The spools are deleted once their file is written. On success the result is
{files, rows, bytes}; on any error the writer exits non-zero with the traceback on stderr, and
the compactor, which has not checkpointed these rows, stops (its restart reads them again from
the ring). It dies with its parent (PR_SET_PDEATHSIG): a restarted compactor removes whatever a
writer left in .staging, and must not race one still writing there.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

import numpy as np


def write(manifest: dict) -> dict:
    from .parquet_sink import ParquetSink, candles_table, quality_table, records_table
    from .schema import RECORD_COLUMNS
    from .spool import LAYOUTS

    sink = ParquetSink(manifest["root"])
    symbols = {int(k): v for k, v in manifest["symbols"].items()}
    labels = {int(k): v for k, v in manifest["labels"].items()}
    symbol_of = lambda i: symbols.get(int(i), "")            # noqa: E731
    label_of = lambda tf: labels.get(int(tf), str(tf))       # noqa: E731
    done = {"files": 0, "rows": 0, "bytes": 0}
    for entry in manifest["files"]:
        dataset, venue, date = entry["dataset"], entry["venue"], entry["date"]
        out = None
        if entry["layout"] == "quality":
            table = quality_table(entry["quality_columns"], symbol_of)
            out = sink.open(dataset, venue, date, table.schema, staged=entry["staged"])
            out.append(table, 0, 0)
        else:
            dtype = LAYOUTS[entry["layout"]]
            spool = os.path.join(sink.root, entry["spool"])
            left, step = entry["rows"], max(1, int(entry["row_group_rows"]))
            with open(spool, "rb") as f:
                while left:
                    n = min(step, left)
                    rows = np.fromfile(f, dtype, count=n)
                    if len(rows) != n:
                        raise ValueError(f"spool {spool} ends early: {entry['rows'] - left + len(rows)} "
                                         f"of {entry['rows']} rows")
                    left -= n
                    if entry["layout"] == "candle":
                        table = candles_table(rows, symbol_of, label_of)
                    else:
                        table = records_table(dataset, {c: rows[c] for c in RECORD_COLUMNS[dataset]}, symbol_of)
                    if out is None:
                        out = sink.open(dataset, venue, date, table.schema, staged=entry["staged"])
                    out.append(table, 0, 0)
        if out is not None:
            done["bytes"] += out.close()
            done["rows"] += out.rows
            done["files"] += 1
        if entry.get("spool"):
            os.unlink(os.path.join(sink.root, entry["spool"]))
    return done


def run(manifest_path: str) -> dict:
    """Load pyarrow, write the manifest's files; {files, rows, bytes}."""
    from .pyarrow_lean import load
    load()
    with open(manifest_path, "rb") as f:
        manifest = json.loads(f.read())
    return write(manifest)


PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m appliance.compactor.parquet_job MANIFEST [PARENT_PID]", file=sys.stderr)
        return 2
    if len(argv) == 2:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != int(argv[1]):          # it died before prctl took effect
            return 1
    print(json.dumps(run(argv[0])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
