"""S3 client benchmark: the client's CPU per object read, boto3 against what ships.

    python -m bench.s3_client [--photos 1000] [--large 8] [--large-reads 24]
                              [--threads 1,4,12] [--rounds 3] [--no-write]

moto's S3 server runs in a subprocess on loopback, so its CPU is not the client's: it
is read from /proc and reported on its own. A bucket holds ``--photos`` lfw-dev photos
(bench.jobs_report ``pick_photos``; 10-25 KB JPEGs) and ``--large`` objects of 4 MiB
of random bytes. Two readers fetch every object, from T threads at once:

- ``boto3``: one client shared by the threads, configured as gateway/sources.py had it
  before (timeouts, one attempt, path-style, a pool of max(T, 10) connections);
  ``get_object`` and the body read whole.
- ``shipped``: ``gateway.sources.open_source(...).read``, what bulk jobs use now
  (obstore; see the module's docs).

Per run: client CPU = this process's CPU time (user + system, all threads: the reading
threads and any the client runs itself, such as obstore's runtime), of which the reading
threads' own (``time.thread_time``); the server's CPU (its process, utime + stime); wall
time and objects/s. Each run reads all photos (or ``--large-reads`` large objects, round
robin) after 20 untimed reads; the readers take turns within each round (order swapped
every round) and each figure is the median over ``--rounds``. On a busy machine the
CPU figures hold better than the rates.

bench/results/s3_client.json - keys::

    schema: 1, machine, command: str, versions: {package: str}
    objects: {"photos" | "large": {count: int, mean_bytes: int, reads: int}}
    rounds: int, threads: [int]
    runs: [{reader, objects, threads, client_cpu_ms, reading_threads_cpu_ms,
            server_cpu_ms, objects_per_s, wall_s}]    # medians; *_cpu_ms per object

The section "s3-client" of docs/benchmarks.md is written from the same figures.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.dataset import lfw_dev
from bench.jobs_report import pick_photos, process_cpu_s
from bench.report import machine_summary, publish
from gateway.sources import SourceConfig, open_source
from tests.support.net import free_port

RESULTS = Path("bench/results/s3_client.json")
DOCS = Path("docs/benchmarks.md")
BUCKET = "facegate-s3-client-bench"
PREFIX = "photos"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIDBENCHBENCHBENCH0"
SECRET_ACCESS_KEY = "bench-secret-bench-secret-bench-secret00"
LARGE_BYTES = 4 << 20
WARMUP = 20
Reader = Callable[[str], bytes]


@contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    """moto's S3 in a subprocess on loopback: yields its endpoint URL and process id."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def own_cpu_s() -> float:
    """This process's CPU seconds, every thread (CLOCK_PROCESS_CPUTIME_ID: finer than
    the clock ticks of os.times)."""
    return time.process_time()


def boto3_client(endpoint: str, max_connections: int) -> Any:
    settings = Config(
        connect_timeout=30.0,
        read_timeout=30.0,
        retries={"mode": "standard", "total_max_attempts": 1},
        s3={"addressing_style": "path"},
        max_pool_connections=max_connections,
    )
    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    return session.client("s3", endpoint_url=endpoint, config=settings)


def boto3_reader(client: Any) -> Reader:
    def read(name: str) -> bytes:
        response = client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{name}")
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    return read


def fill_bucket(endpoint: str, objects: dict[str, bytes]) -> None:
    client = boto3_client(endpoint, 16)
    client.create_bucket(Bucket=BUCKET)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for done in [
            pool.submit(client.put_object, Bucket=BUCKET, Key=f"{PREFIX}/{name}", Body=data)
            for name, data in objects.items()
        ]:
            done.result()
    client.close()


def read_all(read: Reader, names: list[str], threads: int, pid: int) -> dict[str, float]:
    """Reads every name once from ``threads`` threads; CPU per object and the rate."""
    pending = iter(names)
    lock = threading.Lock()
    thread_cpu: list[float] = []
    got: list[int] = []

    def work() -> None:
        started, size = time.thread_time(), 0
        while True:
            with lock:
                name = next(pending, None)
            if name is None:
                break
            size += len(read(name))
        used = time.thread_time() - started
        with lock:
            thread_cpu.append(used)
            got.append(size)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    server_before, cpu_before, wall_before = process_cpu_s(pid), own_cpu_s(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - wall_before
    client_cpu, server_cpu = own_cpu_s() - cpu_before, process_cpu_s(pid) - server_before
    if len(got) != threads:
        raise RuntimeError("a reading thread failed")
    count = len(names)
    return {
        "client_cpu_ms": 1000 * client_cpu / count,
        "reading_threads_cpu_ms": 1000 * sum(thread_cpu) / count,
        "server_cpu_ms": 1000 * server_cpu / count,
        "objects_per_s": count / wall,
        "wall_s": wall,
    }


def run(
    *, photos: int, large: int, large_reads: int, threads: list[int], rounds: int, command: str
) -> dict[str, Any]:
    chosen = pick_photos(lfw_dev(), photos)
    small = {f"{image.identity}/{image.path.name}": image.path.read_bytes() for image in chosen}
    big = {f"large/{i}.bin": os.urandom(LARGE_BYTES) for i in range(large)}
    big_names = list(big)
    sets = {
        "photos": list(small),
        "large": [big_names[i % len(big_names)] for i in range(large_reads)] if big else [],
    }
    runs: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    with moto_server() as (endpoint, pid):
        fill_bucket(endpoint, small | big)
        config = SourceConfig(
            f"s3://{BUCKET}/{PREFIX}",
            endpoint_url=endpoint,
            region=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
        )
        for round_ in range(rounds):
            for count in threads:
                client = boto3_client(endpoint, max(count, 10))
                source = open_source(config, max_bytes=2 * LARGE_BYTES, max_connections=count)
                readers = {"boto3": boto3_reader(client), "shipped": source.read}
                order = list(readers) if round_ % 2 == 0 else list(reversed(readers))
                for objects, names in sets.items():
                    for reader in order:
                        if not names:
                            continue
                        for name in names[:WARMUP]:
                            readers[reader](name)
                        figures = read_all(readers[reader], names, count, pid)
                        runs.setdefault((reader, objects, count), []).append(figures)
                        print(reader, objects, count, figures, flush=True)
                client.close()
                source.close()
    medians = [
        {"reader": reader, "objects": objects, "threads": count}
        | {key: statistics.median(run[key] for run in figures) for key in figures[0]}
        for (reader, objects, count), figures in runs.items()
    ]
    return {
        "schema": 1,
        "machine": machine_summary(),
        "command": command,
        "versions": {name: version(name) for name in ("boto3", "botocore", "obstore", "moto")},
        "objects": {
            "photos": {
                "count": len(small),
                "mean_bytes": round(statistics.mean(map(len, small.values()))),
                "reads": len(sets["photos"]),
            },
            "large": {"count": large, "mean_bytes": LARGE_BYTES, "reads": len(sets["large"])},
        },
        "rounds": rounds,
        "threads": threads,
        "runs": sorted(
            medians, key=lambda r: (r["objects"] != "photos", r["threads"], r["reader"])
        ),
    }


def render(result: dict[str, Any]) -> str:
    photos, large = result["objects"]["photos"], result["objects"]["large"]
    versions = ", ".join(f"{name} {number}" for name, number in result["versions"].items())
    lines = [
        "### S3 client (issue 14)",
        "",
        f"`{result['command']}` ({result['machine']}; {versions}). moto's S3 server in its "
        f"own process on loopback, on the same cores. Objects: {photos['count']} lfw-dev "
        f"photos (mean {photos['mean_bytes'] / 1000:.1f} KB), each read once per run, and "
        f"{large['reads']} reads of {large['count']} objects of "
        f"{large['mean_bytes'] >> 20} MiB. boto3: get_object from one shared client "
        "(the configuration bulk jobs had); shipped: `gateway.sources.open_source(...).read` "
        f"(obstore). Medians of {result['rounds']} rounds.",
        "",
        "| objects | threads | reader | client CPU ms/object | of which reading threads "
        "| objects/s | moto server CPU ms/object |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['objects']} | {run['threads']} | {run['reader']} | "
            f"{run['client_cpu_ms']:.3f} | {run['reading_threads_cpu_ms']:.3f} | "
            f"{run['objects_per_s']:.0f} | {run['server_cpu_ms']:.2f} |"
        )
    lines += [
        "",
        "Client CPU is the whole client process's (user + system, every thread: for the "
        "shipped reader that includes obstore's own runtime threads, the difference "
        "from the reading threads' column); the server's is the moto process's.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--large", type=int, default=8, help="objects of 4 MiB")
    parser.add_argument("--large-reads", type=int, default=24)
    parser.add_argument("--threads", default="1,4,12", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    threads = [int(part) for part in args.threads.split(",")]
    if args.photos < WARMUP or min(threads) < 1 or args.rounds < 1:
        parser.error(f"needs at least {WARMUP} photos, one thread and one round")
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m bench.s3_client", *given])
    result = run(
        photos=args.photos,
        large=args.large,
        large_reads=args.large_reads,
        threads=threads,
        rounds=args.rounds,
        command=command,
    )
    body = render(result)
    if args.no_write:
        print(body)
        return 0
    publish(result, RESULTS, DOCS, "s3-client", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
