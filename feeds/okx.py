"""OKX v5 public streams (spot, swap, futures): the venue declaration; its decoder is native.

Wire format (okx.com/docs-v5, "WebSocket" and "Order book trading / Market data"): JSON text
frames {"arg": {"channel", "instId" | "instType"}, ["action": "snapshot"|"update",] "data":
[...]}, plus control events {"event": "subscribe"|"unsubscribe"|"error"|"notice"|...} and the
plain-text "pong" reply to our "ping". Timestamps and ids are decimal strings.

Decoded:
- books / books-l2-tbt / books50-l2-tbt / books5 / books-elp -> BOOK per level (bids, then
  asks; level = [px, sz, "0", orders]), id=seqId, ts=ts, SNAPSHOT flag for action=snapshot
  (books5 has no action: every push is a snapshot); BookEvent(first=last=seqId,
  prev=prevSeqId (-1 for snapshots and channels without it), checksum). OKX deprecated the
  checksum and now sends 0: 0 is passed as None (no checksum) so nothing verifies it.
- bbo-tbt -> QUOTE (best bid/offer, 10 ms; empty side -> NAN). Kept out of the book: a
  one-level snapshot must never reset the deeper book of the same instrument.
- trades / trades-all -> TRADE: id=tradeId, side = taker side, ts
- tickers -> QUOTE from bidPx/bidSz/askPx/askSz ("" -> NAN)
- mark-price -> MARK price=markPx (funding/index NAN, id 0)
- funding-rate -> MARK funding=fundingRate, id=fundingTime in ns (the settlement time of the
  current period), price/index NAN
- liquidation-orders -> LIQUIDATION per detail: side = the order side, price bkPx, size sz
  (contracts for SWAP/FUTURES), ts. The channel is per instType: every instrument of the
  type arrives, each registered on first sight.
- "pong", subscribe/unsubscribe/error/channel-conn-count events -> nothing; "notice" events
  (code 64008: the connection closes soon for a service upgrade) -> notices "shutdown".
Market from instId: "BTC-USDT" spot, "BTC-USDT-SWAP" perp, "BTC-USD-250627" future.

The frames are decoded by OkxDecoder of feeds/native/okx.pyx (compiled: no Python object per
value on the hot path), which implements the rules above; this module keeps the rest.
"""
from __future__ import annotations

from orjson import dumps

from .native.okx import OkxDecoder
from .venue import Limits, Ping, Venue
from .wire import MS, rest_json, rest_levels, side


def market_of(inst_id: str) -> str:
    """"BTC-USDT" spot, "BTC-USDT-SWAP" perp, "BTC-USD-250627" future (options: "option")."""
    parts = inst_id.split("-")
    if len(parts) == 2:
        return "spot"
    if parts[-1] == "SWAP":
        return "perp"
    if len(parts) == 3 and parts[-1].isdigit():
        return "future"
    return "option"


# --- connection planning ---------------------------------------------------------------------

CHANNELS = {"trades": ("trades",), "quotes": ("tickers",), "book": ("books",),
            "mark": ("mark-price", "funding-rate")}
PATH = "/ws/v5/public"


def subscribe(symbols: list[str], channels: list[str]) -> list[tuple[str, list[bytes]]]:
    """One connection's subscription: [("/ws/v5/public", [messages])] (path appended to
    VENUE.ws_url). Each message carries up to Limits.symbols_per_subscribe args; funding-rate
    only for SWAP instIds, liquidation-orders once per instType present (SWAP/FUTURES)."""
    args: list[dict] = []
    for s in symbols:
        m = market_of(s)
        for c in channels:
            for ch in CHANNELS.get(c, ()):
                if ch == "funding-rate" and m != "perp":
                    continue
                if ch == "mark-price" and m == "spot":
                    continue
                args.append({"channel": ch, "instId": s})
    if "liquidations" in channels:
        for inst_type, market in (("SWAP", "perp"), ("FUTURES", "future")):
            if any(market_of(s) == market for s in symbols):
                args.append({"channel": "liquidation-orders", "instType": inst_type})
    if not args:
        return []
    n = LIMITS.symbols_per_subscribe
    msgs = [dumps({"id": str(k + 1), "op": "subscribe", "args": args[i:i + n]})
            for k, i in enumerate(range(0, len(args), n))]
    return [(PATH, msgs)]


# --- REST ------------------------------------------------------------------------------------

def _data(body: bytes) -> list:
    d = rest_json(body, "okx")
    if str(d.get("code", "0")) != "0":
        raise ValueError(f"okx: REST error code={d.get('code')} msg={d.get('msg')!r}")
    return d["data"]


def snapshot_request(symbol: str) -> tuple[str, dict]:
    """GET /api/v5/market/books?sz=400 (the books channel sends its own snapshot on subscribe;
    resync = resubscribe, this is for inspection and seeding)."""
    return "/api/v5/market/books", {"instId": symbol, "sz": 400}


def parse_snapshot(body: bytes) -> tuple[int, list, list]:
    """{"data": [{"asks", "bids", "ts"[, "seqId"]}]} -> (seqId or -1, bids, asks)."""
    (d,) = _data(body)
    return int(d.get("seqId", -1)), rest_levels(d["bids"]), rest_levels(d["asks"])


INSTRUMENTS_REQUESTS = [("/api/v5/public/instruments", {"instType": "SPOT"}),
                        ("/api/v5/public/instruments", {"instType": "SWAP"}),
                        ("/api/v5/public/instruments", {"instType": "FUTURES"})]


def parse_instruments(body: bytes) -> list[dict]:
    """public/instruments -> live instruments. Derivatives have empty baseCcy/quoteCcy: base
    and quote come from instFamily/uly ("BTC-USDT"); their lot size is in contracts."""
    out = []
    for s in _data(body):
        if s.get("state", "live") != "live":
            continue
        base, quote = s.get("baseCcy", ""), s.get("quoteCcy", "")
        if not base:
            base, _, quote = (s.get("instFamily") or s.get("uly") or "").partition("-")
        out.append({"symbol": s["instId"], "base": base, "quote": quote,
                    "market": market_of(s["instId"]), "tick_size": float(s["tickSz"]),
                    "lot_size": float(s["lotSz"])})
    return out


def trades_request(symbol: str, from_id: int) -> tuple[str, dict]:
    """GET /api/v5/market/history-trades?type=1&before=<tradeId>: up to 100 trades newer than
    from_id (pagination by trade id; the public data covers the last 3 months)."""
    return "/api/v5/market/history-trades", {"instId": symbol, "type": "1",
                                             "before": str(int(from_id)), "limit": "100"}


def parse_trades(body: bytes) -> list[tuple]:
    """{"data": [{"tradeId","px","sz","side","ts"}]} (newest first) ->
    [(id, ts_ns, price, size, side)] oldest first."""
    rows = [(int(t["tradeId"]), int(t["ts"]) * MS, float(t["px"]), float(t["sz"]), side(t["side"]))
            for t in _data(body)]
    rows.sort()
    return rows


LIMITS = Limits(
    streams_per_connection=29,        # "use multiple connections each with fewer than 30 channels"
                                      #  when subscribing many 400-level books channels
    subscribe_msgs_per_s=480 / 3600,  # 480 subscribe/unsubscribe/login requests per hour per connection
    connect_attempts=3,               # 3 connection requests per second (per IP)
    connect_window_s=1.0,
    max_connection_age_s=0.0,         # no fixed lifetime; notice 64008 precedes upgrade disconnects
    symbols_per_subscribe=29,         # args per subscribe message (64 KB max per request)
    stale_after_s=30.0,               # the server drops a connection idle for 30 s
)

VENUE = Venue(
    name="okx",
    ws_url="wss://ws.okx.com:8443",
    rest_url="https://www.okx.com",
    decoder=OkxDecoder,
    limits=LIMITS,
    # client-driven: send "ping" when nothing arrived for N < 30 s, expect "pong"
    ping=Ping(mode="text", interval_s=20.0, payload=b"ping", pong=b"pong"),
    channels=("trades", "quotes", "book", "mark", "liquidations"),
    markets=("spot", "perp", "future"),
    book_rule="okx",
    subscribe=subscribe,
    snapshot_request=snapshot_request,
    parse_snapshot=parse_snapshot,
    instruments_request=INSTRUMENTS_REQUESTS[0],
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=5.0,            # history-trades: 10 requests per 2 s per IP
    extra={
        "instruments_requests": list(INSTRUMENTS_REQUESTS),
        "resync": "resubscribe",      # the books channel re-sends a snapshot on subscribe
        "channels": {c: list(v) for c, v in CHANNELS.items()},
        "shutdown_notice_code": "64008",
    },
)
