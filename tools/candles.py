"""`tickring candles`: an instrument's candles from Parquet, the live candle ring and the forming
candle of the compactor's shm table, as a table, CSV or JSON.

Closed candles reach Parquet only when the compactor rotates a file (hourly by default), so the
recent ones come from the candle ring (`<ns>.candles`) and the one still forming from the candle
table (`<ns>.candles.latest`, which holds clean candles). Candles are keyed by interval start;
Parquet wins over the ring for the same interval, a closed candle over a forming one.
"""
from __future__ import annotations

import csv
import io
import os

import click
import numpy as np

from tools.errors import friendly
from tools.format import Names, find_ring, fmt_num, namespace_of, registry_for
from tools.replay import dataset_files, default_root
from tools.timeparse import HELP as TIME_HELP, TIME, check_range, format_ns

FIELDS = ("ts", "open", "high", "low", "close", "volume", "buy_volume", "vwap", "trades")


def timeframe_ns(label: str) -> int:
    from appliance.compactor.schema import timeframe_ns as tf
    return tf(label)


def from_parquet(root: str, venue: str, symbols: set[str], ids: set[int], tf: int, clean: bool,
                 start: int | None, end: int | None) -> tuple[dict, set[str]]:
    """ts -> candle dict from the candles dataset; also the symbols seen (for error messages)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out: dict[int, dict] = {}
    seen: set[str] = set()
    files = dataset_files(root, "candles", [venue], start, end).get(venue, [])
    for f in files:
        t = pq.read_table(f)
        cols = {}
        for name in t.column_names:
            c = t.column(name)
            if pa.types.is_dictionary(c.type):
                c = c.cast(c.type.value_type)
            cols[name] = c
        sym = cols.get("symbol")
        if sym is not None:
            seen.update(x for x in pc.unique(sym).to_pylist() if x)
        if sym is not None and symbols:          # native symbols: stable across registries
            keep = pc.is_in(sym, value_set=pa.array(sorted(symbols), pa.string())).to_numpy(
                zero_copy_only=False)
        elif ids and "instrument" in cols:      # a bare id (no registry to name it)
            keep = np.isin(cols["instrument"].to_numpy(), list(ids))
        else:
            continue
        if not keep.any():
            continue
        tfc = cols["timeframe"].to_pylist()
        labels = {x: timeframe_ns(x) if isinstance(x, str) else int(x) for x in set(tfc)}
        keep &= np.array([labels[x] == tf for x in tfc], bool)
        if "clean" in cols:
            keep &= cols["clean"].to_numpy(zero_copy_only=False).astype(bool) == clean
        ts = cols["ts"].to_numpy()
        if start is not None:
            keep &= ts >= start
        if end is not None:
            keep &= ts < end
        for i in np.flatnonzero(keep):
            c = {k: cols[k][int(i)].as_py() for k in FIELDS if k in cols}
            c["state"] = "closed"
            out[int(c["ts"])] = c
    return out, seen


def from_shm(namespace: str, ids: set[int], tf: int, clean: bool, start, end) -> tuple[dict, dict | None]:
    """Closed candles still in the candle ring, and the forming candle from the candle table."""
    closed: dict[int, dict] = {}
    forming = None
    if not ids:
        return closed, forming
    pre = f"{namespace}." if namespace else ""
    from appliance.compactor.schema import CANDLE_CLEAN
    try:
        from shm.ring import Ring
        ring = Ring.attach(pre + "candles")
    except Exception:
        ring = None
    if ring is not None:
        try:
            rd = ring.reader(start="oldest", register=False)
            while True:
                b = rd.read(1 << 16, timeout=0)
                if not len(b):
                    break
                m = np.isin(b["instrument"], list(ids)) & (b["timeframe"] == tf)
                m &= ((b["flags"] & CANDLE_CLEAN) != 0) == clean
                for c in b[m]:
                    ts = int(c["ts"])
                    if (start is None or ts >= start) and (end is None or ts < end):
                        closed[ts] = _row(c, "closed")
        finally:
            ring.close()
    try:
        from shm.table import Table
        table = Table.attach(pre + "candles.latest")
    except Exception:
        table = None
    if table is not None:
        try:
            rows = table.read_all()
            m = (np.isin(rows["forming_instrument"], list(ids)) & (rows["forming_timeframe"] == tf)
                 & (rows["forming_ts"] > 0))
            for r in rows[m]:
                ts = int(r["forming_ts"])
                if (start is None or ts >= start) and (end is None or ts < end):
                    forming = {k: _py(r[f"forming_{k}"]) for k in FIELDS}
                    forming["state"] = "forming" if clean else "forming*"
        finally:
            table.close()
    return closed, forming


def _py(x):
    return x.item() if hasattr(x, "item") else x


def _row(c, state: str) -> dict:
    d = {k: _py(c[k]) for k in FIELDS}
    d["state"] = state
    return d


def render(candles: list[dict], fmt: str) -> str:
    if fmt == "json":
        import orjson
        return orjson.dumps([{**c, "time": format_ns(c["ts"])} for c in candles]).decode()
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(list(FIELDS) + ["state"])
        for c in candles:
            w.writerow([c[k] for k in FIELDS] + [c["state"]])
        return buf.getvalue().rstrip("\n")
    head = ["time (UTC)", "open", "high", "low", "close", "volume", "buy vol", "vwap", "trades", ""]
    rows = [[format_ns(c["ts"]).replace("T", " ").rstrip("Z").replace(".000000000", "")]
            + [fmt_num(c[k]) for k in ("open", "high", "low", "close", "volume", "buy_volume", "vwap")]
            + [str(c["trades"]), c["state"] if c["state"] != "closed" else ""] for c in candles]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))).rstrip()]
    for r in rows:
        lines.append("  ".join(x.ljust(w) if i in (0, 9) else x.rjust(w)
                               for i, (x, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


@click.command()
@click.option("--venue", "-v", required=True, help="Venue, e.g. binance.")
@click.option("--symbol", "-s", required=True,
              help="Instrument: native symbol (BTCUSDT), normalized name (BTC-USDT) or registry id.")
@click.option("--tf", "tf_label", default="1m", show_default=True,
              help="Timeframe: 1s, 1m, 5m, 15m, 1h, 1d (what the compactor forges).")
@click.option("--start", type=TIME, default=None, help="First interval start (inclusive). " + TIME_HELP)
@click.option("--end", type=TIME, default=None, help="Intervals starting before this (exclusive).")
@click.option("--clean", is_flag=True, help="Clean candles: trades flagged as wicks left out.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format (csv/json carry ns timestamps).")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Parquet root (default: $TICKRING_PARQUET_ROOT, /var/lib/tickring/parquet or the demo's).")
@click.option("--namespace", default=None,
              help="Appliance namespace for the live candles (default: the one holding VENUE's ring).")
@click.option("--registry", default=None, help="Instrument registry (default: the namespace's).")
@click.option("--live/--no-live", default=None,
              help="Add the recent and forming candles from shared memory (default: yes, unless "
                   "--root points at another Parquet root).")
@friendly
def command(venue, symbol, tf_label, start, end, clean, fmt, as_json, root, namespace, registry, live):
    """Candles of one instrument, forged by the compactor from trades.

    Each candle is stamped with its interval start; an interval without trades has no candle.
    The newest closed candles come from the live candle ring and the forming one (marked
    'forming') from the compactor's table; older ones from Parquet.

    \b
    Examples:
      tickring candles --venue binance --symbol BTCUSDT --tf 1m --start -2h
      tickring candles -v okx -s BTC-USDT-SWAP --tf 1h --clean --format csv > okx.csv
    """
    check_range(start, end)
    if as_json:
        fmt = "json"
    try:
        tf = timeframe_ns(tf_label)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--tf'") from None
    if live is None:                 # an explicit --root may be another box's data: no mixing
        live = root is None or namespace is not None
    root = root or default_root()
    if namespace is None:
        namespace = namespace_of(find_ring(venue))
    pre = f"{namespace}." if namespace else ""
    names = Names(registry_for(pre + venue, registry))
    ids = set(names.resolve(venue, symbol))
    symbols = {symbol, symbol.upper()} | {names.symbol(i) for i in ids if names.instrument(i)}
    if symbol.lstrip("#").isdigit():
        symbols = {names.symbol(i) for i in ids if names.instrument(i)}
    candles: dict[int, dict] = {}
    seen: set[str] = set()
    if root and os.path.isdir(root):
        candles, seen = from_parquet(root, venue, symbols, ids, tf, clean, start, end)
    elif root and not os.path.isdir(root):
        raise click.ClickException(f"no such Parquet root: {root}")
    forming = None
    if live:
        recent, forming = from_shm(namespace, ids, tf, clean, start, end)
        for ts, c in recent.items():
            candles.setdefault(ts, c)
        if forming is not None and forming["ts"] not in candles:
            candles[forming["ts"]] = forming
    if not candles:
        known = sorted(seen | set(names.symbols_of(venue)))
        if not ids and known and not (symbols & set(known)):
            raise click.ClickException(f"no instrument {symbol!r} on {venue}; known: "
                                       f"{', '.join(known[:30])}{' ...' if len(known) > 30 else ''}")
        where = f"under {root}" if root else "(no Parquet root found; pass --root)"
        span = ""
        if start is not None or end is not None:
            span = (f" from {format_ns(start) if start is not None else 'the beginning'}"
                    f" to {format_ns(end) if end is not None else 'now'}")
        click.echo(f"no {'clean ' if clean else ''}{tf_label} candles for {venue} {symbol}{span} "
                   f"{where}", err=True)
        if fmt == "json":
            click.echo("[]")
        return
    rows = [candles[k] for k in sorted(candles)]
    click.echo(render(rows, fmt))
    if fmt == "table" and any(c["state"] == "forming*" for c in rows):
        click.echo("* forming candle from the live table, which holds clean (wick-filtered) candles",
                   err=True)
