"""The per-key request rate the REST shim enforces before a request reaches the
gateway."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """A token bucket per key: ``rate`` requests per second sustained, ``burst`` at once.
    Buckets idle long enough to be full again are forgotten, bounding memory."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def allow(self, key: str) -> bool:
        if not self.enabled:
            return True
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - stamp) * self._rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            if now - self._last_sweep > self._burst / self._rate:
                self._sweep(now)
        return allowed

    def refund(self, key: str) -> None:
        """Give back the request :meth:`allow` charged to ``key``: the key was claimed
        by a request the gateway then refused, so it may not be its owner's."""
        if not self.enabled:
            return
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self._burst, self._clock()))
            self._buckets[key] = (min(self._burst, tokens + 1.0), stamp)

    def _sweep(self, now: float) -> None:
        full_after = self._burst / self._rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
        self._last_sweep = now
