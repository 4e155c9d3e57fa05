"""How fast one simulator process can push a venue's protocol: `python -m feeds.sim.bench`.

Starts `python -m feeds.sim --venues <venue> --rate 0` (flood), subscribes every symbol the
way the feed worker does (its connection plan: same routes, channels and messages, so the
frame mix is the worker's) through raw sockets read by threads that only count bytes (the
sink costs next to nothing, so the sim is the bottleneck), and reports frames/s, events/s,
MB/s, the sim's CPU share and CPU microseconds per frame. Because the box may be shared, it
also reports `calib_us` (a fixed pure-Python loop, sum(range(1000)), timed just before):
compare runs by cpu_us_per_frame / calib_us rather than by raw rates. `--flood live` measures
the live renderer (no replayed cycles, see feeds/sim/engine.py) for comparison.

`NullSink(sim, venue, symbols)` is the same sink for other benchmarks (tools/bench_feed.py
measures the simulator's capacity with it in the same run as the worker's flood).
`floor(sim, venue, symbols, seconds, cpu, work)` is the worker's floor in the same flood: a
client process on the worker's stack (picows, asyncio, the same subscriptions) that only counts
frames (`recv_only`) or also `orjson.loads` each (`recv_orjson`); bench feed divides the
worker's CPU per frame by these.
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


def worker_plan(venue: str, symbols: list[str]) -> list[tuple[str, list[bytes]]]:
    """[(ws path, [subscribe messages])] of the feed worker's connections for these symbols
    (the simulator's symbol list, as `tickring feed --symbols` gets it)."""
    import urllib.parse

    import feeds
    from feeds.planner import plan
    v = feeds.venue(venue)
    base = urllib.parse.urlsplit(v.ws_url).path.rstrip("/")
    return [(base + p.path or "/", [m if isinstance(m, bytes) else m.encode() for m in p.messages])
            for p in plan(v, list(symbols))]


def routes(sim, venue: str, symbols: list[str]) -> tuple[list[tuple[str, list[bytes]]], float]:
    """worker_plan with the URLs this sim hands out (KuCoin: a token per connection), and the
    pause between subscribe messages that keeps under the sim's incoming-message limit."""
    from .protocol import protocol_class
    out = []
    for i, (path, msgs) in enumerate(worker_plan(venue, symbols)):
        if venue == "kucoin":                  # a tokenized URL, as bullet-public gives it
            tok = sim.request(venue, "/api/v1/bullet-public", method="POST")["data"]["token"]
            path = f"{path}?token={tok}&connectId=bench{i}"
        out.append((path, msgs))
    limit = protocol_class(venue).max_incoming_per_s
    return out, (1.2 / limit if limit else 0.0)


class NullSink:
    """Raw sockets subscribed like the worker, drained by threads that only count bytes."""

    def __init__(self, sim, venue: str, symbols: list[str], cpu: int | None = None):
        self.counts: list[int] = []
        self.socks: list[socket.socket] = []
        self.stop = threading.Event()
        self.cpu = cpu
        plan, pause = routes(sim, venue, symbols)
        try:
            for path, msgs in plan:
                s = _handshake(sim.port(venue), path)
                self.socks.append(s)
                for m in msgs:
                    _send_text(s, m)
                    time.sleep(pause)
                self.counts.append(0)
                threading.Thread(target=self._drain, args=(s, len(self.counts) - 1), daemon=True).start()
        except BaseException:
            self.close()
            raise

    def _drain(self, sock, idx):
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})        # this thread only (Linux: a thread is a task)
        buf = bytearray(1 << 20)
        while not self.stop.is_set():
            try:
                n = sock.recv_into(buf)
            except OSError:
                return
            if not n:
                return
            self.counts[idx] += n

    @property
    def bytes(self) -> int:
        return sum(self.counts)

    def close(self) -> None:
        self.stop.set()
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def capacity(sim, venue: str, symbols: list[str], seconds: float, cpu: int | None = None,
             warmup: float = 0.5) -> dict:
    """The sim's flood into a NullSink: frames/s, its CPU share and CPU us per frame."""
    import psutil
    proc = psutil.Process(sim.pid)
    sink = NullSink(sim, venue, symbols, cpu)
    try:
        time.sleep(warmup)                              # snapshots, acks, the first cycles
        st0, c0, t0, b0 = sim.stats()[venue], sum(proc.cpu_times()[:2]), time.monotonic(), sink.bytes
        time.sleep(seconds)
        st1, c1, t1, b1 = sim.stats()[venue], sum(proc.cpu_times()[:2]), time.monotonic(), sink.bytes
    finally:
        sink.close()
    el = t1 - t0
    frames = st1["frames"] - st0["frames"]
    cpu_s = c1 - c0
    return {"connections": len(sink.socks), "seconds": round(el, 2), "frames_per_s": round(frames / el),
            "events_per_s": round((st1["events"] - st0["events"]) / el), "mb_per_s": round((b1 - b0) / el / 1e6, 2),
            "sim_cpu_pct": round(cpu_s / el * 100, 1), "cpu_us_per_frame": round(cpu_s / max(1, frames) * 1e6, 3),
            "flood_mode": st1.get("flood_mode", "live"), "replayed_cycles": st1.get("replayed_cycles", 0) -
            st0.get("replayed_cycles", 0)}


FLOOR_WORK = ("recv_only", "recv_orjson")


def _floor_client(port: int, plan, pause: float, work: str, warmup: float, seconds: float,
                  cpu: int | None, conn) -> None:
    """Child process of floor(): picows sockets subscribed like the worker, the loop the
    worker's, each data frame only counted (recv_only) or also parsed (recv_orjson)."""
    import asyncio

    from picows import WSListener, WSMsgType, ws_connect
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    n = [0]
    text, binary = WSMsgType.TEXT, WSMsgType.BINARY
    loads = orjson.loads

    class Count(WSListener):
        def on_ws_frame(self, transport, frame):
            mt = frame.msg_type
            if mt is text or mt is binary:
                n[0] += 1

    class Parse(WSListener):
        def on_ws_frame(self, transport, frame):
            mt = frame.msg_type
            if mt is text or mt is binary:
                n[0] += 1
                try:
                    loads(frame.get_payload_as_bytes())
                except orjson.JSONDecodeError:     # a text pong: counted, like the worker
                    pass

    async def main():
        listener = Parse if work == "recv_orjson" else Count
        transports = []
        for path, msgs in plan:
            tr, _ = await ws_connect(listener, f"ws://127.0.0.1:{port}{path}")
            transports.append(tr)
            for m in msgs:
                tr.send(WSMsgType.TEXT, m)
                await asyncio.sleep(pause)
        await asyncio.sleep(warmup)
        f0, c0, t0 = n[0], time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        f1, c1, t1 = n[0], time.process_time(), time.perf_counter()
        for tr in transports:
            tr.disconnect()
        return f1 - f0, c1 - c0, t1 - t0

    try:
        frames, cpu_s, el = asyncio.run(main())
        conn.send({"frames_per_s": round(frames / el), "cpu_us_per_frame": round(cpu_s * 1e6 / max(1, frames), 3),
                   "cpu_share": round(cpu_s / el, 2)})
    except Exception as e:                        # reported, not raised: the parent names it
        conn.send({"error": f"{type(e).__name__}: {e}"})


def floor(sim, venue: str, symbols: list[str], seconds: float, cpu: int | None = None,
          work: str = "recv_only", warmup: float = 0.5) -> dict:
    """What receiving the sim's flood costs before any work of ours: a client process (pinned
    like the worker) with the worker's socket library and event loop (picows on asyncio) and
    subscriptions, counting data frames (recv_only) or also `orjson.loads`-ing each
    (recv_orjson). frames/s, CPU us per frame and CPU share: a worker's CPU per frame over
    these reads as a ratio, comparable across runs of a noisy box."""
    import multiprocessing as mp
    if work not in FLOOR_WORK:
        raise ValueError(f"floor work must be one of {FLOOR_WORK}, not {work!r}")
    plan, pause = routes(sim, venue, symbols)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_floor_client, args=(sim.port(venue), plan, pause, work, warmup, seconds, cpu, child),
                    daemon=True)
    p.start()
    child.close()
    try:
        limit = warmup + seconds + len(plan) * (5 + pause * 10) + 20
        if not parent.poll(limit):
            raise RuntimeError(f"floor {work} of {venue}: no result within {limit:.0f} s")
        r = parent.recv()
    finally:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
        parent.close()
    if "error" in r:
        raise RuntimeError(f"floor {work} of {venue}: {r['error']}")
    return r


def measure(venue: str, seconds: float = 5.0, symbols: int = 10, trade_share: float = 0.35,
            flood: str = "replay") -> dict:
    from . import start_in_background
    calib = min(timeit.repeat("sum(range(1000))", number=200, repeat=5)) / 200 * 1e6
    env = dict(os.environ, TICKRING_SIM_FLOOD=flood)
    sim = start_in_background([venue], symbols=symbols, rate=0, args=["--trade-share", str(trade_share)], env=env)
    try:
        r = capacity(sim, venue, sim.symbols(venue), seconds, warmup=1.0)
    finally:
        sim.stop()
    return {"venue": venue, "symbols": symbols, "trade_share": trade_share, **r,
            "calib_us": round(calib, 2), "cpus": os.cpu_count(), "load1": round(os.getloadavg()[0], 2)}


@click.command()
@click.option("--venues", default="binance,binance_usdm,bybit,okx", show_default=True,
              help="Comma-separated venue ids, or 'all'.")
@click.option("--seconds", default=5.0, show_default=True, type=float)
@click.option("--symbols", default=10, show_default=True, type=int)
@click.option("--trade-share", default=0.35, show_default=True, type=float)
@click.option("--flood", type=click.Choice(["replay", "live"]), default="replay", show_default=True,
              help="replay: the flood's replayed cycles; live: every frame rendered by the model.")
@click.option("--json", "json_out", is_flag=True, help="One JSON object per venue per line.")
def command(venues, seconds, symbols, trade_share, flood, json_out):
    """Flood a byte-counting sink from one sim process per venue; report what the sim pushes."""
    from .protocol import PROTOCOLS
    for v in (PROTOCOLS if venues == "all" else venues.split(",")):
        r = measure(v.strip(), seconds, symbols, trade_share, flood)
        if json_out:
            sys.stdout.write(orjson.dumps(r).decode() + "\n")
        else:
            sys.stdout.write(f"{v}: {r['frames_per_s']:,} frames/s ({r['events_per_s']:,} events/s), "
                             f"{r['mb_per_s']} MB/s, sim CPU {r['sim_cpu_pct']}%, {r['cpu_us_per_frame']} us CPU/frame "
                             f"(calib {r['calib_us']} us, load {r['load1']})\n")
        sys.stdout.flush()


if __name__ == "__main__":
    command()
