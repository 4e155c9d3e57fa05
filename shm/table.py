"""Latest-state tables in shared memory: N slots of one numpy dtype, one writer, many readers.

Each slot is guarded by its own sequence word (a seqlock): the writer makes it odd, writes the
payload, makes it even again (own aligned 8-byte stores). A reader copies the payload between two
reads of the sequence and retries if they differ or are odd, so it always gets a consistent slot
in O(1), without locks, and never blocks the writer. The writer side is native and declared once
(shm/_seqlock.pxd): these Python writers and the book keeper's C flush use the same store.
"""
from __future__ import annotations

import os
import time

import numpy as np

from . import layout as L
from ._seqlock import SeqlockSlots
from .errors import SegmentNotFound
from .segment import Segment, list_segments, unlink

_T = {name: w.index for name, w in L.TABLE.items()}
_SPINS_BEFORE_YIELD = 1000
_STUCK_AFTER_S = 2.0        # a writer preempted mid-write is normal; this long is not


class TableNotFound(SegmentNotFound):
    """No table of that name; the message lists the tables that exist."""


class Table:
    """A named seqlock table. `Table.create(name, dtype, slots)` / `Table.attach(name)`."""

    def __init__(self, seg: Segment):
        self.seg = seg
        self.name = seg.name
        self.dtype = seg.dtype
        self.slots = seg.word("capacity")
        self.stride = L.slot_stride(self.dtype.itemsize)
        off = seg.word("data_offset")
        slot_dtype = np.dtype({"names": ["seq", "row"], "formats": ["<u8", self.dtype],
                               "offsets": [0, L.SLOT_SEQ_SIZE], "itemsize": self.stride})
        self._slots = np.frombuffer(seg.mm, dtype=slot_dtype, count=self.slots, offset=off)
        self.seqs = self._slots["seq"]
        self.rows = self._slots["row"]
        self._u64 = memoryview(seg.mm).cast("B").cast("Q")
        self._mem = memoryview(seg.mm)
        self._seq_index0 = off // 8
        self._stride_words = self.stride // 8
        self._seqlock: SeqlockSlots | None = None     # the native writer, made on the first write
        self._stage = np.zeros(1, self.dtype)         # write()'s row, packed before the store

    @classmethod
    def create(cls, name: str, dtype: np.dtype, slots: int, exist_ok: bool = False) -> "Table":
        if slots < 1:
            raise ValueError(f"a table needs at least one slot, got {slots}")
        stride = L.slot_stride(dtype.itemsize)
        seg = Segment.create(name, L.TABLE_HEADER_SIZE + slots * stride, L.MAGIC_TABLE, dtype,
                             slots, L.TABLE_HEADER_SIZE, exist_ok=exist_ok)
        table = cls(seg)
        if seg.created:
            table._u64[_T["writer_pid"]] = os.getpid()
        return table

    @classmethod
    def attach(cls, name: str, dtype: np.dtype | None = None) -> "Table":
        return cls(Segment.attach(name, L.MAGIC_TABLE, dtype, not_found=TableNotFound, kind="table"))

    @staticmethod
    def names() -> list[str]:
        return list_segments(L.MAGIC_TABLE)

    def unlink(self) -> None:
        unlink(self.name)

    def close(self) -> None:
        if self._seqlock is not None:
            self._seqlock.release()
        self._slots = self.seqs = self.rows = None
        self._u64.release()
        self._mem.release()
        self.seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writer ----------------------------------------------------------------------------------
    def slot_writer(self) -> SeqlockSlots:
        """The native seqlock writer of this table's slots (single writer; shm/_seqlock.pyx)."""
        if self._seqlock is None:
            self._seqlock = SeqlockSlots(self.seg.mm, self._seq_index0 * 8, self.stride, self.slots,
                                         self.dtype.itemsize, _T["updates"] * 8)
        return self._seqlock

    def write(self, i: int, row) -> None:
        """Replace slot i (single writer)."""
        stage = self._stage
        stage[0] = row
        (self._seqlock or self.slot_writer()).store(i, stage.view(np.uint8))

    def span(self, i: int) -> tuple[int, int, int]:
        """Where slot i lives (its sequence word, its row's bytes), for store(). A writer that
        keeps its own packed image of a slot looks this up once."""
        k = self._seq_index0 + i * self._stride_words
        start = k * 8 + L.SLOT_SEQ_SIZE
        return k, start, start + self.dtype.itemsize

    def store(self, span: tuple[int, int, int], row_bytes) -> None:
        """Replace a slot with its row already packed in the dtype's layout (single writer):
        the cheapest write, one copy inside the seqlock."""
        i = (span[0] - self._seq_index0) // self._stride_words
        (self._seqlock or self.slot_writer()).store(i, row_bytes)

    def write_many(self, indices: np.ndarray, rows: np.ndarray) -> None:
        """Replace several slots at once (distinct indices), one seqlock write each."""
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        staged = np.empty(len(indices), self.dtype)
        staged[:] = rows
        (self._seqlock or self.slot_writer()).store_many(indices, staged.view(np.uint8))

    # -- readers ---------------------------------------------------------------------------------
    def read(self, i: int) -> np.void:
        """A consistent copy of slot i."""
        u = self._u64
        k = self._seq_index0 + i * self._stride_words
        rows = self.rows
        tries = 0
        deadline = None
        while True:
            s1 = u[k]
            if not s1 & 1:
                row = rows[i].copy()
                if u[k] == s1:
                    return row
            tries += 1
            if tries >= _SPINS_BEFORE_YIELD:
                # the writer was preempted mid-write: let it run instead of burning its core
                if deadline is None:
                    deadline = time.monotonic() + _STUCK_AFTER_S
                elif time.monotonic() > deadline:
                    raise TimeoutError(f"table {self.name!r} slot {i} stayed busy for "
                                       f"{_STUCK_AFTER_S} s; is its writer stuck?")
                os.sched_yield()

    def version(self, i: int) -> int:
        """Slot i's sequence: even and unchanged means nothing new was written."""
        return self._u64[self._seq_index0 + i * self._stride_words]

    def read_all(self) -> np.ndarray:
        """A consistent copy of every slot (each slot consistent on its own)."""
        before = self.seqs.copy()
        out = self.rows.copy()
        after = self.seqs.copy()
        for i in np.flatnonzero((before != after) | (before & 1)):
            out[i] = self.read(int(i))
        return out

    @property
    def updates(self) -> int:
        return self._u64[_T["updates"]]
