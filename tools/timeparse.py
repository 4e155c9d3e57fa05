"""Times on the command line: ISO-8601 or integer nanoseconds since the epoch, always UTC.

Ranges are start-inclusive, end-exclusive ([start, end)). A time without a zone is UTC, a date
alone is its midnight, fractions keep all nine digits (datetime alone would drop nanoseconds).
"""
from __future__ import annotations

import datetime as dt
import re
import time

import click

NS = 1_000_000_000
_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?$")
_RELATIVE = re.compile(r"^-(?P<n>\d+(?:\.\d+)?)(?P<unit>ns|us|ms|s|m|h|d)$")
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": NS, "m": 60 * NS, "h": 3600 * NS,
            "d": 86400 * NS}
# An integer below this is not plausible as ns since the epoch (it is 1970-01-02); it is almost
# certainly seconds or milliseconds typed by mistake, so we say so instead of guessing.
_MIN_PLAUSIBLE_NS = 10 ** 14

HELP = ("ISO-8601 (2026-11-21, 2026-11-21T08:00:00.123456789Z, +02:00 offsets; no zone = UTC), "
        "integer ns since the epoch, 'now', or relative to now like -15m, -2h, -1d")


def parse_time(text: str | int, now_ns: int | None = None) -> int:
    """One time as int ns since the epoch (UTC). Raises ValueError naming the problem."""
    if isinstance(text, int):
        return text
    s = str(text).strip()
    if not s:
        raise ValueError("empty time; expected " + HELP)
    if s.isdigit():
        n = int(s)
        if 0 < n < _MIN_PLAUSIBLE_NS:
            raise ValueError(f"time {s} is too small for ns since the epoch (seconds? then write "
                             f"{n * NS}); times are ISO-8601 or integer nanoseconds")
        return n
    if s.lower() == "now":
        return time.time_ns() if now_ns is None else now_ns
    m = _RELATIVE.match(s)
    if m:
        base = time.time_ns() if now_ns is None else now_ns
        return base - int(float(m["n"]) * _UNIT_NS[m["unit"]])
    m = _ISO.match(s)
    if not m:
        raise ValueError(f"cannot read time {s!r}; expected {HELP}")
    try:
        day = dt.date.fromisoformat(m["date"])
        hms = dt.time(int(m["h"] or 0), int(m["m"] or 0), int(m["s"] or 0))
    except ValueError as e:
        raise ValueError(f"bad time {s!r}: {e}") from None
    offset = 0
    tz = m["tz"]
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    base = dt.datetime.combine(day, hms, tzinfo=dt.timezone.utc)
    secs = int(base.timestamp()) - offset
    frac = m["frac"] or ""
    return secs * NS + int(frac.ljust(9, "0")) if frac else secs * NS


def parse_range(start: str | int | None, end: str | int | None,
                now_ns: int | None = None) -> tuple[int | None, int | None]:
    """(start_ns, end_ns) for [start, end); either may be None (open). ValueError if end <= start."""
    s = None if start is None else parse_time(start, now_ns)
    e = None if end is None else parse_time(end, now_ns)
    if s is not None and e is not None and e <= s:
        raise ValueError(f"empty time range: end {format_ns(e)} is not after start {format_ns(s)} "
                         f"(ranges are start-inclusive, end-exclusive)")
    return s, e


def format_ns(ns: int) -> str:
    """ISO-8601 UTC with nanoseconds, e.g. 2026-11-21T08:00:00.123456789Z."""
    secs, frac = divmod(int(ns), NS)
    stamp = dt.datetime.fromtimestamp(secs, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}Z" if frac else f"{stamp}Z"


def day_of(ns: int) -> str:
    """The UTC date (YYYY-MM-DD) containing ns: the Parquet `date=` partition."""
    return dt.datetime.fromtimestamp(int(ns) // NS, dt.timezone.utc).strftime("%Y-%m-%d")


class TimeType(click.ParamType):
    """click parameter type: a time as int ns, with a clear message when it cannot be read."""
    name = "TIME"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        try:
            return parse_time(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


TIME = TimeType()


def check_range(start: int | None, end: int | None) -> None:
    """Raise click.BadParameter for end <= start (used after TIME options are parsed)."""
    if start is not None and end is not None and end <= start:
        raise click.BadParameter(
            f"end {format_ns(end)} is not after start {format_ns(start)} "
            f"(ranges are start-inclusive, end-exclusive)", param_hint="'--start'/'--end'")
