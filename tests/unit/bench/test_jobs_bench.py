"""The bulk-jobs benchmark's pure parts: photo choice, latencies from leases, CPU time per
thread role, targets, the docs text, and the thread profiler."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bench import jobs_bench
from bench.dataset import LabelledImage
from bench.jobs_report import (
    UNATTRIBUTED,
    CpuSnapshot,
    cpu_delta,
    cpu_snapshot,
    failure_kinds,
    latency,
    parse_task_stat,
    per_record_ms,
    pick_photos,
    ratio,
    ratio_parts,
    record_latencies,
    relative_name,
    render,
    sampling_weights,
    targets,
    thread_group,
)
from bench.thread_profile import ThreadProfiles


def _images(counts: dict[str, int]) -> list[LabelledImage]:
    return [
        LabelledImage(Path(f"/faces/{person}/{person}_{i:04d}.jpg"), person)
        for person, count in counts.items()
        for i in range(1, count + 1)
    ]


def test_pick_photos_takes_first_photos_of_everyone_then_second_ones() -> None:
    images = _images({"b": 3, "a": 1, "c": 2})
    chosen = pick_photos(list(reversed(images)), 5)
    assert [relative_name(i) for i in chosen] == [
        "a/a_0001.jpg",
        "b/b_0001.jpg",
        "c/c_0001.jpg",
        "b/b_0002.jpg",
        "c/c_0002.jpg",
    ]
    assert pick_photos(images, 2) == chosen[:2]


def test_pick_photos_refuses_more_than_there_are() -> None:
    with pytest.raises(ValueError, match="only 3"):
        pick_photos(_images({"a": 2, "b": 1}), 4)
    with pytest.raises(ValueError, match="positive"):
        pick_photos(_images({"a": 2}), 0)


def test_record_latencies_from_lease_ends() -> None:
    lease_ms = 60_000
    claimed_until = {0: 1_000 + lease_ms, 1: 1_050 + lease_ms, 2: 1_100 + lease_ms}
    processed = {0: 1_090, 1: 1_250, 2: 0, 3: 1_300}  # 2 unfinished, 3 never seen
    assert record_latencies(claimed_until, processed, lease_ms) == [90.0, 200.0]


def test_latency_percentiles() -> None:
    assert latency([]) is None
    spread = latency([float(v) for v in range(1, 102)])
    assert spread is not None
    assert (spread.samples, spread.p50_ms, spread.p99_ms, spread.mean_ms) == (101, 51, 100, 51)
    assert spread.to_dict()["p99_ms"] == 100


def test_parse_task_stat_with_awkward_names() -> None:
    fields = " ".join(str(n) for n in range(3, 20))  # fields 3..19; utime=14, stime=15
    assert parse_task_stat(f"42 (a (b) c) {fields}") == ("a (b) c", 14 + 15)
    with pytest.raises(ValueError, match="stat"):
        parse_task_stat("garbage")


@pytest.mark.parametrize(
    ("python_name", "native", "group"),
    [
        ("facegate-bulk-claims", "python", "job claimer"),
        ("facegate-bulk-commits", "python", "job committer (store, matcher push)"),
        ("facegate-bulk_3", "python", "job workers (read, extract call)"),
        ("batcher-recognizer", "python", "extractor: recognizer model"),
        ("grpc_7", "python", "gRPC servers' handlers (extractor decode/align, matcher, gateway)"),
        ("Thread-12 (process_request_thread)", "python", "moto S3 server (requests)"),
        ("Thread-3", "python", "other Python threads"),
        (None, "grpc_global_tim", "gRPC core (native)"),
        (None, "onnx-worker", "native: onnx-worker"),
    ],
)
def test_thread_group(python_name: str | None, native: str, group: str) -> None:
    assert thread_group(python_name, native) == group


def test_cpu_delta_attributes_threads_and_leaves_the_rest() -> None:
    before = CpuSnapshot(10.0, {1: ("a", 1.0), 2: ("b", 2.0), 3: ("gone", 5.0)})
    after = CpuSnapshot(14.0, {1: ("a", 1.5), 2: ("b", 2.0), 4: ("a", 1.0)})
    assert cpu_delta(before, after) == {UNATTRIBUTED: 2.5, "a": 1.5}


def test_cpu_snapshot_sees_a_busy_thread() -> None:
    def spin() -> None:
        deadline = time.thread_time() + 0.1
        while time.thread_time() < deadline:
            pass

    timed = jobs_bench._in_threads(spin, 2, "bench-spin")
    spent = cpu_delta(timed.before, timed.after)
    assert spent["benchmark clients"] >= 0.15
    assert timed.wall_s >= 0.1
    assert cpu_snapshot().process_s > 0


def test_per_record_ratio_and_targets() -> None:
    table = per_record_ms({"a": 1.0, "b": 0.5}, 100)
    assert table == {"a": 10.0, "b": 5.0, "total": 15.0}
    with pytest.raises(ValueError, match="positive"):
        per_record_ms({}, 0)
    assert ratio(45.0, 50.0) == 0.9
    with pytest.raises(ValueError, match="positive"):
        ratio(1.0, 0.0)
    found = targets({"local": {"ratio_to_raw": 0.9}, "s3": {"ratio_to_raw": 0.5}})
    assert found == {
        "local": {"value": 0.9, "limit": 0.9, "met": True},
        "s3": {"value": 0.5, "limit": 0.9, "met": False},
    }


def _result() -> dict[str, Any]:
    raw = {
        "photos_per_s": 100.0,
        "ok": 90,
        "failed": 10,
        "failures": {"2 faces were found": 10},
        "latency": {"p50_ms": 80.0, "p99_ms": 150.0},
        "cpu_ms_per_photo": {"extractor: detector model": 3.0, "total": 12.0},
    }
    job = {
        "records_per_s": 80.0,
        "ratio_to_raw": 0.8,
        "succeeded": 90,
        "failed": 10,
        "failures": {"2 faces were found": 10},
        "latency": {"p50_ms": 90.0, "p99_ms": 300.0},
        "cpu_ms_per_record": {"job claimer": 1.0, "total": 15.0},
        "ratio_parts": {"cpu": 0.8, "utilisation": 1.0},
    }
    return {
        "command": "python -m bench.jobs_bench",
        "machine": "test machine",
        "photos": 100,
        "selection": "first photos",
        "workers": 8,
        "poll_s": 0.2,
        "raw": {"before": raw, "after": raw, "photos_per_s": 100.0},
        "s3_read": {"objects_per_s": 300.0, "clients": 8, "cpu_ms_per_object": 3.0},
        "jobs": {"local": job, "s3": {**job, "latency": None}},
        "targets": targets({"local": job, "s3": job}),
    }


def test_render_lists_every_run_and_the_verdict() -> None:
    text = render(_result())
    assert "| job, local | 80.0 | 0.800 | 90 / 10 | 90 / 300 | 15.0 |" in text
    assert "| job, s3 | 80.0 | 0.800 | 90 / 10 | - | 15.0 |" in text
    assert "| job claimer | 0.00 | 1.00 | 1.00 |" in text
    assert "| total | 12.00 | 15.00 | 15.00 |" in text
    assert "local 0.800: NOT met" in text
    assert 'raw runs: 10 x "N faces were found". The local job: the same.' in text
    assert "local 0.800 x 1.000" in text


def test_ratio_parts_multiply_to_the_ratio_of_rates() -> None:
    raw = {"cpu_s": 20.0, "wall_s": 10.0, "items": 1000.0}  # 100/s, 20 ms CPU each
    job = {"cpu_s": 18.0, "wall_s": 12.0, "items": 600.0}  # 50/s, 30 ms CPU each
    parts = ratio_parts(raw, job)
    assert parts == pytest.approx({"cpu": 20 / 30, "utilisation": 1.5 / 2.0})
    assert parts["cpu"] * parts["utilisation"] == pytest.approx(50 / 100)


def test_thread_profiles_only_profile_named_threads() -> None:
    def work() -> None:
        sum(range(1000))

    with ThreadProfiles("profiled-") as profiles:
        for name in ("profiled-1", "other-1"):
            thread = threading.Thread(target=work, name=name)
            thread.start()
            thread.join()
    assert profiles.threads == 1
    assert "1 threads named profiled-*" in profiles.report()
    assert "no thread named" in ThreadProfiles("x").report()


def test_weighted_latency_undoes_the_polls_bias() -> None:
    # Polls every 200 ms see every 400 ms record but only half of the 100 ms ones.
    seen = [100.0] * 5 + [400.0] * 10
    weights = sampling_weights(seen, 200.0)
    assert weights == [2.0] * 5 + [1.0] * 10
    spread = latency(seen, weights)
    assert spread is not None
    assert (spread.p50_ms, spread.p99_ms, spread.mean_ms) == (100.0, 400.0, 250.0)
    unweighted = latency(seen)
    assert unweighted is not None
    assert unweighted.p50_ms == 400.0
    with pytest.raises(ValueError, match="weight"):
        latency([1.0], [0.0])


def test_failure_kinds_count_reasons_that_differ_in_numbers_only() -> None:
    counts = {
        "2 faces were found in the image.": 5,
        "The face quality score 0.146 is below the minimum 0.45.": 1,
        "3 faces were found in the image.": 2,
        "The face quality score 0.3 is below the minimum 0.45.": 1,
    }
    assert failure_kinds(counts) == {
        "N faces were found in the image.": 7,
        "The face quality score N is below the minimum N.": 2,
    }
