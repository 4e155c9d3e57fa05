"""`tickring inspect [--json]`: everything in /dev/shm and every running appliance, at a glance.

Rings: producer pid, epoch, alive, publish seq, rate, counters, consumers and their lag.
Tables and registries: size, writer, updates. Appliances (from the supervisor's state file in
/dev/shm, refreshed once a second): every process's pid, CPU pin, USS/PSS, restarts, and each
venue connection's state. Works without a config: it finds everything by listing /dev/shm.
"""
from __future__ import annotations

import json
import os
import sys
import time

import click

from tools.errors import friendly

MB = 1 << 20
RATE_SAMPLE_S = 0.25


def _pid_alive(pid: int) -> bool:
    from shm.liveness import pid_alive as alive
    return alive(pid)


def appliances() -> list[dict]:
    """State files of supervisors (`<namespace>.supervisor` in /dev/shm), with `alive`."""
    from shm import segment
    out = []
    for name in segment.list_segments():
        if name != "supervisor" and not name.endswith(".supervisor"):
            continue
        try:
            with open(segment.path_of(name)) as f:
                state = json.load(f)
        except (OSError, json.JSONDecodeError):
            continue
        state["alive"] = _pid_alive(state.get("pid", 0))
        state["age_s"] = (time.time_ns() - state.get("updated_ns", 0)) / 1e9
        for p in state.get("processes", []):
            if p.get("pid"):
                try:
                    p["cpus"] = sorted(os.sched_getaffinity(p["pid"]))
                except OSError:
                    p["cpus"] = None
        out.append(state)
    return out


def rings(known_rates: dict) -> list[dict]:
    from shm import Ring
    from shm.errors import ShmError
    infos, handles = [], []
    for name in Ring.names():
        try:
            ring = Ring.attach(name)
        except ShmError as e:
            infos.append({"name": name, "error": str(e)})
            continue
        handles.append((ring, ring.info()))
    if handles and any(i["name"] not in known_rates for _, i in handles):
        time.sleep(RATE_SAMPLE_S)       # rings no supervisor reports on: measure their rate here
    for ring, info in handles:
        if info["name"] in known_rates:
            info["rate"] = known_rates[info["name"]]
        else:
            info["rate"] = max(0, ring.word("messages") - info["counters"]["messages"]) / RATE_SAMPLE_S
            info["records_rate"] = max(0, ring.published - info["published"]) / RATE_SAMPLE_S
        age = (time.time_ns() - info["heartbeat_ns"]) / 1e9 if info["heartbeat_ns"] else None
        info["heartbeat_age_s"] = age
        last = info["counters"].get("last_recv_ns", 0)
        info["connection"] = connection_state(info)
        info["last_recv_age_s"] = (time.time_ns() - last) / 1e9 if last else None
        infos.append(info)
        ring.close()
    return infos


def connection_state(info: dict) -> str:
    """A venue connection's state from its ring header ("-" for rings no websocket feeds)."""
    c = info["counters"]
    if not (c.get("frames") or c.get("connections") or c.get("reconnects") or c.get("bytes_in")) \
            and info["published"] > 1000:
        return "-"
    if not info["producer_alive"]:
        return {2: "stopped", 0: "no producer"}.get(info["producer_state"], "producer dead")
    conns = info["counters"].get("connections", 0)
    if conns:
        return f"connected ({conns})"
    return "retrying" if info["counters"].get("reconnects", 0) else "connecting"


def tables() -> list[dict]:
    from shm.errors import ShmError
    from shm.layout import TABLE
    from shm.table import Table
    out = []
    for name in Table.names():
        try:
            t = Table.attach(name)
        except ShmError as e:
            out.append({"name": name, "error": str(e)})
            continue
        pid = t.seg.word("writer_pid", TABLE)
        out.append({"name": name, "slots": t.slots, "row_size": t.dtype.itemsize,
                    "fields": list(t.dtype.names), "writer_pid": pid, "writer_alive": _pid_alive(pid),
                    "updates": int(t.updates)})
        t.close()
    return out


def registries() -> list[dict]:
    from shm.registry import Registry
    from shm.errors import ShmError
    out = []
    for name in Registry.names():
        try:
            r = Registry.attach(name)
        except ShmError as e:
            out.append({"name": name, "error": str(e)})
            continue
        out.append({"name": name, "capacity": r.capacity, "instruments": len(r)})
        r.close()
    return out


def collect() -> dict:
    apps = appliances()
    known = {r["name"]: r.get("rate", 0.0) for a in apps if a["alive"] for r in a.get("rings", [])}
    return {"time_ns": time.time_ns(), "appliances": apps, "rings": rings(known), "tables": tables(),
            "registries": registries()}


def _mb(mem, key):
    return f"{mem[key] / MB:.1f}" if mem else "-"


def render(data: dict) -> str:
    lines = []
    for a in data["appliances"]:
        ns = a.get("namespace") or "(default)"
        state = "ALIVE" if a["alive"] else "DEAD (stale state file)"
        lines.append(f"appliance namespace {ns}: supervisor pid {a['pid']} {state}, "
                     f"{'ready' if a.get('ready') else 'not ready'}, config {a.get('config')}, "
                     f"metrics {a.get('metrics') or 'off'}")
        lines.append(f"  {'process':<20}{'pid':>8} {'cpus':<8}{'state':<10}{'restarts':>9}{'recycles':>9}"
                     f"{'USS MB':>9}{'PSS MB':>9}")
        for p in a.get("processes", []):
            cpus = ",".join(map(str, p.get("cpus") or [])) or "-"
            lines.append(f"  {p['name'][:19]:<20}{p['pid'] or '-':>8} {cpus:<8}{p['state']:<10}"
                         f"{p['restarts']:>9}{p['recycles']:>9}{_mb(p.get('memory'), 'uss'):>9}"
                         f"{_mb(p.get('memory'), 'pss'):>9}")
        mem = a.get("memory", {})
        lines.append(f"  total besides rings: {mem.get('uss', 0) / MB:.1f} MB USS, {mem.get('pss', 0) / MB:.1f} MB PSS")
        for e in a.get("events", [])[-5:]:
            lines.append(f"  event: {e}")
        lines.append("")
    lines.append(f"{'ring':<24}{'producer':>9} {'alive':<6}{'epoch':>6}{'published':>13}{'msgs/s':>9}"
                 f"{'reconn':>7}{'gaps':>6}{'errors':>7}  connection")
    for r in data["rings"]:
        if "error" in r:
            lines.append(f"{r['name']:<24} {r['error']}")
            continue
        c = r["counters"]
        lines.append(f"{r['name'][:23]:<24}{r['producer_pid'] or '-':>9} {'yes' if r['producer_alive'] else 'no':<6}"
                     f"{r['epoch']:>6}{r['published']:>13,}{r['rate']:>9,.0f}{c['reconnects']:>7}"
                     f"{c['gaps']:>6}{c['decode_errors']:>7}  {r['connection']}")
        for cons in r["consumers"]:
            lines.append(f"    consumer {cons['name'] or '-':<16} pid {cons['pid']:<8} "
                         f"{'alive' if cons['alive'] else 'dead':<6} lag {cons['lag']:,}  lost {cons['lost']:,}")
    if not data["rings"]:
        lines.append("(no rings in /dev/shm)")
    if data["tables"]:
        lines += ["", f"{'table':<30}{'slots':>8}{'row B':>7}{'writer':>9} {'alive':<6}{'updates':>12}"]
        for t in data["tables"]:
            if "error" in t:
                lines.append(f"{t['name']:<30} {t['error']}")
                continue
            lines.append(f"{t['name'][:29]:<30}{t['slots']:>8}{t['row_size']:>7}{t['writer_pid'] or '-':>9} "
                         f"{'yes' if t['writer_alive'] else 'no':<6}{t['updates']:>12,}")
    if data["registries"]:
        lines += [""] + [f"registry {r['name']}: {r.get('instruments', '?')} instruments "
                         f"(capacity {r.get('capacity', '?')})" for r in data["registries"]]
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (for scripts).")
@friendly
def command(as_json):
    """Every ring, table, registry and running appliance on this box."""
    data = collect()
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        click.echo(render(data))
