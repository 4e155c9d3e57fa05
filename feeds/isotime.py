"""ISO-8601 / RFC 3339 timestamps -> int ns since the epoch, fast enough for the hot path.

Coinbase and Kraken stamp every message with strings like "2023-02-09T20:19:35.39625135Z".
datetime.fromisoformat() cannot take nine fraction digits on every Python we run and builds
an object per call; here the "YYYY-MM-DDTHH:MM:SS" prefix is turned into epoch seconds once and
cached (consecutive messages share the second), and the fraction is a slice plus int().

    iso_ns("2023-02-09T20:19:35.39625135Z") -> 1675973975396251350
    iso_ns("2023-10-06T17:35:55+02:00")      -> offsets are honoured (slow path, still exact)

Malformed input raises ValueError (decoders turn it into DecodeError).

Hot paths look the whole string up first: `ISO_NS.get(text) or iso_ns(text)`. Messages of one
burst share their stamp (a match's trades, a book update and its trades), so most lookups
hit and skip the call; iso_ns() fills it (bounded: cleared at ISO_NS_MAX entries).
"""
from __future__ import annotations

_NS = 1_000_000_000
_PAD = "000000000"
_CACHE: dict[str, int] = {}
_CACHE_MAX = 4096
ISO_NS: dict[str, int] = {}     # whole timestamp text -> ns (see the module docstring)
ISO_NS_MAX = 4096


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _seconds(prefix: str) -> int:
    """Epoch seconds of "YYYY-MM-DDTHH:MM:SS" (a space instead of T is accepted)."""
    if (len(prefix) != 19 or prefix[4] != "-" or prefix[7] != "-" or prefix[10] not in "Tt "
            or prefix[13] != ":" or prefix[16] != ":"):
        raise ValueError(f"not an ISO-8601 timestamp: {prefix!r}")
    y = int(prefix[0:4])
    mo = int(prefix[5:7])
    d = int(prefix[8:10])
    h = int(prefix[11:13])
    mi = int(prefix[14:16])
    s = int(prefix[17:19])
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        raise ValueError(f"timestamp field out of range: {prefix!r}")
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


def _offset_s(tz: str, text: str) -> int:
    """Seconds east of UTC of a "+HH:MM" / "-HHMM" / "Z" suffix."""
    if tz in ("Z", "z", ""):
        return 0
    if tz[0] not in "+-" or len(tz) not in (3, 5, 6):
        raise ValueError(f"bad UTC offset in timestamp {text!r}")
    digits = tz[1:].replace(":", "")
    off = int(digits[:2]) * 3600 + (int(digits[2:4]) * 60 if len(digits) > 2 else 0)
    return off if tz[0] == "+" else -off


def iso_ns(text: str) -> int:
    """An ISO-8601 / RFC 3339 timestamp (UTC "Z", an offset, or none = UTC) -> int ns."""
    ns = _iso_ns(text)
    if len(ISO_NS) >= ISO_NS_MAX:
        ISO_NS.clear()
    ISO_NS[text] = ns
    return ns


def _iso_ns(text: str) -> int:
    prefix = text[:19]
    sec = _CACHE.get(prefix)
    if sec is None:
        sec = _seconds(prefix)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[prefix] = sec
    n = len(text)
    if n == 19:
        return sec * _NS
    c = text[19]
    if c == ".":
        last = text[-1]
        if last == "Z" or last == "z":                  # the common case: fraction + Z
            frac = text[20:-1]
            tz = ""
        else:
            end = 20
            while end < n and text[end].isdigit():
                end += 1
            frac = text[20:end]
            tz = text[end:]
        if not frac.isdigit():
            raise ValueError(f"bad fraction in timestamp {text!r}")
        ns = int((frac + _PAD)[:9])
    else:
        ns = 0
        tz = text[19:]
    if tz:
        sec -= _offset_s(tz, text)
    return sec * _NS + ns
