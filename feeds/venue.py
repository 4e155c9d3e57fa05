"""A venue declared in one place: endpoints, channels, limits, ping and sequence rules.

Each venue file in feeds/ builds one `Venue` (module-level `VENUE`) from these pieces plus its
Decoder subclass and a few small functions for what cannot be declared (subscribe message
shape, REST URLs and their parsers). The connection machinery (feeds/connection.py), the worker
and the simulator read only this declaration.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

CHANNELS = ("trades", "quotes", "book", "mark", "liquidations")


@dataclass(frozen=True)
class Limits:
    """Documented limits the connection planner must respect."""
    streams_per_connection: int          # subscriptions (symbol x channel) on one socket
    subscribe_msgs_per_s: float          # control messages per second per connection
    connect_attempts: int                # connection attempts ...
    connect_window_s: float              # ... per this window
    max_connection_age_s: float = 0.0    # forced disconnect after this long (0 = none): rotate before
    symbols_per_subscribe: int = 50      # symbols batched into one subscribe message
    stale_after_s: float = 30.0          # no frame for this long => reconnect


@dataclass(frozen=True)
class Ping:
    """How the connection is kept alive.

    mode: "server"  - the server sends ws PING frames, we answer PONG (picows does it)
          "text"    - we send `payload` as a text frame every interval_s, expect `pong`
          "ws"      - we send ws PING frames every interval_s
          "none"    - venue heartbeats keep it alive (e.g. a heartbeat channel)
    payload may be a callable returning the bytes to send (JSON pings with ids/timestamps).
    """
    mode: str
    interval_s: float = 20.0
    payload: bytes | Callable[[], bytes] = b""
    pong: bytes = b""


@dataclass(frozen=True)
class Venue:
    name: str                              # venue id: "binance", "okx", ...
    ws_url: str                            # live default websocket URL
    rest_url: str                          # live default REST base URL
    decoder: type                          # feeds.decoder.Decoder subclass
    limits: Limits
    ping: Ping
    channels: tuple[str, ...]              # subset of CHANNELS this venue offers
    markets: tuple[str, ...] = ("spot",)   # spot, perp, future
    book_rule: str = ""                    # name of the sequence rule in feeds/book.py
    book_depth: int = 20                   # levels kept in the shm top-N table
    # (symbols, channels) -> list of (path_suffix, [messages]) to send on one connection
    subscribe: Callable[..., list] | None = None
    # symbol -> (path, params) of the REST depth snapshot; body -> (last_update_id, bids, asks)
    snapshot_request: Callable[[str], tuple[str, dict]] | None = None
    parse_snapshot: Callable[[bytes], tuple[int, list, list]] | None = None
    # REST instrument list: (path, params); body -> list of dicts
    #   {symbol, base, quote, market, tick_size, lot_size}
    instruments_request: tuple[str, dict] | None = None
    parse_instruments: Callable[[bytes], list[dict]] | None = None
    # trade backfill: (symbol, from_id) -> (path, params); body -> list of
    #   (trade_id, ts_ns, price, size, side)
    trades_request: Callable[[str, int], tuple[str, dict]] | None = None
    parse_trades: Callable[[bytes], list[tuple]] | None = None
    rest_weight_per_s: float = 10.0        # REST requests per second we allow ourselves
    extra: dict = field(default_factory=dict)  # anything venue-specific the machinery reads
