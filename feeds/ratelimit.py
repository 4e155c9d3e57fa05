"""Rate limiters for what a venue counts: control messages (token bucket) and connection
attempts per window (sliding window). Both are asyncio-friendly and never busy-wait.

Used for subscribe messages per connection, REST requests per venue and connection attempts
per venue; none of them is on the frame hot path.
"""
from __future__ import annotations

import asyncio
import collections
import time


class TokenBucket:
    """`rate` tokens per second, at most `burst` banked. acquire() waits for a token."""

    def __init__(self, rate: float, burst: float = 1.0, clock=time.monotonic):
        if rate <= 0:
            raise ValueError(f"token bucket rate must be > 0, got {rate}")
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self._clock = clock
        self._tokens = self.burst
        self._t = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
        self._t = now

    def try_acquire(self, n: float = 1.0) -> bool:
        """Take n tokens if available now."""
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def wait_time(self, n: float = 1.0) -> float:
        """Seconds until n tokens are available (0 if now)."""
        self._refill()
        missing = n - self._tokens
        return 0.0 if missing <= 0 else missing / self.rate

    async def acquire(self, n: float = 1.0) -> None:
        while not self.try_acquire(n):
            await asyncio.sleep(self.wait_time(n))


class WindowLimiter:
    """At most `limit` events in any `window_s` seconds (connection attempts per window)."""

    def __init__(self, limit: int, window_s: float, clock=time.monotonic):
        if limit < 1 or window_s <= 0:
            raise ValueError(f"window limiter needs limit >= 1 and window_s > 0, got {limit}/{window_s}")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: collections.deque[float] = collections.deque()

    def _expire(self, now: float) -> None:
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()

    def try_acquire(self) -> bool:
        now = self._clock()
        self._expire(now)
        if len(self._times) < self.limit:
            self._times.append(now)
            return True
        return False

    def wait_time(self) -> float:
        now = self._clock()
        self._expire(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window_s - now

    async def acquire(self) -> None:
        while not self.try_acquire():
            await asyncio.sleep(max(self.wait_time(), 0.001))
