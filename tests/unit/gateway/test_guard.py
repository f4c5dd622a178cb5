"""The REST shim's guards: the per-key token bucket and the cached secret lookup."""

from __future__ import annotations

from pathlib import Path

from gateway.credentials import SecretBox
from gateway.rest.guard import SECRET_TTL_S, RateLimiter, SecretDirectory
from gateway.store import tenants
from gateway.store.database import open_database, sqlite_url


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


def test_secret_directory_reads_the_store_and_caches(tmp_path: Path) -> None:
    database = open_database(sqlite_url(tmp_path / "store.db"))
    box = SecretBox(bytes(32))
    clock = Clock()
    directory = SecretDirectory(database, box, clock=clock)
    try:
        assert directory.secret_for("AKFGX") is None
        with database.write() as conn:
            tenants.create_tenant(
                conn,
                id="t",
                name="t",
                access_key_id="AKFGX",
                secret_ciphertext=box.seal("secret", access_key_id="AKFGX"),
                now_ms=1,
            )
        assert directory.secret_for("AKFGX") is None  # the miss is cached too
        clock.now += SECRET_TTL_S + 1
        assert directory.secret_for("AKFGX") == "secret"
    finally:
        database.close()
