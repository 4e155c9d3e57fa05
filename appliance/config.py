"""The appliance's TOML configuration: every key declared once with its type, default, check and
meaning; a config is fully validated before anything starts.

Why declared: the same table validates user files (an unknown key or a bad value is an error
naming the key, the value and what is allowed), fills in defaults and writes
docs/configuration.md (`python -m appliance.config --markdown`), so the three cannot drift.
"""
from __future__ import annotations

import math
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable


class ConfigError(ValueError):
    """A config mistake; the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class Key:
    name: str
    type: type | tuple
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None   # returns an error text, or None if fine


# ------------------------------------------------------------------------ checks
def _pow2(v):
    return None if v >= 2 and v & (v - 1) == 0 else "a power of two >= 2 (e.g. 1048576 = 2**20)"


def _positive(v):
    return None if v > 0 and math.isfinite(v) else "a number > 0"


def _non_negative(v):
    return None if v >= 0 and math.isfinite(v) else "a number >= 0"


def _port(v):
    return None if 0 <= v <= 65535 else "a TCP port 0..65535 (0 = any free port)"


_NS = re.compile(r"^[A-Za-z0-9_-]{0,48}$")


def _namespace(v):
    return None if _NS.match(v) else "letters, digits, '_' or '-' (at most 48), or empty"


def _loopback(v):
    return None if v in ("127.0.0.1", "::1", "localhost") else "a loopback address: 127.0.0.1, ::1 or localhost"


def _cpu(v):
    allowed = sorted(os.sched_getaffinity(0))
    return None if v in allowed else f"a CPU this process may use: {allowed}"


def _cpus(v):
    for c in v:
        if not isinstance(c, int) or isinstance(c, bool) or _cpu(c):
            return f"a list of CPUs this process may use: {sorted(os.sched_getaffinity(0))}"
    return None


_TF = re.compile(r"^[1-9][0-9]*[smhd]$")


def _timeframes(v):
    for tf in v:
        if not isinstance(tf, str) or not _TF.match(tf):
            return "a list of timeframes like \"1s\", \"1m\", \"5m\", \"1h\", \"1d\""
    return None if v else "at least one timeframe"


def _ws_url(v):
    return None if v == "" or v.startswith(("ws://", "wss://")) else "a ws:// or wss:// URL (or \"\" for the venue's live default)"


def _http_url(v):
    return None if v == "" or v.startswith(("http://", "https://")) else "an http:// or https:// URL (or \"\" for the venue's live default)"


def _symbols(v):
    bad = [s for s in v if not isinstance(s, str) or not s or not s.isprintable() or "," in s]
    return "a list of the venue's native symbols, e.g. [\"BTCUSDT\", \"ETHUSDT\"]" if bad else None


def _log_level(v):
    return None if v in ("debug", "info", "warning", "error") else "one of debug, info, warning, error"


# ------------------------------------------------------------------------ schema
TOP = [
    Key("namespace", str, "", "Prefix of every shared-memory name: rings become "
        "`<namespace>.<venue>` (/dev/shm/tickring.<namespace>.<venue>). Empty = no prefix "
        "(rings are named after the venue). Two appliances on one box need two namespaces.", _namespace),
    Key("keep_shm", bool, False, "Keep the rings, tables and registry in /dev/shm after a clean "
        "stop (readers keep their data; the next start continues the rings with a new epoch)."),
    Key("log_level", str, "info", "Supervisor log level: debug, info, warning, error.", _log_level),
]
SECTIONS: dict[str, list[Key]] = {
    "supervisor": [
        Key("stop_timeout_s", (int, float), 15.0, "On SIGTERM children get this long to exit before "
            "SIGKILL (keep it below the unit's TimeoutStopSec).", _positive),
        Key("restart_backoff_s", (int, float), 0.5, "First restart delay of a crashed child; doubles "
            "per consecutive crash.", _positive),
        Key("restart_backoff_max_s", (int, float), 30.0, "Cap of the restart delay.", _positive),
        Key("stable_after_s", (int, float), 60.0, "A child that ran this long is healthy again: its "
            "next crash restarts after restart_backoff_s.", _positive),
        Key("memory_check_s", (int, float), 5.0, "How often each child's USS/PSS is read (psutil, "
            "off the hot path).", _positive),
        Key("cpu", (int, type(None)), None, "CPU the supervisor itself is pinned to (unset = not pinned).", _cpu),
        Key("cpus", list, [], "CPUs children are spread over when they have no `cpu` of their own "
            "(empty = every CPU this process may use).", _cpus),
        Key("preload", bool, True, "Fork tickring children from a pre-loaded zygote process, so "
            "they share the pages of their common modules (numpy, picows, venue tables): "
            "about 15 MB less per worker. false = plain exec per child."),
        Key("log_summary_s", (int, float), 60.0, "Log the one-line status summary this often (the "
            "journal's heartbeat of the appliance); 0 = never.", _non_negative),
        Key("status_interval_s", (int, float), 1.0, "How often the status (view, sd_notify STATUS=, "
            "state file) is refreshed.", _positive),
    ],
    "rings": [
        Key("capacity", int, 1 << 20, "Records per ring (64 bytes each: 2**20 = 64 MiB). A "
            "consumer more than one capacity behind is lapped (and told so).", _pow2),
    ],
    "registry": [
        Key("capacity", int, 65536, "Instruments the shared registry can hold.", _positive),
    ],
    "memory": [
        Key("worker_limit_mb", (int, float), 200.0, "A feed worker whose USS (besides the rings) "
            "exceeds this is recycled: graceful stop, then restart.", _positive),
        Key("compactor_limit_mb", (int, float), 600.0, "Same for the compactor.", _positive),
        Key("malloc_arena_max", int, 2, "MALLOC_ARENA_MAX in children's environment (fewer glibc "
            "arenas, less fragmentation).", _positive),
    ],
    "metrics": [
        Key("enabled", bool, True, "Serve Prometheus metrics over HTTP."),
        Key("address", str, "127.0.0.1", "Listen address; loopback only.", _loopback),
        Key("port", int, 9464, "TCP port (0 = any free port; the chosen one is in `tickring inspect`).", _port),
    ],
    "compactor": [
        Key("enabled", bool, True, "Run the compactor (candles, quality, Parquet)."),
        Key("parquet_root", str, "/var/lib/tickring/parquet", "Root of the Parquet datasets "
            "(the systemd unit's StateDirectory)."),
        Key("timeframes", list, ["1s", "1m", "5m", "1h", "1d"], "Candle timeframes.", _timeframes),
        Key("cpu", (int, type(None)), None, "CPU to pin the compactor to (unset = spread).", _cpu),
        Key("max_rows", int, 131072, "A venue's Parquet files are published (checkpointed and "
            "renamed into place, after a short-lived writer process made them) once they hold this "
            "many records (or at rotate_s). Until then a "
            "crash re-reads them from the ring, so keep it below the ring capacity. Bigger = "
            "fewer files; memory does not grow with it.", _positive),
        Key("row_group_rows", int, 16384, "Records per Parquet row group (made by the writer "
            "process from the compactor's spools; the compactor's memory does not depend on it). "
            "Bigger = slightly better compression, coarser row-group statistics.", _positive),
        Key("rotate_s", (int, float), 3600.0, "Parquet files also close on this ts_recv boundary "
            "(aligned), even when they hold fewer than max_rows.", _positive),
        Key("step_interval_ms", (int, float), 200.0, "While the rings trickle, the compactor reads "
            "and forges at most this often (a step costs a few ms of CPU per venue whatever it "
            "reads); a busy ring is read back to back. The live candle and quality tables move "
            "at this pace.", _positive),
    ],
    "simulator": [
        Key("enabled", bool, False, "Run the built-in exchange simulator (loopback) and point every "
            "venue at it instead of the live endpoints. The demo (`tickring run` without a config) "
            "sets this."),
        Key("symbols", int, 100, "Instruments the simulator lists per venue; venues without "
            "`symbols` subscribe to all of them.", _positive),
        Key("rate", (int, float), 200.0, "Simulated market messages per second per venue.", _positive),
        Key("seed", int, 1, "Seed of the simulated market."),
    ],
}
VENUE_KEYS = [
    Key("enabled", bool, True, "Set false to keep a venue's section but not run it."),
    Key("symbols", list, [], "Native symbols to subscribe (required unless the simulator is enabled).", _symbols),
    Key("channels", list, [], "Channels to subscribe: a subset of the venue's trades, quotes, book, "
        "mark, liquidations (empty = every channel the venue offers)."),
    Key("url", str, "", "Websocket URL override (empty = the venue's live endpoint).", _ws_url),
    Key("rest_url", str, "", "REST base URL override (empty = the venue's live endpoint).", _http_url),
    Key("cpu", (int, type(None)), None, "CPU to pin this venue's worker to (unset = spread).", _cpu),
    Key("ring_capacity", (int, type(None)), None, "Records in this venue's ring (unset = rings.capacity).",
        lambda v: _pow2(v) if v is not None else None),
    Key("memory_limit_mb", (int, float, type(None)), None, "Recycle limit for this worker (unset = "
        "memory.worker_limit_mb).", lambda v: _positive(v) if v is not None else None),
]


@dataclass
class VenueConfig:
    name: str
    enabled: bool = True
    symbols: list = field(default_factory=list)
    channels: list = field(default_factory=list)
    url: str = ""
    rest_url: str = ""
    cpu: int | None = None
    ring_capacity: int | None = None
    memory_limit_mb: float | None = None


@dataclass
class Config:
    """A validated config. Sections are plain namespaces of their keys' values."""
    namespace: str = ""
    keep_shm: bool = False
    log_level: str = "info"
    sections: dict = field(default_factory=dict)
    venues: dict = field(default_factory=dict)      # name -> VenueConfig
    source: str = "<defaults>"

    def __getattr__(self, name):
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def shm_name(self, name: str) -> str:
        """The shared-memory name of an object in this appliance's namespace."""
        return f"{self.namespace}.{name}" if self.namespace else name

    @property
    def enabled_venues(self) -> list[VenueConfig]:
        return [v for v in self.venues.values() if v.enabled]


class Section(dict):
    """Attribute access to a section's keys (config.rings.capacity)."""
    __getattr__ = dict.__getitem__


def _type_name(t) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    if int in ts and float in ts:
        ts = tuple(x for x in ts if x is not int)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", type(None): "unset"}
    return " or ".join(names.get(x, x.__name__) for x in ts if x is not type(None)) or "unset"


def _check_value(where: str, key: Key, value):
    allowed = key.type if isinstance(key.type, tuple) else (key.type,)
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if not ok:
        raise ConfigError(f"{where}{key.name} = {value!r}: expected {_type_name(key.type)}")
    if key.check is not None and value is not None:
        problem = key.check(value)
        if problem:
            raise ConfigError(f"{where}{key.name} = {value!r}: must be {problem}")
    if isinstance(value, float) and int in allowed and float in allowed:
        return value
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _fill(where: str, keys: list[Key], given: dict) -> dict:
    known = {k.name: k for k in keys}
    for name in given:
        if name not in known:
            raise ConfigError(f"unknown key {where}{name}; allowed keys: {', '.join(known)}")
    out = Section()
    for k in keys:
        if k.name in given:
            out[k.name] = _check_value(where, k, given[k.name])
        else:
            out[k.name] = list(k.default) if isinstance(k.default, list) else k.default
    return out


def _venue_names() -> tuple[list[str], list[str]]:
    import feeds
    return list(feeds.VENUE_MODULES), feeds.implemented()


def from_dict(data: dict, source: str = "<dict>") -> Config:
    """Validate a parsed TOML document; raises ConfigError naming the first problem."""
    data = dict(data)
    top_keys = {k.name for k in TOP}
    allowed_top = list(top_keys) + list(SECTIONS) + ["venues"]
    for name, value in data.items():
        if name not in top_keys and name not in SECTIONS and name != "venues":
            raise ConfigError(f"unknown key {name!r}; allowed top-level keys and sections: {', '.join(allowed_top)}")
        if (name in SECTIONS or name == "venues") and not isinstance(value, dict):
            raise ConfigError(f"{name} = {value!r}: expected a [{name}] section (a table)")
    top = _fill("", TOP, {k: v for k, v in data.items() if k in top_keys})
    sections = {name: _fill(f"{name}.", keys, data.get(name, {})) for name, keys in SECTIONS.items()}
    cfg = Config(namespace=top["namespace"], keep_shm=top["keep_shm"], log_level=top["log_level"],
                 sections=sections, source=source)

    known, implemented = _venue_names()
    venues = data.get("venues", {})
    for name, body in venues.items():
        if name not in known:
            raise ConfigError(f"unknown venue {name!r} in [venues.{name}]; known venues: {', '.join(known)}")
        if name not in implemented:
            raise ConfigError(f"venue {name!r} in [venues.{name}] is not implemented in this build; "
                              f"implemented: {', '.join(implemented) or 'none'}")
        if not isinstance(body, dict):
            raise ConfigError(f"venues.{name} = {body!r}: expected a [venues.{name}] section")
        values = _fill(f"venues.{name}.", VENUE_KEYS, body)
        vc = VenueConfig(name=name, **values)
        _check_channels(vc)
        if vc.enabled and not vc.symbols and not sections["simulator"]["enabled"]:
            raise ConfigError(f"venues.{name}.symbols is empty: list the symbols to subscribe, "
                              f"e.g. symbols = [\"BTCUSDT\"] (or enable [simulator])")
        cfg.venues[name] = vc
    if not cfg.enabled_venues and not sections["simulator"]["enabled"]:
        raise ConfigError("no venue configured: add a [venues.<name>] section (known venues: "
                          f"{', '.join(implemented) or 'none'}) or enable [simulator]")
    return cfg


def _check_channels(vc: VenueConfig) -> None:
    import feeds
    offered = list(feeds.venue(vc.name).channels)
    for ch in vc.channels:
        if ch not in offered:
            raise ConfigError(f"venues.{vc.name}.channels: {ch!r} is not a channel of {vc.name}; "
                              f"allowed: {', '.join(offered)}")


def load(path: str) -> Config:
    """Read and validate a TOML file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    try:
        return from_dict(data, source=path)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def simulated_venues() -> list[str]:
    """Implemented venues the built-in simulator speaks (the demo runs all of them)."""
    import importlib.util
    try:
        from feeds.sim.protocol import PROTOCOLS
    except ImportError:
        return []
    _, implemented = _venue_names()
    return [v for v in implemented if v in PROTOCOLS
            and importlib.util.find_spec(PROTOCOLS[v].split(":")[0]) is not None]


def demo(symbols: int = 100, rate: float = 200.0, namespace: str = "demo",
         parquet_root: str | None = None, venues: list[str] | None = None) -> Config:
    """The config `tickring run` uses without --config: every implemented venue against the
    built-in simulator, in its own namespace so it never touches a production appliance."""
    import tempfile
    root = parquet_root or os.path.join(tempfile.gettempdir(), f"tickring-demo-{os.getuid()}",
                                        *([] if namespace == "demo" else [namespace or "default"]), "parquet")
    data = {"namespace": namespace,
            "rings": {"capacity": 1 << 18},
            "metrics": {"port": 0},
            "compactor": {"parquet_root": root},
            "simulator": {"enabled": True, "symbols": symbols, "rate": rate},
            "venues": {v: {} for v in (venues or simulated_venues())}}
    return from_dict(data, source="<demo>")


def markdown() -> str:
    """Reference of every key (docs/configuration.md is generated from this)."""
    def rows(prefix, keys):
        out = ["| key | type | default | meaning |", "|---|---|---|---|"]
        for k in keys:
            default = "unset" if k.default is None else repr(k.default).replace("'", '"')
            if isinstance(k.default, bool):
                default = str(k.default).lower()
            out.append(f"| `{prefix}{k.name}` | {_type_name(k.type)} | `{default}` | {k.doc} |")
        return out
    lines = ["## Top level", ""] + rows("", TOP)
    for name, keys in SECTIONS.items():
        lines += ["", f"## [{name}]", ""] + rows(f"{name}.", keys)
    lines += ["", "## [venues.<venue>]", "", "One section per venue to run; the section name is the "
              "venue id (binance, binance_usdm, bybit, okx, coinbase, kraken, bitget, gateio, kucoin).",
              ""] + rows("venues.<venue>.", VENUE_KEYS)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        sys.stdout.write(markdown())
    else:
        for p in sys.argv[1:]:
            try:
                cfg = load(p)
            except ConfigError as e:
                sys.exit(f"tickring: {e}")
            venues = ", ".join(f"{v.name} ({len(v.symbols)} symbols)" for v in cfg.enabled_venues)
            print(f"{p}: ok; namespace {cfg.namespace or '(none)'}; venues: {venues or 'simulated'}")
