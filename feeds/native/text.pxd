# Numbers from the text venues send ("0.00123", "1697040000123"), to the same float64 / int
# Python's float() and int() give, without making a Python object on the common path.
#
# Decimals: Clinger's fast path. A decimal with at most 19 digits whose mantissa m < 2**53 and
# whose power of ten k is within +-22 is exactly m * 10**k or m / 10**-k with both operands
# exact, and one IEEE operation rounds that correctly - the same double Python's correctly
# rounded float() returns. Everything else (longer mantissas, big exponents, "inf", "1_0",
# blanks, garbage) goes to Python's own float()/int(), so the result or the ValueError is
# Python's, bit for bit.
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint64_t

cdef extern from *:
    """
    static const double tickring_pow10[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    """
    const double tickring_pow10[23]


cdef inline double _float_slow(const char *s, Py_ssize_t n) except? -1.0:
    # the str, as the Python decoders passed it (float(b"...") differs for non-ASCII digits)
    return float(PyUnicode_DecodeUTF8(s, n, NULL))


cdef inline double text_to_double(const char *s, Py_ssize_t n) except? -1.0:
    """float(s[:n]) as Python computes it (raises ValueError where Python does)."""
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef uint64_t m = 0
    cdef int digits = 0          # mantissa digits kept (leading zeros excluded)
    cdef int seen = 0            # any digit at all
    cdef int k = 0               # power of ten
    cdef int e = 0
    cdef bint eneg = False
    cdef unsigned char c
    if n <= 0:
        return _float_slow(s, n)
    if s[0] == 45:               # '-'
        neg = True
        i = 1
    while i < n:
        c = <unsigned char>s[i]
        if <unsigned int>(c - 48) > 9:           # unsigned: anything not '0'..'9'
            break
        if m or c != 48:
            digits += 1
        m = m * 10 + (c - 48)
        seen = 1
        i += 1
    if i < n and s[i] == 46:     # '.'
        i += 1
        while i < n:
            c = <unsigned char>s[i]
            if <unsigned int>(c - 48) > 9:
                break
            if m or c != 48:
                digits += 1
            m = m * 10 + (c - 48)
            k -= 1
            seen = 1
            i += 1
    if i < n and (s[i] == 101 or s[i] == 69) and seen:     # 'e' / 'E'
        i += 1
        if i < n and (s[i] == 45 or s[i] == 43):
            eneg = s[i] == 45
            i += 1
        if i == n:
            return _float_slow(s, n)
        while i < n:
            c = <unsigned char>s[i]
            if <unsigned int>(c - 48) > 9 or e > 9999:
                return _float_slow(s, n)
            e = e * 10 + (c - 48)
            i += 1
        k += -e if eneg else e
    if i != n or not seen or digits > 19 or m >= (<uint64_t>1 << 53):
        return _float_slow(s, n)
    cdef double v
    if m == 0:
        v = 0.0
    elif k >= 0:
        if k > 22:
            return _float_slow(s, n)
        v = <double>m * tickring_pow10[k]
    else:
        if k < -22:
            return _float_slow(s, n)
        v = <double>m / tickring_pow10[-k]
    return -v if neg else v


cdef inline int64_t _int_slow(const char *s, Py_ssize_t n) except? -1:
    return int(PyUnicode_DecodeUTF8(s, n, NULL))


cdef inline int64_t text_to_int64(const char *s, Py_ssize_t n) except? -1:
    """int(s[:n]) as Python computes it, for values that fit int64 (OverflowError beyond)."""
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef int64_t v = 0
    cdef unsigned char c
    if n <= 0 or n > 18:
        return _int_slow(s, n)
    if s[0] == 45:
        neg = True
        i = 1
        if n == 1:
            return _int_slow(s, n)
    while i < n:
        c = <unsigned char>s[i]
        if <unsigned int>(c - 48) > 9:
            return _int_slow(s, n)
        v = v * 10 + (c - 48)
        i += 1
    return -v if neg else v
