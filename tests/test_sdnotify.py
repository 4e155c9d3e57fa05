"""sd_notify without libsystemd: path and abstract sockets, no-op without NOTIFY_SOCKET."""
from __future__ import annotations

import os
import socket

from appliance.sdnotify import Notifier, child_env


def test_messages_reach_a_path_socket(tmp_path):
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        s.settimeout(5)
        n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
        assert n.enabled and n.watchdog_interval() == 2.0
        assert n.ready("3 rings\nup")
        assert n.watchdog()
        assert n.stopping()
        n.close()
        assert s.recv(100) == b"READY=1\nSTATUS=3 rings up"
        assert s.recv(100) == b"WATCHDOG=1"
        assert s.recv(100) == b"STOPPING=1"


def test_abstract_socket_name_with_at():
    name = f"tickring-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(5)
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.status("hello")
        assert s.recv(100) == b"STATUS=hello"
        n.close()


def test_no_socket_is_a_noop_and_watchdog_pid_is_respected():
    n = Notifier({})
    assert not n.enabled and not n.ready() and n.watchdog_interval() == 0
    other = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval() == 0           # the watchdog is someone else's
    assert not other.send("X=1")                    # a vanished socket never raises


def test_children_do_not_inherit_the_socket():
    env = child_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1", "PATH": "/bin"})
    assert env == {"PATH": "/bin"}
