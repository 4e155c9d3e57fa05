"""`tickring rm`: remove shared-memory segments without pulling them from under a live appliance.

Removing a name is harmless to processes that already mapped it (they keep their mapping), but
a producer that restarts, or a consumer that attaches later, would find nothing, so a segment is
only removed when nothing live still needs it:
  - a ring with a live producer (pid alive, state running) is refused;
  - a table whose writer is alive is refused;
  - anything in the namespace of a running supervisor (its lock names a live pid) is refused,
    since the supervisor restarts workers into the same rings.
--force overrides. --all-stale removes every segment that passes these checks and also has no
live consumer.
"""
from __future__ import annotations

import fnmatch
import os

import click

from shm import layout as L
from shm.liveness import pid_alive
from shm.segment import SHM_DIR, list_segments, path_of, unlink
from tools.errors import friendly

_KINDS = {L.MAGIC_RING: "ring", L.MAGIC_TABLE: "table", L.MAGIC_REGISTRY: "registry"}


def _words(name: str, n: int = 64) -> list[int]:
    """The first n 8-byte words of a segment (the header), read without mapping it."""
    try:
        with open(path_of(name), "rb") as f:
            raw = f.read(n * 8)
    except OSError:
        return []
    return [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw) - 7, 8)]


def live_supervisors() -> dict[str, int]:
    """namespace ('' = none) -> pid of each running supervisor, from its lock segment."""
    out = {}
    for name in list_segments():
        if name != "supervisor.lock" and not name.endswith(".supervisor.lock"):
            continue
        ns = name[:-len(".supervisor.lock")] if name != "supervisor.lock" else ""
        try:
            with open(path_of(name), "rb") as f:
                pid = int(f.read(32).decode(errors="replace").strip() or 0)
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            out[ns] = pid
    return out


def _namespace_owner(name: str, sups: dict[str, int]) -> tuple[str, int] | None:
    for ns, pid in sups.items():
        if ns and name.startswith(ns + "."):
            return ns, pid
    if "" in sups and not any(ns and name.startswith(ns + ".") for ns in sups):
        head = name.split(".", 1)[0]
        others = {n.split(".", 1)[0] for n in list_segments() if n.endswith(".supervisor.lock")}
        if head not in others:
            return "", sups[""]
    return None


def examine(name: str, sups: dict[str, int]) -> dict:
    """What a segment is and whether something live still needs it."""
    w = _words(name)
    kind = _KINDS.get(w[0], "other") if w else "other"
    info = {"name": name, "kind": kind, "live": None, "consumers": 0}
    if name.endswith("supervisor.lock"):
        ns = name[:-len("supervisor.lock")].rstrip(".")
        if ns in sups:
            info["live"] = f"lock of the running supervisor (pid {sups[ns]})"
        return info
    if kind == "ring" and len(w) > L.RING["producer_state"].index:
        pid = w[L.RING["producer_pid"].index]
        state = w[L.RING["producer_state"].index]
        if pid and state == 1 and pid_alive(pid):
            info["live"] = f"ring has a live producer (pid {pid})"
        try:
            with open(path_of(name), "rb") as f:
                f.seek(L.CONSUMERS_OFFSET)
                raw = f.read(L.CONSUMER_SLOTS * L.CONSUMER_SLOT_SIZE)
            pids = [int.from_bytes(raw[i:i + 8], "little")
                    for i in range(0, len(raw), L.CONSUMER_SLOT_SIZE)]
            info["consumers"] = sum(1 for p in pids if p and pid_alive(p))
        except OSError:
            pass
    elif kind == "table" and len(w) > L.TABLE["writer_pid"].index:
        pid = w[L.TABLE["writer_pid"].index]
        if pid and pid != os.getpid() and pid_alive(pid):
            info["live"] = f"table's writer is alive (pid {pid})"
    if info["live"] is None:
        owner = _namespace_owner(name, sups)
        if owner is not None:
            ns, pid = owner
            info["live"] = (f"belongs to the running appliance in namespace {ns or '(none)'} "
                            f"(supervisor pid {pid}); stop it first")
    return info


@click.command()
@click.argument("names", nargs=-1)
@click.option("--all-stale", is_flag=True,
              help="Remove every stale segment (no live producer, writer, supervisor or consumer); "
                   "NAMES, if given, are patterns that limit it (e.g. 'demo.*').")
@click.option("--force", is_flag=True, help="Remove even segments something live still uses.")
@click.option("--dry-run", "-n", is_flag=True, help="Say what would be removed, remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@friendly
def command(names, all_stale, force, dry_run, as_json):
    """Remove shared-memory segments (/dev/shm/tickring.NAME) safely.

    NAMES may be shell patterns ('demo.*'). A ring with a live producer, a table with a live
    writer, or anything belonging to a running appliance is refused unless --force; processes
    that already mapped a removed segment keep working, new ones will not find it.

    \b
    Examples:
      tickring rm replay                 # a ring made by `tickring replay --create`
      tickring rm --all-stale            # clean up after crashed runs
      tickring rm --all-stale 'demo.*' --dry-run
    """
    if not names and not all_stale:
        raise click.UsageError("name the segments to remove, or pass --all-stale")
    existing = list_segments()
    sups = live_supervisors()
    targets: list[str] = []
    missing = []
    for pat in names:
        hits = [n for n in existing if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            missing.append(pat)
        targets += [h for h in hits if h not in targets]
    if all_stale and not names:
        targets = list(existing)
    results = []
    for name in targets:
        info = examine(name, sups)
        reason = info["live"]
        if all_stale and reason is None and info["consumers"]:
            reason = f"ring has {info['consumers']} live consumer(s)"
        if reason and not force:
            info["action"] = "kept"
            info["reason"] = reason
        elif dry_run:
            info["action"] = "would remove"
        else:
            info["action"] = "removed" if unlink(name) else "gone"
        results.append(info)
    if as_json:
        import orjson
        click.echo(orjson.dumps({"results": results, "missing": missing}).decode())
    else:
        for r in results:
            line = f"{r['action']:>12}  {r['kind']:<8} {r['name']}"
            if r["action"] == "kept":
                line += f"  ({r['reason']}; --force removes it anyway)"
            click.echo(line)
        if not results and not missing:
            click.echo("nothing to remove" + (" (no stale segments)" if all_stale else ""))
    if missing:
        live = ", ".join(existing) if existing else "none"
        raise click.ClickException(f"no segment named {', '.join(repr(m) for m in missing)} in "
                                   f"{SHM_DIR}; segments: {live}")
    if any(r["action"] == "kept" for r in results) and not all_stale:
        raise click.exceptions.Exit(1)
