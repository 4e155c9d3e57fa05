"""Coinbase Advanced Trade market-data websocket: the venue declaration; its decoder is native.

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

No checksum on Coinbase.

The frames are decoded by CoinbaseDecoder of feeds/native/coinbase.pyx (compiled: no Python
object per value on the hot path, timestamps read in C by feeds/native/isotime.pxd), which
implements the rules above, the per-connection sequence state included; this module keeps the
rest (the decoder takes SIDE_IS_MAKER from here).
"""
from __future__ import annotations

from orjson import dumps

from .book import LOST  # noqa: F401  (BookEvent.prev after lost messages: the decoder marks them)
from .isotime import iso_ns
from .native.coinbase import CoinbaseDecoder
from .venue import Limits, Ping, Venue
from .wire import OPPOSITE, SIDES, id_from_str, rest_json

SIDE_IS_MAKER = True          # market_trades `side` is the maker's side (see module docstring)
CHANNEL_NAMES = {"trades": "market_trades", "quotes": "ticker", "book": "level2"}


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
