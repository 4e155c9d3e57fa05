"""`tickring sim`: the built-in exchange simulator, speaking each venue's real wire protocol on
loopback (see feeds/sim/__init__.py for what it serves and the Python API)."""
from __future__ import annotations

import sys

import click

from tools.errors import friendly


@click.command()
@click.option("--venues", default="binance,binance_usdm,bybit,okx", show_default=True,
              help="Comma-separated venue ids to simulate (one port each).")
@click.option("--symbols", default=20, show_default=True, type=int, help="Instruments per venue market.")
@click.option("--rate", default=1000.0, show_default=True, type=float,
              help="Events (trades + book changes) per second, total across venues; 0 = flood.")
@click.option("--flood", is_flag=True, help="As fast as the clients read (same as --rate 0).")
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the market model.")
@click.option("--tls", is_flag=True, help="Serve wss:// and https:// with a self-signed certificate.")
@click.option("--cert-out", default=None, help="With --tls: also write the certificate (PEM) here.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", default=0, show_default=True, type=int,
              help="First port (venue i listens on port+i); 0 = free ports.")
@click.option("--duration", default=0.0, type=float, help="Stop after this many seconds (0 = until SIGTERM).")
@click.option("--json", "json_out", is_flag=True, help="Print one JSON line with the ports, and stats on exit.")
@click.option("--depth", default=25, show_default=True, type=int, help="Book levels per side in the model.")
@click.option("--history", default=0, type=int,
              help="Trades kept per symbol for REST backfill (default: 2000, fewer per symbol in big "
                   "sims so all books together keep at most 400,000).")
@click.option("--trade-share", default=0.35, show_default=True, type=float,
              help="Share of events that are trades (the rest are book changes).")
@click.option("--ping-interval", default=None, type=float,
              help="Override the venues' server ping interval in seconds (default: each venue's rule).")
@click.option("--max-connection-age", "max_age", default=0.0, type=float,
              help="Drop websocket connections older than this many seconds, as Binance does at "
                   "24 h (0 = never).")
@click.option("--fault", "fault_specs", multiple=True, metavar="SPEC",
              help="Scripted fault, e.g. 'at=5,venue=okx,kind=gap,symbol=BTC-USDT' (repeatable). "
                   "Kinds: disconnect, gap, malformed, stall, notice, wick, ping.")
@friendly
def command(venues, symbols, rate, flood, seed, tls, cert_out, host, port, duration, json_out, depth, history,
            trade_share, ping_interval, max_age, fault_specs):
    """Serve simulated exchanges on loopback: real URL paths, subscribe acks, pings, message
    formats and sequence fields, REST snapshots/backfill, and injectable faults
    (POST /_sim/fault?venue=..&kind=..; GET /_sim/state?venue=..&symbol=..)."""
    from feeds.sim.run import main
    sys.exit(main(venues, symbols, 0.0 if flood else rate, seed, tls, host, port, duration, json_out, depth,
                  history, ping_interval, fault_specs, cert_out, trade_share, max_age))
