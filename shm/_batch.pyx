# cython: language_level=3, boundscheck=False, wraparound=False
"""Records packed one frame at a time on the hot path, then published to a ring in one copy.

A decoder appends the records of one websocket frame (`room(k)` from C: a pointer to record n
with space for k more; from Python: struct packing into `buf`, see shm/batch.py); the worker
hands the buffer to the ring writer and clears it. `buf` is a bytearray, so Python code may
pack into it and numpy may view it; growing it moves it (take the pointer after room()).
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_Resize
from libc.string cimport memset

import numpy as np

from ._record cimport *
from .record import RECORD, RECORD_SIZE, Flag, Kind

cdef enum:
    REC = 64
assert RECORD_SIZE == REC
cdef int _LAST = int(Flag.LAST)
cdef int _QUOTE = int(Kind.QUOTE)
from .record import PACK_LEVEL, PACK_QUOTE
_level = PACK_LEVEL.pack_into
_quote = PACK_QUOTE.pack_into


cdef class RecordBatch:
    """A growable staging buffer of RECORD-shaped bytes. `n` records are valid."""

    def __init__(self, Py_ssize_t capacity=1024):
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.cap = capacity
        self.buf = bytearray(capacity * REC)
        self.n = 0

    cdef char *room(self, Py_ssize_t k) except NULL:
        cdef Py_ssize_t need = self.n + k
        cdef Py_ssize_t cap = self.cap
        cdef Py_ssize_t old
        if need > cap:
            cap = max(cap * 2, 16)
            while cap < need:
                cap *= 2
            old = len(self.buf)
            PyByteArray_Resize(self.buf, cap * REC)
            memset(PyByteArray_AS_STRING(self.buf) + old, 0, cap * REC - old)
            self.cap = cap
        return PyByteArray_AS_STRING(self.buf) + self.n * REC

    def clear(self):
        self.n = 0

    def _grow(self):
        self.room(self.cap - self.n + 1)

    def reserve(self, Py_ssize_t k):
        """Room for k more records; returns the buffer to pack them into (growing moves it)."""
        self.room(k)
        return self.buf

    def add(self, int kind, instrument, ts_event, ts_recv, int side, int flags, price, size,
            id=0, extra=0.0):
        """Append one TRADE/BOOK/MARK/LIQUIDATION/STATUS record (`extra` lands in ask_price)."""
        self.room(1)
        _level(self.buf, self.n * REC, 0, ts_event, ts_recv, instrument, kind, side, flags,
               price, size, extra, id)
        self.n += 1

    def add_quote(self, instrument, ts_event, ts_recv, int flags, bid_price, bid_size, ask_price,
                  ask_size):
        """Append one QUOTE record."""
        self.room(1)
        _quote(self.buf, self.n * REC, 0, ts_event, ts_recv, instrument, _QUOTE, 0, flags,
               bid_price, bid_size, ask_price, ask_size)
        self.n += 1

    def mark_last(self):
        """Set Flag.LAST on the newest record (the last one of its exchange message)."""
        cdef unsigned char *p
        if self.n:
            p = <unsigned char *>PyByteArray_AS_STRING(self.buf) + (self.n - 1) * REC + 30
            p[0] |= _LAST

    def array(self):
        """A copy of the valid records as a numpy array of shm.RECORD."""
        return np.frombuffer(self.buf, dtype=RECORD, count=self.n).copy()


def _check_layout():
    """The C record (shm/_record.pxd) against RECORD and the enums (shm/record.py)."""
    from .record import Side, Flag as F, Kind as K
    cdef tickring_record r
    cdef char *base = <char *>&r
    offsets = {"seq": <char *>&r.seq - base, "ts_event": <char *>&r.ts_event - base,
               "ts_recv": <char *>&r.ts_recv - base, "instrument": <char *>&r.instrument - base,
               "kind": <char *>&r.kind - base, "side": <char *>&r.side - base,
               "flags": <char *>&r.flags - base, "price": <char *>&r.price - base,
               "size": <char *>&r.size - base, "bid_price": <char *>&r.price - base,
               "bid_size": <char *>&r.size - base, "ask_price": <char *>&r.ask_price - base,
               "ask_size": <char *>&r.u.ask_size - base, "id": <char *>&r.u.id - base}
    want = {name: RECORD.fields[name][1] for name in RECORD.names}
    if offsets != want or sizeof(tickring_record) != RECORD.itemsize:
        raise ImportError(f"shm/_record.pxd does not match shm.record.RECORD: {offsets} vs {want}")
    consts = {"K_TRADE": (K_TRADE, K.TRADE), "K_QUOTE": (K_QUOTE, K.QUOTE), "K_BOOK": (K_BOOK, K.BOOK),
              "K_MARK": (K_MARK, K.MARK), "K_LIQUIDATION": (K_LIQUIDATION, K.LIQUIDATION),
              "K_STATUS": (K_STATUS, K.STATUS), "S_BUY": (S_BUY, Side.BUY), "S_SELL": (S_SELL, Side.SELL),
              "S_BID": (S_BID, Side.BID), "S_ASK": (S_ASK, Side.ASK), "F_SNAPSHOT": (F_SNAPSHOT, F.SNAPSHOT),
              "F_LAST": (F_LAST, F.LAST), "F_RESYNCED": (F_RESYNCED, F.RESYNCED),
              "F_CROSSED": (F_CROSSED, F.CROSSED)}
    bad = {k: v for k, v in consts.items() if v[0] != int(v[1])}
    if bad:
        raise ImportError(f"shm/_record.pxd constants differ from shm/record.py: {bad}")


_check_layout()
