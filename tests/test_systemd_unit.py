"""The systemd unit: `systemd-analyze verify` prints nothing, `security --offline` rates it <= 3.0,
and it carries the settings the appliance relies on."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT = os.path.join(ROOT, "systemd", "tickring.service")
EXEC = "/opt/tickring/bin/tickring"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed "
                                   "(apt-get install systemd) - the unit cannot be checked here")


def unit_text() -> str:
    with open(UNIT) as f:
        return f.read()


def installed_copy(tmp_path) -> str:
    """The unit as installed: ExecStart's binary exists (a stand-in at a temp path)."""
    exe = tmp_path / "tickring"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "tickring.service"
    unit.write_text(unit_text().replace(EXEC, str(exe)))
    return str(unit)


@needs_analyze
def test_verify_prints_nothing(tmp_path):
    out = subprocess.run([ANALYZE, "verify", installed_copy(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


@needs_analyze
def test_security_exposure_at_most_3(tmp_path):
    out = subprocess.run([ANALYZE, "security", "--offline=true", installed_copy(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for tickring\.service: ([0-9.]+)", out.stdout)
    assert m, out.stdout + out.stderr
    assert float(m.group(1)) <= 3.0, out.stdout


def test_unit_has_what_the_appliance_relies_on():
    text = unit_text()
    settings = dict(line.split("=", 1) for line in text.splitlines()
                    if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify"
    assert settings["Restart"] == "on-failure"
    assert settings["KillMode"] == "mixed"
    assert settings["ExecStart"].startswith(EXEC + " run --config ")
    for key in ("WatchdogSec", "CPUAffinity", "MemoryMax", "StateDirectory", "User", "TimeoutStopSec"):
        assert settings.get(key), key
    assert settings.get("RemoveIPC") == "no"            # rings outlive a restart; readers keep them
    assert settings.get("DynamicUser", "no") == "no"    # DynamicUser implies RemoveIPC
    # TimeoutStopSec leaves the supervisor its stop_timeout_s (default 15 s) plus margin
    assert int(settings["TimeoutStopSec"].rstrip("s")) > 15
