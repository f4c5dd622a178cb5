"""Kill -9 of a real matcher process mid-stream: every acknowledged write survives."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest

from facegate.v1 import common_pb2, matcher_pb2, matcher_pb2_grpc

GALLERY = "crash-gallery"
LISTENING = re.compile(r"matcher gRPC listening on [^:]+:(\d+)")
MODEL_ID = "synthetic-512@0123456789ab"
DIM = 512


@dataclass
class Matcher:
    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)


def _start(data_dir: Path) -> Matcher:
    env = {
        **os.environ,
        "FACEGATE_MATCHER_DATA_DIR": str(data_dir),
        # A matcher needs no model file or manifest.
        "FACEGATE_MODEL_DIR": str(data_dir / "no-models"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "facegate", "serve", "matcher", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        found = LISTENING.search(line)
        if found:
            matcher = Matcher(process, int(found.group(1)), lines)
            threading.Thread(target=_drain, args=(process, lines), daemon=True).start()
            return matcher
    process.kill()
    raise AssertionError("matcher did not start:\n" + "".join(lines))


def _drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "shard"


def _entry(event_id: str, vector: np.ndarray) -> matcher_pb2.MatcherEntry:
    return matcher_pb2.MatcherEntry(
        gallery_id=GALLERY,
        event_id=event_id,
        subject_id=f"subject-{event_id}",
        template=common_pb2.Template(model_id=MODEL_ID, embedding=vector.tolist()),
        tag_mask=1,
    )


def test_acknowledged_writes_survive_kill_minus_9(data_dir: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4000, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    matcher = _start(data_dir)
    # Per key: the state the last acknowledged write left (True = present), and the keys
    # whose last write was in flight when the process died (their state is unknown).
    acknowledged: dict[int, bool] = {}
    in_flight: set[int] = set()
    highest = 0
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        nonlocal highest
        with grpc.insecure_channel(f"127.0.0.1:{matcher.port}") as channel:
            stub = matcher_pb2_grpc.MatcherStub(channel)
            keys = range(worker, len(vectors), 4)
            for step, key in enumerate(keys):
                if stop.is_set():
                    return
                delete = step % 3 == 2  # delete a key written two steps before
                target = keys[step - 2] if delete else key
                with lock:
                    in_flight.add(target)
                try:
                    sequence: int
                    if delete:
                        sequence = stub.Delete(
                            matcher_pb2.MatcherDeleteRequest(
                                gallery_id=GALLERY, event_ids=[f"e{target}"]
                            ),
                            timeout=10,
                        ).sequence
                    else:
                        sequence = stub.Upsert(
                            matcher_pb2.MatcherUpsertRequest(
                                entries=[_entry(f"e{target}", vectors[target])]
                            ),
                            timeout=10,
                        ).sequence
                except grpc.RpcError:
                    return  # the process is gone: this write's fate is unknown
                with lock:
                    in_flight.discard(target)
                    acknowledged[target] = not delete
                    highest = max(highest, sequence)

    clients = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for thread in clients:
        thread.start()
    while len(acknowledged) < 600:
        time.sleep(0.01)
    matcher.process.send_signal(signal.SIGKILL)
    matcher.process.wait()
    stop.set()
    for thread in clients:
        thread.join()
    assert len(acknowledged) >= 600

    restarted = _start(data_dir)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{restarted.port}") as channel:
            stub = matcher_pb2_grpc.MatcherStub(channel)
            stats = stub.Stats(matcher_pb2.MatcherStatsRequest(gallery_id=GALLERY))
            assert stats.applied_sequence >= highest
            checked = 0
            for key, present in acknowledged.items():
                if key in in_flight:
                    continue
                reply = stub.Search(
                    matcher_pb2.MatcherSearchRequest(
                        gallery_id=GALLERY,
                        probes=[
                            common_pb2.Template(model_id=MODEL_ID, embedding=vectors[key].tolist())
                        ],
                        k=1,
                        min_similarity=0.9,
                    )
                )
                found = [h.event_id for h in reply.results[0].hits]
                assert found == ([f"e{key}"] if present else []), (key, present, found)
                checked += 1
            assert checked >= 500
    finally:
        restarted.process.send_signal(signal.SIGTERM)
        restarted.process.wait(timeout=30)
    assert any("recovered" in line for line in restarted.lines)
