"""The processes the supervisor runs, declared as data: one `ChildSpec` per child.

Why declarative: the supervisor only knows "argv + CPU + memory limit + what it produces", so
adding a kind of process (the compactor, a recorder) is one more entry in `build()`, and tests
can supervise any trivial command with the same machinery.
"""
from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import sys
from dataclasses import dataclass, field

from .config import Config


@dataclass
class ChildSpec:
    name: str                         # unique: "feed.binance", "compactor"
    argv: list[str]
    kind: str = "other"               # "worker" | "compactor" | "other"
    cpu: int | None = None            # pinned before exec; None = not pinned
    memory_limit_mb: float = 0.0      # USS besides the rings; 0 = no limit
    ring: str | None = None           # ring this child produces (workers)
    venue: str | None = None
    stop_order: int = 0               # lower stops first: workers (stop reading) before the compactor
    env: dict = field(default_factory=dict)   # added to the supervisor's environment
    files: dict = field(default_factory=dict)  # path -> text the supervisor writes before start


def tickring_argv(*args: str) -> list[str]:
    """argv running a tickring CLI command with this interpreter (no dependence on $PATH)."""
    return [sys.executable, "-m", "tools.cli", *args]


def names(cfg: Config) -> dict:
    """Shared-memory names of one appliance (all inside its namespace)."""
    venues = [v.name for v in cfg.enabled_venues]
    return {"registry": cfg.shm_name("registry"),
            "rings": {v: cfg.shm_name(v) for v in venues},
            "book_tables": {v: cfg.shm_name(f"book.{v}") for v in venues},
            "candle_ring": cfg.shm_name("candles"),
            "candle_table": cfg.shm_name("candles.latest"),
            "quality_table": cfg.shm_name("quality"),
            "state": cfg.shm_name("supervisor"),
            "lock": cfg.shm_name("supervisor.lock")}


def runtime_dir(cfg: Config) -> str:
    """Where generated child settings go: systemd's RuntimeDirectory, else a private temp dir."""
    base = os.environ.get("RUNTIME_DIRECTORY") or os.path.join(tempfile.gettempdir(), f"tickring-{os.getuid()}")
    return os.path.join(base, cfg.namespace or "default")


def compactor_available() -> bool:
    return importlib.util.find_spec("tools.compact") is not None


def build(cfg: Config, endpoints: dict | None = None) -> list[ChildSpec]:
    """The child processes of an appliance.

    endpoints: venue -> {"url", "rest_url", "symbols"} overriding the config (the simulator's
    loopback URLs and instrument list in the demo).
    """
    endpoints = endpoints or {}
    n = names(cfg)
    cpus = list(cfg.supervisor.cpus) or sorted(os.sched_getaffinity(0))
    spread = iter(range(1 << 30))
    specs = []
    for v in cfg.enabled_venues:
        ep = endpoints.get(v.name, {})
        symbols = v.symbols or ep.get("symbols", [])
        args = ["feed", v.name, "--symbols", ",".join(symbols), "--ring", n["rings"][v.name],
                "--registry", n["registry"], "--book-table", n["book_tables"][v.name]]
        if v.channels:
            args += ["--channels", ",".join(v.channels)]
        url = v.url or ep.get("url", "")
        rest = v.rest_url or ep.get("rest_url", "")
        if url:
            args += ["--url", url]
        if rest:
            args += ["--rest-url", rest]
        cpu = v.cpu if v.cpu is not None else cpus[next(spread) % len(cpus)]
        limit = v.memory_limit_mb if v.memory_limit_mb is not None else cfg.memory.worker_limit_mb
        specs.append(ChildSpec(name=f"feed.{v.name}", argv=tickring_argv(*args), kind="worker",
                               cpu=cpu, memory_limit_mb=limit, ring=n["rings"][v.name],
                               venue=v.name, stop_order=0))
    if cfg.compactor.enabled and compactor_available() and specs:
        # the compactor reads its settings from a JSON file (tools/compact.py --config)
        settings = {"rings": dict(n["rings"]), "root": cfg.compactor.parquet_root,
                    "registry": n["registry"], "timeframes": list(cfg.compactor.timeframes),
                    "candle_ring": n["candle_ring"], "candle_table": n["candle_table"],
                    "quality_table": n["quality_table"],
                    "max_rows": cfg.compactor.max_rows, "row_group_rows": cfg.compactor.row_group_rows,
                    "rotate_s": float(cfg.compactor.rotate_s),
                    "step_interval_ms": float(cfg.compactor.step_interval_ms),
                    "rest_urls": {v.name: v.rest_url or endpoints.get(v.name, {}).get("rest_url", "")
                                  for v in cfg.enabled_venues
                                  if v.rest_url or endpoints.get(v.name, {}).get("rest_url")}}
        path = os.path.join(runtime_dir(cfg), "compactor.json")
        cpu = cfg.compactor.cpu if cfg.compactor.cpu is not None else cpus[next(spread) % len(cpus)]
        specs.append(ChildSpec(name="compactor", argv=tickring_argv("compactor", "--config", path),
                               kind="compactor", cpu=cpu, memory_limit_mb=cfg.memory.compactor_limit_mb,
                               stop_order=1, files={path: json.dumps(settings, indent=1)}))
    return specs
