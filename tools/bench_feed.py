"""`tickring bench feed`: one feed worker's throughput, CPU per message and latency.

Per venue, three measurements in one run:
- flood (end to end): simulator (flood mode) -> `tickring feed` worker process -> ring, the
  simulator pinned to one CPU and the worker to another (2+ cores). msgs_per_s = exchange
  messages the worker decoded per second; cpu_us_per_msg = the worker's CPU time (psutil) /
  messages. The simulator floods with replayed cycles (feeds/sim/engine.py), several times
  faster than a worker decodes; to show which side limited the figure, the same simulator
  first floods a null sink (sim_frames_per_s: its capacity in this run, same subscriptions as
  the worker's; sim_frames_per_cpu_s: per second of its CPU). The worker then subscribes and
  seeds its books at a moderate rate (a flooded worker does not get its REST snapshot in
  time: books_synced), the simulator switches to flood (/_sim/rate) and the flood reports
  both processes' CPU shares and `bottleneck`: "worker"
  (the worker used >= 90 % of its core: the figure is the worker's limit), "simulator" (the
  simulator used >= 90 % of its core while the worker waited: sim_bound) or "contention"
  (neither was busy: other processes took the CPUs, rerun on a quieter box).
  Same-run floor (`floor`, feeds/sim/bench.py floor()): the same flood, subscriptions and CPU
  pin into a client process on the worker's own stack (picows on asyncio) that only counts the
  data frames (`recv_only`: what receiving costs) or also `orjson.loads` each (`recv_orjson`:
  the least any Python decoder pays); `cpu_per_frame_vs_floor` = the worker's CPU per frame
  over each floor's, a ratio that holds on a noisy box where raw figures swing 1.5x.
- in_process: the flood's own frames, recorded as the worker receives them (subscriptions
  answered and books synced at WARM_RATE first, then the same flood), fed to the worker's own
  `on_frame` (decode + book keeping + publish into a real ring) in a tight loop, as one long
  socket read (records published BATCH_RECORDS at a time, as a flooded worker does), the warm-up
  frames first and untimed; plus the baseline of a bare `orjson.loads` of the same frames, so
  figures read as ratios on a noisy box. (Frames recorded from a flood that starts at the first
  subscribe are mostly the first channel's: Kraken's were all trades, 4 us/msg against 16-24
  end to end.)
- latency: simulator at a fixed moderate rate -> worker process -> a consumer process spinning
  on the ring (spin_us=inf); per exchange message (records flagged LAST): the consumer's
  time.time_ns() the moment its wait() returns with the publish cursor past the record (it is
  visible: the consumer can read it), minus ts_recv (frame received). Copying the records out
  and selecting them with numpy come after that stamp: they are the consumer's own cost (a
  Python consumer's read() is ~2-4 us; until 2026-12-06 the figure included it). Baseline: the
  same consumer against a bare producer process writing time.time_ns() records at the same
  rate, so the box's scheduling noise is visible next to the worker's figure.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import click
import numpy as np

import feeds
from shm import segment
from shm.record import Flag, Kind
from shm.ring import Ring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CTX = mp.get_context("fork")
TARGETS = {"msgs_per_s": 400_000, "cpu_us_per_msg": 2.5, "latency_p50_us": 5, "latency_p99_us": 30}


def _segments_gone(*names):
    for n in names:
        if n in segment.list_segments():
            segment.unlink(n)


def _wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise click.ClickException(f"bench feed: timed out waiting for {what}")


def _attach(name: str, timeout: float = 10.0) -> Ring:
    """Attach the ring once the worker has created it (segments appear complete, atomically;
    any other error is real and surfaces at once)."""
    from shm.errors import RingNotFound
    end = time.monotonic() + timeout
    while True:
        try:
            return Ring.attach(name)
        except RingNotFound:
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


def _start_worker(venue, symbols, sim, ring, registry, cpu=None):
    cmd = [sys.executable, "-c", "from tools.cli import main; main()", "feed", venue,
           "--symbols", ",".join(symbols), "--ring", ring, "--url", sim.url(venue),
           "--rest-url", sim.rest_url(venue), "--registry", registry, "--capacity", str(1 << 20),
           "--log-level", "error"]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _wait(lambda: ring in segment.list_segments() or proc.poll() is not None, 20, "the worker's ring")
    if proc.poll() is not None:
        raise click.ClickException(f"bench feed: the worker exited with {proc.returncode}")
    return proc


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cpu_s(pid) -> float:
    import psutil
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


# -- end to end: flood ----------------------------------------------------------------------------

BUSY = 0.9          # a process using this share of its core or more is the bottleneck
WARM_RATE = 2000.0  # events/s while the worker subscribes and seeds its books, before the flood


def _books_synced(ring, registry: str, venue: str, expect: int, timeout: float) -> tuple[int, int]:
    """Wait until `expect` instruments are registered (the worker registers a symbol when it
    first decodes it) and each has a book snapshot in the ring; (with a book, registered)."""
    from shm.errors import SegmentNotFound
    from shm.registry import Registry
    rd = ring.reader("oldest", name="bench-sync")
    booked: set[int] = set()
    book, snap = int(Kind.BOOK), int(Flag.SNAPSHOT)
    end = time.monotonic() + timeout
    want: set[int] = set()
    try:
        while time.monotonic() < end:
            a = rd.read(65536, timeout=0.1)
            if len(a):
                booked.update(np.unique(a["instrument"][(a["kind"] == book) & ((a["flags"] & snap) != 0)]).tolist())
            if len(want) < expect:
                try:
                    reg = Registry.attach(registry)
                    want = {i.id for i in reg.all() if i.venue == venue}
                    reg.close()
                except SegmentNotFound:       # the worker has not created it yet
                    pass
            if len(want) >= expect and want <= booked:
                break
    finally:
        rd.close()
    return len(booked & want), len(want)


def bench_flood(venue: str, symbols: int, seconds: float, prefix: str, capacity_seconds: float | None = None,
                flood: str = "replay") -> dict:
    from feeds.sim import start_in_background
    from feeds.sim.bench import FLOOR_WORK, capacity, floor
    ring_name, reg = prefix + "flood", prefix + "reg"
    cpus = sorted(os.sched_getaffinity(0))
    sim_cpu, worker_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    sim = start_in_background([venue], symbols=symbols, rate=0, seed=5,
                              env=dict(os.environ, TICKRING_SIM_FLOOD=flood))
    proc = None
    try:
        if sim_cpu is not None:
            os.sched_setaffinity(sim.pid, {sim_cpu})
        syms = sim.symbols(venue)
        # the simulator's own capacity, same run, same subscriptions, sink on the worker's CPU
        cap_s = capacity_seconds or min(2.0, seconds)
        cap = capacity(sim, venue, syms, cap_s, cpu=worker_cpu)
        # the worker's floor in this flood: its socket stack alone, then + orjson.loads per frame
        floors = {w: floor(sim, venue, syms, cap_s, cpu=worker_cpu, work=w) for w in FLOOR_WORK}
        sim.set_rate(venue, WARM_RATE)
        proc = _start_worker(venue, syms, sim, ring_name, reg, cpu=worker_cpu)
        ring = _attach(ring_name)
        synced, instruments = _books_synced(ring, reg, venue, len(set(syms)), 20.0)
        g0, rs0 = ring.word("gaps"), ring.word("resyncs")
        sim.set_rate(venue, 0)
        m = ring.word("messages")
        _wait(lambda: ring.word("messages") > m + 1000, 20, "flood messages")
        time.sleep(0.3)                                   # past the first cycles
        f0, m0, r0, b0, c0, s0, t0 = (ring.word("frames"), ring.word("messages"), ring.published,
                                      ring.word("bytes_in"), _cpu_s(proc.pid), _cpu_s(sim.pid), time.perf_counter())
        time.sleep(seconds)
        f1, m1, r1, b1, c1, s1, t1 = (ring.word("frames"), ring.word("messages"), ring.published,
                                      ring.word("bytes_in"), _cpu_s(proc.pid), _cpu_s(sim.pid), time.perf_counter())
        info = ring.info()["counters"]
        ring.close()
        el = t1 - t0
        msgs, frames = m1 - m0, f1 - f0
        cpu_frame = (c1 - c0) * 1e6 / max(1, frames)
        out = {"msgs_per_s": round(msgs / el), "records_per_s": round((r1 - r0) / el),
               "frames_per_s": round(frames / el),
               "cpu_us_per_msg": round((c1 - c0) * 1e6 / max(1, msgs), 3),
               "cpu_us_per_frame": round(cpu_frame, 3), "bytes_per_frame": round((b1 - b0) / max(1, frames), 1),
               "records_per_msg": round((r1 - r0) / max(1, msgs), 2),
               "floor": floors,
               # the worker's CPU per frame over its floors' (a message is a data frame with records)
               "cpu_per_frame_vs_floor": {w: round(cpu_frame / max(f["cpu_us_per_frame"], 1e-3), 2)
                                          for w, f in floors.items()},
               "worker_cpu_share": round((c1 - c0) / el, 2), "sim_cpu_share": round((s1 - s0) / el, 2),
               "sim_frames_per_s": cap["frames_per_s"], "sim_cpu_us_per_frame": cap["cpu_us_per_frame"],
               # what one whole core of simulator would push (the box may not have given it one)
               "sim_frames_per_cpu_s": round(1e6 / max(cap["cpu_us_per_frame"], 1e-3)),
               "sim_capacity_cpu_share": round(cap["sim_cpu_pct"] / 100, 2), "sim_flood": cap["flood_mode"],
               "cpus": {"sim": sim_cpu, "worker": worker_cpu},
               "books_synced": f"{synced}/{instruments}", "decode_errors": info["decode_errors"],
               "gaps": info["gaps"], "resyncs": info["resyncs"], "gaps_in_flood": info["gaps"] - g0,
               "resyncs_in_flood": info["resyncs"] - rs0}
        if out["worker_cpu_share"] >= BUSY:
            out["bottleneck"] = "worker"
        elif out["sim_cpu_share"] >= BUSY or out["frames_per_s"] >= 0.9 * cap["frames_per_s"]:
            out["bottleneck"] = "simulator"
        else:
            out["bottleneck"] = "contention"
        # the worker waited for the simulator (not for the CPU): the figure is the sim's, not its own
        out["sim_bound"] = out["bottleneck"] == "simulator"
        return out
    finally:
        if proc is not None:
            _stop(proc)
        sim.stop()
        _segments_gone(ring_name, reg)


# -- in process: recorded frames through on_frame --------------------------------------------------

def record_frames(venue: str, symbols: int, n: int) -> list[bytes]:
    """n frames of a simulator flooding from the first subscribe on, as the worker's sockets
    receive them (every frame rendered live). Venues that subscribe with several messages get
    mostly the first channel's frames: `record_flood` records the flood the worker measures."""
    return _record(venue, symbols, n, "live", warm=False)[1]


def record_flood(venue: str, symbols: int, n: int, sim_flood: str = "replay") -> tuple[list[bytes], list[bytes]]:
    """(warm-up frames, n flood frames) as bench_flood's worker receives them: every
    subscription sent and answered at WARM_RATE first (snapshots, acks: the books sync), then
    the flood - the same frame mix as the end-to-end figure, so in-process and flood compare."""
    return _record(venue, symbols, n, sim_flood, warm=True)


def _record(venue: str, symbols: int, n: int, sim_flood: str, warm: bool) -> tuple[list[bytes], list[bytes]]:
    from feeds.connection import Connection
    from feeds.planner import plan
    from feeds.sim import start_in_background
    v = feeds.venue(venue)
    sim = start_in_background([venue], symbols=symbols, rate=WARM_RATE if warm else 0, seed=5,
                              env=dict(os.environ, TICKRING_SIM_FLOOD=sim_flood))
    frames: list[bytes] = []
    start = [0 if not warm else None]          # index of the first flood frame, once flooding
    try:
        syms = sim.symbols(venue)

        class Events:
            def __getattr__(self, name):
                return lambda *a, **k: None

        async def main():
            done = asyncio.Event()

            def handler(payload, sock, more=False):
                frames.append(payload)
                if start[0] is not None and len(frames) >= start[0] + n:
                    done.set()
            from feeds.rest import RestClient
            from feeds.worker import with_default_path
            url = with_default_path(sim.url(venue), v.ws_url)
            rest = RestClient(sim.rest_url(venue))

            def provider_for(path):           # KuCoin: a tokenized URL per connection
                make, token = v.extra.get("connect_url"), v.extra.get("token_request")
                if make is None or token is None:
                    return None

                async def provide():
                    body = await rest.request(*token)
                    u = make(body, ws_base=url)[0]
                    return u + path if path else u
                return provide
            conns = [Connection(p, v, url, handler, lambda: None, Events(), url_provider=provider_for(p.path))
                     for p in plan(v, syms)]
            for c in conns:
                c.plan = c.plan.__class__(**{**c.plan.__dict__, "start_delay_s": 0.0})
            tasks = [asyncio.ensure_future(c.run()) for c in conns]
            try:
                if warm:                       # every subscribe sent (run() sets current after)
                    end = time.monotonic() + 60
                    while any(c.current is None for c in conns) and time.monotonic() < end:
                        await asyncio.sleep(0.02)
                    await asyncio.sleep(0.5)   # answers, snapshots, a few warm events
                    start[0] = len(frames)
                    await asyncio.get_running_loop().run_in_executor(None, sim.set_rate, venue, 0)
                await asyncio.wait_for(done.wait(), 60)
            finally:
                for c in conns:
                    await c.stop()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run(main())
    finally:
        sim.stop()
    return frames[:start[0]], frames[start[0]:start[0] + n]


def bench_in_process(venue: str, frames: list[bytes], prefix: str, warm: list[bytes] = ()) -> dict:
    """Decode + books + publish of recorded frames in this process, and an orjson baseline.
    `warm` frames (subscription answers, snapshots) go through on_frame first, untimed."""
    import gc

    import orjson

    from feeds.worker import FeedWorker
    ring_name, reg = prefix + "inproc", prefix + "reg2"
    v = feeds.venue(venue)
    w = FeedWorker(venue, ["X"], ring_name, registry=reg, ring_capacity=1 << 20)
    try:
        w._open_shm()
        w.keeper.request_snapshot = lambda inst: None     # books are seeded below, not from REST

        class Conn:
            index = 0

            def rotate(self, reason):
                pass

        class Sock:
            incoming = False
            got_data = False
            last_frame_ns = 0
            conn = Conn()
        sock = Sock()
        sock.decoder = v.decoder(w.instruments)
        # seed each book at its first message, as a REST snapshot would
        seed = v.decoder(w.instruments)
        for f in (*warm, *frames):
            try:
                seed.decode(f)
            except Exception:
                continue
            for ev in seed.book_events:
                b = w.keeper.book(ev.instrument)
                if b.state != 0 and w.keeper.rule.seed == "rest":
                    last = ev.first if w.keeper.rule.check == "prev" else ev.first - 1
                    w.keeper.rest_snapshot(ev.instrument, last, [], [])
        on_frame = w.on_frame
        for f in warm:
            on_frame(f, sock)
        n = len(frames)
        recs0, m0 = w.ring.published, w.ring.word("messages")
        # as one long socket read, the way a flooded worker gets them: records published in
        # batches of BATCH_RECORDS (the loop only schedules the backstop, which finds nothing)
        loop = w._loop = asyncio.new_event_loop()
        last = frames[-1] if frames else None
        gc.collect()
        gc.freeze()
        c0, t0 = time.process_time(), time.perf_counter()
        for f in frames:
            on_frame(f, sock, f is not last)
        c1, t1 = time.process_time(), time.perf_counter()
        loop.close()
        msgs = w.ring.word("messages") - m0
        recs = w.ring.published - recs0
        loads = orjson.loads
        b0 = time.process_time()
        for f in frames:
            loads(f)
        b1 = time.process_time()
        gc.unfreeze()
        base_us = (b1 - b0) * 1e6 / n
        cpu_us = (c1 - c0) * 1e6 / max(1, msgs)
        return {"frames": n, "msgs_per_s": round(msgs / (t1 - t0)), "records_per_s": round(recs / (t1 - t0)),
                "records_per_msg": round(recs / max(1, msgs), 2),
                "cpu_us_per_msg": round(cpu_us, 3),
                "baseline_orjson_us_per_frame": round(base_us, 3),
                "ratio_to_orjson": round((c1 - c0) * 1e6 / n / max(base_us, 1e-9), 2),
                "gaps": w.ring.word("gaps"), "decode_errors": w.ring.word("decode_errors")}
    finally:
        if w.writer is not None:
            w.writer.close()
        w.ring.close()
        _segments_gone(ring_name, reg)


# -- latency: frame received -> visible to a consumer process ---------------------------------------

def _consume(ring_name: str, seconds: float, conn, cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    ring = Ring.attach(ring_name)
    rd = ring.reader("latest", name="bench-lat", spin_us=float("inf"))
    lat = np.empty(2_000_000, np.int64)
    k = 0
    now = time.time_ns
    end = time.monotonic() + seconds
    status = int(Kind.STATUS)
    last = int(Flag.LAST)
    while time.monotonic() < end:
        # the moment the consumer sees the publish cursor move is when the records became
        # visible to it; reading and selecting them (numpy) is the consumer's own cost after
        pub = rd.wait(0.2)
        t = now()
        if pub <= rd.next:
            continue
        a = rd.read(4096, timeout=0)
        if not len(a):
            continue
        sel = a[((a["flags"] & last) != 0) & (a["kind"] != status)]
        m = min(len(sel), len(lat) - k)
        lat[k:k + m] = t - sel["ts_recv"][:m]
        k += m
    rd.close()
    ring.close()
    conn.send(lat[:k])
    conn.close()


def bench_latency(venue: str, symbols: int, rate: float, seconds: float, prefix: str) -> dict:
    from feeds.sim import start_in_background
    ring_name, reg = prefix + "lat", prefix + "reg3"
    sim = start_in_background([venue], symbols=symbols, rate=rate, seed=5)
    proc = None
    try:
        syms = sim.symbols(venue)
        cpus = sorted(os.sched_getaffinity(0))
        proc = _start_worker(venue, syms, sim, ring_name, reg, cpu=cpus[0] if len(cpus) > 1 else None)
        ring = _attach(ring_name)
        _wait(lambda: ring.word("messages") > 100, 20, "messages")
        ring.close()
        parent, child = CTX.Pipe(duplex=False)
        p = CTX.Process(target=_consume, args=(ring_name, seconds, child, cpus[-1] if len(cpus) > 1 else None))
        p.start()
        child.close()
        lat = parent.recv()
        p.join(10)
        if len(lat) == 0:
            raise click.ClickException("bench feed: the consumer saw no records")
        us = lat / 1000.0
        return {"rate": rate, "samples": int(len(lat)), "msgs_per_s": round(len(lat) / seconds),
                "latency_us": {"p50": round(float(np.percentile(us, 50)), 2),
                               "p99": round(float(np.percentile(us, 99)), 2),
                               "p999": round(float(np.percentile(us, 99.9)), 2),
                               "max": round(float(us.max()), 2)}}
    finally:
        if proc is not None:
            _stop(proc)
        sim.stop()
        _segments_gone(ring_name, reg)


def _bare_producer(ring_name: str, seconds: float, rate: float, cpu):
    """Baseline for the latency figure: one record per message straight into a ring."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    ring = Ring.attach(ring_name)
    w = ring.writer(announce=False)
    gap = 1.0 / rate
    end = time.monotonic() + seconds
    nxt = time.monotonic()
    while time.monotonic() < end:
        nxt += gap
        while time.monotonic() < nxt:
            time.sleep(max(0.0, min(gap, nxt - time.monotonic()) / 2))
        w.write(0, time.time_ns(), 1, Kind.TRADE, 1, Flag.LAST, 1.0, 1.0, 1)
    w.close()
    ring.close()


def bench_bare_latency(rate: float, seconds: float, prefix: str) -> dict:
    """The same consumer against a bare ring producer at the same rate (same-run baseline)."""
    name = prefix + "bare"
    ring = Ring.create(name, 1 << 16)
    try:
        cpus = sorted(os.sched_getaffinity(0))
        parent, child = CTX.Pipe(duplex=False)
        cons = CTX.Process(target=_consume, args=(name, seconds + 0.5, child, cpus[-1] if len(cpus) > 1 else None))
        cons.start()
        child.close()
        prod = CTX.Process(target=_bare_producer, args=(name, seconds, rate, cpus[0] if len(cpus) > 1 else None))
        prod.start()
        lat = parent.recv()
        prod.join(10)
        cons.join(10)
        us = lat / 1000.0 if len(lat) else np.zeros(1)
        return {"p50": round(float(np.percentile(us, 50)), 2), "p99": round(float(np.percentile(us, 99)), 2),
                "p999": round(float(np.percentile(us, 99.9)), 2), "samples": int(len(lat))}
    finally:
        ring.close()
        _segments_gone(name)


def bench_venue(venue: str, seconds: float, frames_n: int, rate: float, symbols: int, sim_flood: str = "replay",
                flood_only: bool = False) -> dict:
    prefix = f"bench-feed-{os.getpid()}-{venue}-"
    res = {"venue": venue}
    res["flood"] = bench_flood(venue, symbols, seconds, prefix, flood=sim_flood)
    if flood_only:
        res["msgs_per_s"] = res["flood"]["msgs_per_s"]
        res["cpu_us_per_msg"] = res["flood"]["cpu_us_per_msg"]
        return res
    warm, frames = record_flood(venue, symbols, frames_n, sim_flood)
    res["in_process"] = bench_in_process(venue, frames, prefix, warm)
    res["latency"] = bench_latency(venue, symbols, rate, seconds, prefix)
    res["latency"]["bare_ring_baseline_us"] = bench_bare_latency(res["latency"]["msgs_per_s"] or rate,
                                                                 seconds, prefix)
    # headline: the worker's own limit (in-process decode + books + publish, one core) and the
    # end-to-end latency; the flood figure is bounded by the Python simulator (see "sim_bound")
    res["msgs_per_s"] = max(res["flood"]["msgs_per_s"], res["in_process"]["msgs_per_s"])
    res["cpu_us_per_msg"] = res["in_process"]["cpu_us_per_msg"]
    res["latency_us"] = res["latency"]["latency_us"]
    return res


@click.command()
@click.option("--venue", default="binance", show_default=True,
              help="Venue id, comma-separated ids, or 'all' (every venue the simulator speaks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option("--seconds", default=3.0, show_default=True, help="Duration of the flood and latency phases.")
@click.option("--frames", "frames_n", default=100_000, show_default=True, help="Recorded frames for the in-process phase.")
@click.option("--rate", default=2000.0, show_default=True, help="Simulator events/s for the latency phase.")
@click.option("--symbols", default=4, show_default=True, help="Instruments per venue.")
@click.option("--sim-flood", type=click.Choice(["replay", "live"]), default="replay", show_default=True,
              help="How the simulator floods: replayed cycles (fast) or every frame rendered live.")
@click.option("--flood-only", is_flag=True, help="Only the end-to-end flood phase (no in-process, no latency); "
              "it includes the simulator's capacity and the floors (recv_only, recv_orjson) of the same flood.")
def command(venue, as_json, seconds, frames_n, rate, symbols, sim_flood, flood_only):
    """Feed worker throughput (flood and in-process), CPU per message, frame->consumer latency.

    The flood also measures its floor in the same run: a picows client on the worker's CPU that
    only receives the frames (recv_only) or also orjson.loads them (recv_orjson); the worker's
    CPU per frame is reported as a ratio to each (cpu_per_frame_vs_floor)."""
    from feeds.sim.protocol import PROTOCOLS
    if venue == "all":
        venues = [v for v in feeds.implemented() if v in PROTOCOLS]
    else:
        venues = [v.strip() for v in venue.split(",") if v.strip()]
    for v in venues:
        feeds.venue(v)
        if v not in PROTOCOLS:
            raise click.ClickException(f"the simulator does not speak {v!r}; it speaks {', '.join(PROTOCOLS)}")
    out = {"targets": TARGETS, "venues": {}}
    for v in venues:
        if not as_json:
            click.echo(f"… {v}", err=True)
        out["venues"][v] = bench_venue(v, seconds, frames_n, rate, symbols, sim_flood, flood_only)
    if len(venues) == 1:                  # one venue: its headline figures at the top level too
        r = out["venues"][venues[0]]
        out.update(venue=venues[0], msgs_per_s=r["msgs_per_s"], cpu_us_per_msg=r["cpu_us_per_msg"],
                   latency_us=r.get("latency_us"))
    if as_json:
        click.echo(json.dumps(out))
        return
    for v, r in out["venues"].items():
        f = r["flood"]
        click.echo(f"{v}")
        click.echo(f"  flood (sim -> worker -> ring)  {f['msgs_per_s']:>10,} msgs/s  {f['cpu_us_per_msg']:.2f} us CPU/msg"
                   f"  worker at {f['worker_cpu_share']:.0%} of a core, sim at {f['sim_cpu_share']:.0%}"
                   f"  (bottleneck: {f['bottleneck']})")
        click.echo(f"  simulator alone (null sink)    {f['sim_frames_per_s']:>10,} frames/s  "
                   f"{f['sim_cpu_us_per_frame']:.2f} us CPU/frame ({f['sim_flood']}); the worker got "
                   f"{f['frames_per_s']:,} frames/s")
        for w, fl in f["floor"].items():
            click.echo(f"  floor {w:<24} {fl['frames_per_s']:>10,} frames/s  {fl['cpu_us_per_frame']:.2f} us CPU/frame"
                       f"  (worker: {f['cpu_us_per_frame']:.2f} us/frame, {f['cpu_per_frame_vs_floor'][w]}x)")
        if flood_only:
            continue
        ip, lat = r["in_process"], r["latency"]["latency_us"]
        click.echo(f"  in-process on_frame            {ip['msgs_per_s']:>10,} msgs/s  {ip['cpu_us_per_msg']:.2f} us CPU/msg"
                   f"  ({ip['records_per_msg']} records/msg; orjson.loads alone {ip['baseline_orjson_us_per_frame']:.2f} us, ratio {ip['ratio_to_orjson']})")
        base = r["latency"]["bare_ring_baseline_us"]
        click.echo(f"  latency frame -> consumer      p50 {lat['p50']} us  p99 {lat['p99']} us  p999 {lat['p999']} us"
                   f"  (targets p50 <= {TARGETS['latency_p50_us']}, p99 <= {TARGETS['latency_p99_us']})")
        click.echo(f"  baseline bare ring producer    p50 {base['p50']} us  p99 {base['p99']} us  p999 {base['p999']} us"
                   f"  (same consumer, same rate: the box's scheduling noise)")
