"""ISO-8601 / RFC 3339 -> ns: exact against calendar.timegm, fractions of any length, offsets,
and clear errors."""
from __future__ import annotations

import calendar

import pytest

from feeds.isotime import iso_ns


def utc(y, mo, d, h, mi, s):
    return calendar.timegm((y, mo, d, h, mi, s)) * 1_000_000_000


@pytest.mark.parametrize("text, expected", [
    ("2023-02-09T20:19:35.39625135Z", utc(2023, 2, 9, 20, 19, 35) + 396_251_350),
    ("2023-10-04T15:25:00.000000000Z", utc(2023, 10, 4, 15, 25, 0)),
    ("2019-08-14T20:42:27.265Z", utc(2019, 8, 14, 20, 42, 27) + 265_000_000),
    ("1970-01-01T00:00:00Z", 0),
    ("2024-02-29T23:59:59.999999999Z", utc(2024, 2, 29, 23, 59, 59) + 999_999_999),
    ("2023-10-06T17:35:55", utc(2023, 10, 6, 17, 35, 55)),
    ("2023-10-06T19:35:55.5+02:00", utc(2023, 10, 6, 17, 35, 55) + 500_000_000),
    ("2023-10-06T12:35:55-0500", utc(2023, 10, 6, 17, 35, 55)),
    ("2023-10-06T17:35:55.1234567891Z", utc(2023, 10, 6, 17, 35, 55) + 123_456_789),
])
def test_values(text, expected):
    assert iso_ns(text) == expected
    assert iso_ns(text) == expected              # second call goes through the cache


@pytest.mark.parametrize("bad", ["", "yesterday", "2023-13-01T00:00:00Z", "2023-02-09T20:19:35.Z",
                                 "2023-02-09 20:19", "2023-02-09T20:19:35.12x"])
def test_bad_input_raises_value_error(bad):
    with pytest.raises(ValueError):
        iso_ns(bad)
