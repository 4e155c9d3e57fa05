"""HTTP + websocket server of the simulator: one listening port per venue, REST and websocket on
the same port, plain asyncio.

Why not picows' server: picows' server accepts only GET requests (the fault endpoint is a POST)
and sends one frame per call; here the server side is simple (server frames are unmasked, so a
frame is a 2-4 byte header + payload) and a whole batch of frames for one connection is joined
and written with a single transport.write, which is what makes flooding cheap. Client frames
(subscribe, ping, pong, close) are few and unmasked here in Python.

Back-pressure: transport.set_write_buffer_limits(HIGH, LOW); asyncio calls pause_writing above
HIGH and the venue engine stops generating until resume_writing, so the server never buffers
more than about HIGH + one batch per connection.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
import time
import urllib.parse

import orjson

from . import faults
from .engine import Engine
from .protocol import Session

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HIGH = 512 * 1024
LOW = 128 * 1024
MAX_HEAD = 64 * 1024
MAX_CLIENT_FRAME = 1 << 20


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(m, "little")).to_bytes(n, "little")


class Conn(asyncio.Protocol):
    """One TCP (or TLS) connection: HTTP requests until a websocket upgrade, then frames."""

    def __init__(self, server: "SimServer", engine: Engine):
        self.server = server
        self.engine = engine
        self.transport = None
        self.buf = bytearray()
        self.session: Session | None = None
        self.closed = False
        self.close_sent = False
        self.frag: bytearray | None = None
        self.frag_op = 0
        self.in_count = 0
        self.in_window = 0.0

    # --- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH, low=LOW)
        self.server.conns.add(self)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server.conns.discard(self)
        if self.session is not None:
            self.engine.detach(self.session)
            self.session = None

    def pause_writing(self) -> None:
        self.engine.pause(self)

    def resume_writing(self) -> None:
        self.engine.resume(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            if self.session is not None:
                self._frames()
            else:
                self._http()
        except Exception as e:          # a bad client must never take the simulator down
            print(f"sim {self.engine.venue}: dropping connection: {e!r}", file=sys.stderr)
            self.abort()

    # --- output --------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def close_ws(self, code: int = 1000, reason: bytes = b"") -> None:
        if self.closed:
            return
        if not self.close_sent:
            self.close_sent = True
            payload = code.to_bytes(2, "big") + reason
            self.transport.write(bytes((0x88, len(payload))) + payload)
        self.closed = True
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    # --- HTTP ----------------------------------------------------------------------------
    def _http(self) -> None:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._respond(431, b'{"error":"request head too large"}', close=True)
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            try:
                method, target, _version = lines[0].split(" ", 2)
            except ValueError:
                self._respond(400, b'{"error":"bad request line"}', close=True)
                return
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            url = urllib.parse.urlsplit(target)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            if headers.get("upgrade", "").lower() == "websocket":
                self._upgrade(method, url.path, query, headers)
                return
            keep = headers.get("connection", "").lower() != "close"
            status, obj = self.server.http(self.engine, method, url.path, query, body)
            data = obj if isinstance(obj, bytes) else orjson.dumps(obj)
            self._respond(status, data, close=not keep)
            if not keep or self.closed:
                return

    def _respond(self, status: int, body: bytes, close: bool = False) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  429: "Too Many Requests", 431: "Request Header Fields Too Large"}.get(status, "Error")
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n")
        self.transport.write(head.encode() + body)
        if close:
            self.closed = True
            self.transport.close()

    def _upgrade(self, method: str, path: str, query: dict, headers: dict) -> None:
        key = headers.get("sec-websocket-key", "")
        if method != "GET" or not key:
            self._respond(400, b'{"error":"bad websocket upgrade"}', close=True)
            return
        self.engine.sync()
        session = Session(self, self.engine, path)
        if not self.engine.proto.open(session, path, query):
            self._respond(404, orjson.dumps({"error": f"{self.engine.venue}: no websocket endpoint {path}"}),
                          close=True)
            session.drop_all()
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.transport.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        self.session = session
        self.engine.attach(session)
        self.engine.proto.on_open(session)
        if self.buf:
            self._frames()

    # --- websocket frames from the client ------------------------------------------------
    def _frames(self) -> None:
        buf = self.buf
        while self.session is not None and not self.closed:
            if len(buf) < 2:
                return
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = int.from_bytes(buf[2:10], "big")
                pos = 10
            if n > MAX_CLIENT_FRAME:
                self.close_ws(1009, b"frame too big")
                return
            masked = b1 & 0x80
            if len(buf) < pos + (4 if masked else 0) + n:
                return
            if masked:
                mask = bytes(buf[pos:pos + 4])
                pos += 4
                payload = _unmask(bytes(buf[pos:pos + n]), mask)
            else:
                payload = bytes(buf[pos:pos + n])
            del buf[:pos + n]
            self._frame(b0 & 0x80, b0 & 0x0F, payload)

    def _limited(self) -> bool:
        """The venue's incoming-message limit: over it, the connection is closed (as the venue does)."""
        limit = self.engine.proto.max_incoming_per_s
        if not limit:
            return False
        now = time.monotonic()
        if now - self.in_window >= 1.0:
            self.in_window = now
            self.in_count = 0
        self.in_count += 1
        if self.in_count > limit:
            print(f"sim {self.engine.venue}: closing connection {self.session.id}: more than {limit} "
                  f"incoming messages per second (the venue's limit)", file=sys.stderr)
            self.close_ws(1008, b"Too many requests")
            return True
        return False

    def _frame(self, fin: int, op: int, payload: bytes) -> None:
        s = self.session
        if op == 0x8:                                   # close: echo and close
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1000
            self.close_ws(code if code in (1000, 1001) else 1000)
            return
        if op == 0x9:                                   # ping -> pong with the same payload
            if self._limited():
                return
            s.send(payload, opcode=0xA)
            return
        if op == 0xA:
            if self._limited():
                return
            s.last_pong = time.monotonic()
            return
        if op in (0x1, 0x2):
            if not fin:
                self.frag, self.frag_op = bytearray(payload), op
                return
        elif op == 0x0:
            if self.frag is None:
                self.close_ws(1002, b"unexpected continuation")
                return
            self.frag += payload
            if not fin:
                return
            payload, self.frag = bytes(self.frag), None
        else:
            self.close_ws(1002, b"unknown opcode")
            return
        if self._limited():
            return
        self.engine.sync()
        self.engine.changed()          # a reply may take a sequence number: re-render the flood cycle
        self.engine.proto.on_text(s, payload)


class SimServer:
    """All venues of one simulator process: engines, listening sockets, control endpoints."""

    def __init__(self, engines: dict[str, Engine], host: str = "127.0.0.1", ssl=None):
        self.engines = engines
        self.host = host
        self.ssl = ssl
        self.servers: dict[str, asyncio.AbstractServer] = {}
        self.ports: dict[str, int] = {}
        self.conns: set[Conn] = set()
        self.tasks: list[asyncio.Task] = []

    async def start(self, port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        for i, (venue, engine) in enumerate(self.engines.items()):
            p = port + i if port else 0
            srv = await loop.create_server(lambda e=engine: Conn(self, e), self.host, p, ssl=self.ssl,
                                           reuse_address=True, backlog=256)
            self.servers[venue] = srv
            self.ports[venue] = srv.sockets[0].getsockname()[1]
            self.tasks += [asyncio.create_task(engine.run()), asyncio.create_task(engine.pinger()),
                           asyncio.create_task(engine.timer())]

    def urls(self) -> dict[str, dict]:
        ws, http = ("wss", "https") if self.ssl else ("ws", "http")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {v: {"port": p, "ws": f"{ws}://{host}:{p}", "rest": f"{http}://{host}:{p}"}
                for v, p in self.ports.items()}

    async def stop(self) -> None:
        for e in self.engines.values():
            e.running = False
        for srv in self.servers.values():
            srv.close()
        for c in list(self.conns):
            if c.session is not None:
                c.close_ws(1001, b"simulator stopping")
            else:
                c.abort()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for srv in self.servers.values():
            try:
                await asyncio.wait_for(srv.wait_closed(), 2.0)
            except (asyncio.TimeoutError, Exception):
                pass

    # --- HTTP routing --------------------------------------------------------------------
    def http(self, engine: Engine, method: str, path: str, query: dict, body: bytes) -> tuple[int, object]:
        """/_sim/* control endpoints (any port, ?venue= picks the venue) or the venue's REST API."""
        for e in self.engines.values():
            e.sync()                   # the trade history of replayed flood cycles
        if path.startswith("/_sim/"):
            venue = query.pop("venue", None) or engine.venue
            e = self.engines.get(venue)
            if e is None:
                return 404, {"error": f"venue {venue!r} is not simulated here; simulated: {', '.join(self.engines)}"}
            try:
                if path == "/_sim/fault":
                    if method not in ("POST", "GET"):
                        return 405, {"error": "use POST /_sim/fault?venue=..&kind=.."}
                    if body:
                        query.update({k: str(v) for k, v in orjson.loads(body).items()})
                    return 200, faults.inject(e, query)
                if path == "/_sim/state":
                    return 200, e.state(query.get("symbol"), query.get("market") or None,
                                        int(query.get("depth", 10)), int(query.get("trades", 100)))
                if path == "/_sim/info":
                    return 200, {"venues": self.urls(), "symbols": {v: [b.native for b in en.book_list]
                                                                    for v, en in self.engines.items()}}
                if path == "/_sim/stats":
                    return 200, {v: en.stats() for v, en in self.engines.items()}
                if path == "/_sim/rate":
                    if "rate" in query:
                        e.set_rate(float(query["rate"]))
                    return 200, {"venue": e.venue, "rate": e.rate}
            except (KeyError, ValueError) as err:
                return 400, {"error": err.args[0] if err.args else str(err)}
            return 404, {"error": f"no control endpoint {path}; use /_sim/fault, /_sim/state, /_sim/info, "
                                  "/_sim/stats, /_sim/rate"}
        try:
            return engine.proto.rest(method, path, query)
        except Exception as err:       # a REST handler bug must not take the simulator down
            print(f"sim {engine.venue}: REST {path} failed: {err!r}", file=sys.stderr)
            return 500, {"error": repr(err)}
