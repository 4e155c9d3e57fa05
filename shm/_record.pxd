# The 64-byte record (shm/record.py, the one declaration of the layout) as a C struct, for
# native code that writes records in place. shm/_batch.pyx checks at import that every offset
# here equals RECORD's, so the two cannot drift silently.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from *:
    """
    typedef struct {
        uint64_t seq;
        int64_t ts_event;
        int64_t ts_recv;
        uint32_t instrument;
        uint8_t kind;
        uint8_t side;
        uint16_t flags;
        double price;         /* QUOTE: bid_price */
        double size;          /* QUOTE: bid_size */
        double ask_price;     /* MARK: index price */
        union { int64_t id; double ask_size; } u;   /* QUOTE: ask_size; others: id */
    } tickring_record;
    """
    ctypedef union tickring_id_or_size:
        int64_t id
        double ask_size
    ctypedef struct tickring_record:
        uint64_t seq
        int64_t ts_event
        int64_t ts_recv
        uint32_t instrument
        uint8_t kind
        uint8_t side
        uint16_t flags
        double price
        double size
        double ask_price
        tickring_id_or_size u

# kinds, sides and flags as C constants (values from shm/record.py; checked in shm/_batch.pyx)
cdef enum:
    K_TRADE = 1
    K_QUOTE = 2
    K_BOOK = 3
    K_MARK = 4
    K_LIQUIDATION = 5
    K_STATUS = 6
    S_NONE = 0
    S_BUY = 1
    S_SELL = 2
    S_BID = 1
    S_ASK = 2
    F_SNAPSHOT = 1
    F_LAST = 2
    F_RESYNCED = 4
    F_CROSSED = 128


cdef inline void put_level(tickring_record *r, int64_t ts_event, int64_t ts_recv, uint32_t inst,
                           uint8_t kind, uint8_t side, uint16_t flags, double price, double size,
                           double extra, int64_t id) noexcept nogil:
    """Every kind but QUOTE (what shm.record.PACK_LEVEL packs); seq is the ring's to set."""
    r.seq = 0
    r.ts_event = ts_event
    r.ts_recv = ts_recv
    r.instrument = inst
    r.kind = kind
    r.side = side
    r.flags = flags
    r.price = price
    r.size = size
    r.ask_price = extra
    r.u.id = id


cdef inline void put_quote(tickring_record *r, int64_t ts_event, int64_t ts_recv, uint32_t inst,
                           uint16_t flags, double bid_price, double bid_size, double ask_price,
                           double ask_size) noexcept nogil:
    r.seq = 0
    r.ts_event = ts_event
    r.ts_recv = ts_recv
    r.instrument = inst
    r.kind = K_QUOTE
    r.side = 0
    r.flags = flags
    r.price = bid_price
    r.size = bid_size
    r.ask_price = ask_price
    r.u.ask_size = ask_size
