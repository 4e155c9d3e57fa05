"""The exchange simulator speaks each venue's protocol: URL paths, acks, ping rules, message
shapes equal to the venues' documented examples, contiguous sequence and trade ids, REST
snapshots consistent with the stream, every fault kind, TLS, and a clean SIGTERM exit.

One simulator process serves the module (rate high enough to see updates within a few hundred
milliseconds); TLS and SIGTERM tests start their own. Clients are plain picows."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import time
import urllib.request

import orjson
import pytest
from picows import WSListener, WSMsgType, ws_connect

from feeds.sim import SimError, running, start_in_background
import wire_samples

SAMPLES = wire_samples.DIR
VENUES = ["binance", "binance_usdm", "bybit", "okx"]


# --- helpers ---------------------------------------------------------------------------------

class Rec(WSListener):
    """Records text frames, server PINGs and the close; answers PINGs unless told not to."""

    def __init__(self, auto_pong: bool = True):
        self.frames: list[bytes] = []
        self.times: list[float] = []
        self.pings: list[bytes] = []
        self.auto_pong = auto_pong
        self.closed = False

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.PING:
            self.pings.append(frame.get_payload_as_bytes())
            if self.auto_pong:
                transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            self.frames.append(frame.get_payload_as_bytes())
            self.times.append(time.monotonic())

    def on_ws_disconnected(self, transport):
        self.closed = True

    def json(self) -> list:
        out = []
        for f in self.frames:
            try:
                out.append(orjson.loads(f))
            except orjson.JSONDecodeError:
                pass
        return out


async def wait_for(pred, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = pred()
        if r:
            return r
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def connect(url: str, auto_pong: bool = True, ssl_context=None):
    return await ws_connect(lambda: Rec(auto_pong), url, enable_auto_pong=False, ssl_context=ssl_context)


def run(coro):
    return asyncio.run(coro)


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def shape(x):
    """The JSON shape of a value: keys and types, lists by their first element."""
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}
    if isinstance(x, list):
        return [shape(x[0])] if x else []
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, (int, float)):
        return "number"
    return type(x).__name__


def same_shape(ours, doc) -> bool:
    """Equal keys and types (recursively); an empty list on either side matches any list."""
    return _same(shape(ours), shape(doc))


def _same(a, b) -> bool:
    if isinstance(b, dict):
        return isinstance(a, dict) and set(a) == set(b) and all(_same(a[k], b[k]) for k in b)
    if isinstance(b, list):
        return isinstance(a, list) and (not a or not b or _same(a[0], b[0]))
    return a == b


def sample(venue_file: str, channel: str, kind: str | None = None) -> dict:
    msgs = wire_samples.document(venue_file)["messages"]
    for m in msgs:
        if m["channel"] == channel and (kind is None or m["kind"] == kind):
            return m["payload"]
    raise KeyError(channel)


needs_samples = pytest.mark.skipif(not os.path.isdir(SAMPLES), reason="wire samples not present")


@pytest.fixture(scope="module")
def sim():
    with running(VENUES, symbols=4, rate=8000, seed=3, args=["--ping-interval", "0.3"]) as s:
        yield s


# --- start-up, URLs, REST --------------------------------------------------------------------

def test_announces_one_port_per_venue_and_serves_instrument_lists(sim):
    assert set(sim.venues) == set(VENUES)
    assert len({sim.port(v) for v in VENUES}) == 4
    assert all(sim.url(v).startswith("ws://127.0.0.1:") for v in VENUES)
    syms = [s["symbol"] for s in get(sim.rest_url("binance") + "/api/v3/exchangeInfo")["symbols"]]
    assert syms == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"]
    fut = get(sim.rest_url("binance_usdm") + "/fapi/v1/exchangeInfo")["symbols"][0]
    assert fut["contractType"] == "PERPETUAL" and fut["filters"][0]["tickSize"] == "0.01"
    lin = get(sim.rest_url("bybit") + "/v5/market/instruments-info?category=linear")
    assert lin["retCode"] == 0 and lin["result"]["list"][0]["lotSizeFilter"]["qtyStep"] == "0.00001"
    okx = get(sim.rest_url("okx") + "/api/v5/public/instruments?instType=SWAP")["data"]
    assert [d["instId"] for d in okx][:2] == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    assert sim.symbols("okx")[:2] == ["BTC-USDT", "ETH-USDT"]
    summary = sim.state("bybit")["books"]
    assert len(summary) == 8 and {b["market"] for b in summary} == {"spot", "perp"}
    assert all(float(b["bid"]) < float(b["ask"]) for b in summary)


def test_unknown_path_is_404_and_bad_control_request_is_400(sim):
    async def go():
        with pytest.raises(Exception):
            await ws_connect(Rec, sim.url("okx") + "/ws/v5/nothing")
    run(go())
    with pytest.raises(SimError, match="unknown fault kind"):
        sim.fault("okx", "earthquake")
    with pytest.raises(SimError, match="no symbol"):
        sim.state("okx", "NOPE-USDT")
    with pytest.raises(SimError, match="documents no forced-disconnect notice"):
        sim.fault("bybit", "notice")


# --- Binance spot ----------------------------------------------------------------------------

@needs_samples
def test_binance_combined_streams_shapes_sequences_and_snapshot(sim):
    async def go():
        url = sim.url("binance") + "/stream?streams=btcusdt@trade/btcusdt@depth@100ms"
        t, rec = await connect(url)
        t.send(WSMsgType.TEXT, b'{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@bookTicker"],"id":7}')
        await wait_for(lambda: {"result": None, "id": 7} in rec.json(), what="SUBSCRIBE ack")
        await wait_for(lambda: sum(1 for m in rec.json() if m.get("stream") == "btcusdt@trade") >= 20
                       and sum(1 for m in rec.json() if m.get("stream") == "btcusdt@depth@100ms") >= 20,
                       what="trades and depth")
        snap = get(sim.rest_url("binance") + "/api/v3/depth?symbol=BTCUSDT&limit=5")
        n0 = len(rec.frames)
        await wait_for(lambda: sum(1 for m in rec.json()[n0:] if m.get("stream", "").startswith("btcusdt@depth")) >= 5,
                       what="depth after the snapshot")
        t.send(WSMsgType.TEXT, b'{"method":"LIST_SUBSCRIPTIONS","id":8}')
        await wait_for(lambda: any(m.get("id") == 8 for m in rec.json()), what="LIST_SUBSCRIPTIONS")
        t.send(WSMsgType.TEXT, b'{"method":"FLY","id":9}')
        await wait_for(lambda: any(m.get("id") == 9 for m in rec.json()), what="error reply")
        t.disconnect()
        return rec.json(), snap

    msgs, snap = run(go())
    by = {}
    for m in msgs:
        if "stream" in m:
            by.setdefault(m["stream"], []).append(m["data"])
    assert same_shape(by["btcusdt@trade"][0], sample("binance_spot.json", "trade"))
    assert same_shape(by["btcusdt@aggTrade"][0], sample("binance_spot.json", "aggTrade"))
    assert same_shape(by["btcusdt@bookTicker"][0], sample("binance_spot.json", "bookTicker"))
    assert same_shape(by["btcusdt@depth@100ms"][0], sample("binance_spot.json", "depth (diff)"))
    assert same_shape(snap, sample("binance_spot.json", "REST depth snapshot (GET /api/v3/depth) used to seed the diff stream"))
    ids = [d["t"] for d in by["btcusdt@trade"]]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    depth = by["btcusdt@depth@100ms"]
    assert all(b["U"] == a["u"] + 1 for a, b in zip(depth, depth[1:]))
    # the snapshot sits exactly between two stream events
    assert any(d["U"] == snap["lastUpdateId"] + 1 for d in depth)
    for d in by["btcusdt@trade"][:50]:
        assert isinstance(d["p"], str) and float(d["p"]) > 0
    lst = next(m for m in msgs if m.get("id") == 8)
    assert set(lst["result"]) == {"btcusdt@trade", "btcusdt@depth@100ms", "btcusdt@aggTrade", "btcusdt@bookTicker"}
    err = next(m for m in msgs if m.get("id") == 9)
    assert err["code"] == 2 and "FLY" in err["msg"]


def test_binance_rest_backfill_by_id_matches_the_stream(sim):
    async def go():
        t, rec = await connect(sim.url("binance") + "/ws/ethusdt@trade")
        await wait_for(lambda: len(rec.frames) >= 10, what="trades")
        t.disconnect()
        return rec.json()
    trades = run(go())
    first = trades[0]
    rows = get(sim.rest_url("binance") + f"/api/v3/historicalTrades?symbol=ETHUSDT&fromId={first['t']}&limit=5")
    assert [r["id"] for r in rows] == list(range(first["t"], first["t"] + 5))
    assert rows[0]["price"] == first["p"] and rows[0]["qty"] == first["q"] and rows[0]["isBuyerMaker"] is first["m"]
    agg = get(sim.rest_url("binance") + "/api/v3/aggTrades?symbol=ETHUSDT&limit=3")
    assert [a["f"] for a in agg] == [a["l"] for a in agg] and agg[1]["a"] == agg[0]["a"] + 1
    st = sim.state("binance", "ETHUSDT", trades=3)
    assert st["trades"]["last_id"] >= first["t"] and len(st["trades"]["recent"]) == 3
    assert float(st["bids"][0][0]) < float(st["asks"][0][0])


def test_binance_server_pings_and_pong_timeout(sim):
    async def go():
        t1, good = await connect(sim.url("binance") + "/ws/btcusdt@trade", auto_pong=True)
        t2, mute = await connect(sim.url("binance") + "/ws/btcusdt@trade", auto_pong=False)
        await wait_for(lambda: mute.closed, timeout=5, what="the silent client to be dropped")
        assert len(good.pings) >= 2 and not good.closed
        t1.disconnect()
        return good, mute
    good, mute = run(go())
    assert mute.pings, "the server sent PING frames"


def test_binance_incoming_message_limit_closes_the_connection(sim):
    async def go():
        t, rec = await connect(sim.url("binance") + "/ws")
        for i in range(8):
            t.send(WSMsgType.TEXT, b'{"method":"LIST_SUBSCRIPTIONS","id":%d}' % i)
        await wait_for(lambda: rec.closed, what="close after >5 messages/s")
    run(go())


# --- Binance USD-M ---------------------------------------------------------------------------

@needs_samples
def test_binance_usdm_routes_and_pu_chain(sim):
    async def go():
        tp, pub = await connect(sim.url("binance_usdm") + "/public/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@aggTrade")
        tm, mkt = await connect(sim.url("binance_usdm") + "/market/ws/btcusdt@aggTrade")
        await wait_for(lambda: len(pub.frames) >= 30 and len(mkt.frames) >= 10, what="usdm data")
        snap = get(sim.rest_url("binance_usdm") + "/fapi/v1/depth?symbol=BTCUSDT&limit=10")
        n0 = len(pub.frames)
        await wait_for(lambda: len(pub.frames) >= n0 + 10, what="more depth")
        tp.disconnect()
        tm.disconnect()
        return pub.json(), mkt.json(), snap
    pub, mkt, snap = run(go())
    streams = {m["stream"] for m in pub}
    assert "btcusdt@aggTrade" not in streams, "aggTrade is a /market stream: nothing on /public"
    depth = [m["data"] for m in pub if m["stream"] == "btcusdt@depth@100ms"]
    assert same_shape(depth[0], sample("binance_usdm_futures.json", "depth (diff)"))
    assert all(b["pu"] == a["u"] for a, b in zip(depth, depth[1:]))
    assert any(d["U"] <= snap["lastUpdateId"] + 1 <= d["u"] + 1 and d["pu"] == snap["lastUpdateId"] for d in depth)
    tick = next(m["data"] for m in pub if m["stream"] == "btcusdt@bookTicker")
    assert same_shape(tick, sample("binance_usdm_futures.json", "bookTicker"))
    assert same_shape(mkt[0], sample("binance_usdm_futures.json", "aggTrade"))
    ids = [m["a"] for m in mkt]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


# --- Bybit -----------------------------------------------------------------------------------

@needs_samples
def test_bybit_linear_subscribe_ack_ping_snapshot_then_consecutive_deltas(sim):
    async def go():
        t, rec = await connect(sim.url("bybit") + "/v5/public/linear")
        t.send(WSMsgType.TEXT, b'{"req_id":"s1","op":"subscribe","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT","tickers.BTCUSDT"]}')
        t.send(WSMsgType.TEXT, b'{"req_id":"p1","op":"ping"}')
        await wait_for(lambda: sum(1 for m in rec.json() if m.get("topic") == "orderbook.50.BTCUSDT") >= 20
                       and sum(1 for m in rec.json() if m.get("topic") == "publicTrade.BTCUSDT") >= 10, what="bybit data")
        t.send(WSMsgType.TEXT, b'{"req_id":"s2","op":"subscribe","args":["orderbook.50.NOPE"]}')
        await wait_for(lambda: any(m.get("req_id") == "s2" for m in rec.json()), what="failed ack")
        t.disconnect()
        return rec.json()
    msgs = run(go())
    ack = next(m for m in msgs if m.get("req_id") == "s1")
    assert ack["success"] is True and ack["op"] == "subscribe" and ack["conn_id"]
    pong = next(m for m in msgs if m.get("req_id") == "p1")
    assert pong["ret_msg"] == "pong" and pong["op"] == "ping"
    bad = next(m for m in msgs if m.get("req_id") == "s2")
    assert bad["success"] is False and "NOPE" in bad["ret_msg"]
    book = [m for m in msgs if m.get("topic") == "orderbook.50.BTCUSDT"]
    assert book[0]["type"] == "snapshot" and all(m["type"] == "delta" for m in book[1:])
    assert same_shape(book[0], sample("bybit_v5.json", "orderbook.50 (linear)", "snapshot"))
    assert same_shape(book[1], sample("bybit_v5.json", "orderbook.50 (linear)", "delta"))
    us = [m["data"]["u"] for m in book]
    assert us == list(range(us[0], us[0] + len(us)))
    trades = [m for m in msgs if m.get("topic") == "publicTrade.BTCUSDT"]
    assert same_shape(trades[0], sample("bybit_v5.json", "publicTrade (linear)"))
    ids = [int(m["data"][0]["i"]) for m in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    tick = next(m for m in msgs if m.get("topic") == "tickers.BTCUSDT")
    assert same_shape(tick, sample("bybit_v5.json", "tickers (linear perpetual)"))


@needs_samples
def test_bybit_spot_path_pong_and_rest(sim):
    async def go():
        t, rec = await connect(sim.url("bybit") + "/v5/public/spot")
        t.send(WSMsgType.TEXT, b'{"req_id":"a","op":"subscribe","args":["publicTrade.ETHUSDT","tickers.ETHUSDT"]}')
        t.send(WSMsgType.TEXT, b'{"op":"ping","req_id":"x"}')
        too_many = orjson.dumps({"req_id": "b", "op": "subscribe", "args": [f"publicTrade.S{i}" for i in range(11)]})
        t.send(WSMsgType.TEXT, too_many)
        await wait_for(lambda: any(m.get("req_id") == "b" for m in rec.json())
                       and any(m.get("topic") == "publicTrade.ETHUSDT" for m in rec.json()), what="spot replies")
        t.disconnect()
        return rec.json()
    msgs = run(go())
    assert next(m for m in msgs if m.get("req_id") == "a")["success"] is True
    pong = next(m for m in msgs if m.get("req_id") == "x")
    assert pong["op"] == "pong" and pong["args"][0].isdigit()
    assert next(m for m in msgs if m.get("req_id") == "b")["success"] is False
    tick = next(m for m in msgs if m.get("topic") == "tickers.ETHUSDT")
    assert same_shape(tick, sample("bybit_v5.json", "tickers (spot)"))
    ob = get(sim.rest_url("bybit") + "/v5/market/orderbook?category=spot&symbol=ETHUSDT&limit=5")
    assert ob["retCode"] == 0 and len(ob["result"]["b"]) == 5 and isinstance(ob["result"]["u"], int)
    rt = get(sim.rest_url("bybit") + "/v5/market/recent-trade?category=spot&symbol=ETHUSDT&limit=3")["result"]["list"]
    ids = [int(r["execId"]) for r in rt]
    assert ids == sorted(ids, reverse=True) and ids[0] - ids[-1] == 2


# --- OKX -------------------------------------------------------------------------------------

@needs_samples
def test_okx_acks_text_ping_books_seqid_chain_and_shapes(sim):
    async def go():
        t, rec = await connect(sim.url("okx") + "/ws/v5/public")
        t.send(WSMsgType.TEXT, orjson.dumps({"id": "1512", "op": "subscribe", "args": [
            {"channel": "books", "instId": "BTC-USDT"}, {"channel": "trades", "instId": "BTC-USDT"},
            {"channel": "bbo-tbt", "instId": "BTC-USDT-SWAP"}, {"channel": "tickers", "instId": "BTC-USDT"},
            {"channel": "books", "instId": "NOPE-USDT"}]}))
        t.send(WSMsgType.TEXT, b"ping")
        await wait_for(lambda: b"pong" in rec.frames, what="pong")
        await wait_for(lambda: sum(1 for m in rec.json() if "data" in m and m["arg"]["channel"] == "books") >= 20
                       and sum(1 for m in rec.json() if "data" in m and m["arg"]["channel"] == "trades") >= 10,
                       what="okx data")
        t.disconnect()
        return rec.json()
    msgs = run(go())
    acks = [m for m in msgs if m.get("event") == "subscribe"]
    assert len(acks) == 4 and all(a["id"] == "1512" and len(a["connId"]) == 8 for a in acks)
    err = next(m for m in msgs if m.get("event") == "error")
    assert err["code"] == "60018" and "NOPE-USDT" in err["msg"]
    books = [m for m in msgs if "data" in m and m["arg"]["channel"] == "books"]
    assert books[0]["action"] == "snapshot" and books[0]["data"][0]["prevSeqId"] == -1
    assert same_shape(books[0], sample("okx_v5.json", "books", "snapshot"))
    assert same_shape(books[1], sample("okx_v5.json", "books", "update"))
    d = [m["data"][0] for m in books]
    assert all(b["prevSeqId"] == a["seqId"] for a, b in zip(d, d[1:]))
    assert all(x["checksum"] == 0 for x in d)
    trades = [m for m in msgs if "data" in m and m["arg"]["channel"] == "trades"]
    assert same_shape(trades[0], sample("okx_v5.json", "trades"))
    ids = [int(m["data"][0]["tradeId"]) for m in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    bbo = next(m for m in msgs if "data" in m and m["arg"]["channel"] == "bbo-tbt")
    assert same_shape(bbo, sample("okx_v5.json", "bbo-tbt"))
    tick = next(m for m in msgs if "data" in m and m["arg"]["channel"] == "tickers")
    assert same_shape(tick, sample("okx_v5.json", "tickers"))
    hist = get(sim.rest_url("okx") + f"/api/v5/market/history-trades?instId=BTC-USDT&type=1&before={ids[0] - 1}&limit=3")
    assert [int(r["tradeId"]) for r in hist["data"]] == [ids[0] + 2, ids[0] + 1, ids[0]]


# --- faults ----------------------------------------------------------------------------------

def test_fault_gap_skips_book_ids_on_each_venue(sim):
    async def go():
        tb, b = await connect(sim.url("binance") + "/ws/solusdt@depth")
        to, o = await connect(sim.url("okx") + "/ws/v5/public")
        to.send(WSMsgType.TEXT, b'{"op":"subscribe","args":[{"channel":"books","instId":"SOL-USDT-SWAP"}]}')
        ty, y = await connect(sim.url("bybit") + "/v5/public/spot")
        ty.send(WSMsgType.TEXT, b'{"op":"subscribe","args":["orderbook.50.SOLUSDT"]}')
        await wait_for(lambda: len(b.frames) > 3 and len(o.frames) > 3 and len(y.frames) > 3, what="books")
        res = {v: sim.fault(v, "gap", symbol=s, market="spot" if v == "bybit" else None)
               for v, s in (("binance", "SOLUSDT"), ("okx", "SOL-USDT-SWAP"), ("bybit", "SOLUSDT"))}
        # frames generated before the fault may still be in flight: wait for ids past it
        await wait_for(lambda: any(m["U"] > res["binance"]["update_id"] + 1 for m in b.json())
                       and any(m["data"][0]["seqId"] > res["okx"]["update_id"] + 1 for m in o.json() if "data" in m)
                       and any(m["data"]["u"] > res["bybit"]["book_messages"] + 2 for m in y.json() if "data" in m),
                       what="books after the gap")
        for t in (tb, to, ty):
            t.disconnect()
        return b.json(), o.json(), y.json()
    bj, oj, yj = run(go())
    assert sum(1 for x, y in zip(bj, bj[1:]) if y["U"] != x["u"] + 1) == 1, [(d["U"], d["u"]) for d in bj]
    od = [m["data"][0] for m in oj if "data" in m]
    assert sum(1 for x, y in zip(od, od[1:]) if y["prevSeqId"] != x["seqId"]) == 1, \
        [(d["prevSeqId"], d["seqId"]) for d in od]
    yd = [m["data"]["u"] for m in yj if "data" in m][1:]
    assert sum(1 for x, y in zip(yd, yd[1:]) if y != x + 1) == 1, yd


def test_fault_malformed_frame_is_not_json_and_stream_continues(sim):
    def bad(frames):
        out = []
        for f in frames:
            try:
                orjson.loads(f)
            except orjson.JSONDecodeError:
                out.append(f)
        return out

    async def go():
        t, rec = await connect(sim.url("okx") + "/ws/v5/public")
        t.send(WSMsgType.TEXT, b'{"op":"subscribe","args":[{"channel":"trades","instId":"ETH-USDT"}]}')
        await wait_for(lambda: len(rec.frames) > 2, what="trades")
        res = sim.fault("okx", "malformed", symbol="ETH-USDT")
        await wait_for(lambda: bad(rec.frames), what="the malformed frame")
        n = len(rec.frames)
        await wait_for(lambda: len(rec.frames) > n + 3, what="frames after the malformed one")
        t.disconnect()
        return rec.frames, res
    frames, res = run(go())
    assert res["sent_to"] == 1
    assert len(bad(frames)) == 1 and b"ETH-USDT" in bad(frames)[0]


def test_fault_disconnect_and_notices(sim):
    async def go():
        tb, b = await connect(sim.url("binance") + "/ws/btcusdt@trade")
        to, o = await connect(sim.url("okx") + "/ws/v5/public")
        to.send(WSMsgType.TEXT, b'{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}')
        await wait_for(lambda: len(b.frames) > 1 and len(o.frames) > 1, what="data")
        sim.fault("binance", "notice")
        sim.fault("okx", "notice", then_disconnect=0.2)
        await wait_for(lambda: any(m.get("e") == "serverShutdown" for m in b.json()), what="serverShutdown")
        await wait_for(lambda: any(m.get("event") == "notice" for m in o.json()), what="okx notice")
        await wait_for(lambda: o.closed, what="okx drop after the notice")
        assert not b.closed
        res = sim.fault("binance", "disconnect")
        await wait_for(lambda: b.closed, what="binance disconnect")
        return res, o.json()
    res, oj = run(go())
    assert res["connections"] >= 1
    notice = next(m for m in oj if m.get("event") == "notice")
    assert notice["code"] == "64008"


def test_fault_stall_stops_data_then_resumes(sim):
    """Judged by the sim's own message timestamps, so a starved client cannot blur the silence."""
    def stamps(rec):
        return [m["ts"] for m in rec.json() if "ts" in m]

    async def go():
        t, rec = await connect(sim.url("bybit") + "/v5/public/linear")
        t.send(WSMsgType.TEXT, b'{"op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.50.BTCUSDT"]}')
        await wait_for(lambda: len(rec.frames) > 5, what="data")
        t0 = int(time.time() * 1000)
        sim.fault("bybit", "stall", seconds=0.6)
        await wait_for(lambda: stamps(rec)[-1] > t0 + 700, timeout=5, what="data after the stall")
        t.disconnect()
        ts = [x for x in stamps(rec) if x >= t0 - 100]
        return max(b - a for a, b in zip(ts, ts[1:]))
    assert run(go()) >= 550


def test_fault_wick_is_one_trade_far_off(sim):
    async def go():
        t, rec = await connect(sim.url("binance") + "/ws/bnbusdt@trade")
        await wait_for(lambda: len(rec.frames) > 3, what="trades")
        res = sim.fault("binance", "wick", symbol="BNBUSDT", pct=10)
        await wait_for(lambda: any(m["t"] >= res["next_trade_id"] + 3 for m in rec.json()), what="trades after the wick")
        t.disconnect()
        return rec.json(), res
    trades, res = run(go())
    by = {m["t"]: float(m["p"]) for m in trades}
    wick = by[res["next_trade_id"]]
    before, after = by[res["next_trade_id"] - 1], by[res["next_trade_id"] + 1]
    assert wick > before * 1.08 and abs(after / before - 1) < 0.01


# --- decoders (written in parallel; skipped when absent) -------------------------------------

def test_decoders_read_the_trades_the_sim_sent(sim):
    from feeds import implemented
    from feeds import decoder_for
    avail = set(implemented())
    if not avail & {"binance", "okx"}:
        pytest.skip("venue decoders not present yet")

    async def go():
        out = {}
        if "binance" in avail:
            t, rec = await connect(sim.url("binance") + "/ws/btcusdt@trade")
            await wait_for(lambda: len(rec.frames) >= 20, what="binance trades")
            t.disconnect()
            out["binance"] = rec.frames
        if "okx" in avail:
            t, rec = await connect(sim.url("okx") + "/ws/v5/public")
            t.send(WSMsgType.TEXT, b'{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}')
            await wait_for(lambda: len(rec.frames) >= 20, what="okx trades")
            t.disconnect()
            out["okx"] = rec.frames
        return out
    frames = run(go())
    for venue, fs in frames.items():
        symbol = "BTCUSDT" if venue == "binance" else "BTC-USDT"
        st = sim.state(venue, symbol, trades=2000)
        sent = {t[0]: t for t in st["trades"]["recent"]}
        dec = decoder_for(venue)
        got = []
        for f in fs:
            recs = dec.decode(f, 1)
            got += [(int(r["id"]), float(r["price"]), float(r["size"])) for r in recs if r["kind"] == 1]
        assert len(got) >= 15
        for tid, price, size in got:
            s = sent[tid]
            assert price == float(s[1]) and size == float(s[2])


# --- TLS and process lifecycle ---------------------------------------------------------------

def test_tls_serves_wss_and_https_with_a_self_signed_certificate():
    with running(["okx"], symbols=2, rate=500, tls=True) as s:
        assert s.url("okx").startswith("wss://") and s.rest_url("okx").startswith("https://")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        async def go():
            t, rec = await connect(s.url("okx") + "/ws/v5/public", ssl_context=ctx)
            t.send(WSMsgType.TEXT, b'{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"}]}')
            await wait_for(lambda: len(rec.frames) >= 3, what="trades over TLS")
            t.disconnect()
        run(go())
        with urllib.request.urlopen(s.rest_url("okx") + "/api/v5/public/time", context=ctx, timeout=5) as r:
            assert json.loads(r.read())["code"] == "0"
        strict = ssl.create_default_context()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(s.rest_url("okx") + "/api/v5/public/time", context=strict, timeout=5)


def test_sigterm_stops_cleanly_and_leaves_nothing():
    s = start_in_background(["binance", "bybit"], symbols=2, rate=200)
    port = s.port("binance")

    async def go():
        t, rec = await connect(s.url("binance") + "/ws/btcusdt@trade")
        await wait_for(lambda: len(rec.frames) >= 1, what="a trade")
        os.kill(s.pid, signal.SIGTERM)
        await wait_for(lambda: rec.closed, what="the connection to close")
    run(go())
    assert s.proc.wait(timeout=10) == 0
    s.stop()
    assert s.final is not None and s.final["stats"]["binance"]["events"] > 0
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the port is closed"
    with pytest.raises(ProcessLookupError):
        os.kill(s.pid, 0)


def test_bad_cli_arguments_fail_with_a_clear_message():
    with pytest.raises(SimError, match="does not speak 'nowhere'"):
        start_in_background(["nowhere"], timeout=10)


# --- the market model ------------------------------------------------------------------------

@pytest.mark.parametrize("render", [False, True])
def test_book_deltas_rebuild_the_model_book_exactly(render):
    """Applying every emitted delta to a mirror gives the model's book; trades print inside it."""
    import random

    from feeds.sim.market import Book, instruments
    inst = instruments(3, 5)[2]
    book = Book(inst, "spot", "SOLUSDT", 10, random.Random(9), 100, 5)
    mirror = {"b": {p: s for p, s in book.top(10)[0]}, "a": {p: s for p, s in book.top(10)[1]}}
    last = book.uid
    for i in range(3000):
        if i % 500 == 0:
            book.target += 40 if i % 1000 else -25          # the reference moves away
        first, lastid, prev, bch, ach, top = book.update(1 + i % 3, burst=i % 7 == 0, render=render)
        assert prev == last and first == last + 1 and lastid >= first
        last = lastid
        for side, ch in (("b", bch), ("a", ach)):
            levels = orjson.loads(b"[" + ch + b"]") if render else [(p.decode(), s.decode()) for p, s in ch]
            for p, s in levels:
                p, s = p.encode(), s.encode()
                if s == b"0":
                    del mirror[side][p]
                else:
                    mirror[side][p] = s
        bids, asks = book.top(10)
        assert dict(bids) == mirror["b"] and dict(asks) == mirror["a"]
        assert book.bid < book.ask
        if i % 3 == 0:
            t = book.trade(1)
            assert book.bid <= t[5] <= book.ask


# --- back-pressure and scripted faults -------------------------------------------------------

def test_a_client_that_does_not_read_pauses_the_flood_instead_of_growing_memory():
    import psutil

    from feeds.sim.bench import _handshake
    with running(["binance"], symbols=3, rate=0) as s:
        proc = psutil.Process(s.pid)
        sock = _handshake(s.port("binance"), "/stream?streams=btcusdt@trade/btcusdt@depth/ethusdt@depth")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        try:
            deadline = time.monotonic() + 10
            while s.stats()["binance"]["paused"] != 1:
                assert time.monotonic() < deadline, "the sim never paused for the silent client"
                time.sleep(0.02)
            e1 = s.stats()["binance"]["events"]
            rss1 = proc.memory_info().rss
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:            # give a growing buffer time to show
                time.sleep(0.05)
            st = s.stats()["binance"]
            assert st["paused"] == 1 and st["events"] == e1, "generation stopped while paused"
            assert proc.memory_info().rss < rss1 + 8 * 1024 * 1024
        finally:
            sock.close()


def test_scripted_fault_flag_fires_at_its_time():
    with running(["okx"], symbols=2, rate=300, args=["--fault", "at=2,venue=okx,kind=notice"]) as s:
        async def go():
            t, rec = await connect(s.url("okx") + "/ws/v5/public")
            await wait_for(lambda: any(m.get("event") == "notice" for m in rec.json()), timeout=10,
                           what="the scripted notice")
            t.disconnect()
        run(go())


def test_max_connection_age_drops_old_connections():
    with running(["binance"], symbols=2, rate=200, args=["--max-connection-age", "0.5"]) as s:
        async def go():
            t0 = time.monotonic()
            t, rec = await connect(s.url("binance") + "/ws/btcusdt@trade")
            await wait_for(lambda: rec.closed, timeout=5, what="the aged connection to drop")
            return time.monotonic() - t0
        assert run(go()) >= 0.45
