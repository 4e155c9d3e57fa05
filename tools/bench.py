"""`tickring bench`: the only place speed and memory are measured. Each benchmark lives in its
own module and prints one JSON object with --json."""
from __future__ import annotations

import click

from tools.cli import LazyGroup

BENCHMARKS = {
    "ring": "tools.bench_ring:command",
    "feed": "tools.bench_feed:command",
    "compactor": "tools.bench_compactor:command",
    "replay": "tools.bench_replay:command",
    "soak": "tools.bench_soak:command",
}


@click.group(cls=LazyGroup, lazy=BENCHMARKS)
def command():
    """Measure throughput, latency and memory (figures are ratios and rates from this run)."""
