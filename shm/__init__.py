"""Shared memory: rings of records, seqlock tables, the instrument registry, the record schema.

    import shm
    ring = shm.Ring.attach("binance")
    reader = ring.reader(start="latest")
    batch = reader.read(max_records=4096, timeout=0.1)
"""
from .errors import LayoutMismatch, RingNotFound, SegmentExists, SegmentNotFound, ShmError
from .record import RECORD, RECORD_SIZE, Flag, Kind, Side, Status, dtype_hash, empty
from .batch import RecordBatch
from .ring import Reader, Ring, Writer

__all__ = ["RECORD", "RECORD_SIZE", "Flag", "Kind", "Side", "Status", "dtype_hash", "empty",
           "Ring", "Reader", "Writer", "RecordBatch", "ShmError", "RingNotFound", "SegmentNotFound",
           "SegmentExists", "LayoutMismatch"]
