"""`tickring bench ring`: ring write/read throughput, cross-process latency and fan-out cost.

Every figure comes with a baseline measured in the same run (a bare struct pack loop, a bare
numpy copy, a bare shared word watched by spinning or a futex for latency, plain CPU work on
the consumers' CPU for fan-out), so results on a noisy machine can be read as ratios.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import time

import click
import numpy as np

import shm
from shm.record import PACK_LEVEL

CTX = mp.get_context("fork")
TARGETS = {"write_rps": 2_000_000, "write_batch_rps": 20_000_000, "read_rps": 50_000_000,
           "spin_p99_us": 5, "block_p99_us": 60, "fanout8_ratio": 0.95}


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _timed(fn, seconds: float) -> float:
    """Calls fn() (which does `per_call` units and returns it) until `seconds` pass; units/s."""
    done = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        done += fn()
        now = time.perf_counter()
        if now >= end:
            return done / (now - t0)


def _single_writes(w):
    """A unit of work for _timed: 1000 one-record publishes through Writer.write."""
    write = w.write

    def one_k():
        for i in range(1000):
            write(0, 0, 1, 1, 1, 0, 1.0, 1.0, i)
        return 1000
    return one_k


def bench_write(name: str, seconds: float) -> dict:
    ring = shm.Ring.create(name, capacity=1 << 16)
    w = ring.writer(announce=False)
    one_k = _single_writes(w)

    rps = _timed(one_k, seconds)
    buf = bytearray(64)
    pack = PACK_LEVEL.pack_into

    def baseline():
        for i in range(1000):
            pack(buf, 0, 0, 0, 0, 1, 1, 1, 0, 1.0, 1.0, 0.0, i)
        return 1000

    base = _timed(baseline, seconds / 2)
    batch = shm.empty(4096)
    batch["kind"] = shm.Kind.TRADE
    publish = w.publish
    batch_rps = _timed(lambda: (publish(batch), 4096)[1], seconds)
    w.close()
    ring.unlink()
    ring.close()
    return {"write_rps": rps, "write_baseline_pack_rps": base, "write_vs_pack": rps / base,
            "write_batch_rps": batch_rps}


def bench_read(name: str, seconds: float, batch: int) -> dict:
    cap = 1 << 20
    ring = shm.Ring.create(name, capacity=cap)
    w = ring.writer(announce=False)
    recs = shm.empty(cap)
    w.publish(recs)
    r = ring.reader(start="oldest")
    start = r.next

    def read_all():
        r.next = start
        n = 0
        while r.next < start + cap:
            n += len(r.read(max_records=batch, timeout=0))
        return n

    rps = _timed(read_all, seconds)
    src = ring._rows          # the same bytes as raw rows: a bare memcpy is the ceiling

    def baseline():
        for i in range(0, cap, batch):
            src[i:i + batch].copy()
        return cap

    base = _timed(baseline, seconds / 2)
    assert r.lost == 0
    r.close()
    w.close()
    del src
    ring.unlink()
    ring.close()
    return {"read_rps": rps, "read_batch": batch, "read_baseline_copy_rps": base,
            "read_vs_copy": rps / base}


def _latency_consumer(name, spin_us, n, cpu, ready, out):
    _pin(cpu)
    ring = shm.Ring.attach(name)
    r = ring.reader(start="latest", spin_us=spin_us)
    ready.set()
    lat = np.empty(n, np.int64)
    got = 0
    clock = time.monotonic_ns
    while got < n:
        b = r.read(max_records=1, timeout=5)
        if not len(b):
            break
        lat[got] = clock() - int(b["ts_event"][0])
        got += 1
    out.put(lat[:got].tolist())
    r.close()
    ring.close()


def bench_latency(name: str, mode: str, n: int, cpus: list[int]) -> dict:
    ring = shm.Ring.create(name, capacity=1 << 16)
    w = ring.writer(announce=False)
    ready, out = CTX.Event(), CTX.Queue()
    spin = float("inf") if mode == "spin" else 0.0
    consumer_cpu = cpus[-1] if len(cpus) > 1 else None
    p = CTX.Process(target=_latency_consumer, args=(name, spin, n, consumer_cpu, ready, out))
    p.start()
    ready.wait(30)
    old = os.sched_getaffinity(0)
    _pin(cpus[0])
    clock = time.monotonic_ns
    gap_ns = 50_000 if mode == "spin" else 200_000      # a moderate rate, not a flood
    for i in range(n):
        t_next = clock() + gap_ns
        while clock() < t_next:
            pass
        w.write(clock(), 0, 1, 1, 1, 0, 1.0, 1.0, i)
    lat = np.array(out.get(timeout=60), dtype=np.float64) / 1000.0
    p.join(10)
    os.sched_setaffinity(0, old)
    w.close()
    ring.unlink()
    ring.close()
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "p999": float(np.percentile(lat, 99.9)), "samples": int(len(lat))}


_BARE_SLOTS = 4096          # 0.2-0.8 s of messages: no stall outlasts it


def _bare_consumer(mm, mode, n, cpu, ready, out):
    """The environment's floor for latency: no ring, a published count the consumer watches
    (spinning, or sleeping on a futex) and each message's send time in a slot of its own. Like
    the ring's consumer it accounts for every message: one late wake-up makes every message
    that arrived meanwhile late, here as there."""
    from shm import futex
    _pin(cpu)
    u = np.frombuffer(mm, np.uint64)
    addr = u.ctypes.data
    ready.set()
    lat = np.empty(n, np.int64)
    clock = time.monotonic_ns
    seen = 0
    deadline = time.monotonic() + 60
    while seen < n and time.monotonic() < deadline:
        if mode == "spin":
            while u[0] == seen:
                pass
        else:
            while u[0] == seen:
                futex.wait(addr, seen, 0.05)
        now = clock()
        upto = int(u[0])
        for q in range(seen + 1, upto + 1):
            lat[q - 1] = now - int(u[8 + q % _BARE_SLOTS])
        seen = upto
    out.put(lat[:seen].tolist())


def bench_bare_latency(mode: str, n: int, cpus: list[int]) -> dict:
    """Same pins, same rate, same clock as bench_latency, without the ring (see _bare_consumer)."""
    import mmap
    from shm import futex
    mm = mmap.mmap(-1, 8 * (8 + _BARE_SLOTS), flags=mmap.MAP_SHARED)
    u = np.frombuffer(mm, np.uint64)
    addr = u.ctypes.data
    ready, out = CTX.Event(), CTX.Queue()
    p = CTX.Process(target=_bare_consumer, args=(mm, mode, n, cpus[-1] if len(cpus) > 1 else None, ready, out))
    p.start()
    ready.wait(30)
    old = os.sched_getaffinity(0)
    _pin(cpus[0])
    clock = time.monotonic_ns
    gap_ns = 50_000 if mode == "spin" else 200_000
    for i in range(1, n + 1):
        t_next = clock() + gap_ns
        while clock() < t_next:
            pass
        u[8 + i % _BARE_SLOTS] = clock()
        u[0] = i
        if mode != "spin":
            futex.wake_all(addr)
    lat = np.array(out.get(timeout=60), dtype=np.float64) / 1000.0
    p.join(10)
    os.sched_setaffinity(0, old)
    del u
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "p999": float(np.percentile(lat, 99.9)), "samples": int(len(lat))}


def _busy(cpu, ready, stop):
    """Plain CPU work with nothing shared: the neighbour a consumer is, minus the ring."""
    _pin(cpu)
    ready.set()
    x = 0
    while not stop.is_set():
        for i in range(10_000):
            x += i


def _fanout_consumer(name, cpu, ready, stop):
    """A consumer in blocking mode: no spinning, it sleeps on the futex whenever it is caught up."""
    _pin(cpu)
    ring = shm.Ring.attach(name)
    r = ring.reader(start="latest", spin_us=0)
    ready.set()
    while not stop.is_set():
        r.read(max_records=4096, timeout=0.05)
    r.close()
    ring.close()


def bench_fanout(name: str, seconds: float, consumers: int, cpus: list[int]) -> dict:
    ring = shm.Ring.create(name, capacity=1 << 16)
    w = ring.writer(announce=False)
    one_k = _single_writes(w)

    old = os.sched_getaffinity(0)
    _pin(cpus[0])
    alone = _timed(one_k, seconds)
    stop = CTX.Event()
    procs = []
    for _ in range(consumers):
        ready = CTX.Event()
        p = CTX.Process(target=_fanout_consumer, args=(name, cpus[-1] if len(cpus) > 1 else None, ready, stop))
        p.start()
        ready.wait(30)
        procs.append(p)
    with_readers = _timed(one_k, seconds)
    stop.set()
    for p in procs:
        p.join(10)
    # baseline, same run: as many processes on the consumers' CPU doing plain CPU work with
    # nothing shared. On a VM whose two vCPUs share a physical core (or its power budget) a
    # busy neighbour alone slows the producer; the protocol's own cost is what is left.
    alone2 = _timed(one_k, seconds)
    stop = CTX.Event()
    procs = []
    for _ in range(consumers):
        ready = CTX.Event()
        p = CTX.Process(target=_busy, args=(cpus[-1] if len(cpus) > 1 else None, ready, stop))
        p.start()
        ready.wait(30)
        procs.append(p)
    with_busy = _timed(one_k, seconds)
    stop.set()
    for p in procs:
        p.join(10)
    os.sched_setaffinity(0, old)
    w.close()
    ring.unlink()
    ring.close()
    return {"fanout0_write_rps": alone, f"fanout{consumers}_write_rps": with_readers,
            f"fanout{consumers}_ratio": with_readers / alone,
            f"fanout{consumers}_busy_neighbour_ratio": with_busy / alone2,
            f"fanout{consumers}_vs_busy_neighbour": (with_readers / alone) / (with_busy / alone2)}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option("--seconds", default=1.0, show_default=True, help="Duration of each throughput phase.")
@click.option("--samples", default=20_000, show_default=True, help="Latency samples per mode.")
@click.option("--batch", default=4096, show_default=True, help="Records per read() call.")
def command(as_json, seconds, samples, batch):
    """Ring benchmark: write_rps (one record per call), write_batch_rps, read_rps (batched
    copy), latency_us {spin, block} from publish to a consumer in another process, and
    fanout8_ratio (producer throughput with 8 blocking consumers / with none; producer pinned
    to the first CPU, consumers to the last)."""
    cpus = _cpus()
    base = f"bench{os.getpid()}"
    res = {"cpus": len(cpus)}
    steps = [("write", lambda: bench_write(base + "w", seconds)),
             ("read", lambda: bench_read(base + "r", seconds, batch)),
             ("latency spin", lambda: {"latency_us": {"spin": bench_latency(base + "ls", "spin", samples, cpus)}}),
             ("latency block", lambda: {"latency_us": {"block": bench_latency(base + "lb", "block", samples // 4, cpus)}}),
             ("latency baselines", lambda: {"latency_us": {
                 "spin_baseline": bench_bare_latency("spin", samples, cpus),
                 "block_baseline": bench_bare_latency("block", samples // 4, cpus)}}),
             ("fanout", lambda: bench_fanout(base + "f", seconds, 8, cpus))]
    try:
        for label, step in steps:
            if not as_json:
                click.echo(f"… {label}", err=True)
            out = step()
            if "latency_us" in out:
                res.setdefault("latency_us", {}).update(out["latency_us"])
            else:
                res.update(out)
    finally:
        for suffix in ("w", "r", "ls", "lb", "f"):
            shm.segment.unlink(base + suffix)
    res["targets"] = TARGETS
    if as_json:
        click.echo(json.dumps(res))
        return
    click.echo(f"write_rps        {res['write_rps']:>14,.0f}   (bare struct pack {res['write_baseline_pack_rps']:,.0f}/s, ratio {res['write_vs_pack']:.2f}; target {TARGETS['write_rps']:,})")
    click.echo(f"write_batch_rps  {res['write_batch_rps']:>14,.0f}   (target {TARGETS['write_batch_rps']:,})")
    click.echo(f"read_rps         {res['read_rps']:>14,.0f}   (bare memcpy {res['read_baseline_copy_rps']:,.0f}/s, ratio {res['read_vs_copy']:.2f}; target {TARGETS['read_rps']:,})")
    for mode in ("spin", "block"):
        l, b = res["latency_us"][mode], res["latency_us"][mode + "_baseline"]
        click.echo(f"latency {mode:<6}   p50 {l['p50']:6.1f} µs  p99 {l['p99']:6.1f} µs  p999 {l['p999']:7.1f} µs  ({l['samples']} samples)")
        click.echo(f"  bare {'futex' if mode == 'block' else 'word '}     p50 {b['p50']:6.1f} µs  p99 {b['p99']:6.1f} µs  p999 {b['p999']:7.1f} µs  (no ring: the box's floor)")
    click.echo(f"fanout8_ratio    {res['fanout8_ratio']:>14.3f}   (target >= {TARGETS['fanout8_ratio']}; 8 busy processes "
               f"sharing nothing: {res['fanout8_busy_neighbour_ratio']:.3f}, ratio of the two {res['fanout8_vs_busy_neighbour']:.3f})")
