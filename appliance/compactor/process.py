"""The compactor process: one consumer ("compactor") on every venue ring; candles, quality,
wicks, Parquet, checkpoints, backfill. `run(config)` is the main loop (SIGTERM: flush, exit 0).

Per venue, a batch goes through:
  read (batch)  -> quality counters, wick price history, then `pending`
  resolve       -> once every venue's data up to ts_recv + wick window is in (a venue whose
                   reader is caught up counts as "in" up to now): wick flags, raw + clean candle
                   forges, trade-id gaps (-> backfill), into the Parquet buffer
  spool         -> every SPOOL_ROWS records, appended to this period's spool files in .staging
                   (raw records: this process never loads pyarrow, see spool.py)
  flush         -> on the rotation boundary (ts_recv, default hourly), on max_rows, at SIGTERM:
                   a writer process turns the spools into Parquet files with row groups of
                   row_group_rows (jobs.py, parquet_job.py); once they are
                   written, checkpoint (ring position after the last saved record + forming
                   candles + last trade ids + open backfills), rename files into place
Records lost to a ring lap become a STATUS LAPPED record (flags DERIVED, price = count,
size = first lost seq) in the status dataset and count in the quality grade.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from appliance import malloctune
from shm.record import RECORD, Flag, Kind, Status, concat
from shm.ring import Ring

from .backfill import Backfiller, TradeIds
from .checkpoint import Checkpoints, recover
from .forge import Forge
from .jobs import WriterJobs
from .quality import VenueQuality
from .schema import CANDLE, CANDLE_SLOT, DEFAULT_TIMEFRAMES, QUALITY_SLOT, RECORD_DATASETS, timeframe_ns
from .spool import SpoolFile, by_date, quality_array, quality_entries
from .staging import Staging
from .wick import WickDetector

MS = 1_000_000
S = 1_000_000_000
_PUBLISH_SLACK_NS = 50 * MS      # a caught-up ring publishes nothing older than now - this
# records a venue holds before they go to its spool: the compactor's memory (9 venues x 2,048 x
# 64 B); the Parquet row groups are row_group_rows, regrouped by the writer. Measured in the
# demo: 16,384 here cost the compactor ~7 MB more.
SPOOL_ROWS = 2048


@dataclass
class CompactorConfig:
    rings: dict                              # venue -> ring name
    root: str                                # Parquet root
    registry: str | None = "registry"
    timeframes: tuple = DEFAULT_TIMEFRAMES
    watermark_ms: float = 250.0
    wick_threshold: float = 0.01
    wick_window_ms: float = 200.0
    stale_s: float = 10.0
    rotate_s: float = 3600.0
    max_rows: int = 1_000_000
    row_group_rows: int = 16384
    batch: int = 65536                       # records per ring read: fewer, bigger numpy passes
    candle_ring: str | None = None
    candle_ring_capacity: int = 1 << 16
    candle_table: str | None = None
    quality_table: str | None = None
    table_slots: int = 4096                  # instrument ids below this get table slots
    table_interval_ms: float = 50.0
    # a step costs ~3 ms of numpy calls per venue whatever it reads (forges, wick check): stepping
    # again as soon as a few records arrived kept the demo's compactor at 75 % of a core for
    # ~6,000 msgs/s. While the rings trickle (a step read less than a quarter of a batch) steps
    # come at most this often; a busy ring is read back to back.
    step_interval_ms: float = 200.0
    grade_interval_s: float = 1.0
    quality_window_s: float = 60.0
    backfill: bool = True
    rest_urls: dict = field(default_factory=dict)   # venue -> REST base URL (e.g. the simulator)
    name: str = "compactor"

    @classmethod
    def from_dict(cls, d: dict) -> "CompactorConfig":
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"unknown compactor setting(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        d = dict(d)
        if isinstance(d.get("rings"), (list, tuple)):
            d["rings"] = {r: r for r in d["rings"]}
        return cls(**d)


def _runmax(a: np.ndarray) -> np.ndarray:
    return np.maximum.accumulate(a)


class VenueStream:
    """One venue ring and everything the compactor keeps for it."""

    def __init__(self, c: "Compactor", venue: str, ring_name: str, ckpt: dict | None):
        self.c = c
        self.venue = venue
        self.ring = Ring.attach(ring_name)
        self.ring_name = ring_name
        cfg = c.cfg
        self.created_ns = self.ring.seg.word("created_ns")
        start = "oldest"
        self.lost_total = 0
        if ckpt and ckpt.get("ring") == ring_name and ckpt.get("ring_created_ns") == self.created_ns \
                and ckpt["next_seq"] <= self.ring.published:
            start = int(ckpt["next_seq"])
            self.lost_total = int(ckpt.get("lost_total", 0))
        self.reader = self.ring.reader(start=start, name=cfg.name)
        self.fresh = start == "oldest"          # checkpoint the start at once (see Compactor)
        self.position = self.reader.next          # everything before is saved or in the buffer
        self.forge = Forge(cfg.timeframes, int(cfg.watermark_ms * MS))
        self.clean = Forge(cfg.timeframes, int(cfg.watermark_ms * MS), clean=True)
        self.ids = TradeIds()
        self.quality = VenueQuality(venue, int(cfg.stale_s * S), int(cfg.quality_window_s * S))
        self.backfill = None
        decl = c.venue_decls.get(venue)
        if decl is None and cfg.backfill:
            try:
                import feeds
                decl = feeds.venue(venue)
            except (KeyError, ImportError):
                decl = None
        if cfg.backfill and decl is not None and decl.trades_request is not None \
                and decl.parse_trades is not None and decl.extra.get("contiguous_trade_ids", True):
            self.backfill = Backfiller(decl, c.symbol_of, fetch=c.fetch,
                                       base_url=cfg.rest_urls.get(venue), clock=c.now)
        if ckpt and start != "oldest":
            self.forge.load_state(ckpt.get("forge", {}))
            self.clean.load_state(ckpt.get("clean", {}))
            self.ids.last = {int(k): int(v) for k, v in ckpt.get("trade_ids", {}).items()}
            if self.backfill is not None:
                for gap in ckpt.get("backfill", []):
                    self.backfill.request(*gap)
        self.pending: list[np.ndarray] = []
        self.chunk: list[np.ndarray] = []          # resolved records not yet spooled
        self.candles: list[np.ndarray] = []        # closed candles not yet spooled
        self.chunk_rows = 0
        self.files: dict[tuple[str, str], SpoolFile] = {}    # (dataset, date) -> open spool
        self.finished: list[dict] = []             # spools closed early, written at the flush
        self.quality_rows: list[np.ndarray] = []        # QUALITY_ROW parts until the flush
        self.rows = 0
        self.period = None                         # rotation period of the buffered rows
        self.clock = 0                             # highest ts_recv read
        self.caught_up = False
        self.closed_for_table: list[np.ndarray] = []

    # -- reading ---------------------------------------------------------------------------------
    def read(self) -> int:
        r = self.reader
        before_next, before_lost = r.next, r.lost
        batch = r.read(self.c.cfg.batch, timeout=0)
        lost = r.lost - before_lost
        if lost:
            self.lost_total += lost
            st = np.zeros(1, RECORD)
            st["seq"] = before_next
            st["ts_recv"] = int(batch["ts_recv"][0]) if len(batch) else self.c.now()
            st["kind"] = Kind.STATUS
            st["flags"] = Flag.DERIVED
            st["price"] = lost
            st["size"] = before_next
            st["id"] = Status.LAPPED
            self.quality.count("lost", 0, lost)
            self.pending.append((st, before_next + lost))
        self.caught_up = r.available <= 0
        if len(batch):
            self.clock = max(self.clock, int(batch["ts_recv"].max()))
            self.c.refresh_registry(int(batch["instrument"].max()))
            self.quality.observe(batch)
            if len(self.c.streams) > 1:            # one venue has nothing to compare with
                self.c.wicks.observe(self.venue, batch, self.c.group_of)
            self.pending.append((batch, r.next))
        return len(batch)

    def horizon(self, now: int) -> int:
        """Every record of this venue with ts_recv up to here has been read."""
        if self.caught_up:
            return max(self.clock, now - _PUBLISH_SLACK_NS)
        return self.clock

    # -- resolving -------------------------------------------------------------------------------
    def resolve(self, upto: int) -> None:
        """Process pending records whose ts_recv (running max, ring order) is <= upto."""
        while self.pending:
            arr, end = self.pending[0]
            rm = _runmax(arr["ts_recv"])
            k = int(np.searchsorted(rm, upto, side="right"))
            if k == 0:
                break
            if k == len(arr):
                self.pending.pop(0)
                self._process(arr, end)
            else:
                self.pending[0] = (arr[k:], end)
                self._process(arr[:k], int(arr["seq"][k]))
                break
        if not self.pending:
            self.position = self.reader.next

    def _process(self, recs: np.ndarray, end: int) -> None:
        """Resolve records; `end` is the ring position right after them."""
        rot = int(self.c.cfg.rotate_s * S)
        while len(recs):
            rm = _runmax(recs["ts_recv"])
            if self.period is None:
                self.period = int(recs["ts_recv"][0]) // rot
            k = int(np.searchsorted(rm, (self.period + 1) * rot, side="left"))
            if k:
                self._process_part(recs[:k], end if k == len(recs) else int(recs["seq"][k]))
            if k < len(recs):
                # rows of the next rotation period: finish this period's files first
                if self.rows:
                    self.flush()
                self.period = None
            recs = recs[k:]

    def _buffered(self, n: int, ts: int) -> None:
        self.rows += n
        self.chunk_rows += n
        if self.period is None:
            self.period = ts // int(self.c.cfg.rotate_s * S)

    def _process_part(self, recs: np.ndarray, end: int) -> None:
        c = self.c
        wick = c.wicks.check(self.venue, recs, c.group_of)
        if wick.any():
            recs["flags"][wick] |= int(Flag.WICK)
            self.quality.count_many("wicks", recs["instrument"][wick])
        closed = self.forge.update(recs)
        closed_clean = self.clean.update(recs, ~wick)
        if self.forge.late_instruments:
            self.quality.count_many("late_trades", np.concatenate(self.forge.late_instruments))
            self.forge.late_instruments = []
        self.clean.late_instruments = []
        for cc in (closed, closed_clean):
            if len(cc):
                self.candles.append(cc)
                self._buffered(len(cc), int(cc["ts_recv"][0]))
                c.publish_candles(cc)
        if len(closed_clean):
            self.closed_for_table.append(closed_clean)
        if self.backfill is not None:
            for inst, first, last in self.ids.gaps(recs):
                self.quality.count("gaps", inst)
                self.backfill.request(inst, first, last, c.symbol_of(inst))
        self.chunk.append(recs)
        self._buffered(len(recs), int(recs["ts_recv"][0]))
        self.position = end
        if self.rows >= c.cfg.max_rows:
            c.publish_due(self)
        elif self.chunk_rows >= min(SPOOL_ROWS, c.cfg.row_group_rows):
            self.spool()

    def idle(self, upto: int, now: int) -> None:
        """Work that does not wait for records: backfill results; with nothing pending, candles
        closing on time alone; files rotating on time alone."""
        if self.backfill is not None:
            for recs in self.backfill.poll():
                if len(recs):
                    self.chunk.append(recs)
                    self._buffered(len(recs), int(recs["ts_recv"][0]))
        if not self.pending:
            for forge, clean in ((self.forge, False), (self.clean, True)):
                cc = forge.advance(upto)
                if len(cc):
                    self.candles.append(cc)
                    self._buffered(len(cc), int(cc["ts_recv"][0]))
                    self.c.publish_candles(cc)
                    if clean:
                        self.closed_for_table.append(cc)
        rot = int(self.c.cfg.rotate_s * S)
        if self.period is not None and self.rows and upto >= 0 and upto // rot > self.period:
            self.flush()

    # -- saving ----------------------------------------------------------------------------------
    def spool(self) -> None:
        """Append what is resolved to this period's spool files (one per dataset and date).
        Memory holds about SPOOL_ROWS records per venue; nothing is checkpointed before the
        flush's writer has made Parquet files of them, so a crash re-reads them from the ring."""
        if self.chunk:
            rows = concat(self.chunk)
            kinds = rows["kind"]
            present = np.flatnonzero(np.bincount(kinds, minlength=8))
            for kind, dataset in RECORD_DATASETS.items():
                if int(kind) in present:
                    self._append(dataset, rows if len(present) == 1 else rows[kinds == int(kind)], "record")
            del rows, kinds
        if self.candles:
            self._append("candles", np.concatenate(self.candles, dtype=CANDLE), "candle")
        self.chunk, self.candles = [], []
        self.chunk_rows = 0
        malloctune.trim()      # the chunk's pages: back to the OS, not kept

    def _append(self, dataset: str, rows: np.ndarray, layout: str) -> None:
        for date, part, first, last in by_date(rows):
            f = self.files.get((dataset, date))
            if f is not None and not f.accepts(first):
                self.finished.append(f.finish(self.c.staging))     # ts_recv went back: a new file
                f = None
            if f is None:
                f = self.files[(dataset, date)] = SpoolFile(self.c.staging.root, dataset, self.venue, date, layout,
                                                            self.c.cfg.row_group_rows)
            f.append(part, first, last)

    def flush(self) -> None:
        """Close this period's files and hand them to the writer; the checkpoint (and the
        files' renames) follow once they are written (jobs.py)."""
        c = self.c
        self.spool()
        files = self.finished + [f.finish(c.staging) for f in self.files.values()]
        self.files, self.finished = {}, []
        if self.quality_rows:
            files += quality_entries(c.staging, self.venue, self.quality_rows)
        ckpt = {
            "venue": self.venue, "ring": self.ring_name, "ring_created_ns": self.created_ns,
            "epoch": self.ring.epoch, "next_seq": self.position, "lost_total": self.lost_total,
            "saved_ns": c.now(), "forge": self.forge.state_dict(), "clean": self.clean.state_dict(),
            "trade_ids": {str(k): v for k, v in self.ids.last.items()},
            "backfill": self.backfill.pending() if self.backfill is not None else [],
        }
        c.jobs.submit(self.venue, files, ckpt)
        self.quality_rows = []
        self.rows = 0
        self.period = None
        malloctune.trim()

    def close(self) -> None:
        if self.backfill is not None:
            self.backfill.stop()
        for f in self.files.values():          # not flushed (an error): the ring still has them
            f.abort()
        self.files = {}
        self.reader.close()
        self.ring.close()


class Compactor:
    """All venue streams of one Parquet root. `step()` does one round; `run()` loops."""

    def __init__(self, config, fetch=None, venue_decls: dict | None = None, clock=time.time_ns):
        self.cfg = config if isinstance(config, CompactorConfig) else CompactorConfig.from_dict(config)
        cfg = self.cfg
        if not cfg.rings:
            raise ValueError("the compactor needs at least one ring (venue -> ring name)")
        self.cfg.timeframes = tuple(cfg.timeframes)
        self.tf_ns = sorted(timeframe_ns(t) if isinstance(t, str) else int(t) for t in cfg.timeframes)
        self._labels = {timeframe_ns(t): t for t in cfg.timeframes if isinstance(t, str)}
        self.now = clock
        self.fetch = fetch
        self.venue_decls = venue_decls or {}
        os.makedirs(cfg.root, exist_ok=True)
        self._lock = open(os.path.join(cfg.root, ".lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another compactor is writing {cfg.root}; stop it first") from None
        self.staging = Staging(cfg.root)
        self.checkpoints = Checkpoints(cfg.root)
        # the Parquet fork server starts before the checkpoints are read: it inherits the heap
        # as it is now (~2.4 MB less than after recovery, measured in the soak)
        self.jobs = WriterJobs(self.staging, self.checkpoints, self.symbol_of,
                               {tf: self.label_of(tf) for tf in self.tf_ns})
        self._recover()
        self.registry = None
        if cfg.registry:
            from shm.registry import Registry
            self.registry = Registry.attach(cfg.registry)
        self.group_of = np.full(1, -1, np.int64)
        self._groups: dict[tuple[str, str], int] = {}
        self._reg_count = -1
        self.wicks = WickDetector(cfg.wick_threshold, int(cfg.wick_window_ms * MS))
        self.window = int(cfg.wick_window_ms * MS)
        self.candle_writer = None
        self.candle_ring = None
        if cfg.candle_ring:
            self.candle_ring = Ring.create(cfg.candle_ring, cfg.candle_ring_capacity, CANDLE, exist_ok=True)
            d = self.candle_ring.dtype
            if d.itemsize != CANDLE.itemsize or d.names != CANDLE.names or \
                    any(d.fields[n][1] != CANDLE.fields[n][1] for n in CANDLE.names):
                raise ValueError(f"ring {cfg.candle_ring!r} exists with another record layout; "
                                 f"remove it (tickring rm {cfg.candle_ring}) or name another candle ring")
            self.candle_writer = self.candle_ring.writer(announce=False)
        self.candle_table = self.quality_table = None
        if cfg.candle_table:
            from shm.table import Table
            self.candle_table = Table.create(cfg.candle_table, CANDLE_SLOT, cfg.table_slots * len(self.tf_ns), exist_ok=True)
        if cfg.quality_table:
            from shm.table import Table
            self.quality_table = Table.create(cfg.quality_table, QUALITY_SLOT, cfg.table_slots, exist_ok=True)
        saved = self.checkpoints.all()
        self.streams = [VenueStream(self, v, r, saved.get(v)) for v, r in cfg.rings.items()]
        for s in self.streams:
            if s.fresh:        # so that a crash before the first file still resumes from here
                s.flush()
        self.refresh_registry(0)
        self._last_table = 0
        self._last_grade = 0
        self.stopping = False
        for s in self.streams:
            if s.backfill is not None:
                s.backfill.start()

    # -- start-up --------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Roll forward renames a checkpoint promised; drop staged files none promised."""
        self.recovered = recover(self.cfg.root)

    # -- names -----------------------------------------------------------------------------------
    def refresh_registry(self, max_id: int) -> None:
        if self.registry is None:
            return
        n = len(self.registry)
        if n == self._reg_count and max_id < len(self.group_of):
            return
        # one read of the registry: workers keep appending to it (at start-up, every venue's
        # instruments), so a second read could hold ids past what was sized from the first
        insts = self.registry.all()
        self._reg_count = len(insts)
        g = np.full(max([n, max_id, *(i.id for i in insts)]) + 1, -1, np.int64)
        for inst in insts:
            if inst.normalized:
                key = (inst.normalized.upper(), inst.market)
                g[inst.id] = self._groups.setdefault(key, len(self._groups))
        self.group_of = g
        by_venue: dict[str, list[int]] = {}
        for inst in insts:
            by_venue.setdefault(inst.venue, []).append(inst.id)
        for s in getattr(self, "streams", []):
            s.quality.register(by_venue.get(s.venue, []))

    def symbol_of(self, instrument: int) -> str:
        if self.registry is None or instrument == 0:
            return ""
        try:
            return self.registry.get(instrument).symbol
        except KeyError:
            return ""

    def label_of(self, tf: int) -> str:
        lab = self._labels.get(tf)
        if lab is None:
            for unit, n in (("d", 86_400 * S), ("h", 3600 * S), ("m", 60 * S), ("s", S), ("ms", MS)):
                if tf % n == 0:
                    return f"{tf // n}{unit}"
        return lab

    # -- live outputs ----------------------------------------------------------------------------
    def publish_candles(self, candles: np.ndarray) -> None:
        if self.candle_writer is not None:
            # field by field into the ring's own dtype (same layout, checked at start): closed
            # candles are few, and a CANDLE array that lost its padding (plain np.concatenate
            # packs structured dtypes to 120 bytes) still lands right
            out = np.zeros(len(candles), self.candle_ring.dtype)
            for n in CANDLE.names:
                out[n] = candles[n]
            self.candle_writer.publish(out)

    def _update_tables(self, now: int) -> None:
        """Forming and last closed clean candle per (instrument, timeframe), vectorized."""
        self._last_table = now
        t = self.candle_table
        if t is None:
            for s in self.streams:
                s.closed_for_table = []
            return
        ntf = len(self.tf_ns)
        tfs = np.asarray(self.tf_ns, np.int64)
        for s in self.streams:
            closed = concat(s.closed_for_table) if s.closed_for_table else np.empty(0, CANDLE)
            s.closed_for_table = []
            for arr, which in ((closed, "closed"), (s.clean.forming(), "forming")):
                arr = arr[arr["instrument"] < self.cfg.table_slots]
                if not len(arr):
                    continue
                slot = arr["instrument"].astype(np.int64) * ntf + np.searchsorted(tfs, arr["timeframe"])
                order = np.lexsort((arr["ts"], slot))
                slot, arr = slot[order], arr[order]
                last = np.ones(len(slot), bool)
                last[:-1] = slot[1:] != slot[:-1]
                slot, arr = slot[last], arr[last]
                rows = t.rows[slot].copy()
                for n in CANDLE.names:
                    rows[f"{which}_{n}"] = arr[n]
                if which == "closed":             # a forming candle that just closed is gone
                    gone = rows["forming_ts"] <= arr["ts"]
                    for n in CANDLE.names:
                        rows[f"forming_{n}"][gone] = 0
                t.write_many(slot, rows)

    def _grade(self, now: int) -> None:
        for s in self.streams:
            s.quality.ring_counters({c: s.ring.word(c) for c in ("reconnects", "gaps", "resyncs")})
            rolled = s.quality.roll(now)
            rows = s.quality.grades(now)
            if rolled:
                s.quality_rows.append(quality_array(rows))
                if rows:
                    s._buffered(len(rows), now)
            if self.quality_table is not None and rows:
                ok = [r for r in rows if r["instrument"] < self.cfg.table_slots]
                if ok:
                    t = np.zeros(len(ok), QUALITY_SLOT)
                    for j, r in enumerate(ok):
                        t[j] = (now, r["instrument"], r["grade_code"], (0, 0, 0), r["msg_rate"],
                                r["staleness_ns"], r["skew_p50_ns"], r["skew_p99_ns"], r["gaps"],
                                r["resyncs"], r["reconnects"], r["out_of_order"], r["crossed"],
                                r["wicks"], r["lost"], s.venue.encode()[:16], r["reasons"].encode()[:104])
                    self.quality_table.write_many(t["instrument"].astype(np.int64), t)
        self._last_grade = now
        # the step's numpy temporaries (quality windows, wick queries, forge partials) free
        # pages glibc keeps: give them back once a second. Python's and numpy's allocations are
        # flat (tracemalloc); what still drifts is allocator pages: 2.1 MB/h over a 30-minute
        # soak, 0.64 MB/h over 60 minutes (docs/benchmarks.md)
        malloctune.trim()

    def grades(self) -> list[dict]:
        """Current grade rows of every venue (for tools and tests)."""
        now = self.now()
        return [r for s in self.streams for r in s.quality.grades(now)]

    def publish_due(self, due: VenueStream) -> None:
        """`due` reached max_rows: publish it and every venue at least half way there, so one
        writer run (an interpreter start, ~0.25 s of CPU, and a brief memory peak) serves
        several venues instead of one each."""
        half = self.cfg.max_rows // 2
        for s in self.streams:
            if s is due or s.rows >= half:
                s.flush()

    # -- the loop --------------------------------------------------------------------------------
    def step(self) -> int:
        """Read one batch per ring, resolve what is ready, do the periodic work; records read."""
        n = 0
        self.jobs.poll()
        for s in self.streams:
            n += s.read()
        now = self.now()
        upto = min(s.horizon(now) for s in self.streams) - self.window
        for s in self.streams:
            s.resolve(upto)
            s.idle(upto, now)
        if now - self._last_table >= self.cfg.table_interval_ms * MS:
            self._update_tables(now)
        if now - self._last_grade >= self.cfg.grade_interval_s * S:
            self._grade(now)
        return n

    def wait(self, timeout: float) -> None:
        """Block briefly on one ring (round robin) when idle: no busy loop."""
        self._rr = (getattr(self, "_rr", -1) + 1) % len(self.streams)
        self.streams[self._rr].reader.wait(timeout)

    def flush(self, drain: bool = True) -> None:
        """Resolve everything pending and write it all (shutdown)."""
        if drain:
            for s in self.streams:
                s.resolve(1 << 62)
        now = self.now()
        for s in self.streams:
            s.idle(-1, now)
            # a last grade snapshot, so the quality dataset says how the run ended
            s.quality_rows.append(quality_array(s.quality.grades(now)))
            s.flush()
        self.jobs.drain()
        self._update_tables(self.now())

    def close(self) -> None:
        self.jobs.close()
        for s in self.streams:
            s.close()
        if self.candle_writer is not None:
            self.candle_writer.close()
            self.candle_ring.close()
        for t in (self.candle_table, self.quality_table):
            if t is not None:
                t.close()
        if self.registry is not None:
            self.registry.close()
        self._lock.close()

    def run(self) -> None:
        def stop(signum, frame):
            self.stopping = True
        if _STOP["requested"]:
            self.stopping = True
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not self.stopping:
                t0 = time.monotonic()
                n = self.step()
                if n == 0:
                    self.wait(0.01)
                elif n < self.cfg.batch // 4:       # trickling rings: let records gather
                    rest = self.cfg.step_interval_ms / 1e3 - (time.monotonic() - t0)
                    if rest > 0:
                        time.sleep(rest)
            self.flush()
        finally:
            self.close()


_STOP = {"requested": False}


def run(config) -> None:
    """Run the compactor until SIGTERM/SIGINT; flush candles and Parquet, return (exit 0).
    A signal that arrives while it starts up is honoured once it is up."""
    def early(signum, frame):
        _STOP["requested"] = True
    signal.signal(signal.SIGTERM, early)
    signal.signal(signal.SIGINT, early)
    from appliance import malloctune
    from appliance.gctune import after_startup
    malloctune.release_big_blocks()   # before the first big array: see appliance/malloctune.py
    compactor = Compactor(config)
    after_startup()          # the same GC discipline as the workers: collect, freeze, no gen-0 storms
    compactor.run()


def config_json(cfg: CompactorConfig) -> str:
    return json.dumps(asdict(cfg))
