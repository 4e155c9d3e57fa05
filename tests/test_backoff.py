"""Reconnect backoff (capped, full jitter, reset after a stable connection) and rate limiters."""
from __future__ import annotations

import asyncio
import random

import pytest

from feeds.backoff import Backoff
from feeds.ratelimit import TokenBucket, WindowLimiter


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_delays_are_jittered_below_a_growing_capped_ceiling():
    b = Backoff(base_s=0.5, cap_s=8.0, rng=random.Random(1))
    ceilings = []
    for _ in range(12):
        c = b.ceiling()
        d = b.next_delay()
        assert 0.0 <= d <= c
        ceilings.append(c)
    assert ceilings[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert set(ceilings[4:]) == {8.0}                  # capped, retried for ever


def test_full_jitter_spreads_delays():
    b = Backoff(base_s=1.0, cap_s=1.0, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(200)]
    assert min(delays) < 0.1 and max(delays) > 0.9      # uniform over [0, ceiling]
    assert len(set(delays)) == 200


def test_no_overflow_after_days_of_failures():
    b = Backoff(base_s=0.5, cap_s=30.0)
    b.attempt = 10_000
    assert b.ceiling() == 30.0
    assert 0 <= b.next_delay() <= 30.0


def test_resets_only_after_a_stable_connection():
    clock = Clock()
    b = Backoff(base_s=0.5, cap_s=30.0, stable_after_s=30.0, clock=clock)
    for _ in range(5):
        b.next_delay()
    b.connected()
    clock.t += 2.0                        # up for 2 s only: keep backing off
    b.disconnected()
    assert b.attempt == 5
    b.connected()
    clock.t += 31.0                       # stable: start again from the base
    b.disconnected()
    assert b.attempt == 0
    assert b.ceiling() == 0.5


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        Backoff(base_s=0.0)
    with pytest.raises(ValueError):
        Backoff(base_s=5.0, cap_s=1.0)


def test_token_bucket_rate_and_burst():
    clock = Clock()
    tb = TokenBucket(rate=5.0, burst=2.0, clock=clock)
    assert tb.try_acquire() and tb.try_acquire()
    assert not tb.try_acquire()
    assert tb.wait_time() == pytest.approx(0.2)
    clock.t += 0.2
    assert tb.try_acquire()
    clock.t += 100.0                       # never banks more than the burst
    assert tb.try_acquire() and tb.try_acquire() and not tb.try_acquire()


def test_token_bucket_acquire_waits():
    clock = Clock()
    tb = TokenBucket(rate=10.0, burst=1.0, clock=clock)
    slept = []

    async def fake_sleep(s):
        slept.append(s)
        clock.t += s

    async def main():
        orig = asyncio.sleep
        asyncio.sleep = fake_sleep
        try:
            for _ in range(3):
                await tb.acquire()
        finally:
            asyncio.sleep = orig

    asyncio.run(main())
    assert sum(slept) == pytest.approx(0.2)    # 3 tokens at 10/s with 1 banked


def test_window_limiter():
    clock = Clock()
    w = WindowLimiter(3, 10.0, clock=clock)
    assert all(w.try_acquire() for _ in range(3))
    assert not w.try_acquire()
    assert w.wait_time() == pytest.approx(10.0)
    clock.t += 10.0
    assert w.try_acquire()
    with pytest.raises(ValueError):
        WindowLimiter(0, 1.0)


def test_subscribe_bucket_per_second_and_hourly_budgets():
    from feeds.connection import subscribe_bucket
    fast = subscribe_bucket(5.0)                       # Binance: 5/s, no burst
    assert fast.burst == 1.0 and fast.rate == pytest.approx(4.5)
    hourly = subscribe_bucket(480 / 3600)              # OKX: 480 per hour per connection
    assert hourly.burst == pytest.approx(240)
    assert hourly.burst + hourly.rate * 3600 <= 480 + 1e-9   # never more than the budget per hour


def test_rest_client_bodies_and_errors():
    """The small REST client: Content-Length and chunked bodies, POST, HTTP errors, timeouts."""
    import asyncio

    from feeds.rest import RestClient, RestError

    async def handle(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        method, target = head.split(" ")[:2]
        if target.startswith("/chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        elif target.startswith("/missing"):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope")
        elif target.startswith("/slow"):
            await asyncio.sleep(1)
        else:
            body = f"{method} {target}".encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        rest = RestClient(f"http://127.0.0.1:{port}", rate_per_s=100, timeout_s=0.3)
        try:
            assert await rest.get("/depth", {"symbol": "BTCUSDT", "limit": 5}) == \
                b"GET /depth?symbol=BTCUSDT&limit=5"
            assert await rest.request("POST", "/token") == b"POST /token"
            assert await rest.get("/chunked") == b"hello world"
            with pytest.raises(RestError) as e:
                await rest.get("/missing")
            assert e.value.status == 404 and b"nope" in e.value.body
            with pytest.raises(RestError, match="no answer"):
                await rest.get("/slow")
            assert rest.requests == 5 and rest.errors == 2
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())
