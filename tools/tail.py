"""`tickring tail`: print a venue's records as they arrive, for humans or (--json) for scripts."""
from __future__ import annotations

import os
import sys

import click
import numpy as np
import orjson

from tools.errors import friendly
from tools.format import (KIND_BY_NAME, Names, find_ring, kinds_mask, record_dict, record_line,
                          registry_for)

KIND_CHOICES = ["trade", "quote", "book", "mark", "liquidation", "status"]


@click.command()
@click.argument("venue")
@click.option("--symbol", "-s", "symbols", multiple=True,
              help="Only this instrument: native symbol (BTCUSDT), normalized name (BTC-USDT) "
                   "or registry id. Repeat for several.")
@click.option("--kind", "-k", "kinds", multiple=True, type=click.Choice(KIND_CHOICES),
              help="Only records of this kind. Repeat for several.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (ns times, all fields).")
@click.option("--ring", default=None, help="Ring to read (default: the ring named VENUE).")
@click.option("--registry", default=None,
              help="Instrument registry used to name instruments (default: the ring's namespace's).")
@click.option("--from", "start", type=click.Choice(["oldest", "latest"]), default="latest",
              show_default=True, help="Start at the oldest record still in the ring, or at new ones.")
@click.option("--count", "-n", type=click.IntRange(min=1), default=None,
              help="Stop after printing N records (default: run until Ctrl-C).")
@click.option("--idle-exit", type=float, default=None, hidden=True,
              help="Exit after this many seconds without a new record (scripts, tests).")
@friendly
def command(venue, symbols, kinds, as_json, ring, registry, start, count, idle_exit):
    """Follow the live records of VENUE's ring.

    Human output shows the receive time (UTC), instrument, kind, side, price and size; --json
    prints every meaningful field with ns timestamps. Records lost because this reader was
    lapped are reported on stderr, never silently skipped.

    \b
    Examples:
      tickring tail binance --symbol BTCUSDT --kind trade
      tickring tail okx --json --from oldest --count 100 | jq .price

    VENUE's ring is the ring named VENUE, or '<namespace>.VENUE' when one appliance namespace
    has it (the demo's rings are demo.binance, demo.okx, ...).
    """
    import shm

    r = shm.Ring.attach(find_ring(venue, ring))
    names = Names(registry_for(r.name, registry))
    ids = None
    if symbols:
        ids = []
        for s in symbols:
            found = names.resolve(venue, s)
            if not found:
                known = names.symbols_of(venue)
                hint = (f"; known symbols on {venue}: {', '.join(known[:20])}"
                        f"{' ...' if len(known) > 20 else ''}") if known else \
                    " (no instrument registry to name it: pass the numeric instrument id)"
                raise click.ClickException(f"no instrument {s!r} on {venue}{hint}")
            ids += found
        ids = np.asarray(ids, dtype=np.uint32)
    kind_values = [KIND_BY_NAME[k] for k in kinds]
    reader = r.reader(start=start, name="tail", register=True)
    out = sys.stdout
    printed = 0
    lost_reported = 0
    idle = 0.0
    try:
        while count is None or printed < count:
            batch = reader.read(4096, timeout=0.25)
            if reader.lost > lost_reported:
                click.echo(f"tickring tail: lapped, {reader.lost - lost_reported} records lost "
                           f"(reading too slowly for the ring)", err=True)
                lost_reported = reader.lost
            if not len(batch):
                idle += 0.25
                if idle_exit is not None and idle >= idle_exit:
                    break
                continue
            idle = 0.0
            mask = kinds_mask(batch, kind_values)
            if ids is not None:
                m2 = np.isin(batch["instrument"], ids)
                mask = m2 if mask is None else (mask & m2)
            if mask is not None:
                batch = batch[mask]
            if count is not None:
                batch = batch[:count - printed]
            if as_json:
                lines = [orjson.dumps(record_dict(x, names, venue)).decode() for x in batch]
            else:
                lines = [record_line(x, names) for x in batch]
            if lines:
                out.write("\n".join(lines) + "\n")
                out.flush()
            printed += len(batch)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:               # `tickring tail ... | head`: the reader left, fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    finally:
        reader.close()
    if printed == 0 and not as_json:
        click.echo(f"tickring tail: no matching records on ring {r.name!r}", err=True)
