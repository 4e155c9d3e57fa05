"""`tickring bench ring --json` runs end to end on a tiny budget and reports every figure the
issue asks for, each with its same-run baseline (the values themselves are not asserted: speed
is measured by the bench, never by tests)."""
from __future__ import annotations

import json
import os

from click.testing import CliRunner

from shm import segment


def test_bench_ring_json_has_every_figure_and_its_baseline():
    from tools.bench_ring import command
    res = CliRunner().invoke(command, ["--json", "--seconds", "0.05", "--samples", "200"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    for key in ("write_rps", "write_baseline_pack_rps", "write_batch_rps", "read_rps",
                "read_baseline_copy_rps", "fanout8_ratio", "fanout8_busy_neighbour_ratio",
                "fanout8_vs_busy_neighbour"):
        assert out[key] > 0, key
    for mode in ("spin", "block", "spin_baseline", "block_baseline"):
        lat = out["latency_us"][mode]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] and lat["samples"] > 0, mode
    mine = f"bench{os.getpid()}"                 # the bench names its rings after its pid
    assert not [n for n in segment.list_segments() if n.startswith(mine)], "the bench removes its rings"
