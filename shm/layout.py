"""Every shared-memory layout of tickring, declared once as named offsets.

Aeron-style: the writer, the readers, `tickring inspect` and any foreign-language consumer all
read this one description. Offsets are bytes from the start of the segment; every field is a
little-endian, naturally aligned 8-byte word unless said otherwise.

Memory-ordering contract (x86-64 TSO): stores are not reordered with other stores and aligned
8-byte stores/loads are not torn. Cursors and slot sequences are written with their own aligned
8-byte stores, never inside a bulk copy of records. `shm.platform.require_x86_64()` refuses
other architectures at start-up.
"""
from __future__ import annotations

from dataclasses import dataclass

CACHE_LINE = 64
LAYOUT_VERSION = 1
PREFIX = "tickring."            # /dev/shm/tickring.<name>
SEGMENT_MODE = 0o640            # owner writes, group reads

MAGIC_RING = 0x474E4952_4B434954      # b"TICKRING" little-endian
MAGIC_TABLE = 0x4C424154_4B434954     # b"TICKTABL"
MAGIC_REGISTRY = 0x47455249_4B434954  # b"TICKIREG"


@dataclass(frozen=True)
class Word:
    """One 8-byte field of a header."""
    name: str
    offset: int
    doc: str

    @property
    def index(self) -> int:
        """Index in a uint64 view of the header."""
        return self.offset // 8


def _words(*specs: tuple[str, int, str]) -> dict[str, Word]:
    words = {name: Word(name, off, doc) for name, off, doc in specs}
    for w in words.values():
        assert w.offset % 8 == 0, w
    return words


# ---------------------------------------------------------------- common header (all segments)
COMMON = _words(
    ("magic",          0,  "MAGIC_RING / MAGIC_TABLE / MAGIC_REGISTRY"),
    ("layout_version", 8,  "LAYOUT_VERSION of the writer"),
    ("schema_hash",    16, "shm.record.dtype_hash of the record/slot dtype"),
    ("record_size",    24, "bytes per record or slot payload"),
    ("capacity",       32, "records (rings, a power of two) or slots (tables, registry)"),
    ("created_ns",     40, "creation time, ns since the epoch"),
    ("data_offset",    48, "byte offset of the first record / slot"),
    ("dtype_len",      56, "length of the dtype description (JSON) stored at DTYPE_OFFSET"),
)
DTYPE_OFFSET = 1024     # JSON description of the dtype, so any tool can attach without code
DTYPE_MAX = 1024

# ---------------------------------------------------------------- ring header
RING = COMMON | _words(
    # producer line: written by the producer only
    ("epoch",          64,  "bumped each time a producer attaches (restart)"),
    ("producer_pid",   72,  "pid of the current producer, 0 when none"),
    ("heartbeat_ns",   80,  "producer's last heartbeat, ns since the epoch"),
    ("producer_state", 88,  "0 detached, 1 running, 2 stopped cleanly"),
    # claim cursor, own line: positions < claim may be being written
    ("claim",          128, "producer stores p+n here BEFORE copying records p..p+n-1"),
    # publish cursor, own line: positions < publish are complete (futex word = low 32 bits)
    ("publish",        192, "producer stores p+n here AFTER copying records p..p+n-1"),
    # waiters, own line: set to 1 by a consumer about to block, cleared by the producer's wake
    ("waiters",        256, "1 when a consumer may be blocked on the publish futex"),
    # counters line
    ("messages",       320, "exchange messages decoded (or publish calls for user rings)"),
    ("decode_errors",  328, "malformed frames counted and skipped"),
    ("reconnects",     336, "websocket reconnects"),
    ("gaps",           344, "sequence gaps detected (each resyncs one instrument)"),
    ("resyncs",        352, "book resyncs"),
    ("crossed",        360, "crossed books detected"),
    ("frames",         368, "websocket frames received"),
    ("bytes_in",       376, "websocket payload bytes received"),
    ("last_recv_ns",   384, "ts_recv of the newest frame"),
    ("connections",    392, "websocket connections currently open"),
)
RING_COUNTERS = ("messages", "decode_errors", "reconnects", "gaps", "resyncs", "crossed",
                 "frames", "bytes_in", "last_recv_ns", "connections")

# Registered consumers: a table of slots after the dtype description.
CONSUMERS_OFFSET = 2048
CONSUMER_SLOTS = 32
CONSUMER_SLOT_SIZE = CACHE_LINE
CONSUMER = _words(
    ("pid",        0,  "consumer's pid, 0 = free slot"),
    ("position",   8,  "next seq the consumer will read"),
    ("lost",       16, "records this consumer lost to laps"),
    ("attached_ns", 24, "when it registered"),
    ("read_ns",    32, "when it last read"),
    ("name",       40, "up to 24 bytes of ASCII name (3 words)"),
)
CONSUMER_NAME_LEN = 24
RING_HEADER_SIZE = 4096
assert CONSUMERS_OFFSET + CONSUMER_SLOTS * CONSUMER_SLOT_SIZE <= RING_HEADER_SIZE

# ---------------------------------------------------------------- seqlock table
TABLE = COMMON | _words(
    ("writer_pid",   64, "pid of the writer"),
    ("updates",      72, "slot updates so far"),
)
TABLE_HEADER_SIZE = 4096
# Each slot: an 8-byte sequence (odd while being written) then the payload, padded to 8 bytes.
SLOT_SEQ_SIZE = 8

# ---------------------------------------------------------------- instrument registry
REGISTRY = COMMON | _words(
    ("count", 64, "entries committed; entries [0, count) are immutable"),
)
REGISTRY_HEADER_SIZE = 4096


def ring_size(capacity: int, record_size: int) -> int:
    """Bytes of a ring segment."""
    return RING_HEADER_SIZE + capacity * record_size


def slot_stride(payload_size: int) -> int:
    """Bytes per table slot: sequence word + payload, rounded up to 8."""
    return SLOT_SEQ_SIZE + (payload_size + 7) // 8 * 8


def describe() -> str:
    """Human-readable dump of every layout (used by docs and `tickring inspect --layout`)."""
    out = []
    for title, words in (("ring", RING), ("consumer slot", CONSUMER), ("table", TABLE),
                         ("registry", REGISTRY)):
        out.append(f"[{title}]")
        out += [f"  {w.offset:5d}  {w.name:<15} {w.doc}" for w in sorted(words.values(), key=lambda w: w.offset)]
    return "\n".join(out)
