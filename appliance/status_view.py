"""The live status view of `tickring run`: once a second, per venue messages/s, reconnects,
gaps, consumer lag and each process's memory, drawn from the supervisor's snapshot.

Why from the snapshot: the view, `tickring inspect`, the metrics and sd_notify STATUS= all read
the same once-a-second dict, so what the demo shows is what operators will scrape.
On a terminal the view redraws in place; otherwise (scripts, journald) it prints one compact
block per interval.
"""
from __future__ import annotations

import sys
import time

MB = 1 << 20


def _mb(mem: dict | None, key: str) -> str:
    return f"{mem[key] / MB:7.1f}" if mem else "      -"


def _age(ns: int) -> str:
    s = int(max(0, time.time_ns() - ns) / 1e9)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render(snap: dict, hints: list[str] | None = None) -> list[str]:
    """The view as lines of text."""
    procs = {p.get("ring"): p for p in snap.get("processes", []) if p.get("ring")}
    state = "stopping" if snap.get("stopping") else ("ready" if snap.get("ready") else "starting")
    ns = snap.get("namespace") or "-"
    lines = [f"tickring  namespace {ns}  up {_age(snap.get('started_ns', time.time_ns()))}  {state}"
             + (f"  metrics {snap['metrics']}" if snap.get("metrics") else ""), ""]
    lines.append(f"{'venue':<14}{'msgs/s':>9}{'records':>12}{'conns':>6}{'reconn':>7}{'gaps':>6}"
                 f"{'errors':>7}{'lag':>8}{'epoch':>6}{'restarts':>9}{'USS MB':>8}")
    tot_rate = 0.0
    for r in snap.get("rings", []):
        c = r["counters"]
        p = procs.get(r["name"], {})
        lag = max((x["lag"] for x in r.get("consumers", []) if x.get("alive")), default=0)
        tot_rate += r.get("rate", 0.0)
        lines.append(f"{(r.get('venue') or r['name'])[:13]:<14}{r.get('rate', 0):>9,.0f}{r['published']:>12,}"
                     f"{c.get('connections', 0):>6}{c.get('reconnects', 0):>7}{c.get('gaps', 0):>6}"
                     f"{c.get('decode_errors', 0):>7}{lag:>8,}{r['epoch']:>6}"
                     f"{p.get('restarts', 0) + p.get('recycles', 0):>9}{_mb(p.get('memory'), 'uss'):>8}")
    lines.append(f"{'total':<14}{tot_rate:>9,.0f}")
    quality = snap.get("quality") or {}
    if quality:
        lines += ["", "quality (instruments per grade, from the compactor):"]
        for venue, grades in sorted(quality.items()):
            text = ", ".join(f"{grades[g]} {g}" for g in ("excellent", "good", "degraded", "limited") if grades.get(g))
            lines.append(f"  {venue:<14}{text}")
    lines += ["", f"{'process':<20}{'pid':>8}{'cpu':>5}  {'state':<10}{'restarts':>9}{'USS MB':>8}{'PSS MB':>8}"]
    for p in snap.get("processes", []):
        cpu = "-" if p.get("cpu") is None else str(p["cpu"])
        lines.append(f"{p['name'][:19]:<20}{p['pid'] or '-':>8}{cpu:>5}  {p['state']:<10}"
                     f"{p['restarts'] + p['recycles']:>9}{_mb(p.get('memory'), 'uss')}{_mb(p.get('memory'), 'pss')}")
    mem = snap.get("memory", {})
    ring_mb = sum(r["capacity"] * r["record_size"] for r in snap.get("rings", [])) / MB
    lines.append(f"memory besides the rings: {mem.get('pss', 0) / MB:.0f} MB PSS "
                 f"(rings: {ring_mb:.0f} MiB in /dev/shm)")
    events = snap.get("events", [])
    if events:
        lines += ["", "events:"] + [f"  {e}" for e in events[-4:]]
    if hints:
        lines += [""] + hints
    return lines


class StatusView:
    """Callable for Supervisor(on_status=...): draws the view every time it is called."""

    def __init__(self, out=None, hints: list[str] | None = None, tty: bool | None = None):
        self.out = out or sys.stdout
        self.hints = hints or []
        self.tty = self.out.isatty() if tty is None else tty

    def __call__(self, snap: dict) -> None:
        lines = render(snap, self.hints)
        if self.tty:
            self.out.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
        else:
            self.out.write("\n".join(lines) + "\n\n")
        self.out.flush()
