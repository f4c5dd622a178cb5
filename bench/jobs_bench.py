"""Bulk-jobs benchmark: registration jobs against the extractor's raw throughput, same run.

    python -m bench.jobs_bench [--photos 1000] [--workers 8] [--poll-s 0.5] [--no-write]

The whole service runs in this process (tests/support/stack.py: extractor, matcher
shard, gateway with its job workers, REST shim; SQLite store; rate limit off) over a
temporary data directory. The photos: ``--photos`` of lfw-dev (bench.jobs_report
``pick_photos``: the first photo of each person in name order, then second photos, ...),
named ``<person>/<file>`` in the sources. In order:

1. raw, before: the extractor's gRPC Extract (FACE_SELECTION_SINGLE, with templates, the
   gallery's minimum quality: what a job does per record) of every photo from C client
   threads, C = the job worker count; photos/s = photos / wall time, failures included
   (they cost the same work). After 16 untimed calls.
2. local folder job: a fresh gallery; the photos written to its default source
   ``<data dir>/bulk/<gallery id>/``; one job of all of them submitted over gRPC.
3. S3: moto's S3 server on loopback (tests/support/s3.py) in this process, a bucket with
   the photos; first the plain read rate (boto3 get_object of every photo from C
   threads), then a fresh gallery whose source is the bucket (Jobs.SetBulkSource) and
   one job of all the photos.
4. raw, after (the machine's speed drifts; the ratio is against 1 and 4 pooled: all
   their photos over all their wall time).

A job's time runs from just before BulkRegister until the latest ``processed_ms`` of
its records (read from the store, so not rounded up to the polling interval); the
benchmark polls the store's counts (gateway.store.jobs.job_counts) every ``--poll-s``
and, with it, the leases of the records in flight, which give each record's claim time
(lease end - lease length) and so its claim-to-processed latency; a poll sees a short
record less often than a long one, so each is weighted by the inverse of its chance to be
seen (bench.jobs_report.sampling_weights). CPU time is taken per
thread and grouped by role (bench/jobs_report.py), for the raw runs and each job.

bench/results/jobs.json - keys (stable; later work compares against them)::

    schema: 1
    machine, command: str                    # machine_summary(); the command line
    photos: int, selection: str, workers: int, poll_s: float, cores: int
    raw: {before: RAW, after: RAW, photos_per_s: float}   # photos_per_s: both pooled
    s3_read: {clients, objects, bytes, wall_s, objects_per_s, cpu_ms_per_object,
              cpu_ms_per_object_by_threads: {GROUP: float}}
    jobs: {"local": JOB, "s3": JOB}
    targets: {"local" | "s3": {value: float, limit: 0.9, met: bool}}

    RAW = {clients, photos, ok, failed, failures: {reason: int}, wall_s, photos_per_s,
           latency: LATENCY, cpu_s, cpu_utilisation,      # cpu_s / (wall_s * cores)
           cpu_ms_per_photo: {GROUP | "total": float}}
    JOB = {source: str, batch_id, records, succeeded, failed, failures: {reason: int},
           submit_s,                          # the BulkRegister call itself
           wall_s, records_per_s, ratio_to_raw, observed_s,  # observed_s: until a poll saw
           attempts_max: int,                 # the job done
           latency: LATENCY | null,           # claim to processed, weighted sample
           latency_coverage: float,           # share of records sampled
           cpu_s, cpu_utilisation, cpu_ms_per_record: {GROUP | "total": float},
           ratio_parts: {cpu: float, utilisation: float}}  # bench.jobs_report.ratio_parts;
                                              # product ~ ratio_to_raw (CPU window: observed_s)
    LATENCY = {samples, p50_ms, p99_ms, mean_ms}

The section "jobs" of docs/benchmarks.md is written from the same figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import grpc
from botocore.config import Config
from sqlalchemy import select

from bench.dataset import REPO_ROOT, lfw_dev
from bench.jobs_report import (
    CpuSnapshot,
    cpu_delta,
    cpu_snapshot,
    latency,
    per_record_ms,
    pick_photos,
    ratio,
    ratio_parts,
    record_latencies,
    relative_name,
    render,
    sampling_weights,
    targets,
)
from bench.report import machine_summary, replace_section
from bench.thread_profile import ThreadProfiles
from facegate.contract import API_KEY_METADATA
from facegate.settings import Settings
from facegate.v1 import extractor_pb2, extractor_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from gateway.deps import MIN_QUALITY_FLOOR
from gateway.ports import system_clock_ms as now_ms
from gateway.store import jobs
from gateway.store.schema import job_records
from gateway.tenancy import create_tenant
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, new_bucket, running_moto
from tests.support.stack import SignedClient, Stack, running_stack

RESULTS = REPO_ROOT / "bench" / "results" / "jobs.json"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SELECTION = "first photo of each person in name order, then second photos, ..."
WARMUP = 16
JOB_DEADLINE_S = 3600.0
S3_PREFIX = "lfw"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def _cpu(before: CpuSnapshot, after: CpuSnapshot, items: int, wall_s: float) -> dict[str, Any]:
    spent = cpu_delta(before, after)
    total = after.process_s - before.process_s
    return {
        "cpu_s": total,
        "cpu_utilisation": total / (wall_s * _cores()),
        "by_threads": per_record_ms(spent, items),
    }


def _extract_request(photo: bytes) -> extractor_pb2.ExtractorExtractRequest:
    return extractor_pb2.ExtractorExtractRequest(
        image=photo,
        selection=extractor_pb2.FACE_SELECTION_SINGLE,
        with_templates=True,
        min_quality=MIN_QUALITY_FLOOR,
    )


@dataclass(frozen=True)
class _Timed:
    wall_s: float
    before: CpuSnapshot
    after: CpuSnapshot


def _in_threads(work: Callable[[], None], count: int, name: str) -> _Timed:
    """``work`` in ``count`` threads started together; the wall time until all are done,
    CPU snapshots taken while they are all still alive (so their time is attributed)."""
    started = threading.Barrier(count + 1)
    done = threading.Barrier(count + 1)
    release = threading.Event()

    def body() -> None:
        started.wait()
        try:
            work()
        finally:
            done.wait()
            release.wait()

    threads = [threading.Thread(target=body, name=f"{name}-{i}", daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    before = cpu_snapshot()
    started.wait()
    t0 = time.perf_counter()
    done.wait()
    wall = time.perf_counter() - t0
    after = cpu_snapshot()
    release.set()
    for thread in threads:
        thread.join()
    return _Timed(wall, before, after)


def extract_all(
    address: str, photos: Sequence[bytes], clients: int, *, timeout_s: float = 120.0
) -> dict[str, Any]:
    """Every photo once through Extract from ``clients`` threads, each one call at a time."""
    lock = threading.Lock()
    next_photo = iter(range(len(photos)))
    failures: Counter[str] = Counter()
    latencies: list[float] = []

    with grpc.insecure_channel(address) as channel:
        stub = extractor_pb2_grpc.ExtractorStub(channel)

        def client() -> None:
            while True:
                with lock:
                    index = next(next_photo, None)
                if index is None:
                    return
                t0 = time.perf_counter()
                try:
                    stub.Extract(_extract_request(photos[index]), timeout=timeout_s)
                    failure = None
                except grpc.RpcError as error:
                    call: grpc.Call = error  # type: ignore[assignment]
                    failure = call.details() or str(call.code())
                elapsed_ms = (time.perf_counter() - t0) * 1000.0
                with lock:
                    latencies.append(elapsed_ms)
                    if failure is not None:
                        failures[failure] += 1

        for photo in photos[:WARMUP]:
            # Warm-up only: the timed pass counts failures.
            with contextlib.suppress(grpc.RpcError):
                stub.Extract(_extract_request(photo), timeout=timeout_s)
        timed = _in_threads(client, clients, "bench-raw")
    if len(latencies) != len(photos):
        raise RuntimeError(f"{len(latencies)} of {len(photos)} photos extracted")
    cpu = _cpu(timed.before, timed.after, len(photos), timed.wall_s)
    spread = latency(latencies)
    assert spread is not None
    return {
        "clients": clients,
        "photos": len(photos),
        "ok": len(photos) - sum(failures.values()),
        "failed": sum(failures.values()),
        "failures": dict(failures.most_common()),
        "wall_s": timed.wall_s,
        "photos_per_s": len(photos) / timed.wall_s,
        "latency": spread.to_dict(),
        "cpu_s": cpu["cpu_s"],
        "cpu_utilisation": cpu["cpu_utilisation"],
        "cpu_ms_per_photo": cpu["by_threads"],
    }


def new_gallery(signer: SignedClient, name: str, size: int) -> tuple[str, str]:
    """A gallery of the signer's tenant (minimum quality: the default, the floor): its id
    and API key."""
    body = {"name": name, "size": size}
    response = signer.call("POST", "/api/galleries", body)
    if response.status_code != 200:
        raise RuntimeError(f"creating gallery {name} failed: {response.text}")
    created = response.json()
    return str(created["id"]), str(created["apiKey"])


def _in_flight(stack: Stack, batch_id: str) -> tuple[tuple[int, int, int], dict[int, int]]:
    """The job's (new, succeeded, failed) counts and the lease ends of its claimed records."""
    with stack.deps.database.read() as conn:
        counts = jobs.job_counts(conn, batch_id)
        rows = conn.execute(
            select(job_records.c.seq, job_records.c.lease_until_ms).where(
                job_records.c.job_id == batch_id,
                job_records.c.status == jobs.NEW,
                job_records.c.lease_until_ms > 0,
            )
        )
        leases = {int(seq): int(until) for seq, until in rows}
    return counts, leases


def run_job(
    stack: Stack, api_key: str, names: Sequence[str], poll_s: float, source: str
) -> dict[str, Any]:
    """Submit one job of ``names`` over gRPC, wait until every record is processed
    (``ratio_to_raw`` is left for the caller)."""
    metadata = ((API_KEY_METADATA, api_key),)
    request = jobs_pb2.JobsBulkRegisterRequest(
        registrations=[jobs_pb2.BulkRegistration(filename=name) for name in names]
    )
    leases: dict[int, int] = {}
    with grpc.insecure_channel(stack.grpc_address) as channel:
        stub = jobs_pb2_grpc.JobsStub(channel)
        before = cpu_snapshot()
        submitted_ms = now_ms()
        t0 = time.perf_counter()
        batch_id = stub.BulkRegister(request, metadata=metadata, timeout=120).batch_id
        submit_s = time.perf_counter() - t0
        while True:
            time.sleep(poll_s)
            (new, _, _), seen = _in_flight(stack, batch_id)
            leases.update(seen)  # a retried record's later lease replaces the earlier
            if new == 0:
                break
            if time.perf_counter() - t0 > JOB_DEADLINE_S:
                raise RuntimeError(f"job {batch_id} not done after {JOB_DEADLINE_S} s")
        observed = time.perf_counter() - t0
        after = cpu_snapshot()
    with stack.deps.database.read() as conn:
        records = jobs.job_page(conn, batch_id, after_seq=-1, limit=len(names) + 1)
    wall = (max(r.processed_ms for r in records) - submitted_ms) / 1000.0
    failures = Counter(r.reason for r in records if r.register_status != "Success")
    lease_ms = int(stack.settings.jobs.lease_s * 1000)
    processed = {r.seq: r.processed_ms for r in records}
    sampled = record_latencies(leases, processed, lease_ms)
    spread = latency(sampled, sampling_weights(sampled, poll_s * 1000.0))
    cpu = _cpu(before, after, len(records), observed)
    return {
        "source": source,
        "batch_id": batch_id,
        "records": len(records),
        "succeeded": len(records) - sum(failures.values()),
        "failed": sum(failures.values()),
        "failures": dict(failures.most_common()),
        "submit_s": submit_s,
        "wall_s": wall,
        "records_per_s": len(records) / wall,
        "observed_s": observed,
        "attempts_max": max(r.attempts for r in records),
        "latency": spread.to_dict() if spread else None,
        "latency_coverage": len(sampled) / len(records),
        "cpu_s": cpu["cpu_s"],
        "cpu_utilisation": cpu["cpu_utilisation"],
        "cpu_ms_per_record": cpu["by_threads"],
    }


def s3_read_rate(endpoint: str, bucket: str, keys: Sequence[str], clients: int) -> dict[str, Any]:
    """get_object of every key, whole bodies, from ``clients`` threads sharing one client."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(max_pool_connections=clients),
    )
    lock = threading.Lock()
    pending = iter(keys)
    sizes: list[int] = []

    def reader() -> None:
        while True:
            with lock:
                key = next(pending, None)
            if key is None:
                return
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            data = body.read()
            body.close()
            with lock:
                sizes.append(len(data))

    timed = _in_threads(reader, clients, "bench-s3")
    s3.close()
    if len(sizes) != len(keys):
        raise RuntimeError(f"read {len(sizes)} of {len(keys)} objects")
    cpu = _cpu(timed.before, timed.after, len(keys), timed.wall_s)
    return {
        "clients": clients,
        "objects": len(keys),
        "bytes": sum(sizes),
        "wall_s": timed.wall_s,
        "objects_per_s": len(keys) / timed.wall_s,
        "cpu_ms_per_object": cpu["by_threads"]["total"],
        "cpu_ms_per_object_by_threads": cpu["by_threads"],
    }


def run(
    photo_count: int,
    workers: int,
    poll_s: float,
    command: str,
    profiles: ThreadProfiles | None = None,
) -> dict[str, Any]:
    """Every measurement of the module docstring; ``profiles``: active during both jobs."""
    images = pick_photos(lfw_dev(), photo_count)
    names = [relative_name(image) for image in images]
    photos = [image.path.read_bytes() for image in images]
    size = 2 * photo_count + 10
    with (
        tempfile.TemporaryDirectory(prefix="facegate-jobs-bench-") as data_dir,
        running_stack(
            Path(data_dir),
            rate_per_second=0,
            # "*": moto's endpoint is only known once it runs, after the service starts.
            jobs={
                "workers": workers,
                "max_registrations": max(photo_count, 1000),
                "s3_endpoints": ("*",),
            },
        ) as stack,
    ):
        created = create_tenant(stack.deps.database, stack.deps.secrets, "jobs-bench")
        signer = SignedClient(
            stack.rest_url, created.tenant.access_key_id, created.secret_access_key
        )
        local_gallery, local_key = new_gallery(signer, "jobs-local", size)
        _, s3_key = new_gallery(signer, "jobs-s3", size)
        extractor = stack.settings.extractor_address
        print(f"raw extractor, {workers} clients, {photo_count} photos", flush=True)
        raw_before = extract_all(extractor, photos, workers)

        with profiles or contextlib.nullcontext():
            print("local folder job", flush=True)
            folder = stack.settings.bulk_root / local_gallery
            for name, data in zip(names, photos, strict=True):
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
            local = run_job(stack, local_key, names, poll_s, "local folder")

            with running_moto() as endpoint:
                print("S3: upload, read rate, job", flush=True)
                objects = {f"{S3_PREFIX}/{n}": d for n, d in zip(names, photos, strict=True)}
                bucket = new_bucket(endpoint, objects)
                s3_read = s3_read_rate(endpoint, bucket, sorted(objects), workers)
                with grpc.insecure_channel(stack.grpc_address) as channel:
                    jobs_pb2_grpc.JobsStub(channel).SetBulkSource(
                        jobs_pb2.JobsSetBulkSourceRequest(
                            uri=f"s3://{bucket}/{S3_PREFIX}",
                            endpoint_url=endpoint,
                            region=REGION,
                            access_key_id=ACCESS_KEY_ID,
                            secret_access_key=SECRET_ACCESS_KEY,
                        ),
                        metadata=((API_KEY_METADATA, s3_key),),
                    )
                s3 = run_job(stack, s3_key, names, poll_s, "S3 (moto on loopback)")

        print("raw extractor again", flush=True)
        raw_after = extract_all(extractor, photos, workers)
        signer.close()

    pooled = {
        "cpu_s": raw_before["cpu_s"] + raw_after["cpu_s"],
        "wall_s": raw_before["wall_s"] + raw_after["wall_s"],
        "items": raw_before["photos"] + raw_after["photos"],
    }
    reference = pooled["items"] / pooled["wall_s"]
    job_runs = {"local": local, "s3": s3}
    for job in job_runs.values():
        job["ratio_to_raw"] = ratio(job["records_per_s"], reference)
        # The CPU window ends when a poll saw the job done: observed_s, not wall_s.
        window = {"cpu_s": job["cpu_s"], "wall_s": job["observed_s"], "items": job["records"]}
        job["ratio_parts"] = ratio_parts(pooled, window)
    return {
        "schema": 1,
        "machine": machine_summary(),
        "command": command,
        "photos": photo_count,
        "selection": SELECTION,
        "workers": workers,
        "poll_s": poll_s,
        "cores": _cores(),
        "raw": {"before": raw_before, "after": raw_after, "photos_per_s": reference},
        "s3_read": s3_read,
        "jobs": job_runs,
        "targets": targets(job_runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="job workers and raw clients (default: FACEGATE_JOBS_WORKERS, else 8)",
    )
    parser.add_argument("--poll-s", type=float, default=0.5)
    parser.add_argument(
        "--no-write", action="store_true", help="print the figures only (no results, no docs)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a cProfile of the job worker threads (both jobs) to this file; the "
        "figures of a profiled run are printed only, not written",
    )
    args = parser.parse_args(argv)
    workers = args.workers if args.workers is not None else Settings.from_env().jobs.workers
    if workers < 1:
        parser.error("the benchmark needs at least one job worker")
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m bench.jobs_bench", *given])
    profiles = ThreadProfiles("facegate-bulk_") if args.profile else None
    result = run(args.photos, workers, args.poll_s, command, profiles)
    print(json.dumps({"raw": result["raw"]["photos_per_s"], **result["targets"]}, indent=1))
    if profiles is not None:
        args.profile.write_text(profiles.report())
        print(f"profile of the job workers: {args.profile}")
    if args.no_write or profiles is not None:
        print(json.dumps(result, indent=2))
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    replace_section(DOCS, "jobs", render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
