"""`tickring replay`: Parquet back into a ring, in receive order, at recorded pace or flat out.

The compactor writes one stream of files per (dataset, venue):
<root>/<dataset>/venue=<v>/date=YYYY-MM-DD/<start>_<end>.parquet, each sorted by ts_recv. Replay
merges those streams by (ts_recv, original seq) in bounded memory: it reads large Arrow batches,
converts them to RECORD arrays column by column (vectorized), and repeatedly emits everything
older than the earliest "last buffered time" of the streams that still have data. Every record
is published with Flag.REPLAY set: that flag is the only thing telling a replay from live data.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import time

import click
import numpy as np

from shm.record import RECORD, Flag, Kind
from tools.errors import friendly
from tools.timeparse import HELP as TIME_HELP, TIME, check_range, day_of, format_ns

RECORD_DATASETS = {"trades": Kind.TRADE, "quotes": Kind.QUOTE, "book": Kind.BOOK,
                   "mark": Kind.MARK, "liquidations": Kind.LIQUIDATION, "status": Kind.STATUS}
READ_BATCH = 1 << 16          # rows per Arrow batch (4 MiB of records): per-batch costs vanish,
                              # and merged arrays stay under glibc's 32 MiB mmap threshold
_FILE_RE = re.compile(r"^(\d+)_(\d+)")
_INF = np.iinfo(np.int64).max


class ReplayError(click.ClickException):
    """A user-facing replay problem (bad path, nothing to replay, missing ring)."""


@dataclasses.dataclass
class Source:
    """One ordered chain of files: a dataset of a venue, oldest file first."""
    dataset: str
    venue: str
    files: list[str]
    rows: int = 0              # rows in the files (before row filters), for the progress bar


@dataclasses.dataclass
class Plan:
    """What a replay will read, and what it noticed about the data (for the user)."""
    root: str
    sources: list[Source]
    venues: list[str]
    first_ns: int | None       # earliest/latest file bounds of the selected files (from names)
    last_ns: int | None
    notes: list[str]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sources)


# ------------------------------------------------------------------------------- discovery
def _file_bounds(name: str) -> tuple[int, int] | None:
    m = _FILE_RE.match(name)
    return (int(m[1]), int(m[2])) if m else None


def _partition_value(entry: str, key: str) -> str | None:
    return entry[len(key) + 1:] if entry.startswith(key + "=") else None


def plan(root: str, datasets=None, venues=None, start: int | None = None, end: int | None = None,
         count_rows: bool = True) -> Plan:
    """Find the files to replay under root; raise ReplayError when there are none, naming why."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise ReplayError(f"no such directory: {root} (expected a Parquet root written by the "
                          f"compactor: <root>/<dataset>/venue=<venue>/date=YYYY-MM-DD/*.parquet)")
    base = os.path.basename(root.rstrip("/"))
    if base in RECORD_DATASETS and not any(os.path.isdir(os.path.join(root, d)) for d in RECORD_DATASETS):
        # PATH is one dataset's directory: replay just that dataset
        datasets = [base]
        root = os.path.dirname(root)
    wanted = list(datasets) if datasets else list(RECORD_DATASETS)
    for d in wanted:
        if d not in RECORD_DATASETS:
            raise ReplayError(f"unknown dataset {d!r}; replayable datasets: {', '.join(RECORD_DATASETS)}")
    present = [d for d in wanted if os.path.isdir(os.path.join(root, d))]
    if not present:
        found = sorted(e for e in os.listdir(root) if os.path.isdir(os.path.join(root, e)))
        raise ReplayError(f"no record datasets ({', '.join(wanted)}) under {root}"
                          f"{'; it holds: ' + ', '.join(found) if found else ' (it is empty)'}")
    first_day = day_of(start) if start is not None else None
    last_day = day_of(end - 1) if end is not None else None
    sources: list[Source] = []
    all_venues: set[str] = set()
    days_seen: dict[str, set[str]] = {}
    first_ns = last_ns = None
    for d in present:
        droot = os.path.join(root, d)
        for ventry in sorted(os.listdir(droot)):
            venue = _partition_value(ventry, "venue")
            if venue is None:
                continue
            all_venues.add(venue)
            if venues and venue not in venues:
                continue
            files = []
            for dentry in sorted(os.listdir(os.path.join(droot, ventry))):
                day = _partition_value(dentry, "date")
                if day is None:
                    continue
                if (first_day and day < first_day) or (last_day and day > last_day):
                    continue
                ddir = os.path.join(droot, ventry, dentry)
                names = [f for f in os.listdir(ddir) if f.endswith(".parquet")]
                names.sort(key=lambda f: (_file_bounds(f) or (0, 0), f))
                for f in names:
                    b = _file_bounds(f)
                    if b is not None:
                        # conservative: the end in the name may be inclusive or exclusive
                        if (start is not None and b[1] < start) or (end is not None and b[0] >= end):
                            continue
                        first_ns = b[0] if first_ns is None else min(first_ns, b[0])
                        last_ns = b[1] if last_ns is None else max(last_ns, b[1])
                    files.append(os.path.join(ddir, f))
                    days_seen.setdefault(venue, set()).add(day)
            if files:
                sources.append(Source(d, venue, files))
    notes = []
    if venues:
        for v in venues:
            if v not in all_venues:
                raise ReplayError(f"no data for venue {v!r} under {root}; venues with data: "
                                  f"{', '.join(sorted(all_venues)) or 'none'}")
    if not sources:
        span = "" if start is None and end is None else (
            f" between {format_ns(start) if start is not None else 'the beginning'} and "
            f"{format_ns(end) if end is not None else 'the end'}")
        raise ReplayError(f"nothing to replay: no Parquet files of {', '.join(present)} under "
                          f"{root}{span}")
    if start is not None and end is not None:
        days = _days_between(start, end)
        for v, seen in sorted(days_seen.items()):
            missing = [x for x in days if x not in seen]
            if missing:
                notes.append(f"no data for {v} on {', '.join(missing)} (missing partitions)")
    if count_rows:
        import pyarrow.parquet as pq
        for s in sources:
            s.rows = sum(pq.ParquetFile(f).metadata.num_rows for f in s.files)
    return Plan(root, sources, sorted({s.venue for s in sources}), first_ns, last_ns, notes)


def _days_between(start: int, end: int) -> list[str]:
    days = []
    t = start - start % (86400 * 10**9)
    while t < end:
        days.append(day_of(t))
        t += 86400 * 10**9
    return days


SERVICE_ROOT = "/var/lib/tickring/parquet"


def default_root() -> str | None:
    """$TICKRING_PARQUET_ROOT, else the service's root, else the demo's (whichever exists)."""
    env = os.environ.get("TICKRING_PARQUET_ROOT")
    if env:
        return env
    import tempfile
    demo = os.path.join(tempfile.gettempdir(), f"tickring-demo-{os.getuid()}", "parquet")
    for root in (SERVICE_ROOT, demo):
        if os.path.isdir(root):
            return root
    return None


def dataset_files(root: str, dataset: str, venues=None, start: int | None = None,
                  end: int | None = None, margin_days: int = 1) -> dict[str, list[str]]:
    """venue -> Parquet files of one dataset (oldest first), pruned by date partition with a
    margin (a candle's day and its file's day can differ)."""
    droot = os.path.join(root, dataset)
    out: dict[str, list[str]] = {}
    if not os.path.isdir(droot):
        return out
    day_ns = 86400 * 10**9
    lo = day_of(start - margin_days * day_ns) if start is not None else None
    hi = day_of(end + margin_days * day_ns) if end is not None else None
    for ventry in sorted(os.listdir(droot)):
        venue = _partition_value(ventry, "venue")
        if venue is None or (venues and venue not in venues):
            continue
        files = []
        for dentry in sorted(os.listdir(os.path.join(droot, ventry))):
            day = _partition_value(dentry, "date")
            if day is None or (lo and day < lo) or (hi and day > hi):
                continue
            ddir = os.path.join(droot, ventry, dentry)
            names = [f for f in os.listdir(ddir) if f.endswith(".parquet")]
            names.sort(key=lambda f: (_file_bounds(f) or (0, 0), f))
            files += [os.path.join(ddir, f) for f in names]
        out[venue] = files
    return out


def tune_malloc() -> None:
    """Keep freed memory in this process instead of returning it to the OS after every batch.

    Replay allocates and frees arrays of a few MiB per batch; by default glibc trims the heap
    and maps big blocks afresh each time, so every batch pays page faults again (measured: half
    the CPU time of a replay went to the kernel). A replay is a short-lived tool process, so
    holding on to its peak memory is the right trade. No-op where mallopt is unavailable.
    """
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        libc.mallopt(M_TOP_PAD, 64 << 20)
    except (OSError, AttributeError):
        pass


# ------------------------------------------------------------------------------- conversion
def to_records(batch, kind: int) -> np.ndarray:
    """An Arrow RecordBatch of a record dataset -> a RECORD array (column by column, vectorized).

    Columns named like RECORD fields fill them; `kind` comes from the dataset when absent;
    nulls become 0; timestamp columns are taken as int ns.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    out = np.zeros(n, RECORD)
    names = batch.schema.names
    for name in names:
        if name not in RECORD.names:
            continue
        col = batch.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        if col.null_count:
            col = pc.fill_null(col, 0)
        out[name] = col.to_numpy(zero_copy_only=False)
    if "kind" not in names:
        out["kind"] = kind
    out["flags"] |= np.uint16(Flag.REPLAY)
    return out


_V = np.dtype((np.void, RECORD.itemsize))   # a record as opaque bytes: copies are memcpy


def concat(parts: list[np.ndarray]) -> np.ndarray:
    """np.concatenate for RECORD arrays. numpy 2 promotes overlapping-field dtypes to a packed
    88-byte dtype on concatenate (a ring refuses it), and structured copies go field by field;
    copying as opaque 64-byte items is ~60x faster."""
    out = np.empty(sum(len(p) for p in parts), _V)
    i = 0
    for p in parts:
        out[i:i + len(p)] = p.view(_V)
        i += len(p)
    return out.view(RECORD)


def take(recs: np.ndarray, order: np.ndarray) -> np.ndarray:
    """recs[order] as a memcpy-speed gather (structured fancy indexing is ~30x slower)."""
    return np.take(recs.view(_V), order).view(RECORD)


def merge_order(ts: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Permutation sorting by (ts, seq) for a concatenation of sorted runs.

    A stable sort on ts alone is fast on pre-sorted runs (timsort merges them); only groups of
    equal ts, which are rare and small, are then re-sorted by seq.
    """
    order = np.argsort(ts, kind="stable")
    st = ts[order]
    eq = st[1:] == st[:-1]
    if eq.any():
        tied = np.zeros(len(ts), bool)
        tied[1:] |= eq
        tied[:-1] |= eq
        pos = np.flatnonzero(tied)
        sub = order[pos]
        order[pos] = sub[np.lexsort((seq[sub], ts[sub]))]
    return order


def _ordered(recs: np.ndarray) -> np.ndarray:
    """recs sorted by (ts_recv, seq); a no-op check when they already are (the usual case)."""
    ts = recs["ts_recv"]
    if len(ts) < 2:
        return recs
    d = np.diff(ts)
    if (d >= 0).all():
        ties = d == 0
        if not ties.any() or (np.diff(recs["seq"].astype(np.int64))[ties] > 0).all():
            return recs
    return take(recs, merge_order(ts, recs["seq"]))


def merge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One array of the records of several sorted parts in (ts_recv, seq) order. Each part is
    scattered straight to its final places (one copy instead of concatenate + gather)."""
    ts = np.concatenate([p["ts_recv"] for p in parts])
    seq = np.concatenate([p["seq"] for p in parts])
    order = merge_order(ts, seq)
    pos = np.empty(len(ts), np.intp)
    pos[order] = np.arange(len(ts))
    out = np.empty(len(ts), _V)
    i = 0
    for p in parts:
        out[pos[i:i + len(p)]] = p.view(_V)
        i += len(p)
    return out.view(RECORD)


def row_groups_in(pf, start: int | None, end: int | None) -> list[int]:
    """Row groups of a file that may hold ts_recv in [start, end), from their statistics
    (a partial-day replay skips the rest of the file without decoding it)."""
    n = pf.metadata.num_row_groups
    if start is None and end is None:
        return list(range(n))
    try:
        col = pf.schema_arrow.get_field_index("ts_recv")
    except Exception:
        col = -1
    out = []
    for g in range(n):
        st = pf.metadata.row_group(g).column(col).statistics if col >= 0 else None
        if st is None or not st.has_min_max:
            out.append(g)
            continue
        lo, hi = st.min, st.max
        if hasattr(lo, "value"):          # timestamp statistics
            lo, hi = lo.value, hi.value
        lo, hi = int(lo), int(hi)
        if (end is not None and lo >= end) or (start is not None and hi < start):
            continue
        out.append(g)
    return out


class _Stream:
    """Reads one Source batch by batch, filtered, as RECORD arrays sorted by (ts_recv, seq)."""

    def __init__(self, src: Source, start, end, symbols, remap, batch_rows: int):
        self.src = src
        self.kind = RECORD_DATASETS[src.dataset]
        self.start, self.end = start, end
        self.symbols = symbols
        self.remap = remap
        self.batch_rows = batch_rows
        self.buf = np.empty(0, RECORD)
        self.done = False
        self.rows_read = 0
        self._it = self._batches()

    def _batches(self):
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        for path in self.src.files:
            pf = pq.ParquetFile(path)
            cols = [c for c in pf.schema_arrow.names if c in RECORD.names or c == "symbol"]
            need_symbol = self.symbols is not None or self.remap is not None
            if not need_symbol and "symbol" in cols:
                cols.remove("symbol")
            groups = row_groups_in(pf, self.start, self.end)
            if not groups:
                continue
            for batch in pf.iter_batches(batch_size=self.batch_rows, columns=cols,
                                         row_groups=groups, use_threads=True):
                self.rows_read += batch.num_rows
                sym = None
                if need_symbol and "symbol" in batch.schema.names:
                    sym = batch.column("symbol")
                    if pa.types.is_dictionary(sym.type):
                        sym = sym.dictionary_decode()
                    if self.symbols is not None:
                        keep = pc.is_in(sym, value_set=self.symbols)
                        batch = batch.filter(keep)
                        sym = sym.filter(keep)
                        if batch.num_rows == 0:
                            continue
                recs = to_records(batch, self.kind)
                if self.remap is not None and sym is not None:
                    self.remap(self.src.venue, sym, recs)
                if self.start is not None or self.end is not None:
                    ts = recs["ts_recv"]
                    lo = np.searchsorted(ts, self.start) if self.start is not None else 0
                    hi = np.searchsorted(ts, self.end) if self.end is not None else len(ts)
                    if lo > 0 or hi < len(ts):
                        if (np.diff(ts) >= 0).all():
                            recs = recs[lo:hi]
                        else:
                            m = np.ones(len(ts), bool)
                            if self.start is not None:
                                m &= ts >= self.start
                            if self.end is not None:
                                m &= ts < self.end
                            recs = recs[m]
                if len(recs):
                    yield _ordered(recs)

    def fill(self) -> None:
        """Append the next non-empty batch to the buffer (or mark the stream done)."""
        try:
            nxt = next(self._it)
        except StopIteration:
            self.done = True
            return
        self.buf = nxt if not len(self.buf) else concat([self.buf, nxt])

    @property
    def last_ts(self) -> int:
        return int(self.buf["ts_recv"][-1]) if len(self.buf) else _INF


def merged(p: Plan, start=None, end=None, symbols=None, remap=None, batch_rows: int = READ_BATCH,
           streams_out: list | None = None):
    """Yield RECORD arrays of every selected record in (ts_recv, seq) order, in bounded memory."""
    import pyarrow as pa

    sym_set = None
    if symbols:
        vals = sorted({s for s in symbols} | {s.upper() for s in symbols})
        sym_set = pa.array(vals, type=pa.string())
    streams = [_Stream(s, start, end, sym_set, remap, batch_rows) for s in p.sources]
    if streams_out is not None:
        streams_out.extend(streams)
    for s in streams:
        while not s.done and not len(s.buf):
            s.fill()
    while True:
        active = [s for s in streams if len(s.buf)]
        if not active:
            return
        live = [s for s in active if not s.done]
        cut = min(s.last_ts for s in live) if live else _INF
        parts = []
        for s in active:
            if cut == _INF:
                k = len(s.buf)
            else:
                k = int(np.searchsorted(s.buf["ts_recv"], cut, side="left"))
            if k:
                parts.append(s.buf[:k])
                s.buf = s.buf[k:]
        if parts:
            if len(parts) == 1:
                yield parts[0]
            else:
                yield merge_parts(parts)
        else:
            for s in live:                 # every buffered record sits at the cut: read on
                if s.last_ts == cut:
                    s.fill()
        for s in streams:
            while not s.done and not len(s.buf):
                s.fill()


# ------------------------------------------------------------------------------- registry remap
class Remapper:
    """Rewrites `instrument` from the recorded ids to the ids of a registry, by (venue, symbol)."""

    def __init__(self, registry):
        self.reg = registry
        self.by_key: dict[tuple[str, str], list[int]] = {}
        for inst in registry.all():
            self.by_key.setdefault((inst.venue, inst.symbol), []).append(int(inst.id))
        self.unknown: set[tuple[str, str]] = set()

    def __call__(self, venue: str, sym, recs: np.ndarray) -> None:
        import pyarrow.compute as pc

        enc = pc.dictionary_encode(sym).combine_chunks() if hasattr(sym, "chunks") else \
            pc.dictionary_encode(sym)
        idx = enc.indices.to_numpy(zero_copy_only=False)
        dictionary = enc.dictionary.to_pylist()
        table = np.zeros(len(dictionary), np.int64)
        for j, s in enumerate(dictionary):
            ids = self.by_key.get((venue, s))
            if not ids:
                self.unknown.add((venue, s))
                table[j] = -1
            else:
                table[j] = ids[0]
        new = table[idx]
        keep = new >= 0
        recs["instrument"][keep] = new[keep]


# ------------------------------------------------------------------------------- pacing + publish
class Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, total: int, enabled: bool):
        self.total = max(total, 1)
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, ts: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        frac = min(done / self.total, 1.0)
        width = 24
        fill = int(frac * width)
        rate = done / max(now - self.t0, 1e-9)
        sys.stderr.write(f"\rreplay {frac * 100:5.1f}% |{'#' * fill}{'.' * (width - fill)}| "
                         f"{done:,}/{self.total:,} rec {rate / 1e6:6.2f}M/s at {format_ns(ts)} ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def publish_paced(writer, chunks, speed: float | None, chunk_max: int, progress: Progress | None = None,
                  stop=None, stats: dict | None = None) -> dict:
    """Publish record arrays through writer; speed None = as fast as possible, else keep the
    recorded inter-arrival times divided by speed. Returns (and keeps up to date in `stats`,
    so an interrupted replay still knows) the count and the replayed time span."""
    st = stats if stats is not None else {}
    st.update(records=0, first_ts=None, last_ts=None)
    t_wall0 = sim0 = None
    clock = time.perf_counter_ns
    for chunk in chunks:
        if stop is not None and stop():
            break
        if st["first_ts"] is None:
            st["first_ts"] = int(chunk["ts_recv"][0])
        ts = chunk["ts_recv"]
        if speed is None:
            for i in range(0, len(chunk), chunk_max):
                part = chunk[i:i + chunk_max]
                writer.publish(part)
                st["records"] += len(part)
                st["last_ts"] = int(ts[i + len(part) - 1])
            if progress:
                progress.update(st["records"], st["last_ts"])
            continue
        if t_wall0 is None:
            t_wall0, sim0 = clock(), st["first_ts"]
        due = ((ts - sim0) / speed).astype(np.int64)
        i, n = 0, len(chunk)
        while i < n:
            elapsed = clock() - t_wall0
            k = min(max(int(np.searchsorted(due, elapsed, side="right")), i), i + chunk_max)
            if k > i:
                writer.publish(chunk[i:k])
                st["records"] += k - i
                st["last_ts"] = int(ts[k - 1])
                i = k
                if progress:
                    progress.update(st["records"], st["last_ts"])
                continue
            wait_ns = int(due[i]) - elapsed
            if wait_ns > 0:
                time.sleep(min(wait_ns / 1e9, 0.05))
            if stop is not None and stop():
                break
    return st


def parse_speed(text: str) -> float | None:
    """'max' -> None (no pacing), else a positive factor (1 = recorded pace)."""
    t = str(text).strip().lower()
    if t in ("max", "inf"):
        return None
    if t.endswith("x"):            # "10x" reads as 10
        t = t[:-1]
    try:
        v = float(t)
    except ValueError:
        raise click.BadParameter(f"speed must be a positive number (1, 10, 0.5) or 'max', got {text!r}",
                                 param_hint="'--speed'") from None
    if not v > 0 or math.isinf(v):
        raise click.BadParameter(f"speed must be > 0 or 'max', got {text!r}", param_hint="'--speed'")
    return v


def _split(values) -> list[str] | None:
    out = []
    for v in values or ():
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out or None


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--into", "into", required=True, metavar="RING", help="Ring to publish into.")
@click.option("--speed", default="1", show_default=True,
              help="1 = recorded pace, 10 = ten times faster, max = as fast as possible.")
@click.option("--start", type=TIME, default=None, help="First receive time to replay (inclusive). " + TIME_HELP)
@click.option("--end", type=TIME, default=None, help="Replay up to this receive time (exclusive).")
@click.option("--venues", multiple=True, help="Only these venues (comma-separated or repeated).")
@click.option("--symbols", multiple=True, help="Only these native symbols (comma-separated or repeated).")
@click.option("--datasets", multiple=True,
              help=f"Only these datasets (default all: {', '.join(RECORD_DATASETS)}).")
@click.option("--registry", default=None,
              help="Map instruments to this registry's ids by (venue, symbol); default: keep the "
                   "recorded ids.")
@click.option("--create", is_flag=True, help="Create the ring if it does not exist.")
@click.option("--capacity", type=int, default=1 << 20, show_default=True,
              help="Capacity (records, a power of two) of a ring made by --create.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@friendly
def command(path, into, speed, start, end, venues, symbols, datasets, registry, create, capacity,
            progress, as_json):
    """Replay recorded Parquet from PATH into the ring RING, merged across datasets and venues in
    receive-time (ts_recv) order.

    Every replayed record carries the REPLAY flag; everything else is as recorded (the ring
    gives new seq numbers). At a finite --speed the recorded gaps between records are kept
    (divided by the speed); --speed max publishes as fast as the ring takes it, and a consumer
    that cannot keep up is lapped and told how many records it lost.

    \b
    Examples:
      tickring replay /var/lib/tickring/parquet --into replay --create --speed 10 \\
          --start 2026-11-20T14:00 --end 2026-11-20T15:00 --venues binance,okx
      tickring replay ./parquet/trades --into bt --create --speed max --json
    """
    import shm

    check_range(start, end)
    pace = parse_speed(speed)
    tune_malloc()
    vlist, slist, dlist = _split(venues), _split(symbols), _split(datasets)
    p = plan(path, dlist, vlist, start, end)
    for note in p.notes:
        click.echo(f"tickring replay: note: {note}", err=True)
    try:
        ring = shm.Ring.attach(into)
    except shm.RingNotFound as e:
        if not create:
            raise ReplayError(f"{e}. Pass --create to create ring {into!r} "
                              f"(--capacity sets its size).") from None
        ring = shm.Ring.create(into, capacity=capacity)
    remap = None
    if registry:
        from shm.registry import Registry
        remap = Remapper(Registry.attach(registry))
    writer = ring.writer()
    bar = Progress(p.rows, sys.stderr.isatty() if progress is None else progress)
    chunk_max = max(1, min(ring.capacity // 2, 1 << 16))
    interrupted = []
    res: dict = {}
    t0 = time.perf_counter()
    try:
        publish_paced(writer, merged(p, start, end, slist, remap), pace, chunk_max, bar,
                      stop=lambda: bool(interrupted), stats=res)
    except KeyboardInterrupt:
        interrupted.append(True)
    finally:
        writer.close()
    if res["records"]:                      # the bar's total counted rows before filtering
        bar.total = res["records"]
        bar.update(res["records"], res["last_ts"], force=True)
    bar.close()
    elapsed = time.perf_counter() - t0
    if remap is not None and remap.unknown:
        some = ", ".join(f"{v}:{s}" for v, s in sorted(remap.unknown)[:10])
        click.echo(f"tickring replay: warning: not in registry {registry!r} (recorded ids kept): {some}",
                   err=True)
    n = res["records"]
    summary = {"ring": into, "records": n, "seconds": round(elapsed, 3),
               "records_per_s": round(n / elapsed) if n and elapsed > 0 else 0,
               "first_ts": res["first_ts"], "last_ts": res["last_ts"], "venues": p.venues,
               "datasets": sorted({s.dataset for s in p.sources}),
               "speed": "max" if pace is None else pace, "interrupted": bool(interrupted),
               "notes": p.notes}
    if as_json:
        import orjson
        click.echo(orjson.dumps(summary).decode())
    elif n:
        click.echo(f"replayed {n:,} records ({', '.join(summary['datasets'])}; {', '.join(p.venues)}) "
                   f"from {format_ns(res['first_ts'])} to {format_ns(res['last_ts'])} into ring "
                   f"{into!r} in {elapsed:.2f}s ({summary['records_per_s']:,} records/s)")
    if not n and not interrupted:
        raise ReplayError("nothing replayed: no records matched "
                          + ", ".join(x for x in (
                              f"venues {','.join(vlist)}" if vlist else "",
                              f"symbols {','.join(slist)}" if slist else "",
                              f"start {format_ns(start)}" if start is not None else "",
                              f"end {format_ns(end)}" if end is not None else "") if x)
                          + (f" (files cover {format_ns(p.first_ns)} .. {format_ns(p.last_ns)})"
                             if p.first_ns is not None else ""))
