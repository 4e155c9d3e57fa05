"""`tickring feed`: run one venue's feed worker in the foreground, into a ring."""
from __future__ import annotations

import logging
import sys

import click
import orjson

from tools.errors import friendly


@click.command()
@click.argument("venue")
@click.option("--symbols", "-s", required=True,
              help="Comma-separated native symbols, e.g. BTCUSDT,ETHUSDT (OKX: BTC-USDT, BTC-USDT-SWAP). "
                   "Bybit's linear perpetuals share spot names: prefix them, perp:BTCUSDT.")
@click.option("--ring", default=None, help="Ring to publish into (default: the venue name); created if absent.")
@click.option("--url", default=None, help="Websocket base URL (default: the venue's live endpoint), "
                                          "e.g. ws://127.0.0.1:PORT from `tickring sim`.")
@click.option("--rest-url", default=None, help="REST base URL for book snapshots (default: live).")
@click.option("--registry", default="registry", show_default=True,
              help="Shared instrument registry (created if absent), so instrument ids are global.")
@click.option("--channels", default=None,
              help="Comma-separated channels: trades,quotes,book,mark,liquidations (default: all the venue offers).")
@click.option("--book-table", default=None, help="Also keep top-N levels per instrument in this shm table.")
@click.option("--capacity", type=int, default=1 << 20, show_default=True,
              help="Ring capacity in records when the ring is created (a power of two).")
@click.option("--insecure", is_flag=True, help="Accept a self-signed certificate (the simulator's wss://).")
@click.option("--cpu", type=int, default=None, help="Pin the worker to this CPU.")
@click.option("--stale-after", type=float, default=None, help="Seconds without a frame before reconnecting "
                                                              "(default: the venue's limit).")
@click.option("--max-age", type=float, default=None, help="Rotate connections older than this many seconds "
                                                          "(default: the venue's forced-disconnect limit).")
@click.option("--ping-interval", type=float, default=None,
              help="Client ping interval in seconds for venues we ping (default: the venue's rule).")
@click.option("--json-status", is_flag=True, help="Print counters and connection states as one JSON line per second.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@friendly
def command(venue, symbols, ring, url, rest_url, registry, channels, book_table, capacity, insecure,
            cpu, stale_after, max_age, ping_interval, json_status, log_level):
    """Connect to VENUE and publish its market data into a ring until Ctrl-C / SIGTERM.

    \b
    Examples:
      tickring feed binance --symbols BTCUSDT,ETHUSDT
      tickring feed okx --symbols BTC-USDT --url ws://127.0.0.1:8765 --rest-url http://127.0.0.1:8766
    """
    from feeds.worker import FeedWorker, run_worker

    import faulthandler
    import signal
    faulthandler.register(signal.SIGUSR1)          # `kill -USR1 <pid>`: dump where it is
    logging.basicConfig(level=getattr(logging, log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    syms = [s.strip() for s in symbols.split(",") if s.strip()]
    chans = [c.strip() for c in channels.split(",") if c.strip()] if channels else None

    def status(d):
        sys.stdout.buffer.write(orjson.dumps(d, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        sys.stdout.flush()

    worker = FeedWorker(venue, syms, ring or venue, channels=chans, url=url, rest_url=rest_url,
                        registry=registry or None, book_table=book_table, insecure=insecure,
                        ring_capacity=capacity, stale_after_s=stale_after, max_age_s=max_age,
                        ping_interval_s=ping_interval, status_cb=status if json_status else None)
    sys.exit(run_worker(worker, cpu))
