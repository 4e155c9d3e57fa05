"""feeds/native/text.pxd: decimal and integer text give exactly Python's float() and int().

Native decoders turn every price and size a venue sends as text into a float64 with it; a
difference in the last bit would make the native and the documented values disagree."""
from __future__ import annotations

import math
import random
import struct

import pytest

from feeds.native.decoder import parse_decimal, parse_int


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


FIXED = ["0", "-0", "0.0", "1", "1.", ".5", "-.5", "0.001", "100", "42000.01", "0.00000001",
         "123456789.12345678", "9007199254740993", "9007199254740992", "1e5", "1E-7", "2.5e+3",
         "-1.25e-10", "1e22", "1e23", "1e-22", "1e-23", "12345678901234567890", "0.1234567890123456789",
         "00001.5000", "1.7976931348623157e308", "4.9e-324", "1e400", "-1e400", "inf", "nan",
         "-Infinity", "1_000.5", " 1.5", "1.5 ", "", "-", ".", "e5", "1e", "1e+", "1.2.3", "abc",
         "0x10", "+1.5", "1e99999", "\u0661\u0662", "1\u00a0"]


def expect(s: str):
    try:
        return float(s)
    except ValueError:
        return ValueError


@pytest.mark.parametrize("s", FIXED)
def test_fixed_decimals(s):
    want = expect(s)
    text = s.encode()
    if want is ValueError:
        with pytest.raises(ValueError):
            parse_decimal(text)
    else:
        got = parse_decimal(text)
        assert bits(got) == bits(want) or (math.isnan(got) and math.isnan(want))


def test_random_decimals_bit_for_bit():
    rnd = random.Random(7)
    for _ in range(200_000):
        ip = str(rnd.randrange(0, 10 ** rnd.randrange(0, 12)))
        fp = "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(0, 14)))
        s = ("-" if rnd.random() < 0.2 else "") + ip + ("." + fp if fp or rnd.random() < 0.1 else "")
        if rnd.random() < 0.1:
            s += f"e{rnd.randrange(-30, 30)}"
        assert bits(parse_decimal(s.encode())) == bits(float(s)), s


@pytest.mark.parametrize("s", ["0", "-0", "7", "-42", "1697040000123", "9223372036854775807",
                               "-9223372036854775808", "007", "12a", "", "-", "1.5", " 3",
                               "99999999999999999999"])
def test_ints(s):
    try:
        want = int(s)
    except ValueError:
        with pytest.raises(ValueError):
            parse_int(s.encode())
        return
    if not -(1 << 63) <= want < (1 << 63):
        with pytest.raises(OverflowError):
            parse_int(s.encode())
        return
    assert parse_int(s.encode()) == want
