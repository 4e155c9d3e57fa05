"""Publish your own records for other consumers: a fair-value signal in a ring of its own.

    python examples/signal_writer.py binance --out signals
    tickring tail signals --ring signals          # any consumer can now read the signals

Reads trades from a venue ring, keeps per instrument an exponential moving average of the trade
price and of the signed trade flow, and publishes one record per instrument and interval into
the ring `--out` (created if missing, shm.Ring.create(name, capacity=1 << 16)). The records are
ordinary RECORDs, so every tickring tool and consumer reads them:

    kind = MARK, flags = DERIVED      (computed here, not sent by a venue)
    price     = EMA of the trade price
    size      = EMA of the signed flow (+buy size, -sell size), a short-term pressure
    ask_price = last trade price
    ts_event  = ts_recv of the newest trade used;  ts_recv = when the signal was published
    instrument = the venue's instrument id (same registry)

This process is the single producer of its ring: a second copy refuses to start.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import shm
from shm.record import Flag, Kind, Side


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ring", help="the venue ring to read trades from")
    ap.add_argument("--out", default="signals", help="ring to publish into (created if missing)")
    ap.add_argument("--capacity", type=int, default=1 << 16, help="capacity of a new --out ring")
    ap.add_argument("--alpha", type=float, default=0.1, help="EMA weight of each new trade")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between publications")
    ap.add_argument("--from", dest="start", choices=["oldest", "latest"], default="latest")
    ap.add_argument("--count", type=int, default=0, help="stop after this many publications (0 = never)")
    args = ap.parse_args(argv)

    try:
        src = shm.Ring.attach(args.ring)
        try:
            out = shm.Ring.attach(args.out)
        except shm.RingNotFound:
            out = shm.Ring.create(args.out, capacity=args.capacity)
        writer = out.writer()                 # refuses if another process produces into --out
    except shm.ShmError as e:
        print(f"signal_writer: {e}", file=sys.stderr)
        return 2
    reader = src.reader(start=args.start, name="signal_writer")
    ema_px: dict[int, float] = {}
    ema_flow: dict[int, float] = {}
    last_px: dict[int, float] = {}
    last_ts: dict[int, int] = {}
    a = args.alpha
    published = 0
    next_pub = time.monotonic() + args.interval
    try:
        while True:
            batch = reader.read(max_records=65536, timeout=0.05)
            trades = batch[batch["kind"] == Kind.TRADE]
            # the EMA is a recurrence, so this loop is per trade; fine for an example (a few
            # hundred thousand trades/s); a vectorized version would use scipy.signal.lfilter
            for iid, px, sz, side, ts in zip(trades["instrument"].tolist(), trades["price"].tolist(),
                                             trades["size"].tolist(), trades["side"].tolist(),
                                             trades["ts_recv"].tolist()):
                flow = sz if side == Side.BUY else -sz
                ema_px[iid] = px if iid not in ema_px else ema_px[iid] + a * (px - ema_px[iid])
                ema_flow[iid] = ema_flow.get(iid, 0.0) + a * (flow - ema_flow.get(iid, 0.0))
                last_px[iid] = px
                last_ts[iid] = ts
            if time.monotonic() < next_pub or not ema_px:
                continue
            next_pub = time.monotonic() + args.interval
            ids = sorted(ema_px)
            rec = np.zeros(len(ids), shm.RECORD)
            rec["instrument"] = ids
            rec["kind"] = Kind.MARK
            rec["flags"] = Flag.DERIVED | Flag.LAST
            rec["price"] = [ema_px[i] for i in ids]
            rec["size"] = [ema_flow[i] for i in ids]
            rec["ask_price"] = [last_px[i] for i in ids]
            rec["ts_event"] = [last_ts[i] for i in ids]
            rec["ts_recv"] = time.time_ns()
            writer.publish(rec)               # one copy into shared memory; seq filled in
            out.add("messages")
            writer.heartbeat()
            published += 1
            if args.count and published >= args.count:
                return 0
    except KeyboardInterrupt:
        return 0
    finally:
        writer.close()
        reader.close()
        src.close()
        out.close()


if __name__ == "__main__":
    sys.exit(main())
