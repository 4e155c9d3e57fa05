"""`tickring compactor`: run the compactor process (normally started by the supervisor).

Every setting of appliance.compactor.process.CompactorConfig can come from a JSON file
(--config) and the common ones from options, which win over the file.
"""
from __future__ import annotations

import json
import os

import click

from tools.errors import friendly


@click.command(name="compactor")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="JSON file with CompactorConfig settings")
@click.option("--ring", "rings", multiple=True, metavar="VENUE[=RING]",
              help="a venue ring to compact (ring name defaults to the venue); repeatable")
@click.option("--root", type=click.Path(file_okay=False), help="Parquet root directory")
@click.option("--registry", help="instrument registry name (default: registry)")
@click.option("--timeframes", help="comma-separated candle timeframes, e.g. 1s,1m,5m,15m,1h,1d")
@click.option("--watermark-ms", type=float, help="candle close watermark on ts_recv progress")
@click.option("--rotate-s", type=float, help="Parquet rotation period (ts_recv, aligned)")
@click.option("--max-rows", type=int, help="publish a venue's files after this many rows")
@click.option("--row-group-rows", type=int,
              help="records per Parquet row group (the compactor's memory does not depend on it)")
@click.option("--candle-ring", help="publish closed candles to this ring")
@click.option("--candle-table", help="forming/last candles in this shm table")
@click.option("--quality-table", help="quality grades in this shm table")
@click.option("--no-backfill", is_flag=True, help="do not fetch trade gaps from REST")
@friendly
def command(config_path, rings, root, registry, timeframes, watermark_ms, rotate_s, max_rows,
            row_group_rows, candle_ring, candle_table, quality_table, no_backfill):
    """Compact venue rings into candles, quality grades and Parquet until SIGTERM."""
    from appliance.compactor.process import CompactorConfig, run
    cfg = {}
    if config_path:
        with open(config_path) as f:
            cfg = json.load(f)
    if rings:
        cfg["rings"] = {v: (ring or v) for v, _, ring in (r.partition("=") for r in rings)}
    for key, value in (("root", root), ("registry", registry), ("watermark_ms", watermark_ms),
                       ("rotate_s", rotate_s), ("max_rows", max_rows),
                       ("row_group_rows", row_group_rows), ("candle_ring", candle_ring),
                       ("candle_table", candle_table), ("quality_table", quality_table)):
        if value is not None:
            cfg[key] = value
    if timeframes:
        cfg["timeframes"] = [t.strip() for t in timeframes.split(",") if t.strip()]
    if no_backfill:
        cfg["backfill"] = False
    if "rings" not in cfg or "root" not in cfg:
        raise ValueError("give the rings (--ring VENUE[=RING]) and the Parquet root (--root)")
    run(CompactorConfig.from_dict(cfg))
