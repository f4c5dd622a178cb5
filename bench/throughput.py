"""Throughput and latency of an image -> faces function under concurrent clients.

:func:`measure_throughput` runs ``clients`` threads that call the same function,
each taking the next image from a shared round-robin over the image list, as
independent callers of a service would. The function returns the number of faces
it processed for the image, so both images/s and faces/s come out. Used alike for
facegate's extractor (a gRPC call or an in-process pipeline) and for peers.

Threads measure the concurrency the function itself allows: a function that holds
the GIL throughout (as dlib's Python bindings do) gains nothing from more clients.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.metrics import JsonResult


@dataclass(frozen=True)
class ThroughputResult(JsonResult):
    """Speed of one run: rates over the timed phase and per-request latency.

    ``images_per_s = images / wall_s``, ``faces_per_s = faces / wall_s``; latency
    percentiles are numpy's linear interpolation over all timed requests, in ms.
    """

    clients: int
    images: int
    faces: int
    wall_s: float
    images_per_s: float
    faces_per_s: float
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    warmup_images: int


def measure_throughput(
    fn: Callable[[bytes], int],
    images: Sequence[bytes],
    clients: int = 1,
    *,
    count: int | None = None,
    duration_s: float | None = None,
    warmup: int | None = None,
) -> ThroughputResult:
    """Run ``fn`` over ``images`` from ``clients`` concurrent threads and time it.

    Args:
        fn: processes one encoded image, returns how many faces it handled.
        images: encoded images, taken round-robin (wrapping around) by all clients.
        clients: concurrent client threads (each makes one request at a time).
        count: timed requests in all (default ``len(images)``: one pass).
        duration_s: instead of ``count``, keep requesting until this many seconds
            have passed; requests in flight then still finish and count.
        warmup: untimed requests in all before timing starts, spread over the
            clients (default ``max(clients, min(len(images), 2 * clients))``), so
            models are loaded and caches warm. The timed phase starts when every
            client has finished its share of the warm-up.

    Any exception raised by ``fn`` is re-raised once all clients stopped.
    """
    if not images:
        raise ValueError("no images")
    if clients < 1:
        raise ValueError("clients must be >= 1")
    if count is not None and duration_s is not None:
        raise ValueError("give count or duration_s, not both")
    if count is None and duration_s is None:
        count = len(images)
    if warmup is None:
        warmup = max(clients, min(len(images), 2 * clients))

    lock = threading.Lock()
    requests = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    faces = [0] * clients
    errors: list[BaseException] = []
    started = [0.0]
    deadline = [0.0]

    def start_clock() -> None:
        started[0] = time.perf_counter()
        if duration_s is not None:
            deadline[0] = started[0] + duration_s

    barrier = threading.Barrier(clients, action=start_clock)

    def next_request() -> int | None:
        with lock:
            if errors:
                return None
            index = next(requests)
        if count is not None:
            return index if index < count else None
        return index if time.perf_counter() < deadline[0] else None

    def client(worker: int) -> None:
        try:
            for i in range(worker, warmup, clients):
                fn(images[i % len(images)])
        except BaseException as exc:  # reported after the join
            with lock:
                errors.append(exc)
        barrier.wait()
        while (index := next_request()) is not None:
            t0 = time.perf_counter()
            try:
                found = fn(images[index % len(images)])
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                return
            latencies[worker].append(time.perf_counter() - t0)
            faces[worker] += found

    threads = [
        threading.Thread(target=client, args=(w,), name=f"bench-client-{w}", daemon=True)
        for w in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started[0]
    if errors:
        raise errors[0]
    all_latencies = np.asarray([x for per in latencies for x in per], dtype=np.float64) * 1e3
    done = int(all_latencies.shape[0])
    if done == 0:
        raise ValueError("no timed request completed; raise count or duration_s")
    total_faces = sum(faces)
    return ThroughputResult(
        clients=clients,
        images=done,
        faces=total_faces,
        wall_s=wall,
        images_per_s=done / wall,
        faces_per_s=total_faces / wall,
        latency_mean_ms=float(np.mean(all_latencies)),
        latency_p50_ms=float(np.percentile(all_latencies, 50)),
        latency_p99_ms=float(np.percentile(all_latencies, 99)),
        warmup_images=warmup,
    )
