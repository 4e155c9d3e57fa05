# JSON values as the Python decoders read them (orjson.loads, then float(), int(), bool(),
# d[key]): what every native venue decoder needs, in one place - numbers, times, sides, trade
# ids, book levels, symbols that are no string. Documented types take the C path; anything odd
# goes through py_value and Python's own rule, so a native decoder accepts and refuses exactly
# what the Python one did.
from libc.math cimport NAN, trunc
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memchr, memcmp

from shm._record cimport S_BUY, S_SELL

from .decoder cimport NativeDecoder, py_value
from .isotime cimport iso_ns_text
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_get_bool, yyjson_get_real, yyjson_get_sint,
                    yyjson_get_uint, yyjson_is_arr, yyjson_is_bool, yyjson_is_null,
                    yyjson_is_obj, yyjson_is_real, yyjson_is_sint, yyjson_is_str, yyjson_is_uint,
                    yyjson_val)
from .text cimport text_to_double, text_to_int64

cdef extern from *:
    """
    #define TICKRING_MS 1000000LL
    #define TICKRING_MS_MAX 9223372036854LL   /* |ms| beyond this overflows int64 as ns */
    """
    int64_t TICKRING_MS
    int64_t TICKRING_MS_MAX


cdef inline yyjson_val *value_of(yyjson_val *key) noexcept:
    """An object's value: it follows its key (walking an object: key, value, key, value...)."""
    return key + 1


cdef inline bint key_is(yyjson_val *key, const char *name, size_t n) noexcept:
    """A string value (an object key) equals name[:n]."""
    return unsafe_yyjson_get_len(key) == n and memcmp(unsafe_yyjson_get_str(key), name, n) == 0


cdef inline bint text_is(yyjson_val *v, const char *s, size_t n) noexcept:
    """v is the string s[:n] (False for NULL and other types)."""
    return v != NULL and yyjson_is_str(v) and key_is(v, s, n)


cdef inline bint truthy(yyjson_val *v) noexcept:
    """bool(value) in Python (null, false, 0, 0.0, "", [], {} are false; NULL: absent)."""
    if v == NULL or yyjson_is_null(v):
        return False
    if yyjson_is_bool(v):
        return yyjson_get_bool(v)
    if yyjson_is_real(v):
        return yyjson_get_real(v) != 0.0
    if yyjson_is_uint(v) or yyjson_is_sint(v):
        return yyjson_get_uint(v) != 0
    return unsafe_yyjson_get_len(v) != 0          # string, array, object


cdef inline yyjson_val *need(yyjson_val *v, str key) except NULL:
    """d[key]: KeyError if the object had no such key (v is what a lookup returned)."""
    if v == NULL:
        raise KeyError(key)
    return v


cdef inline double dbl(yyjson_val *v) except? -1.0:
    """float(v)."""
    if yyjson_is_str(v):
        return text_to_double(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
    if yyjson_is_real(v):
        return yyjson_get_real(v)
    return float(py_value(v))


cdef inline double num(yyjson_val *v) except? -1.0:
    """feeds.wire.num(v): "" and null are NAN (not available), else float(v)."""
    if yyjson_is_null(v) or (yyjson_is_str(v) and unsafe_yyjson_get_len(v) == 0):
        return NAN
    return dbl(v)


cdef inline int64_t whole(yyjson_val *v) except? -1:
    """int(v), which must fit an int64 (OverflowError beyond, as struct packing raised)."""
    if yyjson_is_str(v):
        return text_to_int64(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
    if yyjson_is_sint(v) or (yyjson_is_uint(v) and yyjson_get_uint(v) < (<uint64_t>1 << 63)):
        return yyjson_get_sint(v)
    return int(py_value(v))


cdef inline int64_t ms_to_ns(yyjson_val *v) except? -1:
    """int(v) * 1_000_000 (ms since the epoch -> ns); OverflowError if that leaves int64."""
    cdef int64_t ms = whole(v)
    if not -TICKRING_MS_MAX <= ms <= TICKRING_MS_MAX:
        raise OverflowError(f"time {py_value(v)!r} ms out of range")
    return ms * TICKRING_MS


cdef inline int sequence(yyjson_val *v, int64_t *out, bint real_ok) except -1:
    """A book sequence field as an int64: an integer, a bool (an int in Python), or with real_ok
    a whole float; anything else is a malformed frame (TypeError). A BookEvent holds int64s
    only, so where a Python decoder passed a "123" on to the keeper, this refuses it."""
    cdef double x
    if yyjson_is_sint(v) or (yyjson_is_uint(v) and yyjson_get_uint(v) < (<uint64_t>1 << 63)):
        out[0] = yyjson_get_sint(v)
        return 0
    if yyjson_is_bool(v):
        out[0] = yyjson_get_bool(v)
        return 0
    if real_ok and yyjson_is_real(v):
        x = yyjson_get_real(v)
        if x == trunc(x) and -9223372036854775808.0 <= x < 9223372036854775808.0:
            out[0] = <int64_t>x
            return 0
    raise TypeError(f"sequence field {py_value(v)!r:.60} is not an integer")


cdef inline int ms_to_ns_late(yyjson_val *v, int64_t *ns) except -1:
    """int(v) * 1_000_000 into ns[0], returning 0; or 1 (ns[0] untouched) when that leaves
    int64. A Python decoder held the product as a big int and failed only where it packed it
    into a record, so the caller raises where it would pack one. Raises what int(v) raises."""
    cdef int64_t ms
    if yyjson_is_str(v) and unsafe_yyjson_get_len(v) <= 18:     # no 18-character int() leaves int64
        ms = text_to_int64(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
    elif yyjson_is_sint(v) or (yyjson_is_uint(v) and yyjson_get_uint(v) < (<uint64_t>1 << 63)):
        ms = yyjson_get_sint(v)
    else:
        big = int(py_value(v))
        if not -TICKRING_MS_MAX <= big <= TICKRING_MS_MAX:
            return 1
        ms = big
    if not -TICKRING_MS_MAX <= ms <= TICKRING_MS_MAX:
        return 1
    ns[0] = ms * TICKRING_MS
    return 0


cdef inline int side_of(yyjson_val *v) except -1:
    """feeds.wire.SIDES[v]: a taker/order side as the venues spell it ("buy", "Buy", "BUY",
    "b" and the sells) -> S_BUY / S_SELL; KeyError for anything else."""
    cdef const char *s
    cdef size_t n
    if yyjson_is_str(v):
        s = unsafe_yyjson_get_str(v)
        n = unsafe_yyjson_get_len(v)
        if n == 3 and (memcmp(s, b"buy", 3) == 0 or memcmp(s, b"Buy", 3) == 0 or
                       memcmp(s, b"BUY", 3) == 0):
            return S_BUY
        if n == 4 and (memcmp(s, b"sell", 4) == 0 or memcmp(s, b"Sell", 4) == 0 or
                       memcmp(s, b"SELL", 4) == 0):
            return S_SELL
        if n == 1 and (s[0] == b"b" or s[0] == b"s"):
            return S_BUY if s[0] == b"b" else S_SELL
    raise KeyError(f"side {py_value(v)!r:.60}")


cdef inline void short_keys(yyjson_val *obj, const char *names, size_t n, yyjson_val **out) noexcept:
    """An object's one-character keys named in `names` (e.g. b"sbau"), in one walk: out[j] is the
    value of names[j], NULL when absent (the last of a repeated key, as in a dict)."""
    cdef yyjson_val *k = unsafe_yyjson_get_first(obj)
    cdef const char *hit
    cdef size_t j
    for j in range(n):
        out[j] = NULL
    for j in range(unsafe_yyjson_get_len(obj)):
        if unsafe_yyjson_get_len(k) == 1:
            hit = <const char *>memchr(names, unsafe_yyjson_get_str(k)[0], n)
            if hit != NULL:
                out[hit - names] = k + 1
        k = unsafe_yyjson_get_next(k + 1)


cdef inline yyjson_val *member(yyjson_val *obj, const char *key, size_t n) noexcept:
    """d.get(key) of an object: the value, or NULL when absent (or obj is no object); of a
    repeated key the last one, as in the dict orjson builds (yyjson_obj_getn finds the first)."""
    cdef yyjson_val *k
    cdef yyjson_val *found = NULL
    cdef size_t i
    if not yyjson_is_obj(obj):
        return NULL
    k = unsafe_yyjson_get_first(obj)
    for i in range(unsafe_yyjson_get_len(obj)):
        if key_is(k, key, n):
            found = k + 1
        k = unsafe_yyjson_get_next(k + 1)
    return found


cdef inline Py_ssize_t items(yyjson_val *v, yyjson_val **first) except -1:
    """`for x in v` where each x is then read as an object (x[key], x.get(key)): an array's
    length, its first element in first[0]. "" and {} iterate to nothing, as in Python; any other
    value fails there as Python did, at once (not iterable) or at its first element (a
    string's character, an object's key, which are no objects): a TypeError either way."""
    if yyjson_is_arr(v):
        first[0] = unsafe_yyjson_get_first(v)
        return unsafe_yyjson_get_len(v)
    if (yyjson_is_str(v) or yyjson_is_obj(v)) and unsafe_yyjson_get_len(v) == 0:
        return 0
    raise TypeError(f"expected a list of objects, got {py_value(v)!r:.60}")


cdef inline int whole_late(yyjson_val *v, int64_t *out) except -1:
    """int(v) into out[0], returning 0; or 1 (out[0] untouched) when it leaves int64: a Python
    decoder held the big int and failed only where it packed it into a record, so the caller
    raises there. Raises what int(v) raises, at once."""
    if yyjson_is_str(v) and unsafe_yyjson_get_len(v) <= 18:     # no 18-character int() leaves int64
        out[0] = text_to_int64(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
        return 0
    if yyjson_is_sint(v) or (yyjson_is_uint(v) and yyjson_get_uint(v) < (<uint64_t>1 << 63)):
        out[0] = yyjson_get_sint(v)
        return 0
    big = int(py_value(v))
    if not -9223372036854775808 <= big <= 9223372036854775807:
        return 1
    out[0] = big
    return 0


cdef inline double number(yyjson_val *v) except? -1.0:
    """float(v) of a value documented as a JSON number (Kraken's prices and sizes): an integer
    too is converted in C (to the nearest double, ties to even, as float(int) rounds); any
    other value as dbl reads it."""
    if yyjson_is_real(v):
        return yyjson_get_real(v)
    if yyjson_is_sint(v):
        return <double>yyjson_get_sint(v)
    if yyjson_is_uint(v):
        return <double>yyjson_get_uint(v)
    return dbl(v)


cdef inline bint id_digits(const char *s, Py_ssize_t n, int64_t *out) noexcept:
    """feeds.wire.id_from_str of a trade id string that is 1 to 18 ASCII digits (an int64
    whatever they are) into out[0]: True. False (out untouched) for any other text, which the
    caller hands to id_from_str itself (a hash of opaque ids, Unicode or longer digits)."""
    cdef Py_ssize_t i
    cdef int64_t x = 0
    if not 0 < n <= 18:
        return False
    for i in range(n):
        if <unsigned int>(<unsigned char>s[i] - 48) > 9:
            return False
        x = x * 10 + (s[i] - 48)
    out[0] = x
    return True


# -- book levels: [price, size, ...] lists as the Python decoders indexed them ----------------------

cdef inline int py_pair(object level, double *price, double *size) except -1:
    """float(level[0]), float(level[1]) of a level Python holds (a string, whose characters
    are then read, an object's key...), by Python's own indexing."""
    price[0] = float(level[0])
    size[0] = float(level[1])
    return 0


cdef inline int level_pair(yyjson_val *lv, double *price, double *size) except -1:
    """float(lv[0]), float(lv[1]) of one level: a list of 2+ values in C, any other shape as
    Python indexed it."""
    cdef yyjson_val *x
    if yyjson_is_arr(lv) and unsafe_yyjson_get_len(lv) >= 2:
        x = unsafe_yyjson_get_first(lv)
        price[0] = dbl(x)
        size[0] = dbl(unsafe_yyjson_get_next(x))
        return 0
    return py_pair(py_value(lv), price, size)


cdef inline int first_level(yyjson_val *side, double *price, double *size) except -1:
    """float(side[0][0]), float(side[0][1]): a side's first level (a top-of-book quote)."""
    if yyjson_is_arr(side) and unsafe_yyjson_get_len(side) > 0:
        return level_pair(unsafe_yyjson_get_first(side), price, size)
    o = py_value(side)
    return py_pair(o[0], price, size)


cdef inline list py_levels(yyjson_val *v):
    """[(price, size)] of a level list that is no array, by the Python rule `len(levels)`, then
    `for lv in levels: float(lv[0]), float(lv[1])`: a string's characters or an object's keys
    are its levels; a number, null or a bool has no len()."""
    levels = py_value(v)
    len(levels)
    return [(float(lv[0]), float(lv[1])) for lv in levels]


cdef inline list py_items(yyjson_val *v):
    """`len(levels)` then `for lv in levels` of a level list that is no array: its items as
    Python iterated them (a string's characters, an object's keys; a number, null or a bool
    has no len())."""
    levels = py_value(v)
    len(levels)
    return list(levels)


# -- symbols -------------------------------------------------------------------------------------

cdef inline uint32_t symbol_by_value(NativeDecoder dec, dict known, object symbol) except 0:
    """The instrument of a symbol that is no string, registered by value as a Python decoder's
    dict cache did (1, 1.0 and true are one key; a list or an object is unhashable, a
    TypeError); known: the decoder's cache of them."""
    i = known.get(symbol)
    if i is None:
        try:
            i = dec.instruments.id(symbol, dec.market)
        except AttributeError as e:          # a malformed frame to the Python decoder
            raise TypeError(str(e)) from None
        if not 0 < i < (1 << 32):
            raise ValueError(f"{dec.venue}: instrument id {i} of {symbol!r} is out of range")
        known[symbol] = i
    return i


# -- ISO-8601 times ------------------------------------------------------------------------------

cdef inline int iso_stamp(yyjson_val *v, int64_t *ns, const char *what) except -1:
    """feeds.isotime.iso_ns(v) into ns[0]: 0; 1 when beyond int64 (the caller raises where it
    packs a record, time_packable). A value that is no string has no iso_ns: a TypeError that
    names the field (what)."""
    if not yyjson_is_str(v):
        raise TypeError(f"{what.decode()} {py_value(v)!r:.60} is not a string")
    return iso_ns_text(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v), ns)


cdef inline int time_packable(int over, const char *what) except -1:
    """The OverflowError of packing a time found beyond int64 (over) into a record."""
    if over:
        raise OverflowError(f"{what.decode()} out of the int64 ns range")
    return 0
