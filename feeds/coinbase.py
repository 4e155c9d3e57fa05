"""Coinbase Advanced Trade market-data websocket: declaration and pure decoder.

Wire (docs.cdp.coinbase.com, Advanced Trade "WebSocket Channels"): every message is an envelope
{"channel", "client_id", "timestamp", "sequence_num", "events": [...]}.
  market_trades -> TRADE per trade      ticker -> QUOTE (best_bid/best_ask + quantities)
  l2_data (subscribed as "level2")      -> BOOK per level; side "bid"/"offer", new_quantity is
                                           absolute, "0" deletes; type snapshot|update
  heartbeats / subscriptions / status / candles / user -> no records

Sequence rule (book_rule "coinbase"): `sequence_num` counts every message of the connection,
across channels, so only the decoder (which sees every frame) can tell whether one was lost.
Each l2_data event yields BookEvent(first=last=sequence_num, prev=...) where
    prev = sequence_num of this instrument's previous l2_data event on this connection (-1 for
           its first), when no message was lost on the connection in between;
    prev = LOST (-2) when messages were lost since then: the instrument's book must be resynced
           (Coinbase has no REST seed with an id: resync = resubscribe level2, see
           extra["resync_messages"], or a connection rotation).
Every break in sequence_num also appends "sequence_gap" to `notices` and counts
`sequence_gaps`. One decoder per connection (sequence_num restarts at 0 on a new connection;
a restart simply begins a new run, and a new connection starts with level2 snapshots).

Trade side: Coinbase documents `side` of a match as the MAKER order's side (Exchange feed
"match" and REST trades: "The side field indicates the maker order side"), and the wire-sample
notes from the Advanced Trade channel page say the same for market_trades. TRADE.side here is
the aggressor, so the decoder inverts it (SIDE_IS_MAKER). Third-party adapters disagree (e.g.
NautilusTrader maps market_trades side directly), so this is one switch if live data proves it.

Timestamps: trades use their own `time`; quotes and book levels use the envelope `timestamp`
(snapshot levels carry event_time 1970-01-01, and per-level update times are not monotonic).

The legacy Coinbase Exchange feed (wss://ws-feed.exchange.coinbase.com, messages keyed by `type`
without the envelope: match/last_match, ticker, snapshot, l2update) decodes too, so captures from
either feed replay; its level2 has no sequence (BookEvent first/last/prev = -1).

No checksum on Coinbase. `last_levels[instrument]` still holds the raw `updates` list of the
instrument's last l2_data event (dicts with price_level/new_quantity strings) for symmetry.
"""
from __future__ import annotations

from orjson import dumps, loads

from shm.batch import LAST, LAST_BYTE_FROM_END, pack_level, pack_quote

from .decoder import BookEvent, DecodeError, Decoder
from .isotime import ISO_NS, iso_ns
from .venue import Limits, Ping, Venue
from .wire import (ASK, BID, BOOK, MALFORMED, OPPOSITE, QUOTE, SIDES, SNAPSHOT, TNEW, TRADE, fail,
                   id_from_str, rest_json)

LOST = -2                     # BookEvent.prev: messages were lost since this instrument's last event
SIDE_IS_MAKER = True          # market_trades `side` is the maker's side (see module docstring)
_BOOK_SIDE = {"bid": BID, "offer": ASK, "ask": ASK}
_IGNORED = frozenset(("heartbeats", "subscriptions", "status", "candles", "user",
                      "futures_balance_summary"))
_EXCHANGE_IGNORED = frozenset(("error", "subscriptions", "heartbeat", "status", "received", "open",
                                "done", "change", "activate"))
CHANNEL_NAMES = {"trades": "market_trades", "quotes": "ticker", "book": "level2"}


class CoinbaseDecoder(Decoder):
    venue = "coinbase"

    def __init__(self, instruments=None, market=None):
        super().__init__(instruments, market)
        self.last_levels: dict[int, list] = {}   # instrument -> raw `updates` of its last l2 event
        self.last_sequence = -1                  # sequence_num of the previous frame
        self.sequence_gaps = 0                   # breaks seen in sequence_num
        self._run_start = 0                      # first sequence_num of the current unbroken run
        self._book_seq: dict[int, int] = {}      # instrument -> sequence_num of its last l2 event

    def feed(self, frame: bytes, ts_recv: int) -> None:
        out = self.out
        n0 = out.n
        nb0 = len(self.book_events)
        try:
            m = loads(frame)
            ch = m.get("channel")
            s = m.get("sequence_num")
            if s is not None:
                last = self.last_sequence
                if last >= 0 and s != last + 1:
                    self.sequence_gaps += 1
                    self._run_start = s
                    self.notices.append("sequence_gap")
                self.last_sequence = s
            if ch == "market_trades":
                self._trades(m, ts_recv)
            elif ch == "l2_data" or ch == "level2":
                self._book(m, s, ts_recv)
            elif ch == "ticker" or ch == "ticker_batch":
                self._ticker(m, ts_recv)
            elif ch in _IGNORED:
                return
            elif ch is None:
                self._exchange(m, ts_recv)
            else:
                raise DecodeError(f"coinbase: unexpected channel {ch!r}")
        except (DecodeError, *MALFORMED) as e:
            raise fail(self, n0, nb0, "coinbase", e) from None
        n = out.n
        if n > n0:
            out.buf[(n << 6) - LAST_BYTE_FROM_END] |= LAST      # out.mark_last()

    def _exchange(self, m, ts_recv: int) -> None:
        """Legacy Coinbase Exchange feed messages (keyed by `type`, no envelope)."""
        t = m["type"]
        if t == "match" or t == "last_match":
            side = SIDES[m["side"]]                         # documented: the maker order side
            if SIDE_IS_MAKER:
                side = OPPOSITE[side]
            self.out.add(TRADE, self.instruments.id(m["product_id"], self.market), iso_ns(m["time"]),
                         ts_recv, side, 0, float(m["price"]), float(m["size"]),
                         id_from_str(m["trade_id"]))
        elif t == "ticker":
            bid = m.get("best_bid")
            if bid:
                tm = m.get("time")
                self.out.add_quote(self.instruments.id(m["product_id"], self.market),
                                   iso_ns(tm) if tm else ts_recv, ts_recv, 0, float(bid),
                                   float(m["best_bid_size"]), float(m["best_ask"]),
                                   float(m["best_ask_size"]))
        elif t == "snapshot" or t == "l2update":
            out = self.out
            add = out.add
            inst = self.instruments.id(m["product_id"], self.market)
            tm = m.get("time")
            ts = iso_ns(tm) if tm else ts_recv
            start = out.n
            if t == "snapshot":
                for lv in m["bids"]:
                    add(BOOK, inst, ts, ts_recv, BID, SNAPSHOT, float(lv[0]), float(lv[1]), 0)
                for lv in m["asks"]:
                    add(BOOK, inst, ts, ts_recv, ASK, SNAPSHOT, float(lv[0]), float(lv[1]), 0)
            else:
                for c in m["changes"]:
                    add(BOOK, inst, ts, ts_recv, BID if c[0] == "buy" else ASK, 0, float(c[1]),
                        float(c[2]), 0)
            # level2 on the Exchange feed guarantees delivery and carries no sequence
            self.book_events.append(BookEvent(inst, start, out.n, t == "snapshot", -1, -1, -1, None))
        elif t in _EXCHANGE_IGNORED:
            return
        else:
            raise DecodeError(f"coinbase: unexpected message type {t!r}")

    # records are packed inline (shm/batch.py); stamps are looked up whole first (isotime.ISO_NS)
    def _trades(self, m, ts_recv: int) -> None:
        out = self.out
        ids = self._ids
        for ev in m["events"]:
            for t in ev["trades"]:
                side = SIDES[t["side"]]
                if SIDE_IS_MAKER:
                    side = OPPOSITE[side]
                p = t["product_id"]
                inst = ids.get(p) or self._inst(p)
                tm = t["time"]
                ts = ISO_NS.get(tm) or iso_ns(tm)
                price = float(t["price"])
                size = float(t["size"])
                i = t["trade_id"]                            # id_from_str() without the call
                tid = int(i) if type(i) is str and len(i) < 19 and i.isdigit() else id_from_str(i)
                n = out.n
                pack_level(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts, ts_recv,
                           inst, TRADE, side, 0, price, size, 0.0, tid)
                out.n = n + 1

    def _ticker(self, m, ts_recv: int) -> None:
        out = self.out
        ids = self._ids
        tm = m["timestamp"]
        ts = ISO_NS.get(tm) or iso_ns(tm)
        for ev in m["events"]:
            for t in ev["tickers"]:
                bid = t.get("best_bid")
                if not bid:                       # ticker_batch carries no best bid/offer
                    continue
                p = t["product_id"]
                inst = ids.get(p) or self._inst(p)
                n = out.n
                pack_quote(out.buf if n < out.cap else out.reserve(1), n << 6, 0, ts, ts_recv,
                           inst, QUOTE, 0, 0, float(bid), float(t["best_bid_quantity"]),
                           float(t["best_ask"]), float(t["best_ask_quantity"]))
                out.n = n + 1

    def _book(self, m, s, ts_recv: int) -> None:
        out = self.out
        ids = self._ids
        tm = m["timestamp"]
        ts = ISO_NS.get(tm) or iso_ns(tm)
        seq = -1 if s is None else s
        book_side = _BOOK_SIDE
        for ev in m["events"]:
            p = ev["product_id"]
            inst = ids.get(p) or self._inst(p)
            snap = ev["type"] == "snapshot"
            flags = SNAPSHOT if snap else 0
            updates = ev["updates"]
            start = out.n
            buf = out.reserve(len(updates))
            off = start << 6
            for u in updates:
                pack_level(buf, off, 0, ts, ts_recv, inst, BOOK, book_side[u["side"]], flags,
                           float(u["price_level"]), float(u["new_quantity"]), 0.0, seq)
                off += 64
            out.n = off >> 6
            pb = self._book_seq.get(inst, -1)
            prev = pb if (pb < 0 or pb >= self._run_start) else LOST
            self._book_seq[inst] = seq
            self.last_levels[inst] = updates
            self.book_events.append(TNEW(BookEvent, (inst, start, out.n, snap, seq, seq, prev, None)))


# ----------------------------------------------------------------------------- declaration

def subscribe(symbols: list[str], channels: list[str]) -> list[tuple[str, list[bytes]]]:
    """One connection: [("", [subscribe messages])] (path "" = the base URL).

    One message per channel (Coinbase takes one channel per subscribe), product ids batched
    by Limits.symbols_per_subscribe, plus `heartbeats` so quiet subscriptions stay open.
    Unauthenticated (no jwt): all market-data channels are public.
    """
    per = LIMITS.symbols_per_subscribe
    msgs = []
    for c in channels:
        name = CHANNEL_NAMES.get(c)
        if name is None:
            raise ValueError(f"coinbase has no channel {c!r}")
        for i in range(0, len(symbols), per):
            msgs.append(dumps({"type": "subscribe", "product_ids": symbols[i:i + per],
                               "channel": name}))
    msgs.append(dumps({"type": "subscribe", "product_ids": list(symbols), "channel": "heartbeats"}))
    return [("", msgs)]


def resync_messages(symbol: str) -> list[bytes]:
    """Resync one product's book: unsubscribe + subscribe level2 (a fresh snapshot follows)."""
    return [dumps({"type": "unsubscribe", "product_ids": [symbol], "channel": "level2"}),
            dumps({"type": "subscribe", "product_ids": [symbol], "channel": "level2"})]


def parse_instruments(body: bytes) -> list[dict]:
    """GET /api/v3/brokerage/market/products -> [{symbol, base, quote, market, tick, lot}]."""
    doc = rest_json(body, "coinbase")
    out = []
    for p in doc["products"]:
        ptype = p.get("product_type", "SPOT")
        if ptype == "SPOT":
            market = "spot"
        else:
            det = p.get("future_product_details") or {}
            market = "perp" if det.get("contract_expiry_type") == "PERPETUAL" else "future"
        out.append({
            "symbol": p["product_id"],
            "base": p.get("base_currency_id") or p["product_id"].split("-")[0],
            "quote": p.get("quote_currency_id") or p["product_id"].split("-")[-1],
            "market": market,
            "tick_size": float(p.get("price_increment") or p["quote_increment"]),
            "lot_size": float(p["base_increment"]),
        })
    return out


def trades_request(symbol: str, from_id: int = 0) -> tuple[str, dict]:
    """Public recent trades (GET .../market/products/{id}/ticker); no id cursor: newest 1000."""
    return f"/api/v3/brokerage/market/products/{symbol}/ticker", {"limit": 1000}


def parse_trades(body: bytes) -> list[tuple]:
    """-> [(trade_id, ts_ns, price, size, aggressor side)], same side convention as the stream."""
    doc = rest_json(body, "coinbase")
    out = []
    for t in doc["trades"]:
        side = SIDES.get(t.get("side"), 0)
        if SIDE_IS_MAKER:
            side = OPPOSITE[side]
        out.append((id_from_str(t["trade_id"]), iso_ns(t["time"]), float(t["price"]),
                    float(t["size"]), side))
    return out


LIMITS = Limits(
    streams_per_connection=60,      # not documented; 20 products x 3 channels keeps level2 light
    subscribe_msgs_per_s=8,         # "unauthenticated message rate limit: 8 per second per IP"
    connect_attempts=8,             # docs disagree (8/s vs 750/s per IP): take the stricter
    connect_window_s=1.0,
    max_connection_age_s=0.0,       # no forced disconnect documented
    symbols_per_subscribe=20,
    stale_after_s=10.0,             # heartbeats arrive every second
)

VENUE = Venue(
    name="coinbase",
    ws_url="wss://advanced-trade-ws.coinbase.com",
    rest_url="https://api.coinbase.com",
    decoder=CoinbaseDecoder,
    limits=LIMITS,
    ping=Ping(mode="none", interval_s=0.0),   # the heartbeats channel keeps subscriptions alive
    channels=("trades", "quotes", "book"),
    markets=("spot",),
    book_rule="coinbase",
    book_depth=20,
    subscribe=subscribe,
    snapshot_request=None,                    # level2 sends its own snapshot; resync = resubscribe
    parse_snapshot=None,
    instruments_request=("/api/v3/brokerage/market/products", {"product_type": "SPOT"}),
    parse_instruments=parse_instruments,
    trades_request=trades_request,
    parse_trades=parse_trades,
    rest_weight_per_s=8.0,                    # public REST: 10 req/s per IP; keep headroom
    extra={"resync_messages": resync_messages, "side_is_maker": SIDE_IS_MAKER},
)
