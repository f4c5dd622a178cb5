"""Micro-batching: concurrent requests share one model run.

Each model has one worker thread. A caller submits its items (an array with a leading
batch axis) and waits; the worker takes the first waiting submission and every other
one already queued with the same item shape, up to ``max_batch`` items, runs the
model once and hands each caller its rows. Nothing waits for a batch to fill: a lone
request runs at once, and under load batches grow by themselves while the previous run
is busy. Because every
run of a model goes through its worker, ONNX Runtime's thread pool is never
oversubscribed by concurrent requests.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

R = TypeVar("R")


@dataclass
class _Job(Generic[R]):
    items: np.ndarray
    future: Future[list[R]] = field(default_factory=Future)


class MicroBatcher(Generic[R]):
    """Runs ``fn`` (a batch array -> one result per row) over merged submissions."""

    def __init__(
        self,
        fn: Callable[[np.ndarray], Sequence[R]],
        *,
        max_batch: int,
        name: str,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._fn = fn
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Job[R] | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    def submit(self, items: np.ndarray) -> list[R]:
        """Results for ``items`` (rows in order); blocks until the batch containing them ran."""
        return self.start(items).result()

    def start(self, items: np.ndarray) -> Future[list[R]]:
        """The future results of ``items``, so a caller can wait on two models at once."""
        job: _Job[R] = _Job(items)
        if len(items) == 0:
            job.future.set_result([])
            return job.future
        if self._closed:
            raise RuntimeError("batcher is closed")
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _work(self) -> None:
        carry: _Job[R] | None = None
        while True:
            first = carry or self._queue.get()
            carry = None
            if first is None:
                return
            jobs = [first]
            size = len(first.items)
            while size < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                mergeable = nxt.items.shape[1:] == first.items.shape[1:]
                if not mergeable or size + len(nxt.items) > self._max_batch:
                    carry = nxt
                    break
                jobs.append(nxt)
                size += len(nxt.items)
            self._run(jobs)

    def _run(self, jobs: list[_Job[R]]) -> None:
        try:
            batch = jobs[0].items if len(jobs) == 1 else np.concatenate([j.items for j in jobs])
            results: list[R] = []
            for start in range(0, len(batch), self._max_batch):
                results.extend(self._fn(batch[start : start + self._max_batch]))
            if self._on_batch is not None:
                self._on_batch(len(batch))
        except BaseException as exc:  # every waiting caller must hear about the failure
            for job in jobs:
                job.future.set_exception(exc)
            return
        offset = 0
        for job in jobs:
            job.future.set_result(results[offset : offset + len(job.items)])
            offset += len(job.items)
