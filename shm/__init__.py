"""Shared memory: rings of records, seqlock tables, the instrument registry, the record schema.

    import shm
    ring = shm.Ring.attach("binance")
    reader = ring.reader(start="latest")
    batch = reader.read(max_records=4096, timeout=0.1)
"""
from .errors import LayoutMismatch, RingNotFound, SegmentExists, SegmentNotFound, ShmError
from .record import RECORD, RECORD_SIZE, Flag, Kind, Side, Status, concat, dtype_hash, empty
from .batch import RecordBatch
from .registry import Instrument, Registry
from .ring import Reader, Ring, Writer
from .table import Table

__all__ = ["RECORD", "RECORD_SIZE", "Flag", "Kind", "Side", "Status", "dtype_hash", "empty", "concat",
           "Ring", "Reader", "Writer", "RecordBatch", "Table", "Registry", "Instrument", "ShmError", "RingNotFound", "SegmentNotFound",
           "SegmentExists", "LayoutMismatch"]
