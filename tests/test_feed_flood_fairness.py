"""A flooded socket must not starve the worker's event loop: with the simulator flooding from
the first subscription, a venue whose books start from a REST snapshot (Binance) still gets
every snapshot applied, and the worker's once-a-second housekeeping (heartbeat, overdue
snapshots) keeps running. Before feeds.connection.Socket capped its receive buffer and
yielded the loop, one read callback ran for seconds (picows grows its buffer on every full
read, so each read took all the kernel had): measured, no heartbeat at all in 6 s of flood."""
from __future__ import annotations

import time


def test_books_sync_while_the_simulator_floods(shm_names):
    from feeds.sim import start_in_background
    from tools.bench_feed import _attach, _books_synced, _start_worker, _stop
    ring_name, reg_name = shm_names("ring"), shm_names("reg")
    sim = start_in_background(["binance"], symbols=8, rate=0, seed=5)     # rate 0: flood
    proc = None
    try:
        syms = sim.symbols("binance")
        proc = _start_worker("binance", syms, sim, ring_name, reg_name)
        ring = _attach(ring_name, timeout=30)
        booked, registered = _books_synced(ring, reg_name, "binance", len(syms), 30.0)
        beats, last = 0, ring.word("heartbeat_ns")
        watch_end = time.monotonic() + 6.0               # housekeeping runs once a second
        while time.monotonic() < watch_end and beats < 3:
            h = ring.word("heartbeat_ns")
            if h != last:
                beats, last = beats + 1, h
            time.sleep(0.02)
        flooding = ring.word("messages")
        ring.close()
        assert registered == len(syms) and booked == len(syms), \
            f"{booked} of {len(syms)} books got their snapshot under a flood"
        assert flooding > 1000, "the simulator was flooding"
        assert beats >= 3, f"only {beats} heartbeat(s) in 6 s of flood: the loop is starved"
    finally:
        if proc is not None:
            _stop(proc)
        sim.stop()
