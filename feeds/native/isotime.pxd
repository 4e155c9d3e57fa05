# ISO-8601 / RFC 3339 timestamps -> int64 ns, in C: feeds/isotime.py's iso_ns() for the form the
# venues send ("2023-02-09T20:19:35.39625135Z", "...T20:19:35Z", "...T20:19:35"). Every other text
# (a UTC offset, a non-ASCII character, a field out of range, garbage) is handed to iso_ns()
# itself, so the value or the ValueError is always Python's.
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t

cdef extern from *:
    """
    /* sec * 1e9 + ns into *out; nonzero when that leaves int64 */
    static inline int tickring_sec_ns(int64_t sec, int64_t ns, int64_t *out) {
        int64_t t;
        if (sec < 0 && ns > 0) {      /* the earliest times fit only this way round */
            sec += 1;
            ns -= 1000000000;
        }
        return __builtin_mul_overflow(sec, (int64_t)1000000000, &t) || __builtin_add_overflow(t, ns, out);
    }
    """
    int tickring_sec_ns(int64_t sec, int64_t ns, int64_t *out) noexcept nogil


cdef inline int _iso_slow(const char *s, Py_ssize_t n, int64_t *out) except -1:
    from feeds.isotime import iso_ns
    x = iso_ns(PyUnicode_DecodeUTF8(s, n, NULL))
    try:
        out[0] = x
    except OverflowError:
        return 1
    return 0


cdef inline bint _digits(const char *s, int a, int b) noexcept nogil:
    """s[a:b] is all ASCII digits."""
    cdef int i
    for i in range(a, b):
        if <unsigned int>(<unsigned char>s[i] - 48) > 9:
            return False
    return True


cdef inline int _two(const char *s, int i) noexcept nogil:
    return (s[i] - 48) * 10 + (s[i + 1] - 48)


cdef inline int iso_ns_text(const char *s, Py_ssize_t n, int64_t *out) except -1:
    """iso_ns(s[:n]) into out[0]: 0. Returns 1 (out unset) when the time does not fit int64 (Python
    held it as a big int, which fails only where a record packs it); raises what iso_ns raises."""
    cdef int64_t y, mo, d, h, mi, sc, era, yoe, doy, doe, sec, frac = 0
    cdef Py_ssize_t i
    cdef int k = 0
    cdef char c
    if (n < 19 or s[4] != b'-' or s[7] != b'-' or not (s[10] == b'T' or s[10] == b't' or s[10] == b' ')
            or s[13] != b':' or s[16] != b':' or not (_digits(s, 0, 4) and _digits(s, 5, 7)
            and _digits(s, 8, 10) and _digits(s, 11, 13) and _digits(s, 14, 16) and _digits(s, 17, 19))):
        return _iso_slow(s, n, out)
    y = _two(s, 0) * 100 + _two(s, 2)
    mo = _two(s, 5)
    d = _two(s, 8)
    h = _two(s, 11)
    mi = _two(s, 14)
    sc = _two(s, 17)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sc < 61):
        return _iso_slow(s, n, out)
    if n > 19:
        c = s[19]
        if c == b'.':                      # a fraction, then "Z" (anything else: the slow path)
            if n < 22 or not (s[n - 1] == b'Z' or s[n - 1] == b'z') or not _digits(s, 20, n - 1):
                return _iso_slow(s, n, out)
            for i in range(20, n - 1):
                if k == 9:
                    break                  # nanoseconds: the first nine digits
                frac = frac * 10 + (s[i] - 48)
                k += 1
            while k < 9:
                frac *= 10
                k += 1
        elif n != 20 or not (c == b'Z' or c == b'z'):
            return _iso_slow(s, n, out)
    # days since 1970-01-01 (H. Hinnant's days_from_civil, as feeds/isotime.py); y >= -1 here,
    # so C's truncating division equals Python's floor division
    y -= mo <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    sec = (era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60 + sc
    if tickring_sec_ns(sec, frac, out):
        return 1
    return 0
