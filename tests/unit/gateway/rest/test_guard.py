"""The REST shim's per-key token bucket."""

from __future__ import annotations

from gateway.rest.guard import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another key has its own bucket
    clock.now += 0.5  # one token back at 2/s
    assert limiter.allow("a")
    assert not limiter.allow("a")
    clock.now += 100  # refills to the burst, not beyond
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_zero_rate_means_no_limit() -> None:
    limiter = RateLimiter(0.0, 1)
    assert not limiter.enabled
    assert all(limiter.allow("a") for _ in range(1000))


def test_a_refund_gives_back_what_allow_charged() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock=clock)
    assert [limiter.allow("a") for _ in range(2)] == [True, True]
    assert not limiter.allow("a")
    limiter.refund("a")  # a forged request for "a" was refused by the gateway
    assert limiter.allow("a")
    assert not limiter.allow("a")
    for _ in range(5):
        limiter.refund("a")  # never beyond the burst
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
