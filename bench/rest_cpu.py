"""CPU time of the in-process REST shim's threads (Linux /proc), for the gateway benchmark.

The REST shim (gateway/rest/server.py) runs uvicorn's event loop on one thread named
``facegate-rest``; the request handling, the SigV4 check and the grpc.aio client calls to
the gateway all run there. Two more Python threads work for it alone in the benchmark's
process: grpc.aio's completion-queue poller (``Thread-N (_poll_wrapper)``, started with
the first aio channel; nothing else in the process uses grpc.aio) and the loop's default
executor (``asyncio_N``: bodies of 1 MiB or more are hashed there). gRPC core's native
threads (``event_engine``, ``grpc_global_timer``) are shared with the in-process gateway,
extractor and matcher and cannot be attributed, so they are not counted.

Only the standard library: this module is copied into exports of earlier revisions
(bench/gateway_side.py runs there).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

LOOP = "loop"
AIO_POLLER = "aio_poller"
EXECUTOR = "executor"
GROUPS = (LOOP, AIO_POLLER, EXECUTOR)
REST_THREAD = "facegate-rest"

NOTE = (
    "CPU time (/proc/self/task/<tid>/schedstat, ns) of the REST shim's own threads in the "
    "benchmark's service process, over the level's wall time (warm-up excluded) divided by "
    "its measured requests: the uvicorn event loop thread 'facegate-rest' (HTTP, SigV4, "
    "JSON, the grpc.aio client), grpc.aio's poller thread '(_poll_wrapper)' and the loop's "
    "default executor 'asyncio_N'. gRPC core's native threads are shared with the "
    "in-process gateway and backends and are not counted; nor is anything of the gateway. "
    "It includes what the loop spends idle over the level's wall time (uvicorn's 0.1 s "
    "tick): a gRPC level's figure, where the shim serves nothing, is that floor."
)


def group_of(name: str) -> str | None:
    """The REST shim's thread group a Python thread name belongs to (None: not the shim's)."""
    if name == REST_THREAD:
        return LOOP
    if name.endswith("(_poll_wrapper)"):
        return AIO_POLLER
    if name.startswith("asyncio_"):
        return EXECUTOR
    return None


def thread_cpu_ns(native_id: int) -> int | None:
    """CPU nanoseconds a thread of this process has run (None: it has ended): schedstat's
    first field, else utime + stime from its stat line (clock ticks)."""
    task = f"/proc/self/task/{native_id}"
    try:
        with open(f"{task}/schedstat") as schedstat:
            return int(schedstat.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"{task}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def snapshot() -> dict[str, int]:
    """CPU nanoseconds so far of the REST shim's threads by ``"<group>:<native id>"``."""
    found: dict[str, int] = {}
    for thread in threading.enumerate():
        group = group_of(thread.name)
        if group is None or thread.native_id is None:
            continue
        spent = thread_cpu_ns(thread.native_id)
        if spent is not None:
            found[f"{group}:{thread.native_id}"] = spent
    return found


def per_request_ms(
    before: Mapping[str, int], after: Mapping[str, int], requests: int
) -> dict[str, float]:
    """CPU milliseconds per request of each group between two snapshots, and ``total``.
    A thread first seen in ``after`` counts from zero (it started in between)."""
    if requests < 1:
        raise ValueError(f"requests must be positive, not {requests}")
    spent = dict.fromkeys(GROUPS, 0)
    for key, ns in after.items():
        spent[key.partition(":")[0]] += ns - before.get(key, 0)
    table = {group: ns / 1e6 / requests for group, ns in spent.items()}
    table["total"] = sum(spent.values()) / 1e6 / requests
    return table
