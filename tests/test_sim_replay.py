"""Flood replay (feeds/sim/replay.py, Engine.flood): replayed cycles must be indistinguishable from
live data for the worker's decoders and book keeper. In process, deterministic, no sockets: one
Engine per venue, sessions subscribed with the worker's own plan, engine.flood() stepped with a
clock 1 s apart, every written frame decoded by feeds' decoder and checked by the real book
keeper (sequence rules, checksums) seeded with the sim's REST snapshot; trade ids contiguous."""
from __future__ import annotations

import time
import urllib.parse

import pytest

import feeds
from feeds.book import BookKeeper
from feeds.decoder import InstrumentMap
from feeds.planner import plan
from feeds.sim.engine import Engine
from feeds.sim.market import instruments
from feeds.sim.protocol import PROTOCOLS, Session
from feeds.sim.replay import Template, Unusable
from shm.record import Kind

VENUES = list(PROTOCOLS)


class Conn:
    """What a Session writes to: the bytes, in order."""
    closed = False

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(bytes(data))

    def close_ws(self, code=1000, reason=b""):
        self.closed = True

    def abort(self):
        self.closed = True


def ws_frames(data: bytes):
    """(opcode, payload) of the server's unmasked frames."""
    pos = 0
    while pos < len(data):
        op, n = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            n, pos = int.from_bytes(data[pos:pos + 2], "big"), pos + 2
        elif n == 127:
            n, pos = int.from_bytes(data[pos:pos + 8], "big"), pos + 8
        yield op, data[pos:pos + n]
        pos += n


def subscribe(e: Engine, venue: str):
    """Sessions subscribed like the worker subscribes: [(session, path)]."""
    v = feeds.venue(venue)
    first = e.proto.markets[0]
    if "market_for_path" in v.extra:
        symbols = [b.native if b.market == first else f"perp:{b.native}" for b in e.book_list]
    else:
        symbols = list(dict.fromkeys(b.native for b in e.book_list))
    out = []
    for p in plan(v, symbols):
        url = urllib.parse.urlsplit(urllib.parse.urlsplit(v.ws_url).path.rstrip("/") + p.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if venue == "kucoin":                         # a tokenized URL, as bullet-public gives it
            _, body = e.proto.rest("POST", "/api/v1/bullet-public", {})
            query = {"token": body["data"]["token"], "connectId": "t1"}
        s = Session(Conn(), e, url.path or "/")
        assert e.proto.open(s, s.path, query), f"{venue} refused {s.path}"
        e.attach(s)
        e.proto.on_open(s)
        for m in p.messages:
            e.proto.on_text(s, m if isinstance(m, bytes) else m.encode())
        out.append((s, p.path))
    return out


@pytest.mark.parametrize("venue", VENUES)
def test_replayed_flood_decodes_in_sequence_with_contiguous_trade_ids(venue):
    e = Engine(venue, instruments(3, 7), 0.0, 7)
    e.rebuild_s = 1e9                                 # rebuilds only where the test asks
    sessions = subscribe(e, venue)
    ts0 = int(time.time() * 1000)
    steps = 11
    for i in range(steps):
        e.flood(ts0 + 1000 * i)
        if i == 0:      # what REST says between cycles (after a message the worker buffered)
            snapshot = {b.native: (b.uid, b.top(b.depth)) for b in e.book_list}
        if i == 1:
            e.tick(ts0 + 1000 * i)       # periodic frames (heartbeats take sequence numbers),
                                         # then a new cycle: live batch, render, replay again
        if i == 7:
            e.changed()                  # and once more (live numbers follow replayed ones)
    assert e.replayed >= steps - 6, "the flood never replayed a cycle"

    v = feeds.venue(venue)
    imap = InstrumentMap(venue)
    wanted: list[int] = []
    keeper = BookKeeper(v.book_rule, depth=v.book_depth, checksum=v.extra.get("book_checksum"),
                        request_snapshot=wanted.append)
    market_for = v.extra.get("market_for_path")
    trade_ids: dict[int, list[int]] = {}
    last_ts: dict[int, int] = {}
    last_book: dict[int, int] = {}
    n = 0
    for s, path in sessions:
        dec = v.decoder(imap, market=market_for(path)) if callable(market_for) else v.decoder(imap)
        for op, payload in ws_frames(b"".join(s.conn.chunks)):
            if op != 1:
                continue
            n += 1
            dec.out.clear()
            dec.book_events.clear()
            dec.feed(payload, time.time_ns())          # a DecodeError fails the test
            for r in dec.out.array():
                if r["kind"] == Kind.TRADE:
                    trade_ids.setdefault(int(r["instrument"]), []).append(int(r["id"]))
                    last_ts[int(r["instrument"])] = int(r["ts_event"])
            if dec.book_events:
                keeper.check(list(dec.book_events), dec.out.buf)
                for ev in dec.book_events:
                    last_book[ev.instrument] = ev.last
            for inst in list(wanted):
                uid, (bids, asks) = snapshot[imap.symbol(inst)]
                if last_book.get(inst, -1) < uid:      # the answer comes after the stream passed it
                    continue
                wanted.remove(inst)
                assert keeper.rest_snapshot(inst, uid, [(p.decode(), q.decode()) for p, q in bids],
                                            [(p.decode(), q.decode()) for p, q in asks])
    assert n > 5000 and not wanted
    assert (keeper.gaps, keeper.resyncs, keeper.checksum_errors, keeper.crossings) == (0, 0, 0, 0)
    assert trade_ids
    for inst, ids in trade_ids.items():
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"{imap.symbol(inst)}: trade ids not contiguous"
    # clocks advance with the replayed cycles (not frozen at the rendering)
    for inst, ts in last_ts.items():
        assert abs(ts - (ts0 + 1000 * (steps - 1)) * 1_000_000) < 1_000_000_000, imap.symbol(inst)
    # the worker's books are the sim's books (deltas and closing deltas applied exactly)
    assert keeper.books
    for inst, book in keeper.books.items():
        native, market = imap.symbol(inst), imap.market(inst)
        sim_books = [b for b in e.book_list if b.native == native]
        sim_book = sim_books[0] if len(sim_books) == 1 else next(
            b for b in sim_books if (b.market == "spot") == (market == "spot"))
        bids, asks = sim_book.top(5)
        assert book.top(5) == ([(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks]), native
    # the model's counters and REST history follow the replayed cycles
    e.sync()
    for b in e.book_list:
        if b.trades:
            tids = [t[0] for t in b.trades]
            assert tids == list(range(tids[0], tids[0] + len(tids))) and tids[-1] == b.trade_id, b.native
    if v.book_rule in ("binance", "binance_usdm", "gateio", "kucoin", "okx"):
        for inst, last in last_book.items():
            native = imap.symbol(inst)
            assert any(b.uid == last for b in e.book_list if b.native == native), native


def test_template_patches_counters_and_clocks_and_refuses_what_it_cannot():
    ts = 1_763_700_000_123
    a = b'{"E":%d,"t":1009,"u":20000,"p":"1.05","T":"2025-11-21T04:40:00.123Z","c":%d}' % (ts, ts - 2)
    b = b'{"E":%d,"t":1019,"u":20007,"p":"1.05","T":"2025-11-21T04:40:00.123Z","c":%d}' % (ts, ts - 2)
    t = Template(a, b, ts, frames=1)
    assert t.render(2, ts + 5000) == (b'{"E":%d,"t":1039,"u":20021,"p":"1.05","T":"2025-11-21T04:40:05.123Z","c":%d}'
                                      % (ts + 5000, ts + 4998))
    assert t.kmax == (9999 - 1019) // 10
    with pytest.raises(Unusable):
        Template(b'{"s":"a"}', b'{"s":"b"}', ts)
    with pytest.raises(Unusable):
        Template(b'{"u":9}', b'{"u":10}', ts)


def test_rate_changes_at_run_time():
    """/_sim/rate: a flood sim without subscribers generates nothing; at a rate it does."""
    from feeds.sim import SimError, running
    with running(["binance"], symbols=2, rate=0) as sim:
        assert sim.stats()["binance"]["events"] == 0
        assert sim.set_rate("binance", 500) == {"venue": "binance", "rate": 500.0}
        deadline = time.monotonic() + 10
        while sim.stats()["binance"]["events"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sim.stats()["binance"]["events"] > 0
        with pytest.raises(SimError, match="rate must be >= 0"):
            sim.set_rate("binance", -1)


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_a_gap_fault_during_a_replayed_flood_skips_exactly_its_updates(venue):
    from feeds.sim import faults
    e = Engine(venue, instruments(2, 7), 0.0, 7)
    e.rebuild_s = 1e9
    ((s, path),) = subscribe(e, venue)
    ts0 = int(time.time() * 1000)
    e.flood(ts0)
    e.flood(ts0 + 1000)
    assert e.replayed == 1
    b = e.book_list[0]
    faults.inject(e, {"kind": "gap", "symbol": b.native, "market": b.market, "count": "2"})
    for i in range(2, 6):
        e.flood(ts0 + 1000 * i)
    assert b.gap == 0 and e.replayed >= 2          # applied live, then replaying again
    v = feeds.venue(venue)
    dec = v.decoder(InstrumentMap(venue))
    chain: list[tuple[int, int, int]] = []
    for op, payload in ws_frames(b"".join(s.conn.chunks)):
        if op != 1:
            continue
        dec.book_events.clear()
        dec.feed(payload, time.time_ns())
        chain += [(ev.first, ev.last, ev.prev) for ev in dec.book_events
                  if not ev.snapshot and dec.symbol(ev.instrument) == b.native]
    breaks = [(p, n) for p, n in zip(chain, chain[1:])
              if (n[2] != p[1] if venue == "okx" else n[0] != p[1] + 1)]
    assert len(breaks) == 1, breaks                # the two skipped updates, nothing else
