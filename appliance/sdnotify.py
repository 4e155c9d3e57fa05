"""systemd's sd_notify protocol without libsystemd: one datagram of `KEY=value` lines to the
unix socket named in $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@').

Why no dependency: the protocol is four lines of socket code, and the appliance must not need
a C library to tell systemd it is READY, alive (WATCHDOG=1) or STOPPING. Outside systemd
(no $NOTIFY_SOCKET) every call is a cheap no-op.
"""
from __future__ import annotations

import os
import socket


def _address(raw: str) -> str | None:
    if not raw:
        return None
    if raw[0] == "@":
        return "\0" + raw[1:]            # Linux abstract namespace
    if raw[0] == "/":
        return raw
    return None                          # vsock and other forms are not used by tickring


class Notifier:
    """Sends sd_notify messages; a no-op when not started by systemd with Type=notify."""

    def __init__(self, env: dict | None = None):
        env = os.environ if env is None else env
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ok_pid = not pid or pid == str(os.getpid())
        self.watchdog_usec = int(usec) if usec.isdigit() and ok_pid else 0
        self._sock = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def watchdog_interval(self) -> float:
        """Seconds between WATCHDOG=1 pings: half the unit's WatchdogSec, 0 when none is set."""
        return self.watchdog_usec / 2e6

    def send(self, *lines: str) -> bool:
        """Send one datagram of KEY=value lines; False when there is no socket (or it is gone)."""
        if self.address is None:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto("\n".join(lines).encode(), self.address)
        except OSError:
            return False                 # systemd went away; never crash the appliance over it
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def child_env(env: dict) -> dict:
    """A copy of env without the variables that would let a child talk to systemd as us."""
    return {k: v for k, v in env.items()
            if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")}
