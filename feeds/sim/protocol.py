"""What one simulated venue must say: the base class every venue module subclasses, the
websocket Session it talks through, and the registry of venue modules.

A venue module (feeds/sim/binance.py, ...) subclasses `VenueProtocol` and fills in:
- `markets`, `native(inst, market)`: which books exist and their native symbol names;
- `open(session, path, query)`: accept a websocket URL path (and its stream list, if the URL
  carries one) or refuse it (404);
- `on_text(session, data)`: subscribe / unsubscribe / ping text messages and their acks;
- `on_trade(book, trade, ts_ms)` / `on_book(book, ev, ts_ms)`: encode one model event once and
  (ev = (first_id, last_id, prev_last_id, bid_changes, ask_changes, top_changed), see
  market.Book.update and `rendered_levels`)
  `session.push()` the bytes to every session subscribed to that book and channel
  (`book.subs[channel] -> [(session, prefix, suffix)]`);
- `rest(method, path, query)`: the REST endpoints the workers use;
- `notice(session)` (forced-disconnect notice) and `malformed()` for the fault injector.
Server PING frames, the incoming-message limit and the per-connection bookkeeping are shared.

Register the module in `PROTOCOLS` (venue id -> "module:Class").
"""
from __future__ import annotations

import importlib
import itertools
import struct
import time
import uuid

import orjson

# venue id -> "module:class" of its VenueProtocol (imported when a sim serves that venue)
PROTOCOLS: dict[str, str] = {
    "binance": "feeds.sim.binance:Binance",
    "binance_usdm": "feeds.sim.binance_usdm:BinanceUsdm",
    "bybit": "feeds.sim.bybit:Bybit",
    "okx": "feeds.sim.okx:Okx",
    "coinbase": "feeds.sim.coinbase:Coinbase",
    "kraken": "feeds.sim.kraken:Kraken",
    "bitget": "feeds.sim.bitget:Bitget",
    "gateio": "feeds.sim.gateio:Gateio",
    "kucoin": "feeds.sim.kucoin:Kucoin",
}


def protocol_class(venue: str) -> type["VenueProtocol"]:
    """The VenueProtocol subclass of a venue id; a clear error for an unknown one."""
    target = PROTOCOLS.get(venue)
    if target is None:
        raise KeyError(f"the simulator does not speak venue {venue!r}; it speaks: {', '.join(PROTOCOLS)}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


# server -> client text frame headers (FIN + opcode, unmasked), precomputed up to 16 KiB
HDR = [bytes((0x81, n)) for n in range(126)] + [bytes((0x81, 126)) + n.to_bytes(2, "big")
                                                for n in range(126, 16384)]
HDR_MAX = len(HDR)
_HDR_MID = struct.Struct(">BBH")
_HDR_BIG = struct.Struct(">BBQ")


def frame_header(n: int, opcode: int = 1) -> bytes:
    """Header of an unmasked final frame of n payload bytes."""
    b0 = 0x80 | opcode
    if n < 126:
        return bytes((b0, n))
    if n < 65536:
        return _HDR_MID.pack(b0, 126, n)
    return _HDR_BIG.pack(b0, 127, n)


def fanout(subs: list, data: bytes) -> None:
    """Batch one encoded message to every (session, prefix, suffix) of a book channel; the
    frame header is computed once, sessions without a wrapper get the same bytes object."""
    n = len(data)
    h = HDR[n] if n < HDR_MAX else frame_header(n)
    for s, pre, suf in subs:
        if pre:
            s.push(pre + data + suf)
        else:
            s.out += (h, data)


_conn_ids = itertools.count(1)


class Session:
    """One websocket connection as the venue protocol sees it.

    Market frames are `push()`ed (or `fanout()`ed) into `out` (already framed) during a
    generation batch and written with one transport.write at the end of the batch (the engine
    flushes every session with pending frames); control replies are
    sent at once with `send()`. `subs` maps a subscription key (the venue's stream/topic name)
    to the (book, channel, entry) it added, so unsubscribe and disconnect can remove it.
    """
    __slots__ = ("conn", "engine", "out", "subs", "market", "combined", "id", "conn_id",
                 "opened", "path", "last_pong", "ping_sent", "data")

    def __init__(self, conn, engine, path: str):
        self.conn = conn
        self.engine = engine
        self.out: list[bytes] = []
        self.subs: dict[str, tuple] = {}
        self.market = ""
        self.combined = False
        self.id = next(_conn_ids)
        self.conn_id = str(uuid.UUID(int=engine.rng.getrandbits(128)))
        self.opened = time.monotonic()
        self.path = path
        self.last_pong = self.opened
        self.ping_sent = 0.0
        self.data: dict = {}          # venue-specific per-connection state

    # --- market data (batched) -----------------------------------------------------------
    def push(self, data: bytes) -> None:
        """Batch one market-data frame (written at the end of the generation batch)."""
        n = len(data)
        self.out += (HDR[n] if n < HDR_MAX else frame_header(n), data)

    def flush(self) -> int:
        out = self.out
        if out:
            data = b"".join(out)
            self.conn.write(data)
            out.clear()
            return len(data)
        return 0

    # --- control -------------------------------------------------------------------------
    def send(self, data: bytes | str, opcode: int = 1) -> None:
        """Send one frame now (after anything already batched for this connection)."""
        if isinstance(data, str):
            data = data.encode()
        self.flush()
        self.conn.write(frame_header(len(data), opcode) + data)

    def send_json(self, obj) -> None:
        self.send(orjson.dumps(obj))

    def subscribe(self, key: str, book, channel: str, prefix: bytes = b"", suffix: bytes = b"") -> bool:
        """Add this session to book.subs[channel] under `key`; False if already subscribed."""
        if key in self.subs:
            return False
        entry = (self, prefix, suffix)
        book.subs.setdefault(channel, []).append(entry)
        self.subs[key] = (book, channel, entry)
        self.engine.subscribed()
        return True

    def unsubscribe(self, key: str) -> bool:
        if key not in self.subs:
            return False
        item = self.subs.pop(key)
        self.engine.changed()
        if item is None:               # a subscription the venue accepted but serves nothing for
            return True
        book, channel, entry = item
        lst = book.subs.get(channel)
        if lst is not None:
            try:
                lst.remove(entry)
            except ValueError:
                pass
            if not lst:
                del book.subs[channel]
        return True

    def drop_all(self) -> None:
        for key in list(self.subs):
            self.unsubscribe(key)

    def close(self, code: int = 1000, reason: bytes = b"") -> None:
        """Send a close frame and close the connection."""
        self.conn.close_ws(code, reason)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network failure)."""
        self.conn.abort()


class VenueProtocol:
    """Base of every simulated venue. See the module docstring for what a subclass provides."""

    name = ""
    markets: tuple[str, ...] = ("spot",)
    ping_interval = 0.0            # the server sends ws PING frames this often (0 = never)
    pong_timeout = 0.0             # ... and drops the connection without a PONG for this long
    max_incoming_per_s = 0         # incoming frames per second per connection before disconnect
    ids_per_update = (1, 3)        # book update ids one book message consumes (min, max)
    notice_supported = True
    # on_book receives level changes rendered as JSON bytes (b'["p","s"],..') instead of lists of
    # (price_bytes, size_bytes) tuples: cheaper for venues whose level format is ["price","size"]
    rendered_levels = False

    def __init__(self, engine):
        self.engine = engine       # feeds.sim.engine.Engine: books, rng, clock, config
        self.ts_b = b"0"           # the current batch's ts_ms as decimal bytes (set by the engine):
                                   # formatting a 13-digit int per message is a measurable cost

    # --- naming --------------------------------------------------------------------------
    def native(self, inst, market: str) -> str:
        raise NotImplementedError

    # --- websocket -----------------------------------------------------------------------
    def open(self, session: Session, path: str, query: dict[str, str]) -> bool:
        """Accept the websocket URL path (set session.market, subscribe URL streams) or refuse."""
        raise NotImplementedError

    def on_open(self, session: Session) -> None:
        """Called once the websocket is established (after open() accepted it); e.g. a welcome."""

    def on_text(self, session: Session, data: bytes) -> None:
        raise NotImplementedError

    def on_trade(self, book, trade: tuple, ts_ms: int) -> None:
        raise NotImplementedError

    def on_book(self, book, ev: tuple, ts_ms: int) -> None:
        raise NotImplementedError

    def on_timer(self, ts_ms: int) -> None:
        """Called about once a second (mark prices, tickers); default nothing."""

    def replayed(self) -> None:
        """Flood replay advanced the books' counters without calling on_book/on_trade: bring
        any per-book state of the venue up to date (engine.sync()); default nothing."""

    # --- REST ----------------------------------------------------------------------------
    def rest(self, method: str, path: str, query: dict[str, str]) -> tuple[int, object]:
        """(HTTP status, JSON-serializable body or bytes) for a REST request."""
        return 404, {"error": f"no such endpoint {path}"}

    # --- faults --------------------------------------------------------------------------
    def notice(self, session: Session, ts_ms: int) -> bytes | None:
        """The venue's forced-disconnect notice frame, or None if it documents none."""
        return None

    def malformed(self, book, ts_ms: int) -> bytes:
        """A frame that is not valid JSON (truncated market message)."""
        return b'{"e":"trade","E":%d,"s":"%s","p":"1' % (ts_ms, book.native_b)

    # --- helpers for subclasses ----------------------------------------------------------
    def book(self, market: str, native: str):
        return self.engine.books.get((market, native))

    def now_ms(self) -> int:
        return int(time.time() * 1000)
