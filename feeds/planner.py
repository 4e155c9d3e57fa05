"""Connection planning from a venue's declared limits.

Streams (symbol x channel) are sharded so no socket carries more than
`Limits.streams_per_connection`; `Venue.subscribe(symbols, channels)` turns each shard into one
or more sockets (a venue with several routes, e.g. Binance USD-M /public and /market, returns
one entry per route). Start times are staggered so the initial connects use about half of
`connect_attempts` per `connect_window_s` (a tenth of that may start at once, the rest evenly
spaced): the other half stays free for reconnects.
"""
from __future__ import annotations

from dataclasses import dataclass

from .venue import Venue


@dataclass(frozen=True)
class ConnectionPlan:
    """One socket to keep open for ever."""
    index: int                 # 0.. within the venue (STATUS records carry it)
    path: str                  # appended to the venue's websocket base URL
    messages: tuple            # subscribe messages (bytes or str), sent through the rate limiter
    symbols: tuple[str, ...]
    channels: tuple[str, ...]
    start_delay_s: float       # staggered start


def shards(symbols: list[str], channels: list[str], streams_per_connection: int) -> list[list[str]]:
    """Symbols split so that len(shard) * len(channels) <= streams_per_connection."""
    per = max(1, streams_per_connection // max(1, len(channels)))
    return [symbols[i:i + per] for i in range(0, len(symbols), per)]


def _as_messages(msgs) -> tuple:
    out = []
    for m in msgs:
        if isinstance(m, (bytes, bytearray, str)):
            out.append(m)
        else:                                   # a dict/list: JSON-encode it
            import orjson
            out.append(orjson.dumps(m))
    return tuple(out)


MARKET_SEP = ":"


def split_market(symbol: str, default: str) -> tuple[str, str]:
    """"perp:BTCUSDT" -> ("perp", "BTCUSDT"); a bare symbol is in the venue's first market."""
    market, sep, bare = symbol.partition(MARKET_SEP)
    return (market, bare) if sep else (default, symbol)


def by_market(venue: Venue, symbols: list[str]) -> dict[str, list[str]]:
    """Symbols grouped by market, in order. Venues whose markets share one native symbol space
    on separate routes (Bybit: spot and linear both list "BTCUSDT") take "perp:BTCUSDT"."""
    default = venue.markets[0]
    groups: dict[str, list[str]] = {}
    for sym in symbols:
        market, bare = split_market(sym, default)
        if market not in venue.markets:
            raise ValueError(f"symbol {sym!r}: venue {venue.name!r} has no market {market!r}; "
                             f"its markets: {', '.join(venue.markets)}")
        if market != default and "market_for_path" not in venue.extra:
            raise ValueError(f"symbol {sym!r}: venue {venue.name!r} names every market in its native "
                             f"symbols; write the symbol without a market prefix")
        groups.setdefault(market, []).append(bare)
    return groups


def plan(venue: Venue, symbols: list[str], channels: list[str] | None = None) -> list[ConnectionPlan]:
    """The sockets for `symbols` x `channels` on `venue`, honouring its declared limits.

    A symbol may carry a market prefix ("perp:BTCUSDT") on venues that route markets to
    separate endpoints; each market is planned and subscribed on its own sockets."""
    if not symbols:
        raise ValueError(f"no symbols given for venue {venue.name!r}")
    channels = list(channels or venue.channels)
    unknown = [c for c in channels if c not in venue.channels]
    if unknown:
        raise ValueError(f"venue {venue.name!r} has no channel(s) {', '.join(unknown)}; "
                         f"it offers: {', '.join(venue.channels)}")
    if venue.subscribe is None:
        raise ValueError(f"venue {venue.name!r} declares no subscribe()")
    lim = venue.limits
    # half the connect budget for the initial wave, the other half left for reconnects
    budget = max(1, lim.connect_attempts // 2)
    spacing = lim.connect_window_s / budget
    burst = max(1, budget // 10)        # a few may start together (Binance: 15 of 300 per 5 min)
    out: list[ConnectionPlan] = []
    per_market = "market_for_path" in venue.extra
    for market, market_symbols in by_market(venue, list(symbols)).items():
        for shard in shards(market_symbols, channels, lim.streams_per_connection):
            routes = venue.subscribe(shard, channels, market=market) if per_market else venue.subscribe(shard, channels)
            for path, msgs in routes:
                i = len(out)
                # evenly spread: never more than `budget` initial connects in one window
                delay = 0.0 if i < burst else round((i - burst + 1) * spacing, 6)
                out.append(ConnectionPlan(i, path or "", _as_messages(msgs), tuple(shard),
                                          tuple(channels), delay))
    return out
