"""Cross-venue spread monitor: one instrument's best bid and ask on several venues, read zero-copy.

    python examples/spread_monitor.py binance okx bybit --symbol BTC-USDT
    python examples/spread_monitor.py demo.binance demo.okx --symbol BTC-USDT --json --count 5

Each ring is read with `reader.view()`, a read-only window INTO shared memory (no copy), and
`reader.release()`, which says how many records at the start of that window the producer may
have overwritten while we looked. We only keep the newest QUOTE per venue from each window and
accept it if its index is past that count, so a torn record is never used.

The spread printed is best bid (highest over venues) minus best ask (lowest): positive means the
venues are crossed (buy on one, sell on the other).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import shm
from shm.record import Kind


def instrument_ids(registry_name: str, symbol: str, venues: list[str]) -> dict[int, str]:
    """id -> venue for every instrument named `symbol` (native or BASE-QUOTE) on these venues."""
    from shm.registry import Registry
    reg = Registry.attach(registry_name)
    try:
        want = symbol.upper()
        return {i.id: i.venue for i in reg.all()
                if i.venue in venues and (i.normalized.upper() == want or i.symbol.upper() == want)}
    finally:
        reg.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rings", nargs="+", help="rings to watch (a venue's ring: binance or demo.binance)")
    ap.add_argument("--symbol", required=True, help="instrument, e.g. BTC-USDT")
    ap.add_argument("--registry", default=None, help="registry (default: the rings' namespace's)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between lines")
    ap.add_argument("--count", type=int, default=0, help="stop after this many lines (0 = never)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)

    ns = args.rings[0].rsplit(".", 1)[0] if "." in args.rings[0] else ""
    registry = args.registry or (f"{ns}.registry" if ns else "registry")
    venue_of_ring = {r: r.rsplit(".", 1)[-1] for r in args.rings}
    try:
        rings = [shm.Ring.attach(r) for r in args.rings]
        ids = instrument_ids(registry, args.symbol, list(venue_of_ring.values()))
    except shm.ShmError as e:
        print(f"spread_monitor: {e}", file=sys.stderr)
        return 2
    if not ids:
        print(f"spread_monitor: {args.symbol} is not listed on {', '.join(venue_of_ring.values())} "
              f"in registry {registry!r}", file=sys.stderr)
        return 2
    id_array = np.array(sorted(ids), dtype=np.uint32)
    readers = [r.reader(start="latest", name="spread_monitor") for r in rings]
    best: dict[str, tuple[float, float, int]] = {}          # venue -> (bid, ask, ts_recv)
    lines = 0
    next_print = time.monotonic() + args.interval
    try:
        while True:
            idle = True
            for reader in readers:
                view = reader.view(max_records=65536, timeout=0)
                if len(view):
                    idle = False
                    mine = np.flatnonzero((view["kind"] == Kind.QUOTE) & np.isin(view["instrument"], id_array))
                    # newest quote per instrument in this window, read before release()
                    newest = {}
                    for i in mine[::-1]:
                        iid = int(view["instrument"][i])
                        if iid not in newest:
                            newest[iid] = (int(i), float(view["bid_price"][i]), float(view["ask_price"][i]),
                                           int(view["ts_recv"][i]))
                    torn = reader.release()          # records [0, torn) of the view may be overwritten
                    for iid, (i, bid, ask, ts) in newest.items():
                        if i >= torn:
                            best[ids[iid]] = (bid, ask, ts)
                else:
                    reader.release()
            now = time.monotonic()
            if now >= next_print:
                next_print = now + args.interval
                if best:
                    bid_v = max(best, key=lambda v: best[v][0])
                    ask_v = min(best, key=lambda v: best[v][1])
                    spread = best[bid_v][0] - best[ask_v][1]
                    row = {"symbol": args.symbol, "best_bid": best[bid_v][0], "bid_venue": bid_v,
                           "best_ask": best[ask_v][1], "ask_venue": ask_v, "cross_spread": spread,
                           "venues": {v: {"bid": b, "ask": a} for v, (b, a, _) in sorted(best.items())},
                           "lost": sum(r.lost for r in readers)}
                    if args.json:
                        print(json.dumps(row), flush=True)
                    else:
                        per = "  ".join(f"{v} {b:g}/{a:g}" for v, (b, a, _) in sorted(best.items()))
                        flag = "  CROSSED" if spread > 0 else ""
                        print(f"{args.symbol}  bid {best[bid_v][0]:g}@{bid_v}  ask {best[ask_v][1]:g}@{ask_v}"
                              f"  spread {spread:+g}{flag}  | {per}", flush=True)
                    lines += 1
                    if args.count and lines >= args.count:
                        return 0
            if idle:
                time.sleep(0.001)      # several rings: poll; one ring could block in view(timeout=...)
    except KeyboardInterrupt:
        return 0
    finally:
        for r in readers:
            r.close()
        for r in rings:
            r.close()


if __name__ == "__main__":
    sys.exit(main())
