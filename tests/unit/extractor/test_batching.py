"""MicroBatcher: merging, per-caller rows, max_batch, shapes, failures, shutdown.

Merging is made deterministic without sleeps: the fake model blocks on its first call
until the test has seen the other submissions arrive in the batcher's queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from extractor.batching import MicroBatcher

WAIT_S = 10.0


class FakeModel:
    """Returns each row's values as a tuple; records every batch it was called with."""

    def __init__(self, *, poison: float | None = None) -> None:
        self.batches: list[np.ndarray] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.poison = poison
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> Sequence[tuple[float, ...]]:
        with self._lock:
            self.batches.append(batch.copy())
        self.started.set()
        assert self.release.wait(WAIT_S), "test never released the model"
        if self.poison is not None and np.any(batch == self.poison):
            raise RuntimeError("poisoned batch")
        return [tuple(float(v) for v in row.ravel()) for row in batch]

    @property
    def sizes(self) -> list[int]:
        return [len(b) for b in self.batches]


def rows(caller: int, count: int, width: int = 2) -> np.ndarray:
    """``count`` rows unique to ``caller``: caller*1000 + row*10 + column."""
    return np.array(
        [[caller * 1000 + r * 10 + c for c in range(width)] for r in range(count)],
        dtype=np.float32,
    )


def expected(items: np.ndarray) -> list[tuple[float, ...]]:
    return [tuple(float(v) for v in row.ravel()) for row in items]


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def queued(batcher: MicroBatcher[tuple[float, ...]]) -> int:
    return batcher._queue.qsize()


def wait_queued(batcher: MicroBatcher[tuple[float, ...]], count: int) -> None:
    wait_until(lambda: queued(batcher) == count, f"{count} queued submissions")


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


def make(
    model: FakeModel, max_batch: int, on_batch: Callable[[int], None] | None = None
) -> MicroBatcher[tuple[float, ...]]:
    return MicroBatcher(model, max_batch=max_batch, name="test", on_batch=on_batch)


def block_then_queue(
    batcher: MicroBatcher[tuple[float, ...]],
    model: FakeModel,
    pool: ThreadPoolExecutor,
    submissions: Sequence[np.ndarray],
) -> tuple[Future[list[tuple[float, ...]]], list[Future[list[tuple[float, ...]]]]]:
    """Start one submission that occupies the model, queue the others behind it, release."""
    first = pool.submit(batcher.submit, rows(99, 1, submissions[0].shape[1]))
    assert model.started.wait(WAIT_S)
    futures = []
    for count, items in enumerate(submissions, start=1):
        futures.append(pool.submit(batcher.submit, items))
        wait_queued(batcher, count)
    model.release.set()
    return first, futures


def test_lone_request_runs_at_once() -> None:
    model = FakeModel()
    model.release.set()
    batcher = make(model, 8)
    try:
        started = time.perf_counter()
        assert batcher.submit(rows(1, 3)) == expected(rows(1, 3))
        assert time.perf_counter() - started < 1.0
        assert model.sizes == [3]
    finally:
        batcher.close()


def test_concurrent_submissions_merge_and_each_caller_gets_its_rows(
    pool: ThreadPoolExecutor,
) -> None:
    model = FakeModel()
    seen: list[int] = []
    batcher = make(model, 64, on_batch=seen.append)
    try:
        submissions = [rows(caller, 1 + caller % 3) for caller in range(10)]
        first, futures = block_then_queue(batcher, model, pool, submissions)
        first.result(WAIT_S)
        for items, future in zip(submissions, futures, strict=True):
            assert future.result(WAIT_S) == expected(items)
        total = sum(len(s) for s in submissions)
        # The blocked first call, then everything queued behind it in one run.
        assert model.sizes == [1, total]
        assert seen == model.sizes
        # Rows are concatenated in queue order, each caller's rows contiguous and in order.
        np.testing.assert_array_equal(model.batches[1], np.concatenate(submissions))
    finally:
        batcher.close()


def test_free_running_load_gives_each_caller_its_rows(pool: ThreadPoolExecutor) -> None:
    """Free-running load (no choreography): results are always the caller's own."""
    model = FakeModel()
    model.release.set()
    batcher = make(model, 8)
    try:
        submissions = [rows(caller, 1 + caller % 4) for caller in range(64)]
        futures = [pool.submit(batcher.submit, items) for items in submissions]
        for items, future in zip(submissions, futures, strict=True):
            assert future.result(WAIT_S) == expected(items)
        assert sum(model.sizes) == sum(len(s) for s in submissions)
        assert max(model.sizes) <= 8
    finally:
        batcher.close()


def test_max_batch_is_respected(pool: ThreadPoolExecutor) -> None:
    model = FakeModel()
    batcher = make(model, 4)
    try:
        submissions = [rows(caller, 3 if caller % 2 else 1) for caller in range(8)]
        first, futures = block_then_queue(batcher, model, pool, submissions)
        first.result(WAIT_S)
        for items, future in zip(submissions, futures, strict=True):
            assert future.result(WAIT_S) == expected(items)
        # Queued 1,3,1,3,...: each 1 merges with the following 3, never past the cap.
        assert model.sizes == [1, 4, 4, 4, 4]
    finally:
        batcher.close()


def test_oversized_submission_is_split_but_returned_whole() -> None:
    model = FakeModel()
    model.release.set()
    batcher = make(model, 4)
    try:
        items = rows(5, 11)
        assert batcher.submit(items) == expected(items)
        assert model.sizes == [4, 4, 3]
    finally:
        batcher.close()


def test_different_item_shapes_are_never_merged(pool: ThreadPoolExecutor) -> None:
    model = FakeModel()
    batcher = make(model, 64)
    try:
        submissions = [rows(caller, 2, width=2 + caller % 2) for caller in range(8)]
        submissions += [rows(caller, 1, width=2) for caller in range(8, 12)]
        first, futures = block_then_queue(batcher, model, pool, submissions)
        first.result(WAIT_S)
        for items, future in zip(submissions, futures, strict=True):
            assert future.result(WAIT_S) == expected(items)
        widths = [batch.shape[1] for batch in model.batches]
        assert widths == [2, 2, 3, 2, 3, 2, 3, 2, 3, 2]
        # Alternating shapes run alone; the trailing same-shape run merged into one batch.
        assert model.sizes == [1, *[2] * 8, 4]
    finally:
        batcher.close()


def test_failure_reaches_every_caller_of_the_batch_and_worker_survives(
    pool: ThreadPoolExecutor,
) -> None:
    model = FakeModel(poison=-1.0)
    batcher = make(model, 64)
    try:
        poisoned = rows(3, 2)
        poisoned[1, 0] = -1.0
        submissions = [rows(1, 1), rows(2, 2), poisoned, rows(4, 1)]
        first, futures = block_then_queue(batcher, model, pool, submissions)
        assert first.result(WAIT_S) == expected(rows(99, 1))
        assert model.sizes == [1, 6]
        errors = [future.exception(WAIT_S) for future in futures]
        assert all(isinstance(e, RuntimeError) and "poisoned" in str(e) for e in errors)
        # The worker keeps serving.
        assert batcher.submit(rows(7, 2)) == expected(rows(7, 2))
        assert pool.submit(batcher.submit, rows(8, 1)).result(WAIT_S) == expected(rows(8, 1))
    finally:
        batcher.close()


def test_failure_of_on_batch_callback_is_reported_not_swallowed() -> None:
    model = FakeModel()
    model.release.set()

    def broken(size: int) -> None:
        raise ValueError(f"metrics down ({size})")

    batcher = make(model, 8, on_batch=broken)
    try:
        with pytest.raises(ValueError, match="metrics down"):
            batcher.submit(rows(1, 1))
    finally:
        batcher.close()


def test_started_work_runs_while_the_caller_waits_on_another_model() -> None:
    first_model, second_model = FakeModel(), FakeModel()
    second_model.release.set()
    first, second = make(first_model, 8), make(second_model, 8)
    try:
        pending = first.start(rows(1, 2))  # held until released below
        assert second.submit(rows(2, 1)) == expected(rows(2, 1))
        assert not pending.done()
        first_model.release.set()
        assert pending.result(timeout=5) == expected(rows(1, 2))
    finally:
        first_model.release.set()
        first.close()
        second.close()


def test_empty_submission_returns_empty_without_running() -> None:
    model = FakeModel()
    batcher = make(model, 8)
    try:
        assert batcher.submit(np.zeros((0, 2), np.float32)) == []
        assert model.batches == []
    finally:
        batcher.close()


def test_close_stops_the_worker_after_queued_work(pool: ThreadPoolExecutor) -> None:
    model = FakeModel()
    batcher = make(model, 1)
    first = pool.submit(batcher.submit, rows(1, 1))
    assert model.started.wait(WAIT_S)
    second = pool.submit(batcher.submit, rows(2, 1))
    wait_queued(batcher, 1)
    closing = pool.submit(batcher.close)
    wait_queued(batcher, 2)  # the second submission and close's sentinel
    model.release.set()
    closing.result(WAIT_S)
    assert first.result(WAIT_S) == expected(rows(1, 1))
    assert second.result(WAIT_S) == expected(rows(2, 1))
    assert not batcher._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(rows(3, 1))
    batcher.close()  # idempotent


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(FakeModel(), max_batch=0, name="bad")
