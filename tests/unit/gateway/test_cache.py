"""The expiring cache behind per-request lookups."""

from __future__ import annotations

from gateway.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_misses_count_and_size_is_bounded() -> None:
    clock = Clock()
    cache: TtlCache[str, int | None] = TtlCache(5.0, 2, clock=clock)
    loads: list[str] = []

    def load(key: str, value: int | None) -> int | None:
        loads.append(key)
        return value

    assert cache.get("a", lambda: load("a", 1)) == 1
    assert cache.get("a", lambda: load("a", 2)) == 1  # cached
    assert cache.get("missing", lambda: load("missing", None)) is None
    assert cache.get("missing", lambda: load("missing", 3)) is None  # the miss is cached
    clock.now = 6.0
    assert cache.get("a", lambda: load("a", 4)) == 4  # expired: loaded again
    cache.get("b", lambda: load("b", 5))
    cache.get("c", lambda: load("c", 6))  # over 2 entries: "missing" (oldest) dropped
    assert cache.get("missing", lambda: load("missing", 7)) == 7
    cache.clear()
    assert cache.get("a", lambda: load("a", 8)) == 8
    assert loads == ["a", "missing", "a", "b", "c", "missing", "a"]
