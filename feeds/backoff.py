"""Reconnect delays: capped exponential backoff with full jitter, retried for ever.

Full jitter (delay drawn uniformly from [0, min(cap, base * 2**attempt)]) spreads the
reconnects of many connections that dropped together, so a venue that just restarted is not
hit by a synchronized wave. The attempt counter resets only after a connection stayed up for
`stable_after_s`: a socket that connects and drops at once keeps backing off.
"""
from __future__ import annotations

import random
import time


class Backoff:
    """Delay before the next connection attempt. No retry limit: the caller loops for ever."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 30.0, stable_after_s: float = 30.0,
                 rng: random.Random | None = None, clock=time.monotonic):
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, got base_s={base_s} cap_s={cap_s}")
        self.base_s = base_s
        self.cap_s = cap_s
        self.stable_after_s = stable_after_s
        self.attempt = 0
        self._rng = rng or random.Random()
        self._clock = clock
        self._up_since: float | None = None

    def ceiling(self) -> float:
        """Upper bound of the next delay: base * 2**attempt, capped."""
        # min() before the power would overflow for a connection that failed for days
        return min(self.cap_s, self.base_s * (2.0 ** min(self.attempt, 62)))

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (full jitter), and count the attempt."""
        delay = self._rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        return delay

    def connected(self) -> None:
        """A connection came up; the counter resets once it proves stable."""
        self._up_since = self._clock()

    def disconnected(self) -> None:
        """A connection went down: reset the counter if it had been up long enough."""
        if self._up_since is not None and self._clock() - self._up_since >= self.stable_after_s:
            self.attempt = 0
        self._up_since = None

    def reset(self) -> None:
        self.attempt = 0
        self._up_since = None
