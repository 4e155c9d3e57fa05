"""A small asyncio HTTP/1.1 client for REST snapshots, instrument lists and backfill.

Off the hot path and rare (a snapshot after a gap, instruments at start-up), so it is kept
minimal: one connection per request (Connection: close), Content-Length or chunked bodies,
http:// and https:// (with an `insecure` switch for the simulator's self-signed certificate).
Every request passes the venue's token bucket first.
"""
from __future__ import annotations

import asyncio
import ssl
import urllib.parse

from .ratelimit import TokenBucket


class RestError(RuntimeError):
    """A REST request failed (network, timeout or a non-2xx status)."""

    def __init__(self, msg: str, status: int = 0, body: bytes = b""):
        super().__init__(msg)
        self.status = status
        self.body = body


class RestClient:
    """GET requests against one base URL through a rate limiter."""

    def __init__(self, base_url: str, rate_per_s: float = 10.0, timeout_s: float = 10.0,
                 insecure: bool = False):
        self.base_url = base_url.rstrip("/")
        self.limiter = TokenBucket(rate_per_s, burst=max(1.0, rate_per_s))
        self.timeout_s = timeout_s
        self.insecure = insecure
        self.requests = 0
        self.errors = 0

    def url(self, path: str, params: dict | None = None) -> str:
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return f"{self.base_url}{path}{q}"

    async def get(self, path: str, params: dict | None = None) -> bytes:
        """The body of GET base_url + path ? params; RestError on failure."""
        return await self.request("GET", path, params)

    async def request(self, method: str, path: str, params: dict | None = None) -> bytes:
        """The body of METHOD base_url + path ? params (no request body); RestError on failure."""
        await self.limiter.acquire()
        url = self.url(path, params)
        self.requests += 1
        try:
            return await asyncio.wait_for(fetch(url, self.insecure, method), self.timeout_s)
        except asyncio.TimeoutError:
            self.errors += 1
            raise RestError(f"GET {url}: no answer within {self.timeout_s:g} s") from None
        except (OSError, ValueError, asyncio.IncompleteReadError) as e:
            self.errors += 1
            raise RestError(f"GET {url}: {e}") from None
        except RestError:
            self.errors += 1
            raise


def _ssl_context(insecure: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def fetch(url: str, insecure: bool = False, method: str = "GET") -> bytes:
    """One HTTP/1.1 request without a body; the body of a 2xx answer, RestError otherwise."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https"):
        raise ValueError(f"REST URL must be http:// or https://, got {url!r}")
    port = u.port or (443 if u.scheme == "https" else 80)
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    reader, writer = await asyncio.open_connection(
        u.hostname, port, ssl=_ssl_context(insecure) if u.scheme == "https" else None,
        server_hostname=u.hostname if u.scheme == "https" else None)
    try:
        host = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
        length = "Content-Length: 0\r\n" if method != "GET" else ""
        writer.write(f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tickring\r\n"
                     f"Accept: application/json\r\n{length}Connection: close\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError(f"bad HTTP status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
        if not 200 <= status < 300:
            raise RestError(f"{method} {url}: HTTP {status} {body[:200]!r}", status, body)
        return body
    finally:
        writer.close()
