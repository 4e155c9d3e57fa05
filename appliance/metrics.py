"""Prometheus metrics (text exposition via prometheus_client) on a loopback port.

Why a collector over the supervisor's snapshot rather than live counters: the numbers already
live in the ring headers and the supervisor's once-a-second snapshot; a scrape only formats
them, so metrics cost nothing on any hot path and always agree with `tickring inspect`.
The server is served from the supervisor's own select loop (no thread), see supervisor.py.
"""
from __future__ import annotations

import socket
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

RING_COUNTERS = ("messages", "decode_errors", "reconnects", "gaps", "resyncs", "crossed", "frames",
                 "bytes_in")


class SnapshotCollector:
    """Turns a supervisor snapshot (see Supervisor._build_snapshot) into metric families."""

    def __init__(self, snapshot_fn):
        self.snapshot_fn = snapshot_fn

    def collect(self):
        snap = self.snapshot_fn() or {}
        rings = snap.get("rings", [])
        procs = snap.get("processes", [])

        def gauge(name, doc, labels):
            return GaugeMetricFamily(f"tickring_{name}", doc, labels=labels)

        published = CounterMetricFamily("tickring_ring_published", "Records published into the ring", labels=["ring"])
        rate = gauge("ring_messages_per_second", "Exchange messages per second (last status interval)", ["ring"])
        epoch = gauge("ring_epoch", "Producer epoch (bumped on every worker restart)", ["ring"])
        alive = gauge("ring_producer_alive", "1 when the ring's producer process is alive", ["ring"])
        conns = gauge("ring_connections", "Websocket connections currently open", ["ring"])
        counters = {c: CounterMetricFamily(f"tickring_ring_{c}", f"Ring counter '{c}'", labels=["ring"])
                    for c in RING_COUNTERS}
        lag = gauge("consumer_lag_records", "Records published but not yet read by a consumer", ["ring", "consumer"])
        lost = CounterMetricFamily("tickring_consumer_lost_records", "Records a consumer lost to laps",
                                   labels=["ring", "consumer"])
        for r in rings:
            name = r["name"]
            published.add_metric([name], r["published"])
            rate.add_metric([name], r.get("rate", 0.0))
            epoch.add_metric([name], r["epoch"])
            alive.add_metric([name], 1 if r["producer_alive"] else 0)
            conns.add_metric([name], r["counters"].get("connections", 0))
            for c in RING_COUNTERS:
                counters[c].add_metric([name], r["counters"].get(c, 0))
            for cons in r.get("consumers", []):
                label = cons["name"] or f"pid{cons['pid']}"
                lag.add_metric([name, label], cons["lag"])
                lost.add_metric([name, label], cons["lost"])
        yield from (published, rate, epoch, alive, conns, *counters.values(), lag, lost)

        up = gauge("process_up", "1 when the process is running", ["process"])
        restarts = CounterMetricFamily("tickring_process_restarts", "Restarts after a crash", labels=["process"])
        recycles = CounterMetricFamily("tickring_process_recycles", "Restarts because of memory", labels=["process"])
        uss = gauge("process_uss_bytes", "Private memory besides the shared-memory rings", ["process"])
        pss = gauge("process_pss_bytes", "Proportional set size besides the shared-memory rings", ["process"])
        shm = gauge("process_shm_pss_bytes", "PSS of the tickring shared-memory segments it maps", ["process"])
        for p in procs:
            name = p["name"]
            up.add_metric([name], 1 if p["pid"] else 0)
            restarts.add_metric([name], p["restarts"])
            recycles.add_metric([name], p["recycles"])
            mem = p.get("memory")
            if mem:
                uss.add_metric([name], mem["uss"])
                pss.add_metric([name], mem["pss"])
                shm.add_metric([name], mem["shm"])
        grades = gauge("quality_instruments", "Instruments per quality grade (compactor)", ["venue", "grade"])
        for venue, per in (snap.get("quality") or {}).items():
            for grade, n in per.items():
                grades.add_metric([venue, grade], n)
        yield grades
        ready = gauge("ready", "1 once every worker is connected or retrying", [])
        ready.add_metric([], 1 if snap.get("ready") else 0)
        yield from (up, restarts, recycles, uss, pss, shm, ready)


class _QuietHandler(WSGIRequestHandler):
    timeout = 2.0                       # a stuck client cannot hold the supervisor's loop

    def log_message(self, *args):
        pass


class _Server(WSGIServer):
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """A non-threaded HTTP server; the owner calls handle() when fileno() is readable."""

    def __init__(self, address: str, port: int, snapshot_fn):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SnapshotCollector(snapshot_fn))
        host = "127.0.0.1" if address == "localhost" else address
        self.server = make_server(host, port, make_wsgi_app(self.registry), server_class=_Server6 if ":" in host else _Server,
                                  handler_class=_QuietHandler)
        self.server.timeout = 0
        self.port = self.server.server_address[1]

    def fileno(self) -> int:
        return self.server.fileno()

    def handle(self) -> None:
        self.server.handle_request()

    def close(self) -> None:
        self.server.server_close()
