"""`tickring quality`: grades from the compactor's live table, else from quality Parquet."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from click.testing import CliRunner

from appliance.compactor.parquet_sink import ParquetSink, quality_table
from appliance.compactor.schema import QUALITY_COLUMNS
from appliance.compactor.schema import QUALITY_SLOT
from tools.quality import command as quality_cmd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = 1_795_000_000 * 10**9


def invoke(*args):
    return CliRunner().invoke(quality_cmd, list(args), catch_exceptions=False)


def test_quality_from_the_live_table(shm_names):
    from shm.registry import Registry
    from shm.table import Table
    ns = shm_names("ns")
    reg = Registry.create(f"{ns}.registry")
    btc = reg.add("binance", "BTCUSDT", "BTC-USDT")
    eth = reg.add("binance", "ETHUSDT", "ETH-USDT")
    sol = reg.add("okx", "SOL-USDT", "SOL-USDT")
    table = Table.create(f"{ns}.quality", QUALITY_SLOT, 16)
    try:
        for iid, venue, grade, reasons in ((btc, "binance", 0, ""), (eth, "binance", 2, "gaps 3; wicks 1"),
                                           (sol, "okx", 1, "reconnects 1")):
            row = np.zeros(1, QUALITY_SLOT)
            row["ts"], row["instrument"], row["grade"] = NOW, iid, grade
            row["venue"], row["reasons"] = venue.encode(), reasons.encode()
            row["msg_rate"], row["gaps"], row["skew_p99_ns"] = 250.0, 3 if grade == 2 else 0, 1_500_000
            table.write(iid, row[0])
        res = invoke("--namespace", ns, "--json")
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["source"] == "live quality table"
        assert out["venues"]["binance"]["grade"] == "degraded"
        assert out["venues"]["binance"]["counts"]["excellent"] == 1
        assert out["venues"]["okx"]["grade"] == "good"
        by_sym = {r["symbol"]: r for r in out["rows"]}
        assert by_sym["ETHUSDT"]["reasons"] == "gaps 3; wicks 1" and by_sym["ETHUSDT"]["gaps"] == 3
        res = invoke("--namespace", ns, "--venue", "binance")
        assert res.exit_code == 0, res.output
        text = res.stdout
        assert "ETHUSDT" in text and "degraded" in text and "gaps 3; wicks 1" in text
        assert "SOL-USDT" not in text and "binance: degraded (1 excellent, 1 degraded)" in text
        lines = text.splitlines()
        assert lines[1].split()[1] == "ETHUSDT"               # worst first
    finally:
        table.close()
        reg.close()


def test_quality_live_table_without_grades_says_so(shm_names):
    from shm.table import Table
    ns = shm_names("ns")
    table = Table.create(f"{ns}.quality", QUALITY_SLOT, 4)
    try:
        res = invoke("--namespace", ns)
        assert res.exit_code == 0 and res.stdout == "" and "no grades yet" in res.stderr
    finally:
        table.close()


def columns(rows):
    return {n: [r[n] for r in rows] for n in QUALITY_COLUMNS}


def grade_row(inst, grade, reasons, ts):
    return {"ts_recv": ts, "instrument": inst, "grade": grade, "reasons": reasons, "msg_rate": 10.0,
            "staleness_ns": 5_000_000, "skew_p50_ns": 1000, "skew_p99_ns": 2000, "gaps": 0,
            "resyncs": 0, "reconnects": 0, "out_of_order": 0, "crossed": 0, "wicks": 0, "lost": 0,
            "late_trades": 0}


def test_quality_from_the_newest_parquet_rows(tmp_path, shm_names):
    root = str(tmp_path)
    sink = ParquetSink(root)
    names = {1: "BTCUSDT", 2: "ETHUSDT"}.get
    older = [grade_row(1, "limited", "stale: no data yet", NOW), grade_row(2, "good", "reconnects 1", NOW)]
    newer = [grade_row(1, "excellent", "", NOW + 60 * 10**9)]
    sink.commit(sink.stage("quality", "binance", quality_table(columns(older), names)))
    sink.commit(sink.stage("quality", "binance", quality_table(columns(newer), names)))
    res = invoke("--source", "parquet", "--root", root, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["source"].startswith("Parquet under")
    by_sym = {r["symbol"]: r for r in out["rows"]}
    assert by_sym["BTCUSDT"]["grade"] == "excellent"         # the newest row wins
    assert by_sym["ETHUSDT"]["grade"] == "good" and by_sym["ETHUSDT"]["reasons"] == "reconnects 1"
    assert out["venues"]["binance"]["grade"] == "good"
    # an explicit --root means that data, even while some appliance's live table exists
    from shm.table import Table
    live = Table.create(f"{shm_names('ns')}.quality", QUALITY_SLOT, 4)
    try:
        res = invoke("--root", root, "--json")
        assert res.exit_code == 0 and json.loads(res.stdout)["source"].startswith("Parquet under")
    finally:
        live.close()


def test_quality_errors(tmp_path, shm_names):
    res = CliRunner().invoke(quality_cmd, ["--source", "live", "--namespace", shm_names("none")])
    assert res.exit_code != 0 and "no live quality table" in res.output
    res = CliRunner().invoke(quality_cmd, ["--source", "parquet", "--root", str(tmp_path)])
    assert res.exit_code != 0 and "no quality dataset" in res.output
    r = subprocess.run([sys.executable, "-m", "tools.cli", "quality", "--source", "parquet", "--root",
                        str(tmp_path / "nope")], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "no quality grades" in r.stderr and "Traceback" not in r.stderr
