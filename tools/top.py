"""`tickring top`: a live full-screen dashboard of every ring, and one instrument's book and trades.

Split in three so the screen is testable without a terminal: `Collector.snapshot()` reads shared
memory into plain data, `render(snapshot, width, height)` turns it into lines (a pure function),
and `run_curses` only draws those lines and reads keys. Works over SSH in 80x24; `q` quits.
"""
from __future__ import annotations

import collections
import os
import time

import click
import numpy as np

from shm.record import RECORD, Flag, Kind, Side
from tools.errors import friendly
from tools.format import (Names, fmt_bytes, fmt_count, fmt_duration_ns, fmt_num, fmt_time,
                          namespace_of, registry_for, venue_of)

REFRESH_S = 0.1                 # 10 Hz
CATCH_UP = 1 << 17              # records read per tick from the selected ring, at most
GRADE_ORDER = ("excellent", "good", "degraded", "limited")


class LocalBook:
    """One instrument's L2 book rebuilt from BOOK records (when no book table is published)."""

    def __init__(self):
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.in_snapshot = False

    def apply(self, recs: np.ndarray) -> None:
        for r in recs:
            snap = bool(r["flags"] & Flag.SNAPSHOT)
            if snap and not self.in_snapshot:
                self.bids.clear()
                self.asks.clear()
            self.in_snapshot = snap
            side = self.bids if r["side"] == Side.BID else self.asks
            p, s = float(r["price"]), float(r["size"])
            if s == 0.0:
                side.pop(p, None)
            else:
                side[p] = s

    def top(self, n: int) -> tuple[list, list]:
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks


class Collector:
    """Reads rings, registry, book tables and quality into one snapshot dict per tick."""

    def __init__(self, namespace: str | None = None, venue: str | None = None,
                 symbol: str | None = None, registry: str | None = None):
        self.namespace = namespace
        self.prev: dict[str, tuple[float, int, int]] = {}     # ring -> (t, messages, published)
        self.rings: dict = {}
        self.mem: dict[int, tuple[float, int]] = {}
        self.names_by_ns: dict[str, Names] = {}
        self.registry = registry
        self.sel_ring: str | None = None
        self.want_venue, self.want_symbol = venue, symbol
        self.sel_instrument: int | None = None
        self.reader = None
        self.book = LocalBook()
        self.trades: collections.deque = collections.deque(maxlen=40)
        self.last_quote = None
        self.seen: dict[int, int] = {}                     # instrument -> records seen (selected ring)
        self._book_tables: dict = {}
        self._grades: dict = {}
        self._grades_at = -1e9

    # -- discovery -------------------------------------------------------------------------------
    def ring_names(self) -> list[str]:
        from shm.ring import Ring
        out = []
        for n in Ring.names():
            if self.namespace is not None and namespace_of(n) != self.namespace:
                continue
            out.append(n)
        return out

    def _ring(self, name: str):
        from shm.ring import Ring
        r = self.rings.get(name)
        if r is None:
            try:
                r = Ring.attach(name)
            except Exception:
                return None
            if r.dtype != RECORD:           # e.g. the compactor's candle ring
                r.close()
                return None
            self.rings[name] = r
        return r

    def names(self, ring_name: str) -> Names:
        reg = registry_for(ring_name, self.registry)
        n = self.names_by_ns.get(reg)
        if n is None:
            n = self.names_by_ns[reg] = Names(reg)
        return n

    def _memory(self, pid: int, now: float) -> int | None:
        if not pid:
            return None
        cached = self.mem.get(pid)
        if cached and now - cached[0] < 1.0:
            return cached[1]
        try:
            import psutil
            rss = psutil.Process(pid).memory_info().rss
        except Exception:
            rss = None
        self.mem[pid] = (now, rss)
        return rss

    # -- selection ---------------------------------------------------------------------------------
    def select(self, ring_name: str | None, instrument: int | None) -> None:
        if ring_name != self.sel_ring:
            if self.reader is not None:
                self.reader.close()
                self.reader = None
            self.sel_ring = ring_name
            self.seen.clear()
            ring = self._ring(ring_name) if ring_name else None
            if ring is not None:
                self.reader = ring.reader(start="oldest", name="top")
        if instrument != self.sel_instrument:
            self.sel_instrument = instrument
            self.book = LocalBook()
            self.trades.clear()
            self.last_quote = None

    def move(self, dv: int = 0, di: int = 0) -> None:
        """Arrow keys: dv changes the venue (ring), di the instrument within it."""
        names = [n for n in self.ring_names() if self._ring(n) is not None]
        if not names:
            return
        ring = self.sel_ring if self.sel_ring in names else names[0]
        if dv:
            ring = names[(names.index(ring) + dv) % len(names)]
            self.select(ring, None)
            return
        ids = self.instruments(ring)
        if not ids:
            return
        cur = self.sel_instrument if self.sel_instrument in ids else ids[0]
        self.select(ring, ids[(ids.index(cur) + di) % len(ids)] if di else cur)

    def instruments(self, ring_name: str) -> list[int]:
        """Instruments of the ring's venue: from the registry, else those seen in the ring."""
        v = venue_of(ring_name)
        ids = sorted(int(i.id) for i in self.names(ring_name).all() if i.venue == v)
        return ids or sorted(self.seen)

    def _initial_selection(self, names: list[str]) -> None:
        if self.sel_ring is not None or not names:
            return
        ring = names[0]
        if self.want_venue:
            for n in names:
                if n == self.want_venue or venue_of(n) == self.want_venue:
                    ring = n
                    break
        inst = None
        if self.want_symbol:
            found = self.names(ring).resolve(venue_of(ring), self.want_symbol)
            inst = found[0] if found else None
        self.select(ring, inst)

    # -- the selected instrument's live data -------------------------------------------------------
    def _consume(self) -> None:
        if self.reader is None:
            return
        got = 0
        while got < CATCH_UP:
            recs = self.reader.read(1 << 15, timeout=0)
            if not len(recs):
                break
            got += len(recs)
            ids, counts = np.unique(recs["instrument"], return_counts=True)
            for i, c in zip(ids.tolist(), counts.tolist()):
                if i:
                    self.seen[i] = self.seen.get(i, 0) + c
            if self.sel_instrument is None:
                tr = recs[recs["kind"] == Kind.TRADE]
                if len(tr):
                    self.sel_instrument = int(tr["instrument"][0])
                else:
                    continue
            mine = recs[recs["instrument"] == self.sel_instrument]
            if not len(mine):
                continue
            k = mine["kind"]
            self.book.apply(mine[k == Kind.BOOK])
            for t in mine[k == Kind.TRADE][-self.trades.maxlen:]:
                self.trades.appendleft((int(t["ts_recv"]), int(t["side"]), float(t["price"]),
                                        float(t["size"])))
            q = mine[k == Kind.QUOTE]
            if len(q):
                self.last_quote = q[-1].copy()

    def _book_table(self, ring_name: str):
        ns = namespace_of(ring_name)
        name = f"{ns}.book.{venue_of(ring_name)}" if ns else f"book.{venue_of(ring_name)}"
        if name not in self._book_tables:
            try:
                from shm.table import Table
                self._book_tables[name] = Table.attach(name)
            except Exception:
                self._book_tables[name] = None
        return self._book_tables[name]

    def _ladder(self, depth: int = 20) -> dict:
        bids, asks, source = [], [], "ring"
        table = self._book_table(self.sel_ring) if self.sel_ring else None
        iid = self.sel_instrument
        if table is not None and iid is not None and iid < table.slots:
            try:
                row = table.read(iid)
                if int(row["instrument"]) == iid and (row["n_bids"] or row["n_asks"]):
                    bids = [tuple(map(float, x)) for x in row["bids"][:int(row["n_bids"])][:depth]]
                    asks = [tuple(map(float, x)) for x in row["asks"][:int(row["n_asks"])][:depth]]
                    source = "book table"
            except Exception:
                pass
        if not bids and not asks:
            bids, asks = self.book.top(depth)
        if not bids and not asks and self.last_quote is not None:
            q = self.last_quote
            bids = [(float(q["bid_price"]), float(q["bid_size"]))]
            asks = [(float(q["ask_price"]), float(q["ask_size"]))]
            source = "quotes"
        return {"bids": bids, "asks": asks, "source": source}

    # -- one snapshot --------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        now_ns = time.time_ns()
        now = time.monotonic()
        names = [n for n in self.ring_names() if self._ring(n) is not None]
        self._forget([n for n in self.rings if n not in names])
        self._initial_selection(names)
        now_q = time.monotonic()
        if now_q - self._grades_at > 1.0:        # grades change once a second at most
            self._grades, self._grades_at = quality_grades(self.namespace), now_q
        grades = self._grades
        venues = []
        for name in names:
            r = self._ring(name)
            info = r.info()
            c = info["counters"]
            pub = info["published"]
            newest = None
            if pub:
                rec = r.records[(pub - 1) & r.mask].copy()
                if int(rec["seq"]) == pub - 1:
                    newest = int(rec["ts_recv"])
            prev = self.prev.get(name)
            msgs = recs_s = None
            if prev is not None and now > prev[0]:
                dt = now - prev[0]
                msgs = max(0, c["messages"] - prev[1]) / dt
                recs_s = max(0, pub - prev[2]) / dt
            self.prev[name] = (now, c["messages"], pub)
            cons = [x for x in info["consumers"] if x["alive"] and x["pid"] != os.getpid()]
            venue = venue_of(name)
            g = grades.get((namespace_of(name), venue))
            venues.append({
                "ring": name, "venue": venue, "msgs_per_s": msgs, "records_per_s": recs_s,
                "published": pub, "age_ns": (now_ns - newest) if newest else None,
                "lag": max((x["lag"] for x in cons), default=0),
                "lost": sum(x["lost"] for x in cons), "consumers": len(cons),
                "gaps": c["gaps"], "reconnects": c["reconnects"],
                "decode_errors": c["decode_errors"], "connections": c["connections"],
                "producer_pid": info["producer_pid"], "producer_alive": info["producer_alive"],
                "memory": self._memory(info["producer_pid"], now) if info["producer_alive"] else None,
                "grade": g})
        self._consume()
        sel = None
        if self.sel_ring is not None:
            iid = self.sel_instrument
            nm = self.names(self.sel_ring)
            inst = nm.instrument(iid) if iid else None
            sel = {"ring": self.sel_ring, "venue": venue_of(self.sel_ring), "instrument": iid,
                   "symbol": nm.symbol(iid) if iid else None,
                   "normalized": inst.normalized if inst else None,
                   "market": inst.market if inst else None,
                   **self._ladder(), "trades": list(self.trades)[:20]}
        return {"now_ns": now_ns, "namespace": self.namespace, "venues": venues, "selected": sel}

    def _forget(self, gone: list[str]) -> None:
        """Drop rings that were removed (an appliance stopped): a ring created again under the
        same name is a new segment and must be mapped afresh."""
        for name in gone:
            if name == self.sel_ring:
                self.select(None, None)
            ring = self.rings.pop(name)
            self.prev.pop(name, None)
            try:
                ring.close()
            except BufferError:
                pass

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        for t in self._book_tables.values():
            if t is not None:
                t.close()
        for r in self.rings.values():
            r.close()


def quality_grades(namespace: str | None = None) -> dict:
    """(namespace, venue) -> worst grade of its instruments, from the compactor's quality tables."""
    try:
        from tools.quality import live_rows
        rows = live_rows(namespace, with_symbols=False)
    except Exception:
        return {}
    out: dict[tuple[str, str], str] = {}
    for r in rows or ():
        key, g = (r.get("namespace"), r.get("venue")), r.get("grade")
        if not key[1] or g not in GRADE_ORDER:
            continue
        if key not in out or GRADE_ORDER.index(g) > GRADE_ORDER.index(out[key]):
            out[key] = g
    return out


# ---------------------------------------------------------------------------------- rendering
def _cell(v, fmt, dash="-"):
    return dash if v is None else fmt(v)


def render(snap: dict, width: int = 80, height: int = 24) -> list[str]:
    """The screen as lines (each at most width-1 characters, at most height lines). Pure."""
    w = max(20, width - 1)
    lines = []
    clock = fmt_time(snap["now_ns"])
    ns = snap.get("namespace")
    title = f"tickring top  {clock} UTC" + (f"  ns={ns}" if ns else "")
    keys = "q quit, arrows: venue/symbol"
    lines.append((title + " " * max(1, w - len(title) - len(keys)) + keys)[:w])
    head = (f"{'VENUE':<12}{'MSG/S':>7}{'REC/S':>7}{'AGE':>8}{'LAG':>6}{'LOST':>6}{'GAPS':>5}"
            f"{'RECON':>6}  {'GRADE':<10}{'MEM':>8}")
    lines.append(head[:w])
    venues = snap["venues"]
    max_rows = max(1, min(len(venues), height // 2 - 2))
    for v in venues[:max_rows]:
        alive = v["producer_alive"]
        name = v["venue"] if alive else v["venue"] + "*"
        row = (f"{name[:11]:<12}{_cell(v['msgs_per_s'], fmt_count):>7}"
               f"{_cell(v['records_per_s'], fmt_count):>7}{_cell(v['age_ns'], fmt_duration_ns):>8}"
               f"{fmt_count(v['lag']):>6}{fmt_count(v['lost']):>6}{fmt_count(v['gaps']):>5}"
               f"{fmt_count(v['reconnects']):>6}  {(v['grade'] or '-')[:10]:<10}"
               f"{_cell(v['memory'], fmt_bytes):>8}")
        lines.append(row[:w])
    if len(venues) > max_rows:
        lines.append(f"... {len(venues) - max_rows} more rings (--namespace to narrow)"[:w])
    if not venues:
        lines.append("no rings in /dev/shm: start the appliance (tickring run) or a producer"[:w])
    sel = snap.get("selected")
    lines.append("")
    if sel is None:
        return (lines + [""] * height)[:height]
    bids, asks = sel["bids"], sel["asks"]
    label = f"{sel['venue']} {sel['symbol'] or '(waiting for trades)'}"
    if sel.get("normalized"):
        label += f" ({sel['normalized']} {sel.get('market') or ''})".rstrip()
    if bids and asks:
        spread = asks[0][0] - bids[0][0]
        label += f"  bid {fmt_num(bids[0][0])}  ask {fmt_num(asks[0][0])}  spread {fmt_num(spread)}"
    lines.append(label[:w])
    room = height - len(lines) - 1
    half = max(1, (room - 1) // 2)
    left_w = min(30, w // 2)
    ladder = [f"{'ask':<4}{fmt_num(p):>13} {fmt_num(s):>11}" for p, s in reversed(asks[:half])]
    ladder = [""] * (half - len(ladder)) + ladder
    ladder.append(f"{'--- ' + sel['source'] + ' ':-<{left_w - 1}}"[:left_w])
    ladder += [f"{'bid':<4}{fmt_num(p):>13} {fmt_num(s):>11}" for p, s in bids[:half]]
    trades = [f"{fmt_time(t)[:12]} {('buy' if sd == Side.BUY else 'sell' if sd == Side.SELL else ''):<4}"
              f"{fmt_num(p):>12} {fmt_num(s):>11}" for t, sd, p, s in sel["trades"]]
    trades = ["last trades"] + (trades or ["(none yet)"])
    for i in range(max(len(ladder), 0)):
        left = ladder[i] if i < len(ladder) else ""
        right = trades[i] if i < len(trades) else ""
        lines.append((f"{left:<{left_w}} {right}")[:w])
        if len(lines) >= height - 1:
            break
    lines = lines[:height - 1]
    lines += [""] * (height - 1 - len(lines))
    lines.append("* = producer not running"[:w])
    return lines[:height]


# ---------------------------------------------------------------------------------- terminal
def run_curses(collector: Collector) -> None:
    import curses

    def loop(scr):
        curses.curs_set(0)
        scr.timeout(int(REFRESH_S * 1000))
        scr.keypad(True)
        while True:
            t0 = time.monotonic()
            snap = collector.snapshot()
            h, w = scr.getmaxyx()
            scr.erase()
            for y, line in enumerate(render(snap, w, h)):
                try:
                    scr.addnstr(y, 0, line, max(0, w - 1))
                except curses.error:
                    pass
            scr.refresh()
            left = REFRESH_S - (time.monotonic() - t0)
            scr.timeout(max(1, int(left * 1000)))
            ch = scr.getch()
            if ch in (ord("q"), ord("Q"), 27):
                return
            if ch == curses.KEY_LEFT:
                collector.move(dv=-1)
            elif ch == curses.KEY_RIGHT:
                collector.move(dv=1)
            elif ch == curses.KEY_UP:
                collector.move(di=-1)
            elif ch == curses.KEY_DOWN:
                collector.move(di=1)

    curses.wrapper(loop)


@click.command()
@click.option("--namespace", default=None,
              help="Only rings of this appliance namespace (the demo's is 'demo'; '' = no prefix).")
@click.option("--venue", default=None, help="Venue (or ring) whose book and trades to show first.")
@click.option("--symbol", default=None, help="Instrument to show first: native symbol, BASE-QUOTE or id.")
@click.option("--registry", default=None, help="Instrument registry (default: the ring's namespace's).")
@click.option("--once", is_flag=True, help="Print one frame as text and exit (no full screen).")
@click.option("--json", "as_json", is_flag=True, help="Print one snapshot as JSON and exit.")
@click.option("--size", default="80x24", show_default=True, help="Frame size for --once, WxH.")
@friendly
def command(namespace, venue, symbol, registry, once, as_json, size):
    """Live dashboard: per ring messages/s, records/s, age of the newest record (frame to now),
    consumer lag and losses, gaps, reconnects, quality grade, producer memory; below, the order
    book ladder and last trades of one instrument.

    Refreshes 10 times a second; fits 80x24 and works over SSH. Keys: q quits, left/right
    arrows pick the venue, up/down the instrument. A venue marked * has no live producer.
    AGE is now minus the receive time of the ring's newest record; LAG and LOST are the worst
    live consumer's; MEM is the producer's resident memory (including its ring pages).
    """
    col = Collector(namespace, venue, symbol, registry)
    try:
        if as_json or once:
            col.snapshot()
            time.sleep(0.3)                  # two samples give the rates
            snap = col.snapshot()
            if as_json:
                import orjson
                click.echo(orjson.dumps(snap, option=orjson.OPT_SERIALIZE_NUMPY).decode())
            else:
                try:
                    w, h = (int(x) for x in size.lower().split("x"))
                except ValueError:
                    raise click.BadParameter(f"size must be WxH like 80x24, got {size!r}") from None
                click.echo("\n".join(render(snap, w, h)))
            return
        import sys
        if not sys.stdout.isatty():
            raise click.ClickException("tickring top needs a terminal; use --once or --json in scripts")
        run_curses(col)
    finally:
        col.close()
