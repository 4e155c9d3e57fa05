"""Flood replay: one connection's bytes of a closed market cycle, replayed with counters and clocks patched.

Why: rendering every frame through the market model costs a few microseconds of Python per
frame, so a live flood tops out near 200k frames/s per core, below the feed worker it is meant
to measure. In flood mode the engine instead renders a *closed* cycle (events, then one reset
delta per book so every book ends where it began; feeds/sim/engine.py) a few times, and this
module turns two consecutive renderings into a template. Replaying cycle k then costs one
`bytes % args` call: numbers that advance between the renderings (trade ids, update ids,
sequence numbers: linear in the cycle) become `%d` slots of `base + k * delta`; numbers and ISO
strings within a minute of the cycle's clock (event times, `cts`, seconds, nanoseconds) become
slots re-rendered from the wall clock of the replayed cycle; the rest (prices, sizes, checksums,
frame headers) is literal. Frame lengths stay exact because a template is only used while no
slot changes its digit count (`kmax`).

`Template(a, b, ts_ms)` raises Unusable when the two renderings do not differ only in numbers
(a changed non-digit byte, a number with a leading zero): the engine then keeps rendering live
for a while. Different lengths (a number gained a digit) only mean: render another cycle.
"""
from __future__ import annotations

import calendar
import re
import time

import numpy as np

WINDOW_MS = 120_000                 # a number this close to the cycle's clock is a time field
_ISO = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")
# digit-run length -> (name, scale from ms): 10 = seconds, 13 = ms, 16 = us, 19 = ns
_CLOCKS = {10: ("s", None), 13: ("ms", 1), 16: ("us", 1_000), 19: ("ns", 1_000_000)}


class Unusable(ValueError):
    """These two renderings cannot be turned into a template. `retry`: only because a number
    changed its digit count in between (a sequence passing 9999 -> 10000): the next try works."""

    def __init__(self, msg: str, retry: bool = False):
        super().__init__(msg)
        self.retry = retry


def _scaled(kind: str, ms: int) -> int:
    if kind == "s":
        return ms // 1000
    return ms * _CLOCKS[{"ms": 13, "us": 16, "ns": 19}[kind]][1]


def iso_us(us: int, digits: int) -> bytes:
    """RFC 3339 UTC with `digits` fraction digits (0: none) of a time in microseconds."""
    s, f = divmod(us, 1_000_000)
    head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)).encode()
    if not digits:
        return head + b"Z"
    frac = f // 10 ** (6 - digits) if digits <= 6 else f * 10 ** (digits - 6)
    return b"%s.%0*dZ" % (head, digits, frac)


class Template:
    """A replayable rendering; render(k, now_ms) -> the bytes of the k-th cycle after `b`."""

    __slots__ = ("template", "args", "ci", "cbase", "cdelta", "clocks", "isos", "kmax", "frames", "size")

    def __init__(self, a: bytes, b: bytes, ts_ms: int, frames: int = 0):
        if len(a) != len(b):
            raise Unusable("renderings differ in length", retry=True)
        self.frames = frames
        self.size = len(b)
        va = np.frombuffer(a, np.uint8)
        vb = np.frombuffer(b, np.uint8)
        digit = (vb >= 48) & (vb <= 57)
        diff = np.flatnonzero(va != vb)
        if len(diff) and not digit[diff].all():
            raise Unusable("a non-digit byte changed between renderings")
        # digit runs: [start, end) of every run containing a changed byte
        edges = np.flatnonzero(np.diff(np.concatenate(([0], digit.view(np.int8), [0]))))
        starts, ends = edges[0::2], edges[1::2]
        runs = np.unique(np.searchsorted(starts, diff, side="right") - 1)
        slots: list[tuple[int, int, str, object]] = []      # (start, end, kind, key)
        cb, cd, kmax = [], [], 1 << 62
        for i in runs.tolist():
            s, e = int(starts[i]), int(ends[i])
            if b[s] == 48 and e - s > 1:
                raise Unusable("a changing number has a leading zero")
            v1, v2 = int(a[s:e]), int(b[s:e])
            d = v2 - v1
            n = e - s
            if d > 0:
                kmax = min(kmax, (10 ** n - 1 - v2) // d)
            elif d < 0:
                kmax = min(kmax, (v2 - (10 ** (n - 1) if n > 1 else 0)) // -d)
            slots.append((s, e, "c", None))
            cb.append(v2)
            cd.append(d)
        counted = {s for s, _, _, _ in slots}
        # clock fields: digit runs near the cycle's clock (same first digits), ISO-8601 strings
        prefixes = {b"%d" % (ts_ms - WINDOW_MS), b"%d" % (ts_ms + WINDOW_MS)}
        for p in {x[:5] for x in prefixes}:
            for m in re.finditer(rb"(?<![0-9])" + p + rb"[0-9]+(?![0-9])", b):
                s, e = m.span()
                clock = _CLOCKS.get(e - s)
                if clock is None or s in counted:
                    continue
                kind = clock[0]
                off = int(b[s:e]) - _scaled(kind, ts_ms)
                if abs(off) > _scaled(kind, WINDOW_MS) + (1 if kind == "s" else 0):
                    continue
                slots.append((s, e, kind, off))
        for m in _ISO.finditer(b):
            y, mo, d, h, mi, sec, frac = m.groups()
            try:
                whole = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(sec), 0, 0, 0))
            except ValueError:
                continue
            digits = len(frac) if frac else 0
            us = whole * 1_000_000 + (int(frac.ljust(6, b"0")[:6]) if frac else 0)
            off = us - ts_ms * 1000
            if abs(off) > WINDOW_MS * 1000:
                continue
            s, e = m.span()
            slots.append((s, e, "iso", (off, digits)))
        slots.sort()
        pieces, pos = [], 0
        ci, clocks, isos = [], {}, {}
        for j, (s, e, kind, key) in enumerate(slots):
            if s < pos:
                raise Unusable("overlapping fields")
            pieces.append(b[pos:s].replace(b"%", b"%%"))
            if kind == "c":
                pieces.append(b"%d")
                ci.append(j)
            elif kind == "iso":
                pieces.append(b"%b")
                isos.setdefault(key, []).append(j)
            else:
                pieces.append(b"%d")
                clocks.setdefault((kind, key), []).append(j)
            pos = e
        pieces.append(b[pos:].replace(b"%", b"%%"))
        self.template = b"".join(pieces)
        self.args = np.empty(len(slots), object)
        self.ci = np.array(ci, np.intp)
        self.cbase = np.array(cb, np.int64)
        self.cdelta = np.array(cd, np.int64)
        self.clocks = [(kind, off, np.array(ix, np.intp)) for (kind, off), ix in clocks.items()]
        self.isos = [(off, digits, np.array(ix, np.intp)) for (off, digits), ix in isos.items()]
        self.kmax = kmax

    def render(self, k: int, now_ms: int) -> bytes:
        """The bytes of the k-th cycle after the second rendering (k >= 1), clocks at now_ms."""
        args = self.args
        if len(self.ci):
            args[self.ci] = (self.cbase + k * self.cdelta).tolist()
        for kind, off, ix in self.clocks:
            args[ix] = _scaled(kind, now_ms) + off
        for off, digits, ix in self.isos:
            args[ix] = iso_us(now_ms * 1000 + off, digits)
        return self.template % tuple(args.tolist())
