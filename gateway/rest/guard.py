"""What the REST shim checks before a request reaches the gateway: the SigV4 signature
(against tenants' secrets read from the store) and the per-key request rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gateway.cache import TtlCache
from gateway.credentials import SecretBox
from gateway.store.database import Database
from gateway.tenancy import tenant_secret

SECRET_TTL_S = 60.0
"""How long a looked-up secret is reused: tenants' keys never change in place, so this
only bounds how long a deleted tenant's key keeps working on an already-warm shim."""
_CACHE_ENTRIES = 10_000


class SecretDirectory:
    """access key id -> secret, from the store, cached briefly (a signature check per
    request must not cost a database round trip)."""

    def __init__(
        self,
        database: Database,
        box: SecretBox,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._box = box
        self._cache: TtlCache[str, str | None] = TtlCache(SECRET_TTL_S, _CACHE_ENTRIES, clock=clock)

    def secret_for(self, access_key_id: str) -> str | None:
        return self._cache.get(access_key_id, lambda: self._load(access_key_id))

    def _load(self, access_key_id: str) -> str | None:
        found = tenant_secret(self._database, self._box, access_key_id)
        return None if found is None else found[1]


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

    def _sweep(self, now: float) -> None:
        full_after = self._burst / self._rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
        self._last_sweep = now
