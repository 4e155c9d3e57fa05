"""`tickring run [--config FILE] [--duration S]`: run the appliance in the foreground.

Without --config it is the demo: the built-in exchange simulator (every implemented venue,
>= 100 instruments each) in its own process, the appliance against it in namespace "demo",
and the live status view once a second. --duration stops it cleanly (exit 0) for scripts.
Under systemd: `tickring run --config /etc/tickring/tickring.toml` (see docs/operations.md).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import click

from tools.errors import friendly

SIM_START_TIMEOUT_S = 30.0


class SimProcess:
    """The exchange simulator as a child process (`python -m feeds.sim ... --json`)."""

    def __init__(self, venues: list[str], symbols: int, rate: float, seed: int, log_dir: str):
        """rate: messages per second per venue (the simulator's --rate is the total)."""
        from appliance.supervisor import _child_preexec
        os.makedirs(log_dir, exist_ok=True)
        self.log_path = os.path.join(log_dir, "sim.log")
        self.out_path = os.path.join(log_dir, "sim.json")
        with open(self.out_path, "wb") as out, open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "feeds.sim", "--venues", ",".join(venues), "--symbols", str(symbols),
                 "--rate", str(rate * len(venues)), "--seed", str(seed), "--json"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                preexec_fn=_child_preexec(None, os.getpid()))
        self.endpoints = self._wait_for_urls(venues)

    def _wait_for_urls(self, venues: list[str]) -> dict:
        deadline = time.monotonic() + SIM_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise click.ClickException(f"the simulator exited with code {self.proc.returncode}; "
                                           f"see {self.log_path}")
            with open(self.out_path, "rb") as f:
                line = f.readline()
            if line.endswith(b"\n"):
                return endpoints_from(json.loads(line), venues)
            time.sleep(0.05)
        self.stop()
        raise click.ClickException(f"the simulator did not start within {SIM_START_TIMEOUT_S:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def endpoints_from(info: dict, venues: list[str]) -> dict:
    """venue -> {url, rest_url, symbols} from the simulator's JSON line (asking /_sim/info for
    the instrument lists when the line does not carry them)."""
    urls = info.get("venues", info)
    symbols = info.get("symbols") if isinstance(info.get("symbols"), dict) else {}
    out = {}
    for v in venues:
        u = urls.get(v)
        if not isinstance(u, dict):
            raise click.ClickException(f"the simulator did not report venue {v!r}: {info}")
        out[v] = {"url": u.get("ws") or u.get("url", ""), "rest_url": u.get("rest") or u.get("rest_url", "")}
    if not all(symbols.get(v) for v in venues):
        first = out[venues[0]]["rest_url"]
        with urllib.request.urlopen(f"{first}/_sim/info", timeout=10) as resp:
            symbols = json.loads(resp.read()).get("symbols", {})
    for v in venues:
        out[v]["symbols"] = list(symbols.get(v, []))
    return out


def demo_dirs() -> tuple[str, str]:
    base = os.path.join(tempfile.gettempdir(), f"tickring-demo-{os.getuid()}")
    return base, os.path.join(base, "logs")


def run_appliance(cfg, duration: float | None, view: bool | None, out=None, on_status=None) -> int:
    """Start the simulator when the config asks for it, then the supervisor; return its exit code."""
    from appliance.status_view import StatusView
    from appliance.supervisor import Supervisor
    log_dir = ""
    sim = None
    out = out or sys.stdout
    if cfg.simulator.enabled:
        base, log_dir = demo_dirs()
        if cfg.namespace != "demo":
            log_dir = os.path.join(base, cfg.namespace or "default", "logs")
    venues = [v.name for v in cfg.enabled_venues]
    if view is None:
        view = out.isatty() or cfg.simulator.enabled
    tail = "tickring tail <venue>"
    if venues:
        tail = f"tickring tail {venues[0]}" + (f" --ring {cfg.shm_name(venues[0])}" if cfg.namespace else "")
    top = "tickring top" + (f" --namespace {cfg.namespace}" if cfg.namespace else "")
    hints = [f"try: {tail}   tickring inspect   {top}   (Ctrl-C stops)"] + \
        ([f"logs: {log_dir}"] if log_dir else [])
    status_view = StatusView(out, hints) if view else None
    log_file = os.path.join(log_dir, "supervisor.log") if (log_dir and status_view and status_view.tty) else None
    if log_file:
        os.makedirs(log_dir, exist_ok=True)
    logging.basicConfig(level=cfg.log_level.upper(), filename=log_file,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    def on_tick(snap):
        if status_view is not None:
            status_view(snap)
        if on_status is not None:
            on_status(snap)

    sup = Supervisor(cfg, on_status=on_tick, log_dir=log_dir, extra_info={"simulator": cfg.simulator.enabled})
    sup.reserve()                       # refuse at once if a live appliance owns the namespace
    try:
        if cfg.simulator.enabled:
            s = cfg.simulator
            sim = SimProcess(venues, s.symbols, s.rate, s.seed, log_dir)
            sup.use_endpoints(sim.endpoints)
        return sup.run(duration)
    finally:
        sup.release()
        if sim is not None:
            sim.stop()


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML config (docs/configuration.md). Without it: the demo against the simulator.")
@click.option("--duration", type=float, help="Stop cleanly after this many seconds (exit 0).")
@click.option("--namespace", default=None,
              help="Override the config's namespace (segment names become NAMESPACE.<name>).")
@click.option("--check", is_flag=True, help="Validate the config, print the plan (processes, CPUs, "
              "rings, memory budget) and exit without starting anything.")
@click.option("--view/--no-view", default=None, help="Live status view (default: on a terminal or in the demo).")
@click.option("--symbols", type=click.IntRange(1), default=100, show_default=True,
              help="Demo only: instruments per venue.")
@click.option("--rate", type=click.FloatRange(min=1), default=200.0, show_default=True,
              help="Demo only: simulated messages per second per venue.")
@friendly
def command(config_path, duration, namespace, check, view, symbols, rate):
    """Run the appliance (the demo against the built-in simulator without --config)."""
    from appliance import config
    if namespace is not None:
        problem = config._namespace(namespace)
        if problem:
            raise click.BadParameter(f"{namespace!r}: must be {problem}", param_hint="--namespace")
    if config_path:
        cfg = config.load(config_path)
        if namespace is not None:
            cfg.namespace = namespace
    else:
        cfg = config.demo(symbols=symbols, rate=rate, namespace="demo" if namespace is None else namespace)
    if check:
        click.echo(plan(cfg))
        return
    sys.exit(run_appliance(cfg, duration, view))


def plan(cfg) -> str:
    """What `run` would start, and the memory the unit's MemoryMax must allow."""
    from appliance.process_table import build, names
    n = names(cfg)
    specs = build(cfg, {v.name: {"symbols": ["<from the simulator>"]} for v in cfg.enabled_venues}
                  if cfg.simulator.enabled else None)
    ring_bytes = {n["rings"][v.name]: (v.ring_capacity or cfg.rings.capacity) * 64 for v in cfg.enabled_venues}
    lines = [f"config {cfg.source}: ok", f"namespace: {cfg.namespace or '(none)'}"
             + ("   (simulator: venues point at loopback)" if cfg.simulator.enabled else ""), "",
             f"{'process':<20}{'cpu':>4}{'limit MB':>10}  command"]
    for s in specs:
        args = " ".join(s.argv[3:])
        lines.append(f"{s.name:<20}{'-' if s.cpu is None else s.cpu:>4}{s.memory_limit_mb:>10.0f}  "
                     f"tickring {args[:90]}{'...' if len(args) > 90 else ''}")
    rings_mib = sum(ring_bytes.values()) / (1 << 20)
    lines += ["", f"rings: {len(ring_bytes)} venue rings, {rings_mib:,.0f} MiB in /dev/shm (64 B per record)",
              f"memory budget: rings {rings_mib:,.0f} MiB + processes <= 250 MB + registry/tables ~20 MiB"
              f" + Parquet page cache ~500 MB",
              f"systemd: MemoryMax={rings_mib + 250 + 20 + 500:.0f}M MemoryHigh={rings_mib + 250 + 20 + 250:.0f}M"]
    return "\n".join(lines)
