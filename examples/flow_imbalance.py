"""Order-flow imbalance and VWAP per instrument over a rolling window of trades.

    python examples/flow_imbalance.py binance --window 10
    python examples/flow_imbalance.py demo.okx --from oldest --once --json

imbalance = (buy volume - sell volume) / (buy volume + sell volume), from -1 (all sells hit the
bid) to +1 (all buys lift the ask); VWAP = sum(price * size) / sum(size). Trades are read in
batches with `reader.read()` (a validated copy) and aggregated with numpy, one call per batch,
not per trade. Records lost to a lap are reported, never silently dropped.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time

import numpy as np

import shm
from shm.record import Kind, Side


class Window:
    """Per-instrument sums of the trades of the last `seconds` (by ts_recv), in 1 s buckets."""

    def __init__(self, seconds: float):
        self.span = int(seconds * 1e9)
        self.buckets: collections.deque = collections.deque()   # (bucket_ns, {iid: sums})

    def add(self, trades: np.ndarray) -> None:
        if not len(trades):
            return
        bucket = trades["ts_recv"] // 1_000_000_000 * 1_000_000_000
        for b in np.unique(bucket):
            t = trades[bucket == b]
            ids, inv = np.unique(t["instrument"], return_inverse=True)
            buy = t["side"] == Side.BUY
            size, notional = t["size"], t["price"] * t["size"]
            sums = {
                "buy": np.bincount(inv, size * buy, len(ids)),
                "sell": np.bincount(inv, size * ~buy, len(ids)),
                "notional": np.bincount(inv, notional, len(ids)),
                "trades": np.bincount(inv, minlength=len(ids)),
            }
            entry = {int(i): {k: float(v[j]) for k, v in sums.items()} for j, i in enumerate(ids)}
            if self.buckets and self.buckets[-1][0] == int(b):
                last = self.buckets[-1][1]
                for iid, s in entry.items():
                    cur = last.setdefault(iid, dict.fromkeys(s, 0.0))
                    for k, v in s.items():
                        cur[k] += v
            else:
                self.buckets.append((int(b), entry))
        newest = self.buckets[-1][0]
        while self.buckets and self.buckets[0][0] <= newest - self.span:
            self.buckets.popleft()

    def stats(self) -> dict[int, dict]:
        tot: dict[int, dict] = {}
        for _, entry in self.buckets:
            for iid, s in entry.items():
                cur = tot.setdefault(iid, dict.fromkeys(s, 0.0))
                for k, v in s.items():
                    cur[k] += v
        out = {}
        for iid, s in tot.items():
            vol = s["buy"] + s["sell"]
            out[iid] = {"trades": int(s["trades"]), "buy_volume": s["buy"], "sell_volume": s["sell"],
                        "imbalance": (s["buy"] - s["sell"]) / vol if vol else 0.0,
                        "vwap": s["notional"] / vol if vol else float("nan")}
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ring", help="a venue's ring (binance, demo.binance)")
    ap.add_argument("--window", type=float, default=10.0, help="seconds of trades to aggregate")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between reports")
    ap.add_argument("--from", dest="start", choices=["oldest", "latest"], default="latest")
    ap.add_argument("--once", action="store_true", help="read what the ring holds, report, exit")
    ap.add_argument("--registry", default=None, help="registry (default: the ring's namespace's)")
    ap.add_argument("--json", action="store_true", help="one JSON object per report")
    args = ap.parse_args(argv)

    try:
        ring = shm.Ring.attach(args.ring)
    except shm.ShmError as e:
        print(f"flow_imbalance: {e}", file=sys.stderr)
        return 2
    ns = args.ring.rsplit(".", 1)[0] if "." in args.ring else ""
    symbols = {}
    try:
        from shm.registry import Registry
        reg = Registry.attach(args.registry or (f"{ns}.registry" if ns else "registry"))
        symbols = {i.id: i.symbol for i in reg.all()}
        reg.close()
    except shm.ShmError:
        pass                                  # no registry: instruments are shown by id
    reader = ring.reader(start=args.start, name="flow_imbalance")
    window = Window(args.window)
    next_report = time.monotonic() + args.interval
    try:
        while True:
            batch = reader.read(max_records=65536, timeout=0 if args.once else 0.1)
            window.add(batch[batch["kind"] == Kind.TRADE])
            if args.once and len(batch):
                continue                      # drain everything the ring holds first
            if args.once or time.monotonic() >= next_report:
                next_report = time.monotonic() + args.interval
                stats = window.stats()
                for iid in sorted(stats):
                    s = stats[iid]
                    name = symbols.get(iid, f"#{iid}")
                    if args.json:
                        print(json.dumps({"instrument": iid, "symbol": name, **s, "lost": reader.lost}))
                    else:
                        print(f"{name:<14} trades {s['trades']:>6}  buy {s['buy_volume']:>12.4f}  "
                              f"sell {s['sell_volume']:>12.4f}  imbalance {s['imbalance']:+.3f}  "
                              f"vwap {s['vwap']:.6g}")
                if reader.lost:
                    print(f"flow_imbalance: {reader.lost} records lost (lapped)", file=sys.stderr)
                sys.stdout.flush()
                if args.once:
                    return 0
    except KeyboardInterrupt:
        return 0
    finally:
        reader.close()
        ring.close()


if __name__ == "__main__":
    sys.exit(main())
