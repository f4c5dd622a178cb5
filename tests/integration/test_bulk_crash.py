"""kill -9 of the service in the middle of a bulk job: after a restart the job finishes
and every record is processed exactly once (one subject and event per success, none for
a failure, nothing registered twice)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import grpc

from bench.dataset import faces_dir
from facegate.contract import API_KEY_METADATA
from facegate.settings import Settings
from facegate.v1 import jobs_pb2, jobs_pb2_grpc, subjects_pb2, subjects_pb2_grpc
from gateway.store import events
from gateway.store.database import open_database, sqlite_url

PHOTOS = 200
START_TIMEOUT_S = 120
FINISH_TIMEOUT_S = 300


@contextmanager
def serving(data_dir: Path) -> Iterator[tuple[int, str]]:
    """`facegate serve` on ephemeral ports; yields (pid, gRPC address) and the first-run
    text (empty after the first start)."""
    env = {
        **os.environ,
        "FACEGATE_MODEL_DIR": str(Settings.from_env().models),
        "FACEGATE_JOBS_LEASE_S": "2",
        "FACEGATE_JOBS_WORKERS": "4",
    }
    command = [sys.executable, "-m", "facegate", "serve", "--data-dir", str(data_dir)]
    for flag in ("--rest-port", "--grpc-port", "--extractor-port", "--matcher-port"):
        command += [flag, "0"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert process.stdout is not None
    timer = threading.Timer(START_TIMEOUT_S, process.kill)
    timer.start()
    try:
        printed = _read_until_listening(process.stdout)
        timer.cancel()
        yield process.pid, printed
    finally:
        timer.cancel()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _read_until_listening(stdout: IO[str]) -> str:
    lines: list[str] = []
    for line in stdout:
        if line.startswith('{"listening"'):
            port = json.loads(line)["listening"]["gateway"]
            return "".join(lines) + f"\nGRPC=127.0.0.1:{port}"
        lines.append(line)
    raise AssertionError("facegate serve exited before listening:\n" + "".join(lines))


def _progress(channel: grpc.Channel, api_key: str, batch_id: str) -> list[jobs_pb2.JobRecord]:
    stub = jobs_pb2_grpc.JobsStub(channel)
    records: list[jobs_pb2.JobRecord] = []
    key = ""
    while True:
        page = stub.GetBulkRegisterProgress(
            jobs_pb2.JobsGetBulkRegisterProgressRequest(batch_id=batch_id, paging_id=key),
            metadata=((API_KEY_METADATA, api_key),),
            timeout=30,
        )
        records += page.processed
        key = page.last_evaluated_key
        if not key:
            return records


def test_kill_9_mid_job_then_every_record_exactly_once(tmp_path: Path) -> None:
    with serving(tmp_path) as (pid, printed):
        credentials = json.loads(printed[printed.index("{") : printed.index("}") + 1])
        api_key, gallery_id = credentials["apiKey"], credentials["galleryId"]
        address = printed.rsplit("GRPC=", 1)[1].strip()
        folder = tmp_path / "bulk" / gallery_id
        folder.mkdir(parents=True)
        people = sorted(p for p in (faces_dir() / "lfw-dev").iterdir() if p.is_dir())
        names = []
        for person in people[:PHOTOS]:
            shutil.copy(next(person.glob("*.jpg")), folder / f"{person.name}.jpg")
            names.append(f"{person.name}.jpg")
        names.append("missing.jpg")  # a failure must also be recorded once
        with grpc.insecure_channel(address) as channel:
            batch = jobs_pb2_grpc.JobsStub(channel).BulkRegister(
                jobs_pb2.JobsBulkRegisterRequest(
                    registrations=[jobs_pb2.BulkRegistration(filename=n) for n in names]
                ),
                metadata=((API_KEY_METADATA, api_key),),
            )
            while True:
                done = [
                    r
                    for r in _progress(channel, api_key, batch.batch_id)
                    if r.status == jobs_pb2.JOB_RECORD_STATUS_PROCESSED
                ]
                if len(done) >= 10:
                    break
                time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)  # mid-job: records in flight, leases held
    assert len(done) < len(names), "the job finished before the kill: make it longer"

    with serving(tmp_path) as (_, printed):
        address = printed.rsplit("GRPC=", 1)[1].strip()
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        with grpc.insecure_channel(address) as channel:
            while True:
                records = _progress(channel, api_key, batch.batch_id)
                if all(r.status == jobs_pb2.JOB_RECORD_STATUS_PROCESSED for r in records):
                    break
                assert time.monotonic() < deadline
                time.sleep(0.2)
            listed = subjects_pb2_grpc.SubjectsStub(channel).List(
                subjects_pb2.SubjectsListRequest(), metadata=((API_KEY_METADATA, api_key),)
            )

    succeeded = [r for r in records if r.register_status == jobs_pb2.REGISTER_STATUS_SUCCESS]
    failed = [r for r in records if r.register_status == jobs_pb2.REGISTER_STATUS_FAILED]
    assert len(records) == len(names)
    assert [r.filename for r in failed if "not found" in r.reason] == ["missing.jpg"]
    # LFW photos that fail do so for what they show (a second face, poor quality), never
    # because of the crash.
    assert len(succeeded) >= PHOTOS * 0.8
    assert all("face" in r.reason.lower() for r in failed if r.filename != "missing.jpg"), [
        r.reason for r in failed
    ]
    # Exactly once: one active event per success, and no other event in the gallery.
    database = open_database(sqlite_url(tmp_path / "gateway" / "facegate.db"))
    try:
        with database.read() as conn:
            rows, total = events.list_event_rows(
                conn, gallery_id, start=0, length=1000, descending=False
            )
    finally:
        database.close()
    assert total == len(succeeded) == listed.total
    assert sorted((r.subject_id, r.event_id) for r in rows) == sorted(
        (r.subject_id, r.event_id) for r in succeeded
    )
    assert len({r.subject_id for r in succeeded}) == len(succeeded)
