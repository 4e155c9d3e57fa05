"""A flooded socket must not starve the worker's event loop: with the simulator flooding from
the first subscription, a venue whose books start from a REST snapshot (Binance) still gets
every snapshot applied, and the worker's once-a-second housekeeping (heartbeat, overdue
snapshots) keeps running. Before feeds.connection.Socket capped its receive buffer and
yielded the loop, one read callback ran for seconds (picows grows its buffer on every full
read, so each read took all the kernel had): measured, no heartbeat at all in 6 s of flood."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np

from shm.record import Flag, Kind
from shm.registry import Registry
from shm.ring import Ring

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_books_sync_while_the_simulator_floods(shm_names):
    from feeds.sim import start_in_background
    ring_name, reg_name = shm_names("ring"), shm_names("reg")
    sim = start_in_background(["binance"], symbols=8, rate=0, seed=5)     # rate 0: flood
    proc = None
    try:
        syms = sim.symbols("binance")
        proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "feed", "binance",
                                 "--symbols", ",".join(syms), "--ring", ring_name, "--url", sim.url("binance"),
                                 "--rest-url", sim.rest_url("binance"), "--registry", reg_name,
                                 "--capacity", str(1 << 20), "--log-level", "error"], cwd=ROOT)
        deadline = time.monotonic() + 30
        ring = None
        while ring is None and time.monotonic() < deadline:
            try:
                ring = Ring.attach(ring_name)
            except Exception:                       # not created yet
                assert proc.poll() is None, "the worker exited"
                time.sleep(0.05)
        assert ring is not None
        reader = ring.reader("oldest")
        booked: set[int] = set()
        want: set[int] = set()
        while time.monotonic() < deadline and not (want and want <= booked):
            a = reader.read(65536, timeout=0.1)
            snap = a[(a["kind"] == Kind.BOOK) & ((a["flags"] & int(Flag.SNAPSHOT)) != 0)]
            booked.update(np.unique(snap["instrument"]).tolist())
            if len(want) < len(syms):
                try:
                    reg = Registry.attach(reg_name)
                    want = {i.id for i in reg.all() if i.venue == "binance"}
                    reg.close()
                except Exception:
                    pass
        beats, last = 0, ring.word("heartbeat_ns")
        watch_end = time.monotonic() + 6.0               # housekeeping runs once a second
        while time.monotonic() < watch_end and beats < 3:
            h = ring.word("heartbeat_ns")
            if h != last:
                beats, last = beats + 1, h
            time.sleep(0.02)
        flooding = ring.word("messages")
        reader.close()
        ring.close()
        assert len(want) == len(syms) and want <= booked, \
            f"{len(booked & want)} of {len(syms)} books got their snapshot under a flood"
        assert flooding > 1000, "the simulator was flooding"
        assert beats >= 3, f"only {beats} heartbeat(s) in 6 s of flood: the loop is starved"
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sim.stop()
