"""The bulk-jobs benchmark's pure parts: which photos, per-record latencies from leases,
CPU time per thread grouped by role, the target, and the docs section's text.

CPU accounting reads Linux's per-thread counters (``/proc/self/task/<tid>/stat``) and
names each thread after its Python ``threading`` name where it has one: everything the
benchmark measures (extractor, matcher, gateway, job workers, moto's S3) runs in one
process, so the split shows where a job's time goes without a profiler.
"""

from __future__ import annotations

import os
import re
import resource
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.dataset import LabelledImage

TARGET_RATIO = 0.9
"""The issue's target: job records/s at least this share of the extractor's photos/s."""

UNATTRIBUTED = "threads that ended meanwhile"

# (thread name prefix, group), first match wins: the claimer's and the committer's names
# also start with the workers' prefix.
_PYTHON_GROUPS: tuple[tuple[str, str], ...] = (
    ("facegate-bulk-claims", "job claimer"),
    ("facegate-bulk-commits", "job committer (store, matcher push)"),
    ("facegate-bulk", "job workers (read, extract call)"),
    ("facegate-replicator", "replicator (background replay)"),
    ("batcher-detector", "extractor: detector model"),
    ("batcher-recognizer", "extractor: recognizer model"),
    ("batcher-pose", "extractor: pose model"),
    ("grpc", "gRPC servers' handlers (extractor decode/align, matcher, gateway)"),
    ("bench-", "benchmark clients"),
    ("MainThread", "benchmark main thread (submission, polling)"),
)
_MOTO_MARK = "process_request_thread"


def pick_photos(images: Sequence[LabelledImage], count: int) -> list[LabelledImage]:
    """``count`` photos, deterministically: the first photo (by file name) of every
    identity in name order, then every identity's second photo, and so on. ``images``
    as bench.dataset lists them (sorted by identity, then file name)."""
    if count < 1:
        raise ValueError(f"count must be positive, not {count}")
    by_identity: dict[str, list[LabelledImage]] = {}
    for image in sorted(images):
        by_identity.setdefault(image.identity, []).append(image)
    chosen: list[LabelledImage] = []
    rank = 0
    while len(chosen) < count:
        layer = [photos[rank] for _, photos in sorted(by_identity.items()) if rank < len(photos)]
        if not layer:
            raise ValueError(f"only {len(chosen)} photos available, {count} asked for")
        chosen.extend(layer[: count - len(chosen)])
        rank += 1
    return chosen


def relative_name(image: LabelledImage) -> str:
    """The photo's file name in a job's source: ``<identity>/<file>``."""
    return f"{image.identity}/{image.path.name}"


@dataclass(frozen=True)
class Latency:
    """Milliseconds per request or record; ``samples`` how many were measured."""

    samples: int
    p50_ms: float
    p99_ms: float
    mean_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
        }


def latency(values_ms: Sequence[float], weights: Sequence[float] | None = None) -> Latency | None:
    """Median, 99th percentile and mean, each value counting ``weights[i]`` times (default
    1: numpy's linear interpolation; weighted: the smallest value whose cumulative weight
    reaches the share); None without values."""
    if not values_ms:
        return None
    array = np.asarray(values_ms, dtype=np.float64)
    if weights is None:
        return Latency(
            samples=len(values_ms),
            p50_ms=float(np.percentile(array, 50)),
            p99_ms=float(np.percentile(array, 99)),
            mean_ms=float(array.mean()),
        )
    weight = np.asarray(weights, dtype=np.float64)
    if weight.shape != array.shape or (weight <= 0).any():
        raise ValueError("one positive weight per value is needed")
    order = np.argsort(array, kind="stable")
    cumulative = np.cumsum(weight[order]) / weight.sum()

    def quantile(share: float) -> float:
        index = min(int(np.searchsorted(cumulative, share - 1e-12)), len(array) - 1)
        return float(array[order][index])

    return Latency(
        samples=len(values_ms),
        p50_ms=quantile(0.5),
        p99_ms=quantile(0.99),
        mean_ms=float((array * weight).sum() / weight.sum()),
    )


def sampling_weights(latencies_ms: Sequence[float], poll_ms: float) -> list[float]:
    """Inverse chances of being seen: a record in flight for ``L`` ms is caught by a poll
    every ``poll_ms`` with chance ``min(1, L / poll_ms)``, so short records are seen less
    often than long ones; weighting by the inverse undoes that bias."""
    return [max(1.0, poll_ms / max(value, 1.0)) for value in latencies_ms]


def record_latencies(
    claimed_until_ms: Mapping[int, int], processed_ms: Mapping[int, int], lease_ms: int
) -> list[float]:
    """Claim-to-processed milliseconds of every record whose lease was seen while in
    flight: a claim leases a record until ``claim time + lease_ms`` (the lease is cleared
    once processed, hence the sampling). Records are keyed by sequence number; a record
    not processed, or never seen in flight, is left out."""
    found: list[float] = []
    for seq, until in sorted(claimed_until_ms.items()):
        done = processed_ms.get(seq, 0)
        if done > 0:
            found.append(float(done - (until - lease_ms)))
    return found


def parse_task_stat(text: str) -> tuple[str, int]:
    """A thread's name and user + system CPU in clock ticks, from its
    ``/proc/<pid>/task/<tid>/stat`` line (the name may hold spaces and parentheses)."""
    head, _, rest = text.rpartition(")")
    if not head or "(" not in head:
        raise ValueError(f"not a stat line: {text[:80]!r}")
    fields = rest.split()
    # rest starts at field 3 (state); utime and stime are fields 14 and 15.
    return head.partition("(")[2], int(fields[11]) + int(fields[12])


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) another process has used, from /proc."""
    _, ticks = parse_task_stat(Path(f"/proc/{pid}/stat").read_text())
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_group(python_name: str | None, native_name: str) -> str:
    """The role of a thread, from its Python name (None: a thread Python did not start,
    such as gRPC core's pollers) or else its kernel name."""
    if python_name is None:
        if native_name.startswith(("grpc", "default-executo", "resolver-execut")):
            return "gRPC core (native)"
        return f"native: {native_name}"
    if _MOTO_MARK in python_name:
        return "moto S3 server (requests)"
    for prefix, group in _PYTHON_GROUPS:
        if python_name.startswith(prefix):
            return group
    return "other Python threads"


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds of the whole process and of each live thread (by id, with its group)."""

    process_s: float
    threads: Mapping[int, tuple[str, float]]


def cpu_snapshot() -> CpuSnapshot:
    """This process's CPU time now, per thread (Linux; other systems: whole process only)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    python_names = {t.native_id: t.name for t in threading.enumerate() if t.native_id}
    threads: dict[int, tuple[str, float]] = {}
    tasks = Path("/proc/self/task")
    if tasks.is_dir():
        tick = float(os.sysconf("SC_CLK_TCK"))
        for entry in tasks.iterdir():
            try:
                native, ticks = parse_task_stat((entry / "stat").read_text())
            except (OSError, ValueError):  # ended while listing
                continue
            tid = int(entry.name)
            threads[tid] = (thread_group(python_names.get(tid), native), ticks / tick)
    return CpuSnapshot(usage.ru_utime + usage.ru_stime, threads)


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds spent between two snapshots by each group of threads, largest first;
    what threads that ended in between spent after ``before`` is :data:`UNATTRIBUTED`."""
    groups: dict[str, float] = {}
    for tid, (group, seconds) in after.threads.items():
        earlier = before.threads.get(tid)
        spent = seconds - (earlier[1] if earlier is not None else 0.0)
        if spent > 0:
            groups[group] = groups.get(group, 0.0) + spent
    rest = (after.process_s - before.process_s) - sum(groups.values())
    if rest > 0.005:  # below the counters' resolution
        groups[UNATTRIBUTED] = rest
    return dict(sorted(groups.items(), key=lambda item: -item[1]))


def per_record_ms(cpu_s: Mapping[str, float], records: int) -> dict[str, float]:
    """CPU milliseconds per record (or photo) of each group, and ``total``."""
    if records < 1:
        raise ValueError(f"records must be positive, not {records}")
    table = {group: seconds * 1000.0 / records for group, seconds in cpu_s.items()}
    table["total"] = sum(cpu_s.values()) * 1000.0 / records
    return table


def ratio(rate: float, reference: float) -> float:
    if reference <= 0:
        raise ValueError(f"reference rate must be positive, not {reference}")
    return rate / reference


def ratio_parts(raw: Mapping[str, float], job: Mapping[str, float]) -> dict[str, float]:
    """Why a job's rate differs from the raw one, in two factors whose product is the
    ratio of rates: ``cpu`` = raw CPU per item / job CPU per item (the work a record adds
    to a photo's), ``utilisation`` = the job's CPU per second / the raw run's (time the
    cores were idle: waits, serialisation). Each argument: ``cpu_s``, ``wall_s``, ``items``."""
    raw_per_item, job_per_item = raw["cpu_s"] / raw["items"], job["cpu_s"] / job["items"]
    return {
        "cpu": raw_per_item / job_per_item,
        "utilisation": (job["cpu_s"] / job["wall_s"]) / (raw["cpu_s"] / raw["wall_s"]),
    }


def targets(jobs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per source: the job's ratio to the extractor's raw rate against :data:`TARGET_RATIO`."""
    return {
        source: {
            "value": job["ratio_to_raw"],
            "limit": TARGET_RATIO,
            "met": job["ratio_to_raw"] >= TARGET_RATIO,
        }
        for source, job in jobs.items()
    }


def failure_kinds(counts: Mapping[str, int]) -> dict[str, int]:
    """Failure reasons with their numbers (face counts, quality scores) replaced by ``N``,
    counted together, most frequent first."""
    kinds: dict[str, int] = {}
    for reason, count in counts.items():
        kind = re.sub(r"\d+(?:\.\d+)?", "N", reason)
        kinds[kind] = kinds.get(kind, 0) + count
    return dict(sorted(kinds.items(), key=lambda item: (-item[1], item[0])))


def _fmt_failures(counts: Mapping[str, int]) -> str:
    if not counts:
        return "none"
    return "; ".join(f'{count} x "{kind}"' for kind, count in failure_kinds(counts).items())


def _cpu_rows(columns: Mapping[str, Mapping[str, float]]) -> Iterable[str]:
    groups: list[str] = []
    for table in columns.values():
        groups += [g for g in table if g != "total" and g not in groups]
    groups.append("total")
    for group in groups:
        cells = " | ".join(f"{table.get(group, 0.0):.2f}" for table in columns.values())
        yield f"| {group} | {cells} |"


def render(result: Mapping[str, Any]) -> str:
    """The generated "jobs" section of docs/benchmarks.md."""
    raw, jobs = result["raw"], result["jobs"]
    lines = [
        "### Bulk registration jobs (issue 5)",
        "",
        f"`{result['command']}` ({result['machine']}). {result['photos']} lfw-dev photos "
        f"({result['selection']}); {result['workers']} job workers and {result['workers']} "
        "raw extractor clients; the whole service in this process (SQLite store), a fresh "
        "gallery for each job. Raw: the extractor's Extract (single face, with template) "
        "over gRPC, what a job does per record, measured before and after the jobs; the "
        "ratio is against both pooled.",
        "",
        "| run | items/s | ratio to raw | succeeded / failed | p50 / p99 ms | CPU ms/item |",
        "|---|---|---|---|---|---|",
    ]
    for label, run in (
        ("raw extractor, before", raw["before"]),
        ("raw extractor, after", raw["after"]),
    ):
        lines.append(
            f"| {label} | {run['photos_per_s']:.1f} | - | {run['ok']} / {run['failed']} | "
            f"{run['latency']['p50_ms']:.0f} / {run['latency']['p99_ms']:.0f} | "
            f"{run['cpu_ms_per_photo']['total']:.1f} |"
        )
    for source, job in jobs.items():
        lat = job["latency"]
        spread = f"{lat['p50_ms']:.0f} / {lat['p99_ms']:.0f}" if lat else "-"
        lines.append(
            f"| job, {source} | {job['records_per_s']:.1f} | {job['ratio_to_raw']:.3f} | "
            f"{job['succeeded']} / {job['failed']} | {spread} | "
            f"{job['cpu_ms_per_record']['total']:.1f} |"
        )
    s3 = result["s3_read"]
    lines += [
        "",
        f"Raw reference {raw['photos_per_s']:.1f} photos/s. Job time runs from submission "
        "(BulkRegister over gRPC) to the last record's processed time; per-record latency "
        "is from claim to processed, for the records seen in flight by a poll every "
        f"{result['poll_s']} s, each weighted by the inverse of its chance to be seen. "
        f"moto's S3 alone: {s3['objects_per_s']:.0f} objects/s "
        f"({s3['clients']} boto3 clients, get_object of all photos, "
        f"{s3['cpu_ms_per_object']:.2f} CPU ms each, client and server).",
        "",
        f"Failures of the raw runs: {_fmt_failures(raw['before']['failures'])}. "
        + " ".join(
            f"The {s} job: "
            + (
                "the same."
                if j["failures"] == raw["before"]["failures"]
                else f"{_fmt_failures(j['failures'])}."
            )
            for s, j in jobs.items()
        ),
        "",
        "CPU milliseconds per photo or record by thread role (all services share the "
        "process and its cores):",
        "",
        "| threads | " + " | ".join(["raw, before", *[f"job, {s}" for s in jobs]]) + " |",
        "|---|" + "---|" * (1 + len(jobs)),
        *_cpu_rows(
            {
                "raw": raw["before"]["cpu_ms_per_photo"],
                **{s: j["cpu_ms_per_record"] for s, j in jobs.items()},
            }
        ),
        "",
        "Ratio = CPU factor (raw CPU per photo / the job's CPU per record) x busy factor "
        "(the job's CPU seconds per second / the raw run's): "
        + "; ".join(
            f"{s} {j['ratio_parts']['cpu']:.3f} x {j['ratio_parts']['utilisation']:.3f}"
            for s, j in jobs.items()
        )
        + ".",
        "",
        "Target (records/s >= 0.9 x raw): "
        + "; ".join(
            f"{s} {t['value']:.3f}: {'met' if t['met'] else 'NOT met'}"
            for s, t in result["targets"].items()
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"
