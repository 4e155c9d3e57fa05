"""`tickring bench soak --minutes N --json`: run the demo appliance for N minutes and report its
memory: per-process USS at start (after warm-up) and end, the USS slope in MB/h (least squares
over the samples after warm-up), total PSS besides the rings (end, max, p50/p95 and the share
of samples above the target), messages handled, restarts.

The processes a child started have rows of their own, "<child>/<name>": the compactor's
"compactor/parquet-forks" (the process its writers are forked from, long-lived) and
"compactor/parquet-writer" (one per writer run: "transient", seen in a few samples only; its
max is what it adds to the total while it runs, and it has no slope). The total counts them all.

Targets (ARCHITECTURE.md): <= 250 MB of memory besides the rings with 1,000 instruments across
venues, flat over hours (USS slope < 1 MB/h per process after warm-up). The simulator runs in
its own process and is not counted: it is not part of the appliance.
"""
from __future__ import annotations

import json
import math
from array import array
import sys
import time

import click

from tools.errors import friendly

MB = 1 << 20
TARGET_TOTAL_MB = 250.0
TARGET_SLOPE_MB_H = 1.0
SAMPLE_S = 5.0          # supervisor.memory_check_s of the soak


def slope_per_hour(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) samples, in MB per hour."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    if den == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in samples) / den * 3600.0


def _pct(samples: list[tuple[float, float]], q: float) -> float | None:
    vals = sorted(v for _, v in samples)
    return round(vals[min(len(vals) - 1, int(len(vals) * q / 100))], 1) if vals else None


class Recorder:
    """Collects the supervisor's snapshots: memory samples per process, totals, message counts."""

    def __init__(self, warmup_s: float, progress=None):
        self.t0 = time.monotonic()
        self.warmup_s = warmup_s
        # samples live in the supervisor's process: flat arrays of doubles (24 B per sample)
        # rather than tuples, so the recording itself does not show up as supervisor growth
        self.mem: dict[str, array] = {}          # name -> t, uss MB, pss MB, t, uss MB, ...
        self.totals = array("d")                 # t, total PSS MB, t, ...
        self.last: dict = {}
        self.first_msgs: tuple[float, int] | None = None
        self.progress = progress
        self._next_progress = 60.0
        self._seen: dict[str, tuple] = {}

    def __call__(self, snap: dict) -> None:
        t = time.monotonic() - self.t0
        self.last = snap
        msgs = sum(r["counters"]["messages"] for r in snap.get("rings", []))
        if t >= self.warmup_s and self.first_msgs is None:
            self.first_msgs = (t, msgs)
        for p in snap.get("processes", []):
            mem = p.get("memory")
            if not mem or not p["pid"]:
                continue
            key = hash((p["pid"], mem["uss"], mem["pss"]))
            last = self._seen.get(p["name"])
            if last is not None and last[0] == key and t - last[1] < SAMPLE_S:
                continue               # the supervisor re-reads memory every few seconds only
            self._seen[p["name"]] = (key, t)
            kids = mem.get("kids") or {}
            own_uss = mem["uss"] - sum(k["uss"] for k in kids.values())
            own_pss = mem["pss"] - sum(k["pss"] for k in kids.values())
            self.mem.setdefault(p["name"], array("d")).extend((t, own_uss / MB, own_pss / MB))
            for kid, k in kids.items():
                self.mem.setdefault(f"{p['name']}/{kid}", array("d")).extend((t, k["uss"] / MB, k["pss"] / MB))
        self.totals.extend((t, snap.get("memory", {}).get("pss", 0) / MB))
        if self.progress and t >= self._next_progress:
            self._next_progress += 60.0
            self.progress(f"soak: {t / 60:.0f} min, {msgs:,} messages, "
                          f"{self.totals[-1]:.0f} MB PSS besides the rings")

    def report(self, minutes: float, instruments: int, venues: list[str]) -> dict:
        snap = self.last
        t_end = time.monotonic() - self.t0
        msgs = sum(r["counters"]["messages"] for r in snap.get("rings", []))
        records = sum(r["published"] for r in snap.get("rings", []))
        procs = {}
        mem = {name: list(zip(a[0::3], a[1::3], a[2::3])) for name, a in self.mem.items()}
        totals = list(zip(self.totals[0::2], self.totals[1::2]))
        for name, samples in mem.items():
            after = [s for s in samples if s[0] >= self.warmup_s] or samples[-1:]
            parent = name.split("/")[0]
            # a descendant seen in few of its parent's samples is a process per run (the writer)
            transient = name != parent and len(after) < 0.9 * len([s for s in mem[parent] if s[0] >= self.warmup_s])
            slope = None if transient else slope_per_hour([(t, u) for t, u, _ in after])
            info = next((p for p in snap.get("processes", []) if p["name"] == parent), {})
            procs[name] = {"uss_start_mb": round(after[0][1], 2), "uss_end_mb": round(samples[-1][1], 2),
                           "pss_end_mb": round(samples[-1][2], 2), "uss_max_mb": round(max(s[1] for s in samples), 2),
                           "pss_max_mb": round(max(s[2] for s in samples), 2),
                           "uss_slope_mb_per_h": None if slope is None else round(slope, 3),
                           "samples": len(after)}
            if name == parent:
                procs[name].update(restarts=info.get("restarts", 0), recycles=info.get("recycles", 0))
            if transient:
                procs[name]["transient"] = True
        totals_after = [(t, v) for t, v in totals if t >= self.warmup_s and v > 0]
        total_end = totals[-1][1] if totals else 0.0
        total_max = max((v for _, v in totals), default=0.0)
        total_slope = slope_per_hour(totals_after)
        slopes = [p["uss_slope_mb_per_h"] for p in procs.values() if p["uss_slope_mb_per_h"] is not None]
        rate = None
        if self.first_msgs and t_end > self.first_msgs[0]:
            rate = (msgs - self.first_msgs[1]) / (t_end - self.first_msgs[0])
        ring_mb = sum(r["capacity"] * r["record_size"] for r in snap.get("rings", [])) / MB
        return {
            "benchmark": "soak", "minutes_requested": minutes, "seconds_run": round(t_end, 1),
            "warmup_s": self.warmup_s, "venues": venues, "instruments": instruments,
            "messages": msgs, "records": records,
            "messages_per_s_after_warmup": None if rate is None else round(rate, 1),
            "processes": procs,
            "total_pss_mb_end": round(total_end, 1), "total_pss_mb_max": round(total_max, 1),
            # the distribution after warm-up: the compactor's short-lived Parquet writer (counted
            # with the compactor) makes brief peaks; these say how high and how often
            "total_pss_mb_p50": _pct(totals_after, 50), "total_pss_mb_p95": _pct(totals_after, 95),
            "total_pss_share_over_target": None if not totals_after else
            round(sum(v > TARGET_TOTAL_MB for _, v in totals_after) / len(totals_after), 4),
            "total_pss_slope_mb_per_h": None if total_slope is None else round(total_slope, 3),
            "rings_mib": round(ring_mb, 1),
            "targets": {"total_mb_le_250": total_max <= TARGET_TOTAL_MB,
                        "uss_slope_lt_1mb_per_h": bool(slopes) and max(slopes) < TARGET_SLOPE_MB_H,
                        "instruments_ge_1000": instruments >= 1000},
        }


@click.command()
@click.option("--minutes", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="How long to run the appliance.")
@click.option("--instruments", type=click.IntRange(1), default=1000, show_default=True,
              help="Instruments across all venues (at least 100 per venue).")
@click.option("--rate", type=click.FloatRange(min=1), default=500.0, show_default=True,
              help="Simulated messages per second per venue.")
@click.option("--warmup-minutes", type=click.FloatRange(min=0), default=None,
              help="Samples before this are not used for the slope (default: 20%% of the run, at least 0.5).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@friendly
def command(minutes, instruments, rate, warmup_minutes, as_json):
    """Run the demo appliance for N minutes; report memory per process, its slope and totals."""
    from appliance import config
    from tools.run import run_appliance
    venues = config.simulated_venues()
    if not venues:
        raise click.ClickException("no venue is both implemented and simulated; nothing to soak")
    per_venue = max(100, math.ceil(instruments / len(venues)))
    cfg = config.demo(symbols=per_venue, rate=rate, namespace="soak")
    cfg.supervisor["memory_check_s"] = 5.0
    warmup = (warmup_minutes if warmup_minutes is not None else max(0.5, minutes * 0.2)) * 60
    rec = Recorder(warmup, progress=lambda line: print(line, file=sys.stderr, flush=True))
    code = run_appliance(cfg, minutes * 60, view=False, on_status=rec)
    report = rec.report(minutes, per_venue * len(venues), venues)
    report["exit_code"] = code
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        click.echo(json.dumps(report, indent=2))
