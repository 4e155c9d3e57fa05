"""The simulator's Coinbase, Kraken, Bitget, Gate.io and KuCoin protocols against the venues' own
declarations and decoders: subscribe with feeds.<venue>.subscribe(), decode every frame with the
pure decoder (nothing may fail to decode), keep books with the real book keeper (REST seeding,
sequence rules, checksums) and check that a `gap` fault is detected the way each venue allows.
Message shapes are compared with the documentation samples in ../shared/wire-samples."""
from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request

import orjson
import pytest
from picows import WSListener, WSMsgType, ws_connect

from feeds import venue as venue_decl
from feeds.book import BookKeeper
from feeds.coinbase import LOST
from feeds.decoder import InstrumentMap
from feeds.sim import running
from shm.record import Kind
import wire_samples

VENUES = ["coinbase", "kraken", "bitget", "gateio", "kucoin"]
PATHS = {"coinbase": "/", "kraken": "/v2", "bitget": "/v2/ws/public", "gateio": "/ws/v4/"}


class Rec(WSListener):
    def __init__(self):
        self.frames: list[bytes] = []
        self.closed = False

    def on_ws_frame(self, transport, frame):
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            self.frames.append(frame.get_payload_as_bytes())

    def on_ws_disconnected(self, transport):
        self.closed = True


def http(url: str, method: str = "GET", params: dict | None = None) -> bytes:
    q = urllib.parse.urlencode(params or {})
    req = urllib.request.Request(url + (f"?{q}" if q else ""), method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


async def wait_for(pred, timeout: float = 8.0, what: str = "condition", detail=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}" + (f": {detail()}" if detail else ""))


class Feed:
    """One venue: a socket, its decoder, a book keeper fed like the worker feeds it."""

    def __init__(self, sim, name: str, symbols: list[str]):
        self.sim, self.name, self.symbols = sim, name, symbols
        self.v = venue_decl(name)
        self.dec = self.v.decoder(InstrumentMap(name))
        self.keeper = BookKeeper(self.v.book_rule, depth=self.v.book_depth,
                                 checksum=self.v.extra.get("book_checksum"),
                                 request_snapshot=self._want)
        self.wanted: list[int] = []
        self.kinds: dict[int, int] = {}
        self.json: list = []
        self.done = 0
        self.lost_events = 0
        self.sent: list[bytes] = []
        self.sent_at: list[float] = []
        self.queue: list[bytes] = []
        self.resyncing: set[int] = set()
        self.venue_resyncs = 0
        self.keeper_knows_lost = self.keeper.rule.check == "lost"

    def _want(self, instrument: int) -> None:
        self.wanted.append(instrument)

    async def open(self):
        if self.name == "kucoin":
            body = http(self.sim.rest_url("kucoin") + "/api/v1/bullet-public", method="POST")
            url, _, _ = self.v.extra["connect_url"](body, ws_base=self.sim.url("kucoin"))
        else:
            url = self.sim.url(self.name) + PATHS[self.name]
        self.t, self.rec = await ws_connect(Rec, url)
        if self.name == "kucoin":
            await wait_for(lambda: self.rec.frames, what="kucoin welcome")
        ((path, msgs),) = self.v.subscribe(self.symbols, ["trades", "quotes", "book"])
        for m in msgs:
            self.send(m)

    def pump(self) -> None:
        """Decode what arrived, run the book keeper, answer its REST snapshot requests."""
        self.flush()
        frames = self.rec.frames[self.done:]
        self.done += len(frames)
        for f in frames:
            self.json.append(f)
            dec = self.dec
            dec.out.clear()
            dec.book_events.clear()
            dec.feed(f, time.time_ns())           # a DecodeError fails the test
            buf, kinds = dec.out.buf, self.kinds
            for off in range(28, dec.out.n * 64, 64):      # the kind byte of each record
                kinds[buf[off]] = kinds.get(buf[off], 0) + 1
            if dec.book_events:
                for e in dec.book_events:
                    if e.prev == LOST and e.instrument not in self.resyncing:
                        self.lost_events += 1
                        self.resyncing.add(e.instrument)
                        if not self.keeper_knows_lost:
                            # an older keeper: do what the worker must do, resubscribe
                            for m in self.v.extra["resync_messages"](dec.symbol(e.instrument)):
                                self.send(m)
                    elif e.snapshot and e.instrument in self.resyncing:
                        self.resyncing.discard(e.instrument)
                        self.venue_resyncs += 1
                self.keeper.check(list(dec.book_events), dec.out.buf)
        while self.wanted:
            inst = self.wanted.pop()
            sym = self.dec.symbol(inst)
            if self.v.snapshot_request is None:       # venue-seeded: resubscribe for a snapshot
                for m in self.v.extra["resync_messages"](sym):
                    self.send(m)
                continue
            path, params = self.v.snapshot_request(sym)
            last_id, bids, asks = self.v.parse_snapshot(http(self.sim.rest_url(self.name) + path,
                                                             params=params))
            self.keeper.rest_snapshot(inst, last_id, bids, asks)

    def send(self, m: bytes) -> None:
        """Queued: the venue's declared message rate is respected (the sim enforces it)."""
        self.queue.append(m)
        self.flush()

    def flush(self) -> None:
        now = time.monotonic()
        per_s = self.v.limits.subscribe_msgs_per_s
        while self.queue:
            recent = [t for t in self.sent_at if now - t < 1.05]
            if len(recent) >= per_s - 1:
                break
            m = self.queue.pop(0)
            self.sent.append(m)
            self.sent_at.append(now)
            self.t.send(WSMsgType.TEXT, m)

    def noticed_loss(self) -> bool:
        """Coinbase's keeper rule has no sequence check: its decoder counts sequence_num gaps."""
        if self.name == "coinbase":
            return self.dec.sequence_gaps > 0
        return self.keeper.gaps + self.keeper.checksum_errors > 0

    def status(self) -> str:
        k = self.keeper
        return (f"{self.name}: closed {self.rec.closed} books {len(k.books)} synced {self.synced()} gaps {k.gaps} "
                f"checksum {k.checksum_errors} resyncs {k.resyncs} frames {len(self.json)} kinds {self.kinds} "
                f"sent {len(self.sent)} {self.sent[-8:] if self.name == 'coinbase' else ''}")

    def synced(self) -> bool:
        return len(self.keeper.books) == len(self.symbols) and all(
            self.keeper.venue_snapshot_done(i) for i in self.keeper.books)


def sample(venue_file: str, channel_prefix: str) -> dict:
    for m in wire_samples.document(venue_file)["messages"]:
            if m["channel"].startswith(channel_prefix):
                return m["payload"]
    raise KeyError(channel_prefix)


def keys(d: dict) -> set:
    return set(d)


@pytest.fixture(scope="module")
def sim():
    with running(VENUES, symbols=3, rate=3000, seed=11) as s:
        yield s


@pytest.fixture(scope="module")
def feeds_run(sim):
    """All five venues subscribed at once; decoded, books kept, for a couple of seconds."""
    async def go():
        feeds = {}
        for name in VENUES:
            feeds[name] = Feed(sim, name, sim.symbols(name))
            await feeds[name].open()

        def pump_all():
            for f in feeds.values():
                f.pump()
            return all(f.synced() and f.kinds.get(Kind.TRADE, 0) >= 5 and f.kinds.get(Kind.QUOTE, 0) >= 5
                       and f.kinds.get(Kind.BOOK, 0) >= 50 for f in feeds.values())

        await wait_for(pump_all, timeout=20.0, what="all five feeds in sync with data",
                       detail=lambda: [f.status() for f in feeds.values()])
        clean = {n: (f.keeper.gaps, f.keeper.checksum_errors) for n, f in feeds.items()}
        # a gap fault on the first symbol of every venue: each must notice it its own way
        for name, f in feeds.items():
            # five lost updates: some surely touch Kraken's checksummed top 10 levels
            sim.fault(name, "gap", symbol=f.symbols[0], count=5)
        before = {n: len(f.json) for n, f in feeds.items()}

        def noticed():
            for f in feeds.values():
                f.pump()
            return all(f.noticed_loss() for f in feeds.values())

        await wait_for(noticed, timeout=20.0, what="gap faults detected",
                       detail=lambda: [f.status() for f in feeds.values()])

        def resynced():
            for f in feeds.values():
                f.pump()
            cb = feeds["coinbase"]
            return cb.venue_resyncs >= 1 and not cb.resyncing and all(
                f.synced() and f.keeper.resyncs >= 1 for n, f in feeds.items() if n != "coinbase")

        await wait_for(resynced, timeout=20.0, what="books rebuilt after the gaps",
                       detail=lambda: [f.status() for f in feeds.values()])
        for f in feeds.values():
            f.t.disconnect()
        return feeds, clean, before

    return asyncio.run(go())


def test_every_frame_decodes_and_books_stay_consistent(feeds_run):
    feeds, clean, _ = feeds_run
    for name, f in feeds.items():
        assert clean[name] == (0, 0), f"{name}: gaps/checksum errors before any fault: {clean[name]}"
        assert f.kinds[Kind.TRADE] >= 5 and f.kinds[Kind.QUOTE] >= 5 and f.kinds[Kind.BOOK] >= 50, name
        for inst, b in f.keeper.books.items():
            if f.keeper.venue_snapshot_done(inst) and b.bids and b.asks:
                bp, _, ap, _ = b.best()
                assert bp < ap, f"{name}: crossed book"


def test_gap_faults_are_detected(feeds_run):
    feeds, _, _ = feeds_run
    # sequence venues see a gap, checksum venues a checksum mismatch
    for name in ("bitget", "gateio", "kucoin"):
        assert feeds[name].keeper.gaps >= 1, name
    assert feeds["kraken"].keeper.checksum_errors >= 1
    # Coinbase: sequence_num skips; the decoder counts it and marks the next book events LOST
    assert feeds["coinbase"].dec.sequence_gaps >= 1
    assert feeds["coinbase"].lost_events >= 1 and feeds["coinbase"].venue_resyncs >= 1
    # and the others rebuilt the book: a REST snapshot (Gate.io, KuCoin) or a re-subscription
    for name in ("kraken", "bitget", "gateio", "kucoin"):
        assert feeds[name].keeper.resyncs >= 1 and feeds[name].synced(), name


def test_message_shapes_match_the_docs(feeds_run):
    feeds, _, _ = feeds_run

    def first(name, pred):
        for raw in feeds[name].json:
            try:
                m = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(m, dict) and pred(m):
                return m
        raise AssertionError(f"{name}: no such message")

    cb = first("coinbase", lambda m: m.get("channel") == "market_trades")
    doc = sample("coinbase.json", "market_trades")
    assert keys(cb) == keys(doc) and keys(cb["events"][0]["trades"][0]) == keys(doc["events"][0]["trades"][0])
    l2 = first("coinbase", lambda m: m.get("channel") == "l2_data")
    assert keys(l2["events"][0]["updates"][0]) == \
        keys(sample("coinbase.json", "level2")["events"][0]["updates"][0])
    kb = first("kraken", lambda m: m.get("channel") == "book" and m.get("type") == "update")
    kdoc = sample("kraken_v2.json", "book")
    assert keys(kb["data"][0]) == keys(kdoc["data"][0]) and isinstance(kb["data"][0]["checksum"], int)
    kt = first("kraken", lambda m: m.get("channel") == "trade")
    assert keys(kt["data"][0]) == keys(sample("kraken_v2.json", "trade")["data"][0])
    bt = first("bitget", lambda m: m.get("arg", {}).get("channel") == "trade" and "data" in m)
    assert keys(bt["data"][0]) == keys(sample("bitget_v2.json", "trade")["data"][0])
    bb = first("bitget", lambda m: m.get("arg", {}).get("channel") == "books" and m.get("action") == "update")
    assert {"asks", "bids", "seq", "ts", "checksum"} <= keys(bb["data"][0])
    gt = first("gateio", lambda m: m.get("channel") == "spot.trades" and m.get("event") == "update")
    assert keys(gt["result"]) == keys(sample("gateio_v4.json", "spot.trades")["result"])
    go = first("gateio", lambda m: m.get("channel") == "spot.order_book_update" and m.get("event") == "update")
    assert keys(go["result"]) == keys(sample("gateio_v4.json", "spot.order_book_update")["result"])
    km = first("kucoin", lambda m: m.get("subject") == "trade.l3match")
    assert keys(km["data"]) == keys(sample("kucoin.json", "match")["data"])
    kl = first("kucoin", lambda m: m.get("subject") == "trade.l2update")
    assert keys(kl["data"]) == keys(sample("kucoin.json", "level2 increment")["data"])


def test_rest_endpoints_feed_the_declared_parsers(sim):
    for name in VENUES:
        v = venue_decl(name)
        path, params = v.instruments_request
        inst = v.parse_instruments(http(sim.rest_url(name) + path, params=params))
        assert [i["symbol"] for i in inst] == sim.symbols(name)
        assert all(i["tick_size"] > 0 and i["lot_size"] > 0 for i in inst)
        sym = inst[0]["symbol"]
        path, params = v.trades_request(sym, 0)
        trades = v.parse_trades(http(sim.rest_url(name) + path, params=params))
        state = sim.state(name, sym, trades=5)
        ids = sorted(t[0] for t in trades)
        assert ids and state["trades"]["kept_from_id"] <= ids[0] and ids[-1] <= state["trades"]["last_id"]
        assert len(set(ids)) == len(ids)
        assert all(t[2] > 0 and t[3] > 0 and t[4] in (1, 2) for t in trades)
    # the Kraken instrument list gives the checksum precisions
    from feeds import kraken
    assert kraken.PRECISION["BTC/USDT"] == (2, 5)


def test_notice_malformed_and_token_faults(sim):
    """Kraken's maintenance status is a shutdown notice; a malformed frame is a DecodeError (the
    worker counts and skips it); venues without a documented notice refuse the fault; KuCoin
    refuses a websocket without an issued token."""
    from feeds.decoder import DecodeError
    from feeds.sim import SimError

    async def go():
        f = Feed(sim, "kraken", sim.symbols("kraken")[:1])
        await f.open()
        await wait_for(lambda: (f.pump() or True) and f.kinds.get(Kind.BOOK, 0) > 0, what="kraken book")
        sim.fault("kraken", "notice")
        sim.fault("kraken", "malformed", symbol=f.symbols[0])
        errors, notices = [], []

        def seen():
            for raw in f.rec.frames[f.done:]:
                f.done += 1
                f.dec.notices.clear()
                try:
                    f.dec.decode(raw)
                except DecodeError as e:
                    errors.append(e)
                notices.extend(f.dec.notices)
            return errors and notices
        await wait_for(seen, what="notice and malformed frame")
        f.t.disconnect()
        with pytest.raises(Exception):
            await ws_connect(Rec, sim.url("kucoin") + "/?token=forged&connectId=x")
        return errors, notices

    errors, notices = asyncio.run(go())
    assert notices == ["shutdown"] and "kraken" in str(errors[0])
    for name in ("coinbase", "bitget", "gateio", "kucoin"):
        with pytest.raises(SimError, match="documents no forced-disconnect notice"):
            sim.fault(name, "notice")
