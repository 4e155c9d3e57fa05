"""`tickring quality`: data-quality grades and their reasons per venue and instrument.

Live from the compactor's quality table (`<ns>.quality`, one seqlock slot per instrument) while
the appliance runs, else from the newest rows of the quality Parquet dataset.
"""
from __future__ import annotations

import os

import click

from tools.errors import friendly
from tools.format import Names, fmt_count, fmt_duration_ns
from tools.replay import dataset_files, default_root

GRADES = ("excellent", "good", "degraded", "limited")
MEASURES = ("msg_rate", "staleness_ns", "skew_p50_ns", "skew_p99_ns", "gaps", "resyncs",
            "reconnects", "out_of_order", "crossed", "wicks", "lost")


def quality_tables(namespace: str | None = None) -> list[str]:
    """Names of quality tables in /dev/shm ('quality' or '<ns>.quality')."""
    from shm.table import Table
    out = []
    for n in Table.names():
        if n != "quality" and not n.endswith(".quality"):
            continue
        ns = n[:-len(".quality")] if n != "quality" else ""
        if namespace is not None and ns != namespace:
            continue
        out.append(n)
    return out


def live_rows(namespace: str | None = None, registry: str | None = None,
              with_symbols: bool = True) -> list[dict] | None:
    """Grade rows from the compactor's quality tables; None when no table exists."""
    from shm.table import Table
    names = quality_tables(namespace)
    if not names:
        return None
    rows = []
    for name in names:
        ns = name[:-len(".quality")] if name != "quality" else ""
        try:
            t = Table.attach(name)
        except Exception:
            continue
        try:
            if "grade" not in (t.dtype.names or ()) or "reasons" not in t.dtype.names:
                continue
            data = t.read_all()
        finally:
            t.close()
        data = data[data["ts"] > 0]
        reg = Names(registry or (f"{ns}.registry" if ns else "registry")) if with_symbols else None
        for r in data:
            code = int(r["grade"])
            rows.append({"namespace": ns, "venue": r["venue"].decode(errors="replace"),
                         "instrument": int(r["instrument"]),
                         "symbol": reg.symbol(int(r["instrument"])) if reg else f"#{int(r['instrument'])}",
                         "grade": GRADES[code] if code < len(GRADES) else str(code),
                         "reasons": r["reasons"].decode(errors="replace"), "ts": int(r["ts"]),
                         **{m: r[m].item() for m in MEASURES}})
    return rows


def parquet_rows(root: str, venues=None) -> list[dict] | None:
    """The newest grade row of each (venue, instrument) in the quality dataset; None if absent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_venue = dataset_files(root, "quality", venues)
    if not any(per_venue.values()):
        return None
    rows = []
    for venue, files in per_venue.items():
        latest: dict[int, dict] = {}
        for f in files[-3:]:            # the newest files hold the newest grade of each instrument
            t = pq.read_table(f)
            cols = {}
            for n in t.column_names:
                c = t.column(n)
                if pa.types.is_dictionary(c.type):
                    c = c.cast(c.type.value_type)
                cols[n] = c.to_pylist()
            for i in range(t.num_rows):
                row = {n: cols[n][i] for n in cols}
                inst = int(row.get("instrument", 0))
                if inst not in latest or row.get("ts_recv", 0) >= latest[inst].get("ts", 0):
                    latest[inst] = {"namespace": None, "venue": venue, "instrument": inst,
                                    "symbol": row.get("symbol") or f"#{inst}",
                                    "grade": row.get("grade"), "reasons": row.get("reasons") or "",
                                    "ts": row.get("ts_recv", 0),
                                    **{m: row.get(m) for m in MEASURES}}
        rows += latest.values()
    return rows


def _severity(g: str) -> int:
    return GRADES.index(g) if g in GRADES else len(GRADES)


def summarize(rows: list[dict]) -> dict[str, dict]:
    """venue -> worst grade, counts per grade."""
    out: dict[str, dict] = {}
    for r in rows:
        v = out.setdefault(r["venue"], {"grade": "excellent", "counts": {g: 0 for g in GRADES}})
        if r["grade"] in v["counts"]:
            v["counts"][r["grade"]] += 1
        if _severity(r["grade"]) > _severity(v["grade"]):
            v["grade"] = r["grade"]
    return out


def render(rows: list[dict], source: str) -> str:
    rows = sorted(rows, key=lambda r: (r["venue"], -_severity(r["grade"]), r["symbol"]))
    lines = [f"{'VENUE':<13}{'SYMBOL':<18}{'GRADE':<10}{'MSG/S':>7}{'SKEW99':>8}{'STALE':>8}  REASONS"]
    for r in rows:
        stale = r.get("staleness_ns")
        lines.append(f"{r['venue'][:12]:<13}{str(r['symbol'])[:17]:<18}{r['grade']:<10}"
                     f"{fmt_count(r.get('msg_rate') or 0):>7}"
                     f"{fmt_duration_ns(r['skew_p99_ns']) if r.get('skew_p99_ns') else '-':>8}"
                     f"{fmt_duration_ns(stale) if stale is not None and stale >= 0 else '-':>8}  "
                     f"{r['reasons'] or '-'}")
    lines.append("")
    for venue, s in sorted(summarize(rows).items()):
        counts = ", ".join(f"{n} {g}" for g, n in s["counts"].items() if n)
        lines.append(f"{venue}: {s['grade']} ({counts})")
    lines.append(f"(source: {source})")
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: rows, per-venue summary, source.")
@click.option("--venue", "venues", multiple=True, help="Only this venue (repeatable).")
@click.option("--namespace", default=None, help="Only this appliance namespace's live table.")
@click.option("--source", type=click.Choice(["auto", "live", "parquet"]), default="auto",
              show_default=True, help="Live shm table, Parquet, or auto: live when the appliance "
                                      "runs (Parquet when --root is given).")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Parquet root (default: $TICKRING_PARQUET_ROOT, /var/lib/tickring/parquet or the demo's).")
@click.option("--registry", default=None, help="Instrument registry for symbols (default: the namespace's).")
@friendly
def command(as_json, venues, namespace, source, root, registry):
    """Quality grade per venue and instrument, with the reasons.

    \b
    Grades, worst reason wins:
      excellent  nothing to report
      good       reconnects, out-of-order events, a few resyncs, clock skew p99 > 500 ms
      degraded   wicks, sequence gaps, crossed books, records lost, skew p99 > 2 s, many resyncs
      limited    stale (no data for longer than the stale limit) or no data yet
    """
    rows = None
    used = None
    if source == "auto" and root is not None and namespace is None:
        source = "parquet"           # an explicit --root asks for that data, not the live table
    if source in ("auto", "live"):
        rows = live_rows(namespace, registry)
        used = "live quality table" if rows is not None else None
        if rows is None and source == "live":
            raise click.ClickException("no live quality table in /dev/shm (is the appliance running "
                                       "with the compactor enabled?)")
    if rows is None and source in ("auto", "parquet"):
        root = root or default_root()
        if root is None or not os.path.isdir(root):
            raise click.ClickException(
                "no quality grades: no live quality table in /dev/shm and no Parquet root "
                f"{'at ' + root if root else 'found'} (start the appliance, or pass --root)")
        rows = parquet_rows(root, list(venues) or None)
        used = f"Parquet under {root}"
        if rows is None:
            raise click.ClickException(f"no quality grades: no live quality table and no quality "
                                       f"dataset under {root}")
    if venues:
        rows = [r for r in rows if r["venue"] in venues]
    if as_json:
        import orjson
        click.echo(orjson.dumps({"source": used, "venues": summarize(rows), "rows": rows},
                                option=orjson.OPT_SERIALIZE_NUMPY).decode())
        return
    if not rows:
        click.echo(f"no grades yet{' for ' + ', '.join(venues) if venues else ''} ({used})", err=True)
        return
    click.echo(render(rows, used))
