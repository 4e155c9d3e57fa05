"""Human (and JSON) rendering of records, shared by tail, top, replay and the examples.

One place decides how a kind, a side, a flag set, a price or a time looks, so every tool shows a
record the same way. Instrument names come from the shared-memory registry when there is one;
without it (or for an id it does not know) the id itself is shown.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np

from shm.record import Flag, Kind, Side, Status

KIND_NAMES = {k.value: k.name.lower() for k in Kind}
KIND_BY_NAME = {k.name.lower(): k.value for k in Kind}
STATUS_NAMES = {s.value: s.name.lower() for s in Status}
FLAG_NAMES = [(f.value, f.name.lower()) for f in Flag]


def kind_name(kind: int) -> str:
    return KIND_NAMES.get(int(kind), f"kind{int(kind)}")


def side_name(kind: int, side: int) -> str:
    """buy/sell for trades and liquidations, bid/ask for book levels, '' when it has no side."""
    side = int(side)
    if side == Side.NONE:
        return ""
    if int(kind) == Kind.BOOK:
        return {Side.BID: "bid", Side.ASK: "ask"}.get(side, f"side{side}")
    return {Side.BUY: "buy", Side.SELL: "sell"}.get(side, f"side{side}")


def flag_names(flags: int) -> list[str]:
    flags = int(flags)
    return [name for bit, name in FLAG_NAMES if flags & bit]


def fmt_num(x: float) -> str:
    """A price or size without float noise: up to 10 significant digits, no trailing zeros."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if x == 0:
        return "0"
    s = f"{x:.10g}"
    if "e" in s and 1e-6 <= abs(x) < 1e15:
        s = f"{x:.12f}".rstrip("0").rstrip(".")
    return s


def fmt_time(ns: int, date: bool = False) -> str:
    """HH:MM:SS.ffffff UTC (microseconds are what a human can use; JSON keeps the ns)."""
    ns = int(ns)
    if ns <= 0:
        return "-"
    secs, frac = divmod(ns, 1_000_000_000)
    t = dt.datetime.fromtimestamp(secs, dt.timezone.utc)
    head = t.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")
    return f"{head}.{frac // 1000:06d}"


def fmt_duration_ns(ns: float) -> str:
    """A latency or age: 850ns, 12.3us, 4.1ms, 2.0s, 3m."""
    ns = float(ns)
    if ns < 0:
        return "-" + fmt_duration_ns(-ns)
    if ns < 1_000:
        return f"{ns:.0f}ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f}us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f}ms"
    if ns < 120e9:
        return f"{ns / 1e9:.1f}s"
    if ns < 7200e9:
        return f"{ns / 60e9:.0f}m"
    return f"{ns / 3600e9:.0f}h"


def fmt_count(n: float) -> str:
    """12, 1.2k, 3.4M."""
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


def fmt_bytes(n: float) -> str:
    n = float(n)
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}B"


class Names:
    """Instrument id -> symbol via the registry, cached; unknown ids show as '#<id>'.

    The registry is append-only, so a miss re-reads it (rate-limited to a miss per id).
    """

    def __init__(self, registry: str | None = "registry"):
        self.registry_name = registry
        self._reg = None
        self._cache: dict[int, object] = {}
        self._missed: set[int] = set()
        self._tried = False

    def _registry(self):
        if self._reg is None and not self._tried and self.registry_name:
            self._tried = True
            try:
                from shm.registry import Registry
                self._reg = Registry.attach(self.registry_name)
            except Exception:  # no registry module yet, or no segment: ids it is
                self._reg = None
        return self._reg

    def instrument(self, iid: int):
        """The registry's Instrument namedtuple for iid, or None."""
        iid = int(iid)
        if iid in self._cache:
            return self._cache[iid]
        reg = self._registry()
        if reg is None or iid == 0 or iid in self._missed:
            return None
        try:
            inst = reg.get(iid)
        except Exception:
            inst = None
        if inst is None:
            self._missed.add(iid)
            return None
        self._cache[iid] = inst
        return inst

    def symbol(self, iid: int) -> str:
        if int(iid) == 0:
            return "*"
        inst = self.instrument(iid)
        return inst.symbol if inst is not None else f"#{int(iid)}"

    def venue(self, iid: int) -> str | None:
        inst = self.instrument(iid)
        return inst.venue if inst is not None else None

    def all(self) -> list:
        reg = self._registry()
        if reg is None:
            return []
        try:
            return list(reg.all())
        except Exception:
            return []

    def resolve(self, venue: str | None, symbol: str) -> list[int]:
        """Ids matching a native symbol, a normalized BASE-QUOTE name or '#id'/an integer id."""
        s = symbol.strip()
        if s.lstrip("#").isdigit():
            return [int(s.lstrip("#"))]
        want = s.upper()
        ids = []
        for inst in self.all():
            if venue and inst.venue != venue:
                continue
            if inst.symbol.upper() == want or str(inst.normalized).upper() == want:
                ids.append(int(inst.id))
        return ids

    def symbols_of(self, venue: str | None) -> list[str]:
        return sorted({i.symbol for i in self.all() if venue is None or i.venue == venue})


def record_dict(r, names: Names | None = None, venue: str | None = None) -> dict:
    """One record as a JSON-able dict with only the fields meaningful for its kind."""
    kind = int(r["kind"])
    iid = int(r["instrument"])
    d = {"seq": int(r["seq"]), "ts_event": int(r["ts_event"]), "ts_recv": int(r["ts_recv"]),
         "venue": venue if venue is not None else (names.venue(iid) if names else None),
         "instrument": iid, "symbol": names.symbol(iid) if names else f"#{iid}",
         "kind": kind_name(kind)}
    if kind == Kind.QUOTE:
        d.update(bid_price=float(r["bid_price"]), bid_size=float(r["bid_size"]),
                 ask_price=float(r["ask_price"]), ask_size=float(r["ask_size"]))
    elif kind == Kind.STATUS:
        code = int(r["id"])
        d.update(status=STATUS_NAMES.get(code, str(code)), a=float(r["price"]), b=float(r["size"]))
    else:
        d.update(side=side_name(kind, r["side"]) or None, price=float(r["price"]),
                 size=float(r["size"]), id=int(r["id"]))
        if kind == Kind.MARK:
            d.update(index_price=float(r["ask_price"]), funding_rate=d.pop("size"),
                     next_funding_ns=d.pop("id"))
    d["flags"] = flag_names(r["flags"])
    return d


def record_line(r, names: Names | None = None, venue: str | None = None) -> str:
    """One record as one aligned human line."""
    kind = int(r["kind"])
    iid = int(r["instrument"])
    sym = names.symbol(iid) if names else f"#{iid}"
    head = f"{fmt_time(r['ts_recv'])} {venue + ' ' if venue else ''}{sym:<14} {kind_name(kind):<11}"
    if kind == Kind.QUOTE:
        body = (f"{fmt_num(r['bid_size'])} @ {fmt_num(r['bid_price'])}  /  "
                f"{fmt_num(r['ask_price'])} x {fmt_num(r['ask_size'])}")
    elif kind == Kind.STATUS:
        code = int(r["id"])
        body = f"{STATUS_NAMES.get(code, code)}  a={fmt_num(r['price'])} b={fmt_num(r['size'])}"
    elif kind == Kind.MARK:
        body = (f"mark {fmt_num(r['price'])}  index {fmt_num(r['ask_price'])}  "
                f"funding {fmt_num(r['size'])}")
    else:
        side = side_name(kind, r["side"])
        body = f"{side:<4} {fmt_num(r['price']):>14} x {fmt_num(r['size']):<12}"
        if kind == Kind.TRADE and int(r["id"]):
            body += f" id={int(r['id'])}"
    flags = [f for f in flag_names(r["flags"]) if f != "last"]
    if flags:
        body += "  [" + ",".join(flags) + "]"
    return f"{head} {body}"


def kinds_mask(records: np.ndarray, kinds: list[int] | None) -> np.ndarray | None:
    """Boolean mask of records whose kind is in kinds (None = no filter)."""
    if not kinds:
        return None
    return np.isin(records["kind"], np.asarray(kinds, dtype=np.uint8))


# ------------------------------------------------------------------ shared-memory names
# An appliance puts everything in a namespace: ring "<ns>.<venue>", registry "<ns>.registry",
# book table "<ns>.book.<venue>" (`tickring run` without a config uses the namespace "demo").

def namespace_of(ring_name: str) -> str:
    """'demo.binance' -> 'demo'; 'binance' -> ''."""
    return ring_name.rsplit(".", 1)[0] if "." in ring_name else ""


def venue_of(ring_name: str) -> str:
    """'demo.binance' -> 'binance'."""
    return ring_name.rsplit(".", 1)[-1]


def find_ring(venue: str, ring: str | None = None) -> str:
    """The ring to read for VENUE: --ring if given, a ring named VENUE, or the only ring named
    '<namespace>.VENUE'. Otherwise VENUE itself, so attach() names the rings that exist."""
    if ring:
        return ring
    from shm.ring import Ring
    names = Ring.names()
    if venue in names:
        return venue
    matches = [n for n in names if n.endswith("." + venue) and "." not in n[:-len(venue) - 1]]
    return matches[0] if len(matches) == 1 else venue


def registry_for(ring_name: str, registry: str | None = None) -> str:
    """--registry if given, else the registry of the ring's namespace."""
    if registry:
        return registry
    ns = namespace_of(ring_name)
    return f"{ns}.registry" if ns else "registry"
