"""How fast one simulator process can push a venue's protocol: `python -m feeds.sim.bench`.

Starts `python -m feeds.sim --venues <venue> --rate 0` (flood), subscribes trades + book
(+ quotes) for every symbol through raw sockets read by threads that only count bytes (the
sink costs next to nothing, so the sim is the bottleneck), and reports frames/s, events/s,
MB/s, the sim's CPU share and CPU microseconds per frame. Because the box may be shared, it
also reports `calib_us` (a fixed pure-Python loop, sum(range(1000)), timed just before):
compare runs by cpu_us_per_frame / calib_us rather than by raw rates.
"""
from __future__ import annotations

import base64
import os
import socket
import sys
import threading
import time
import timeit

import click
import orjson


def _handshake(port: int, path: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError(f"sim closed the connection to {path}")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"websocket upgrade to {path} refused: {head[:200]!r}")
    return s


def _send_text(s: socket.socket, msg: bytes) -> None:
    n = len(msg)
    mask = os.urandom(4)
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(msg))
    if n < 126:
        hdr = bytes((0x81, 0x80 | n))
    elif n < 65536:
        hdr = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        hdr = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    s.sendall(hdr + mask + body)


def measure(venue: str, seconds: float = 5.0, symbols: int = 10, trade_share: float = 0.35) -> dict:
    import psutil

    from . import start_in_background
    from .protocol import protocol_class
    calib = min(timeit.repeat("sum(range(1000))", number=200, repeat=5)) / 200 * 1e6
    sim = start_in_background([venue], symbols=symbols, rate=0, args=["--trade-share", str(trade_share)])
    socks = []
    try:
        proc = psutil.Process(sim.pid)
        natives = list(dict.fromkeys(sim.symbols(venue)))
        counts = []
        stop = threading.Event()

        def sink(sock, idx):
            buf = bytearray(1 << 20)
            while not stop.is_set():
                try:
                    n = sock.recv_into(buf)
                except OSError:
                    return
                if not n:
                    return
                counts[idx] += n

        for path, msgs in protocol_class(venue).flood_subscription(natives):
            s = _handshake(sim.port(venue), path)
            for m in msgs:
                _send_text(s, m)
            counts.append(0)
            threading.Thread(target=sink, args=(s, len(socks)), daemon=True).start()
            socks.append(s)
        time.sleep(1.0)                                 # warm-up (snapshots, acks)
        st0, c0, t0 = sim.stats()[venue], sum(proc.cpu_times()[:2]), time.monotonic()
        b0 = sum(counts)
        time.sleep(seconds)
        st1, c1, t1 = sim.stats()[venue], sum(proc.cpu_times()[:2]), time.monotonic()
        b1 = sum(counts)
        stop.set()
    finally:
        for s in socks:
            s.close()
        sim.stop()
    el = t1 - t0
    frames = st1["frames"] - st0["frames"]
    cpu = c1 - c0
    return {"venue": venue, "seconds": round(el, 2), "symbols": symbols, "trade_share": trade_share,
            "connections": len(socks), "frames_per_s": round(frames / el), "events_per_s":
            round((st1["events"] - st0["events"]) / el), "mb_per_s": round((b1 - b0) / el / 1e6, 2),
            "sim_cpu_pct": round(cpu / el * 100, 1), "cpu_us_per_frame": round(cpu / max(1, frames) * 1e6, 3),
            "calib_us": round(calib, 2), "cpus": os.cpu_count(), "load1": round(os.getloadavg()[0], 2)}


@click.command()
@click.option("--venues", default="binance,binance_usdm,bybit,okx", show_default=True)
@click.option("--seconds", default=5.0, show_default=True, type=float)
@click.option("--symbols", default=10, show_default=True, type=int)
@click.option("--trade-share", default=0.35, show_default=True, type=float)
@click.option("--json", "json_out", is_flag=True, help="One JSON object per venue per line.")
def command(venues, seconds, symbols, trade_share, json_out):
    """Flood a byte-counting sink from one sim process per venue; report what the sim pushes."""
    for v in venues.split(","):
        r = measure(v.strip(), seconds, symbols, trade_share)
        if json_out:
            sys.stdout.write(orjson.dumps(r).decode() + "\n")
        else:
            sys.stdout.write(f"{v}: {r['frames_per_s']:,} frames/s ({r['events_per_s']:,} events/s), "
                             f"{r['mb_per_s']} MB/s, sim CPU {r['sim_cpu_pct']}%, {r['cpu_us_per_frame']} us CPU/frame "
                             f"(calib {r['calib_us']} us, load {r['load1']})\n")
        sys.stdout.flush()


if __name__ == "__main__":
    command()
