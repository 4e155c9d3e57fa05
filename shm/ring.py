"""Single-producer, many-consumer ring of fixed-size records in shared memory.

Protocol (x86-64 TSO, see shm/layout.py):
  producer, for records at positions p..p+n-1:
    1. claim   := p+n   (own aligned 8-byte store)     "slots of p-cap..p+n-1-cap may now be torn"
    2. copy the records into their slots (bulk copy), then store each slot's seq (own stores)
    3. publish := p+n   (own aligned 8-byte store)     "p..p+n-1 are complete"
    4. if waiters: waiters := 0; futex-wake the publish word
  consumer, wanting position q:
    1. read publish; positions < publish are complete, so copy q..min(publish, q+max)-1
    2. read claim AFTER the copy; any copied position x < claim - cap may have been overwritten
       while it was copied: drop it and count it lost (Aeron broadcast-receiver style).
The producer never waits; a lapped consumer knows exactly how many records it lost, never keeps
a torn record and never sees one twice (its position only moves forward).

Restart: the supervisor owns the segment; a new producer bumps `epoch`, continues at `publish`
and keeps `claim` monotonic, so slots a dead producer half-wrote are never accepted.
"""
from __future__ import annotations

import mmap
import os
import time

import numpy as np

from . import futex
from . import layout as L
from .errors import RingNotFound, ShmError
from .liveness import pid_alive
from .record import PACK_LEVEL, RECORD, RECORD_SIZE, Kind, Status
from .segment import Segment, list_segments, unlink
from ._reader import ReaderCore
from ._writer import WriterCore

_I = {name: w.index for name, w in L.RING.items()}
CLAIM, PUBLISH, WAITERS = _I["claim"], _I["publish"], _I["waiters"]
_PUBLISH_OFFSET = L.RING["publish"].offset
DEFAULT_SPIN_US = 50.0
_MADV_POPULATE_READ = 22   # Linux 5.14+ (mmap has no constants for them)
_MADV_POPULATE_WRITE = 23


class Ring:
    """A named ring segment. Use `Ring.create`/`Ring.attach`, then `.writer()` / `.reader()`."""

    def __init__(self, seg: Segment):
        self.seg = seg
        self.name = seg.name
        self.dtype = seg.dtype
        self.record_size = self.dtype.itemsize
        self.capacity = seg.word("capacity")
        self.mask = self.capacity - 1
        self._mm = seg.mm
        self._u64 = memoryview(seg.mm).cast("B").cast("Q")      # whole segment, 8-byte words
        off = seg.word("data_offset")
        self._data = memoryview(seg.mm)[off:off + self.capacity * self.record_size]
        self.records = np.frombuffer(seg.mm, dtype=self.dtype, count=self.capacity, offset=off)
        self._rows = np.frombuffer(seg.mm, dtype=np.uint8, count=self.capacity * self.record_size,
                                   offset=off).reshape(self.capacity, self.record_size)
        self.publish_address = seg.base_address + _PUBLISH_OFFSET
        self._prefaulted = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, capacity: int = 1 << 20, dtype: np.dtype = RECORD,
               exist_ok: bool = False) -> "Ring":
        """Create /dev/shm/tickring.<name> holding `capacity` records (a power of two)."""
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"ring capacity must be a power of two >= 2, got {capacity}")
        if dtype.itemsize % 8:
            raise ValueError(f"record size must be a multiple of 8 bytes, got {dtype.itemsize}")
        seg = Segment.create(name, L.ring_size(capacity, dtype.itemsize), L.MAGIC_RING, dtype,
                             capacity, L.RING_HEADER_SIZE, exist_ok=exist_ok)
        ring = cls(seg)
        if not seg.created and ring.capacity != capacity:
            pass  # exist_ok attach: the existing capacity wins (readers keep their mapping)
        return ring

    @classmethod
    def attach(cls, name: str, dtype: np.dtype | None = None) -> "Ring":
        """Map an existing ring; RingNotFound lists the rings that exist."""
        return cls(Segment.attach(name, L.MAGIC_RING, dtype, not_found=RingNotFound, kind="ring"))

    @staticmethod
    def names() -> list[str]:
        """Names of the rings in /dev/shm."""
        return list_segments(L.MAGIC_RING)

    def unlink(self) -> None:
        """Remove the name; mappings stay valid until closed."""
        unlink(self.name)

    def close(self) -> None:
        self.records = self._rows = None
        self._u64.release()
        self._data.release()
        self.seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- header ------------------------------------------------------------------------------
    def word(self, name: str) -> int:
        return self._u64[L.RING[name].index]

    def set_word(self, name: str, value: int) -> None:
        self._u64[L.RING[name].index] = value

    def add(self, name: str, delta: int = 1) -> None:
        """Producer-only counter increment (single writer, so no atomic needed)."""
        i = L.RING[name].index
        self._u64[i] += delta

    @property
    def epoch(self) -> int:
        return self._u64[_I["epoch"]]

    @property
    def published(self) -> int:
        return self._u64[PUBLISH]

    def oldest(self) -> int:
        """Oldest position a reader can still get intact."""
        return max(0, max(self._u64[CLAIM], self._u64[PUBLISH]) - self.capacity)

    def consumers(self) -> list[dict]:
        """Registered consumers with their positions, lag and liveness (for inspect/metrics)."""
        out = []
        pub = self.published
        for slot in range(L.CONSUMER_SLOTS):
            base = (L.CONSUMERS_OFFSET + slot * L.CONSUMER_SLOT_SIZE) // 8
            pid = self._u64[base]
            if not pid:
                continue
            name_off = L.CONSUMERS_OFFSET + slot * L.CONSUMER_SLOT_SIZE + L.CONSUMER["name"].offset
            name = bytes(self._mm[name_off:name_off + L.CONSUMER_NAME_LEN]).rstrip(b"\0").decode(errors="replace")
            pos = self._u64[base + 1]
            out.append({"slot": slot, "pid": pid, "name": name, "position": pos,
                        "lag": max(0, pub - pos), "lost": self._u64[base + 2],
                        "attached_ns": self._u64[base + 3], "read_ns": self._u64[base + 4],
                        "alive": pid_alive(pid)})
        return out

    def info(self) -> dict:
        """Everything `tickring inspect` shows about this ring."""
        pid = self.word("producer_pid")
        return {"name": self.name, "capacity": self.capacity, "record_size": self.record_size,
                "epoch": self.epoch, "producer_pid": pid, "producer_alive": pid_alive(pid),
                "producer_state": self.word("producer_state"),
                "heartbeat_ns": self.word("heartbeat_ns"), "published": self.published,
                "claimed": self.word("claim"),
                "counters": {c: self.word(c) for c in L.RING_COUNTERS},
                "consumers": self.consumers()}

    # -- endpoints ---------------------------------------------------------------------------
    def writer(self, announce: bool = True) -> "Writer":
        """Become this ring's single producer (bumps the epoch). Fails if a live producer exists."""
        self.prefault(write=True)
        return Writer(self, announce)

    def reader(self, start: str | int = "latest", name: str = "", spin_us: float = DEFAULT_SPIN_US,
               register: bool = True) -> "Reader":
        """A consumer starting at "oldest", "latest" or an absolute seq."""
        self.prefault(write=False)
        return Reader(self, start, name, spin_us, register)

    def prefault(self, write: bool) -> None:
        """Map every page of the ring into this process now, not on the hot path.

        Untouched, a fresh ring's pages are allocated and mapped one at a time as records first
        land on them: one page fault per 64 records in the producer and again in each consumer,
        measured as a 20-45 µs p99 on a spinning consumer whose bare floor is 2-5 µs. The
        producer allocates the pages (the ring's memory is committed when it starts, which is
        what MemoryMax counts anyway); a consumer only maps them. Once per process and ring."""
        if self._prefaulted >= (2 if write else 1):
            return
        self._prefaulted = 2 if write else 1
        mm = self._mm
        try:
            mm.madvise(_MADV_POPULATE_WRITE if write else _MADV_POPULATE_READ, 0, len(mm))
            return
        except (OSError, ValueError, AttributeError):       # kernels before 5.14
            pass
        per_page = max(1, mmap.PAGESIZE // self.record_size)
        touched = self._rows[::per_page, 0]
        if write:
            touched |= 0                                    # same bytes, now allocated
        else:
            int(touched.sum())


class Writer(WriterCore):
    """The single producer of a ring. Never waits for consumers.

    The commit protocol (module docstring) is WriterCore.commit, in C (shm/_writer.pyx): the
    feed's fast lane calls it directly; publish(), publish_buffer() and write() go through it.
    """

    def __init__(self, ring: Ring, announce: bool = True):
        self.ring = ring
        u = ring._u64
        with ring.seg.locked():
            pid = u[_I["producer_pid"]]
            if pid and pid != os.getpid() and pid_alive(pid) and u[_I["producer_state"]] == 1:
                raise ShmError(f"ring {ring.name!r} already has a live producer (pid {pid})")
            u[_I["epoch"]] += 1
            u[_I["producer_pid"]] = os.getpid()
            u[_I["heartbeat_ns"]] = time.time_ns()
            u[_I["producer_state"]] = 1
        self._u64 = u
        self._attach_core(ring)
        self._wake_addr = ring.publish_address
        self.epoch = u[_I["epoch"]]
        self._pack = PACK_LEVEL.pack_into
        self._one = bytearray(ring.record_size)
        if announce and ring.dtype == RECORD:
            assert ring.record_size == RECORD_SIZE
            self.status(Status.EPOCH, 0, float(self.epoch))

    @property
    def next_seq(self) -> int:
        return self._next

    def publish(self, records: np.ndarray) -> int:
        """Publish an array of records (dtype of the ring); fills in their `seq`. Returns the first seq."""
        n = len(records)
        if n == 0:
            return self._next
        if records.dtype != self.ring.dtype:
            raise TypeError(f"records have dtype {records.dtype}, ring {self.ring.name!r} holds {self.ring.dtype}")
        p = self._next
        records["seq"] = np.arange(p, p + n, dtype=np.uint64)
        if not records.flags.c_contiguous:
            records = np.ascontiguousarray(records)
        return self.publish_buffer(records.view(np.uint8), n)

    def write(self, ts_event: int, ts_recv: int, instrument: int, kind: int, side: int, flags: int,
              price: float, size: float, id: int = 0, extra: float = 0.0) -> int:
        """Publish one record from scalars (rings of shm.RECORD); returns its seq."""
        self._pack(self._one, 0, 0, ts_event, ts_recv, instrument, kind, side, flags, price, size,
                   extra, id)
        return self.publish_buffer(self._one, 1)

    def status(self, code: Status, instrument: int = 0, a: float = 0.0, b: float = 0.0,
               ts_event: int = 0) -> int:
        """Publish an in-band STATUS record (gap, reconnect, epoch change...)."""
        return self.write(ts_event, time.time_ns(), instrument, Kind.STATUS, 0, 0, a, b, int(code))

    def heartbeat(self) -> None:
        self._u64[_I["heartbeat_ns"]] = time.time_ns()

    def close(self, clean: bool = True) -> None:
        """Detach as producer; the ring stays for the next one."""
        if self._u64 is None:
            return
        self._u64[_I["producer_state"]] = 2 if clean else 0
        self._u64[_I["producer_pid"]] = 0
        # wake blocked readers so they notice the producer left
        self._u64[WAITERS] = 0
        futex.wake_all(self._wake_addr)
        self._u64 = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Reader(ReaderCore):
    """One consumer's position in a ring. `read()` copies and validates; `view()` is zero-copy.
    Waiting and copying are ReaderCore's, in C (shm/_reader.pyx)."""

    def __init__(self, ring: Ring, start, name: str, spin_us: float, register: bool):
        self.ring = ring
        self._u64 = ring._u64
        self._cap = ring.capacity
        self._mask = ring.mask
        self._rows = ring._rows
        self._data = ring._data
        self._rs = ring.record_size
        self.dtype = ring.dtype
        self._attach_core(ring, spin_us)
        self.lost = 0
        self.received = 0
        pub = self._u64[PUBLISH]
        if start == "latest":
            self.next = pub
        elif start == "oldest":
            self.next = ring.oldest()
        elif isinstance(start, (int, np.integer)) and int(start) >= 0:
            self.next = int(start)
        else:
            raise ValueError(f"start must be 'oldest', 'latest' or a seq >= 0, got {start!r}")
        self._view_start = self._view_n = 0
        self._slot = -1
        if register:
            self._register(name or f"pid{os.getpid()}")

    # -- registration in the consumer table (for lag visibility) -------------------------------
    def _register(self, name: str) -> None:
        u = self._u64
        with self.ring.seg.locked():
            for slot in range(L.CONSUMER_SLOTS):
                base = (L.CONSUMERS_OFFSET + slot * L.CONSUMER_SLOT_SIZE) // 8
                pid = u[base]
                if pid == 0 or not pid_alive(pid):
                    u[base + 1] = self.next
                    u[base + 2] = 0
                    u[base + 3] = time.time_ns()
                    u[base + 4] = 0
                    off = base * 8 + L.CONSUMER["name"].offset
                    raw = name.encode()[:L.CONSUMER_NAME_LEN].ljust(L.CONSUMER_NAME_LEN, b"\0")
                    self.ring._mm[off:off + L.CONSUMER_NAME_LEN] = raw
                    u[base] = os.getpid()
                    self._slot = slot
                    self._base = base
                    self._report_word = base       # ReaderCore reports per read, in C
                    return
        # a full table only hides this consumer from inspect; it still reads
        self._slot = -1

    def close(self) -> None:
        if self._slot >= 0 and self._u64 is not None:
            self._u64[self._base] = 0
            self._slot = -1
            self._report_word = -1
        self._u64 = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- copying read ----------------------------------------------------------------------------
    def read(self, max_records: int = 4096, timeout: float | None = 0.1) -> np.ndarray:
        """Up to max_records new records as a validated copy; empty array on timeout."""
        buf, bad = self._read_bytes(max_records, timeout)
        if buf is None:
            return np.empty(0, self.dtype)
        out = np.frombuffer(buf, self.dtype)      # the array owns the bytearray: no second copy
        if bad:
            out = out[bad:]
        return out

    # -- zero-copy read ----------------------------------------------------------------------------
    def view(self, max_records: int = 4096, timeout: float | None = 0.1) -> np.ndarray:
        """Up to max_records new records as a read-only view INTO the ring (no copy, no wrap).

        The producer may overwrite them while you look: call `release()` when done; it returns
        how many records at the start of the view may have been overwritten (0 = all valid).
        """
        pub = self.wait(timeout)
        nxt = self.next
        cap = self._cap
        if pub - nxt > cap:
            self.lost += pub - cap - nxt
            nxt = self.next = pub - cap
        n = max(0, min(pub - nxt, max_records, cap - (nxt & self._mask)))
        self._view_start, self._view_n = nxt, n
        slot = nxt & self._mask
        v = self.ring.records[slot:slot + n]
        v.flags.writeable = False
        return v

    def release(self) -> int:
        """Finish the last view: advance past it; return how many of its leading records may be torn."""
        claim = self._u64[CLAIM]
        start, n = self._view_start, self._view_n
        bad = min(max(0, claim - self._cap - start), n)
        self.lost += bad
        self.received += n - bad
        self.next = start + n
        self._view_n = 0
        if self._slot >= 0:
            self._report()
        return bad
