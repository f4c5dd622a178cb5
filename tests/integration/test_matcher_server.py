"""The Matcher gRPC service over real channels, on ephemeral ports: every rpc, bad input,
concurrency, restarts, the fan-out over 3 shards, and `facegate serve matcher`.

Templates are 512-d vectors of a made-up model: a shard knows nothing of models but what
its galleries hold, and every shard here runs without a model directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from facegate.errors import ERROR_TYPE_METADATA_KEY, ErrorType, FacegateError
from facegate.grpcserver import bind, new_server
from facegate.settings import Settings
from facegate.v1 import common_pb2, matcher_pb2, matcher_pb2_grpc
from matcher.merge import FanOut
from matcher.placement import shard_of, split_by_shard
from matcher.server import MatcherDeps, MatcherServicer, create_server, open_shard, shard_config

BASE = Settings.from_env()
MODEL_ID = "synthetic-512@0123456789ab"
OTHER_MODEL_ID = "synthetic-other@ba9876543210"
DIM = 512
GALLERY = "gallery-1"


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    vector = rng.standard_normal(dim).astype(np.float32)
    result: np.ndarray = vector / np.linalg.norm(vector)
    return result


def template(vector: np.ndarray, model_id: str = MODEL_ID) -> common_pb2.Template:
    return common_pb2.Template(model_id=model_id, embedding=vector.tolist())


def entry(
    event_id: str,
    subject_id: str,
    vector: np.ndarray,
    tag_mask: int = 0,
    gallery_id: str = GALLERY,
) -> matcher_pb2.MatcherEntry:
    return matcher_pb2.MatcherEntry(
        gallery_id=gallery_id,
        event_id=event_id,
        subject_id=subject_id,
        template=template(vector),
        tag_mask=tag_mask,
    )


def search(
    probes: list[np.ndarray], k: int = 10, min_similarity: float = -1.0, tag_mask: int = 0
) -> matcher_pb2.MatcherSearchRequest:
    return matcher_pb2.MatcherSearchRequest(
        gallery_id=GALLERY,
        probes=[template(p) for p in probes],
        k=k,
        min_similarity=min_similarity,
        tag_mask=tag_mask,
    )


class MatcherProcess:
    """A shard and its server, as `facegate serve matcher` runs them, restartable on the
    same data directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._start()

    def _start(self) -> None:
        self.shard = open_shard(self.settings)
        self.server, self.port = create_server(self.settings, MatcherDeps(self.shard))
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = matcher_pb2_grpc.MatcherStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        self.server.stop(grace=None).wait()
        self.shard.close()

    def restart(self) -> None:
        self.stop()
        self._start()


def settings_for(data_dir: Path, index: int = 0, count: int = 1) -> Settings:
    return replace(
        BASE,
        model_dir=data_dir / "no-models",
        host="127.0.0.1",
        matcher_port=0,
        grpc_workers=8,
        matcher=replace(BASE.matcher, data_dir=data_dir, shard_index=index, shard_count=count),
    )


@pytest.fixture
def matcher(tmp_path: Path) -> Iterator[MatcherProcess]:
    process = MatcherProcess(settings_for(tmp_path / "shard"))
    try:
        yield process
    finally:
        process.stop()


def invalid(call: object) -> FacegateError:
    """The InvalidRequest a failed call carries (fails the test for anything else)."""
    assert isinstance(call, grpc.RpcError)
    status: Any = call  # a grpc.Call as well, which RpcError's type does not say
    assert status.code() is grpc.StatusCode.INVALID_ARGUMENT, call
    metadata = dict(status.trailing_metadata() or ())
    assert metadata.get(ERROR_TYPE_METADATA_KEY) == "InvalidRequest"
    error = FacegateError.from_rpc_error(call)
    assert error.error_type is ErrorType.INVALID_REQUEST
    assert error.message
    return error


# ------------------------------------------------------------------ round trips


def test_every_rpc_round_trips(matcher: MatcherProcess) -> None:
    stub = matcher.stub
    rng = np.random.default_rng(1)
    vectors = {f"e{i}": unit(rng) for i in range(6)}
    tags = {"e0": 0b01, "e1": 0b10, "e2": 0b11, "e3": 0, "e4": 0b01, "e5": 0b100}
    subjects = {"e0": "s0", "e1": "s0", "e2": "s1", "e3": "s1", "e4": "s2", "e5": "s2"}
    upserted = stub.Upsert(
        matcher_pb2.MatcherUpsertRequest(
            entries=[entry(e, subjects[e], v, tags[e]) for e, v in vectors.items()]
        )
    )
    assert upserted.sequence == 1

    # Each entry finds itself first (similarity 1), with its subject.
    response = stub.Search(search(list(vectors.values()), k=3))
    assert len(response.results) == 6
    for (event_id, _), result in zip(vectors.items(), response.results, strict=True):
        top = result.hits[0]
        assert (top.event_id, top.subject_id) == (event_id, subjects[event_id])
        assert top.similarity == pytest.approx(1.0, abs=1e-5)
        assert len(result.hits) == 3
        sims = [h.similarity for h in result.hits]
        assert sims == sorted(sims, reverse=True)
    # Random 512-d vectors are unrelated (similarities within a few hundredths of 0): a
    # floor of 0.5 keeps only the match.
    [alone] = stub.Search(search([vectors["e0"]], k=50, min_similarity=0.5)).results
    assert [h.event_id for h in alone.hits] == ["e0"]
    # Tag filter (OR of bits).
    [tagged] = stub.Search(search([vectors["e0"]], k=50, tag_mask=0b10)).results
    assert {h.event_id for h in tagged.hits} == {"e1", "e2"}
    [either] = stub.Search(search([vectors["e0"]], k=50, tag_mask=0b110)).results
    assert {h.event_id for h in either.hits} == {"e1", "e2", "e5"}

    stats = stub.Stats(matcher_pb2.MatcherStatsRequest(gallery_id=GALLERY))
    assert (stats.shard_index, stats.shard_count, stats.applied_sequence) == (0, 1, 1)
    assert (stats.count, stats.deleted) == (6, 0)
    assert stats.memory_bytes > 6 * DIM * 4
    params = matcher.settings.matcher.index
    assert (
        stats.index_parameters.m,
        stats.index_parameters.ef_construction,
        stats.index_parameters.ef_search,
    ) == (params.m, params.ef_construction, params.ef_search)

    # Replacing an entry moves it (same event id, new vector and subject).
    moved = unit(rng)
    assert (
        stub.Upsert(matcher_pb2.MatcherUpsertRequest(entries=[entry("e3", "s9", moved)])).sequence
        == 2
    )
    [found] = stub.Search(search([moved], k=1)).results
    assert (found.hits[0].event_id, found.hits[0].subject_id) == ("e3", "s9")

    deleted = stub.Delete(
        matcher_pb2.MatcherDeleteRequest(gallery_id=GALLERY, event_ids=["e0", "unknown"])
    )
    assert deleted.sequence == 3
    [gone] = stub.Search(search([vectors["e0"]], k=50)).results
    assert "e0" not in {h.event_id for h in gone.hits}

    by_subject = stub.DeleteSubject(
        matcher_pb2.MatcherDeleteSubjectRequest(gallery_id=GALLERY, subject_id="s2")
    )
    assert by_subject.sequence == 4
    [rest] = stub.Search(search([vectors["e0"]], k=50)).results
    assert {h.event_id for h in rest.hits} == {"e1", "e2", "e3"}
    assert (
        stub.DeleteSubject(
            matcher_pb2.MatcherDeleteSubjectRequest(gallery_id=GALLERY, subject_id="nobody")
        ).sequence
        == 5
    )

    cleared = stub.ClearTagBit(matcher_pb2.MatcherClearTagBitRequest(gallery_id=GALLERY, bit=1))
    assert cleared.sequence == 6
    assert not stub.Search(search([vectors["e1"]], k=50, tag_mask=0b10)).results[0].hits
    [still] = stub.Search(search([vectors["e2"]], k=50, tag_mask=0b01)).results
    assert [h.event_id for h in still.hits] == ["e2"]

    snapshot = stub.Snapshot(matcher_pb2.MatcherSnapshotRequest())
    assert snapshot.sequence == 6
    assert Path(snapshot.path).is_dir()
    assert Path(snapshot.path).is_relative_to(matcher.settings.matcher_dir)

    # Another gallery is independent; dropping one leaves the other.
    other = stub.Upsert(
        matcher_pb2.MatcherUpsertRequest(
            entries=[entry("x1", "t1", unit(rng), gallery_id="gallery-2")]
        )
    )
    assert other.sequence == 7
    assert stub.Stats(matcher_pb2.MatcherStatsRequest()).count == 4
    dropped = stub.DropGallery(matcher_pb2.MatcherDropGalleryRequest(gallery_id=GALLERY))
    assert dropped.sequence == 8
    assert not stub.Search(search([vectors["e1"]])).results[0].hits
    assert stub.Stats(matcher_pb2.MatcherStatsRequest(gallery_id=GALLERY)).count == 0
    totals = stub.Stats(matcher_pb2.MatcherStatsRequest())
    assert (totals.count, totals.applied_sequence) == (1, 8)
    assert (
        stub.DropGallery(matcher_pb2.MatcherDropGalleryRequest(gallery_id="never-existed")).sequence
        == 9
    )


def test_unknown_gallery_gives_empty_results(matcher: MatcherProcess) -> None:
    rng = np.random.default_rng(2)
    response = matcher.stub.Search(search([unit(rng), unit(rng)]))
    assert [list(r.hits) for r in response.results] == [[], []]


# ------------------------------------------------------------------ bad input


def _upsert(*entries: matcher_pb2.MatcherEntry) -> tuple[str, object]:
    return "Upsert", matcher_pb2.MatcherUpsertRequest(entries=list(entries))


def _bad_inputs() -> dict[str, tuple[str, object]]:
    rng = np.random.default_rng(3)
    good = unit(rng)
    nan = good.copy()
    nan[3] = np.nan
    inf = good.copy()
    inf[0] = np.inf
    zero = np.zeros(DIM, dtype=np.float32)
    short = unit(rng, 128)

    def probe_search(
        vector: np.ndarray, model_id: str = MODEL_ID
    ) -> matcher_pb2.MatcherSearchRequest:
        request = search([good])
        request.probes[0].CopyFrom(template(vector, model_id))
        return request

    no_template = entry("e-new", "s", good)
    no_template.ClearField("template")
    return {
        "upsert no entries": _upsert(),
        "upsert empty gallery id": _upsert(entry("e-new", "s", good, gallery_id="")),
        "upsert empty event id": _upsert(entry("", "s", good)),
        "upsert empty subject id": _upsert(entry("e-new", "", good)),
        "upsert too long an id": _upsert(entry("e" * 257, "s", good)),
        "upsert no template": _upsert(no_template),
        "upsert another model": (
            "Upsert",
            matcher_pb2.MatcherUpsertRequest(
                entries=[
                    matcher_pb2.MatcherEntry(
                        gallery_id=GALLERY,
                        event_id="e-new",
                        subject_id="s",
                        template=template(short, OTHER_MODEL_ID),
                    )
                ]
            ),
        ),
        "upsert wrong dimension": _upsert(entry("e-new", "s", short)),
        "upsert NaN": _upsert(entry("e-new", "s", nan)),
        "upsert infinity": _upsert(entry("e-new", "s", inf)),
        "upsert zero vector": _upsert(entry("e-new", "s", zero)),
        "upsert one event twice": _upsert(entry("e-new", "s", good), entry("e-new", "s", good)),
        "upsert a bad entry after a good one": _upsert(
            entry("e-ok", "s", good), entry("e-bad", "s", nan)
        ),
        "delete empty gallery id": (
            "Delete",
            matcher_pb2.MatcherDeleteRequest(gallery_id="", event_ids=["e0"]),
        ),
        "delete empty event id": (
            "Delete",
            matcher_pb2.MatcherDeleteRequest(gallery_id=GALLERY, event_ids=["e0", ""]),
        ),
        "delete subject empty gallery id": (
            "DeleteSubject",
            matcher_pb2.MatcherDeleteSubjectRequest(gallery_id="", subject_id="s"),
        ),
        "delete subject empty subject id": (
            "DeleteSubject",
            matcher_pb2.MatcherDeleteSubjectRequest(gallery_id=GALLERY, subject_id=""),
        ),
        "clear bit 64": (
            "ClearTagBit",
            matcher_pb2.MatcherClearTagBitRequest(gallery_id=GALLERY, bit=64),
        ),
        "clear bit 2^32-1": (
            "ClearTagBit",
            matcher_pb2.MatcherClearTagBitRequest(gallery_id=GALLERY, bit=(1 << 32) - 1),
        ),
        "clear bit empty gallery id": (
            "ClearTagBit",
            matcher_pb2.MatcherClearTagBitRequest(gallery_id="", bit=1),
        ),
        "drop empty gallery id": ("DropGallery", matcher_pb2.MatcherDropGalleryRequest()),
        "search k 0": ("Search", search([good], k=0)),
        "search k 51": ("Search", search([good], k=51)),
        "search min_similarity below -1": ("Search", search([good], min_similarity=-1.01)),
        "search min_similarity above 1": ("Search", search([good], min_similarity=1.01)),
        "search min_similarity NaN": ("Search", search([good], min_similarity=float("nan"))),
        "search min_similarity infinite": ("Search", search([good], min_similarity=np.inf)),
        "search no probes": ("Search", search([])),
        "search empty gallery id": (
            "Search",
            matcher_pb2.MatcherSearchRequest(probes=[template(good)], k=1),
        ),
        "search NaN probe": ("Search", probe_search(nan)),
        "search infinite probe": ("Search", probe_search(inf)),
        "search zero probe": ("Search", probe_search(zero)),
        "search empty probe": ("Search", probe_search(np.zeros(0, dtype=np.float32))),
        "search another model": ("Search", probe_search(good, OTHER_MODEL_ID)),
        "search unset model": ("Search", probe_search(good, "")),
        "search wrong dimension": ("Search", probe_search(short)),
    }


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_invalid_argument(matcher: MatcherProcess, case: str) -> None:
    rng = np.random.default_rng(4)
    existing = unit(rng)
    stub = matcher.stub
    stub.Upsert(matcher_pb2.MatcherUpsertRequest(entries=[entry("e0", "s0", existing)]))
    before = stub.Stats(matcher_pb2.MatcherStatsRequest())
    rpc, request = BAD_INPUTS[case]
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stub, rpc)(request)
    invalid(caught.value)
    # Nothing was written (a refused batch is refused whole), and the shard still serves.
    after = stub.Stats(matcher_pb2.MatcherStatsRequest())
    assert (after.applied_sequence, after.count) == (before.applied_sequence, before.count)
    [result] = stub.Search(search([existing], k=1)).results
    assert result.hits[0].event_id == "e0"


def test_a_new_gallery_takes_the_model_and_dimension_of_its_first_template(
    matcher: MatcherProcess,
) -> None:
    """Any model and dimension may start a gallery; from then on its templates and probes
    must be of that model and dimension."""
    rng = np.random.default_rng(5)
    short = unit(rng, 128)
    stub = matcher.stub
    first = matcher_pb2.MatcherEntry(
        gallery_id="fresh", event_id="e0", subject_id="s0", template=template(short, OTHER_MODEL_ID)
    )
    stub.Upsert(matcher_pb2.MatcherUpsertRequest(entries=[first]))
    request = search([short])
    request.gallery_id = "fresh"
    request.probes[0].model_id = OTHER_MODEL_ID
    [found] = stub.Search(request).results
    assert [h.event_id for h in found.hits] == ["e0"]
    refused: list[tuple[str, object]] = [
        _upsert(entry("e1", "s1", unit(rng), gallery_id="fresh")),
        _upsert(entry("e1", "s1", unit(rng, 128), gallery_id="fresh")),
    ]
    for probe, model_id in [(unit(rng), OTHER_MODEL_ID), (short, MODEL_ID)]:
        wrong = search([probe])
        wrong.gallery_id = "fresh"
        wrong.probes[0].model_id = model_id
        refused.append(("Search", wrong))
    for rpc, bad in refused:
        with pytest.raises(grpc.RpcError) as caught:
            getattr(stub, rpc)(bad)
        assert "fresh" in invalid(caught.value).message
    assert stub.Stats(matcher_pb2.MatcherStatsRequest(gallery_id="fresh")).count == 1


def test_mixed_dimensions_in_one_new_gallery_are_refused(matcher: MatcherProcess) -> None:
    rng = np.random.default_rng(12)
    request = matcher_pb2.MatcherUpsertRequest(
        entries=[
            entry("e1", "s", unit(rng), 0, "fresh"),
            entry("e2", "s", unit(rng, 128), 0, "fresh"),
        ]
    )
    with pytest.raises(grpc.RpcError) as caught:
        matcher.stub.Upsert(request)
    invalid(caught.value)
    matcher.restart()
    assert matcher.stub.Stats(matcher_pb2.MatcherStatsRequest()).applied_sequence == 0


# ------------------------------------------------------------------ service plumbing


def test_health_and_reflection(matcher: MatcherProcess) -> None:
    health = health_pb2_grpc.HealthStub(matcher.channel)
    for service in ("", "facegate.v1.Matcher"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(matcher.channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"facegate.v1.Matcher", "grpc.health.v1.Health"} <= names


def test_large_upsert_batches_fit_in_a_message(matcher: MatcherProcess) -> None:
    """A few thousand 512-d templates per request (well over gRPC's 4 MiB default)."""
    rng = np.random.default_rng(6)
    vectors = rng.standard_normal((3000, DIM)).astype(np.float32)
    request = matcher_pb2.MatcherUpsertRequest(
        entries=[entry(f"e{i}", f"s{i}", v) for i, v in enumerate(vectors)]
    )
    assert request.ByteSize() > 4 << 20
    matcher.stub.Upsert(request)
    assert matcher.stub.Stats(matcher_pb2.MatcherStatsRequest()).count == 3000


def test_searches_run_alongside_writes(matcher: MatcherProcess) -> None:
    """Searching threads never fail or see a broken result while other threads upsert,
    replace and delete; afterwards every acknowledged write is visible."""
    stub = matcher.stub
    rng = np.random.default_rng(7)
    stable = {f"stable-{i}": unit(rng) for i in range(300)}
    stub.Upsert(
        matcher_pb2.MatcherUpsertRequest(
            entries=[
                entry(e, f"s-{e}", v, 1 << (i % 64)) for i, (e, v) in enumerate(stable.items())
            ]
        )
    )
    writers = 2
    per_writer = {w: {f"w{w}-{i}": unit(rng) for i in range(120)} for w in range(writers)}
    failures: list[BaseException] = []
    done = threading.Event()

    def write(w: int) -> None:
        try:
            items = list(per_writer[w].items())
            for start in range(0, len(items), 6):
                chunk = items[start : start + 6]
                stub.Upsert(
                    matcher_pb2.MatcherUpsertRequest(
                        entries=[entry(e, f"s-{e}", v, 1 << (w + 1)) for e, v in chunk]
                    )
                )
                # Delete the first of each chunk again: deletes run alongside too.
                stub.Delete(
                    matcher_pb2.MatcherDeleteRequest(gallery_id=GALLERY, event_ids=[chunk[0][0]])
                )
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    def read(seed: int) -> None:
        local = np.random.default_rng(seed)
        names = list(stable)
        try:
            while not done.is_set():
                name = names[int(local.integers(0, len(names)))]
                mask = int(local.choice([0, 0b110, 1 << 63]))
                [result] = stub.Search(search([stable[name]], k=10, tag_mask=mask)).results
                ids = [h.event_id for h in result.hits]
                sims = [h.similarity for h in result.hits]
                assert len(ids) == len(set(ids)) <= 10
                assert sims == sorted(sims, reverse=True)
                if mask == 0:
                    assert ids[0] == name
                    assert sims[0] == pytest.approx(1.0, abs=1e-5)
        except BaseException as error:
            failures.append(error)

    write_threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    read_threads = [threading.Thread(target=read, args=(100 + r,)) for r in range(4)]
    for thread in (*read_threads, *write_threads):
        thread.start()
    for thread in write_threads:
        thread.join(timeout=60)
    done.set()
    for thread in read_threads:
        thread.join(timeout=60)
    assert not failures, failures[:3]

    kept = {e: v for w in range(writers) for i, (e, v) in enumerate(per_writer[w].items()) if i % 6}
    stats = stub.Stats(matcher_pb2.MatcherStatsRequest(gallery_id=GALLERY))
    assert stats.count == len(stable) + len(kept)
    names = list(kept)
    response = stub.Search(search([kept[n] for n in names], k=1))
    assert [r.hits[0].event_id for r in response.results] == names


def test_restart_keeps_every_acknowledged_write(matcher: MatcherProcess) -> None:
    stub = matcher.stub
    rng = np.random.default_rng(8)
    vectors = {f"e{i}": unit(rng) for i in range(40)}
    stub.Upsert(
        matcher_pb2.MatcherUpsertRequest(
            entries=[entry(e, f"s{i % 10}", v, i % 3) for i, (e, v) in enumerate(vectors.items())]
        )
    )
    stub.Delete(matcher_pb2.MatcherDeleteRequest(gallery_id=GALLERY, event_ids=["e0", "e1"]))
    stub.Snapshot(matcher_pb2.MatcherSnapshotRequest())
    # After the snapshot: only in the log.
    stub.DeleteSubject(matcher_pb2.MatcherDeleteSubjectRequest(gallery_id=GALLERY, subject_id="s5"))
    stub.ClearTagBit(matcher_pb2.MatcherClearTagBitRequest(gallery_id=GALLERY, bit=1))
    late = unit(rng)
    stub.Upsert(
        matcher_pb2.MatcherUpsertRequest(
            entries=[entry("late", "s-late", late, 0b1, gallery_id="gallery-2")]
        )
    )
    probes = list(vectors.values())
    before = stub.Search(search(probes, k=5))
    masked_before = stub.Search(search(probes, k=5, tag_mask=0b11))
    stats_before = stub.Stats(matcher_pb2.MatcherStatsRequest())

    matcher.restart()
    stub = matcher.stub
    stats_after = stub.Stats(matcher_pb2.MatcherStatsRequest())
    assert (
        (stats_after.applied_sequence, stats_after.count)
        == (
            stats_before.applied_sequence,
            stats_before.count,
        )
        == (5, 40 - 2 - 4 + 1)
    )
    assert stub.Search(search(probes, k=5)) == before
    assert stub.Search(search(probes, k=5, tag_mask=0b11)) == masked_before
    other = search([late], k=1)
    other.gallery_id = "gallery-2"
    assert stub.Search(other).results[0].hits[0].event_id == "late"
    # The sequence carries on from where it was.
    next_write = stub.Delete(matcher_pb2.MatcherDeleteRequest(gallery_id=GALLERY, event_ids=["e2"]))
    assert next_write.sequence == 6


# ------------------------------------------------------------------ fan-out over shards


@pytest.fixture
def three_shards(tmp_path: Path) -> Iterator[list[MatcherProcess]]:
    shards = [MatcherProcess(settings_for(tmp_path / f"s{i}", i, 3)) for i in range(3)]
    try:
        yield shards
    finally:
        for shard in shards:
            shard.stop()


def test_fan_out_over_three_shards_answers_like_one(
    three_shards: list[MatcherProcess], matcher: MatcherProcess
) -> None:
    rng = np.random.default_rng(9)
    entries = [entry(f"event-{i}", f"s{i % 25}", unit(rng), 1 << (i % 5)) for i in range(150)]
    for shard, part in zip(
        three_shards, split_by_shard(entries, lambda e: e.event_id, 3), strict=True
    ):
        assert part
        shard.stub.Upsert(matcher_pb2.MatcherUpsertRequest(entries=part))
        stats = shard.stub.Stats(matcher_pb2.MatcherStatsRequest())
        assert stats.count == len(part)
        assert all(shard_of(e.event_id, 3) == stats.shard_index for e in part)
    matcher.stub.Upsert(matcher_pb2.MatcherUpsertRequest(entries=entries))
    fan_out = FanOut([s.stub for s in three_shards])
    for k, min_similarity, tag_mask in [
        (1, -1.0, 0),
        (10, -1.0, 0b11),
        (50, -1.0, 0),
        (50, 0.05, 0b10000),
    ]:
        probes = [np.asarray(entries[i].template.embedding, np.float32) for i in (0, 7, 99)]
        probes.append(unit(rng))
        request = search(probes, k=k, min_similarity=min_similarity, tag_mask=tag_mask)
        merged = fan_out.search(request)
        single = matcher.stub.Search(request)
        assert len(merged.results) == 4
        for got, expected in zip(merged.results, single.results, strict=True):
            assert [h.event_id for h in got.hits] == [h.event_id for h in expected.hits]
            assert [h.subject_id for h in got.hits] == [h.subject_id for h in expected.hits]
            assert [h.similarity for h in got.hits] == [h.similarity for h in expected.hits]
    # Broadcast writes reach every shard.
    acknowledged = fan_out.call_all(
        "DeleteSubject",
        lambda stub, timeout: stub.DeleteSubject.future(
            matcher_pb2.MatcherDeleteSubjectRequest(gallery_id=GALLERY, subject_id="s3"),
            timeout=timeout,
        ),
    )
    assert len(acknowledged) == 3
    [result] = fan_out.search(search([unit(rng)], k=50)).results
    assert "s3" not in {h.subject_id for h in result.hits}


class SlowMatcher(MatcherServicer):
    """A shard that answers searches too late."""

    def Search(  # noqa: N802 (the rpc's name)
        self, request: matcher_pb2.MatcherSearchRequest, context: grpc.ServicerContext
    ) -> matcher_pb2.MatcherSearchResponse:
        time.sleep(1.0)
        return matcher_pb2.MatcherSearchResponse(
            results=[matcher_pb2.MatcherProbeResult() for _ in request.probes]
        )


def test_fan_out_errors(three_shards: list[MatcherProcess]) -> None:
    rng = np.random.default_rng(10)
    fan_out = FanOut([s.stub for s in three_shards])
    # The request's own fault comes back as it is.
    with pytest.raises(FacegateError) as bad:
        fan_out.search(search([unit(rng)], k=0))
    assert bad.value.error_type is ErrorType.INVALID_REQUEST
    assert "k must be" in bad.value.message
    # A shard missing the deadline fails the whole search, naming the shard.
    slow = new_server(workers=2, max_message_bytes=1 << 20)
    matcher_pb2_grpc.add_MatcherServicer_to_server(SlowMatcher(three_shards[0].shard), slow)
    slow_port = bind(slow, "127.0.0.1", 0)
    slow.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{slow_port}") as channel:
            stubs = [three_shards[0].stub, matcher_pb2_grpc.MatcherStub(channel)]
            started = time.monotonic()
            with pytest.raises(FacegateError) as late:
                FanOut(stubs, timeout_s=0.2).search(search([unit(rng)]))
            assert time.monotonic() - started < 0.9
    finally:
        slow.stop(grace=None)
    # A missed deadline is Timeout, as for every backend (facegate.errors.backend_failure).
    assert late.value.error_type is ErrorType.TIMEOUT
    assert late.value.message == "Matcher shard 1 of 2 (Search) did not answer in time."
    # A shard that is down fails the search, not a silently partial answer.
    three_shards[2].server.stop(grace=None).wait()
    with pytest.raises(FacegateError) as down:
        fan_out.search(search([unit(rng)]), timeout_s=2)
    assert down.value.error_type is ErrorType.UNAVAILABLE
    assert "Matcher shard 2 of 3 (Search) is unavailable: UNAVAILABLE" in down.value.message


# ------------------------------------------------------------------ configuration


def test_shard_settings_are_checked(tmp_path: Path) -> None:
    config = shard_config(settings_for(tmp_path, 2, 3))
    assert (config.index, config.count, config.data_dir) == (2, 3, tmp_path)
    for index, count in [(3, 3), (-1, 3), (0, 0)]:
        with pytest.raises(ValueError, match="FACEGATE_MATCHER_SHARD"):
            shard_config(settings_for(tmp_path, index, count))
    unsegmented = settings_for(tmp_path, 0, 1)
    matcher = unsegmented.matcher
    unsegmented = replace(
        unsegmented, matcher=replace(matcher, index=replace(matcher.index, graph_segments=0))
    )
    with pytest.raises(ValueError, match="FACEGATE_MATCHER_GRAPH_SEGMENTS must be at least 1"):
        shard_config(unsegmented)
    default_dir = Settings.from_env(
        {"FACEGATE_DATA_DIR": "/d", "FACEGATE_MATCHER_SHARD_INDEX": "4"}
    )
    assert default_dir.matcher_dir == Path("/d/matcher/shard-4")


def test_facegate_serve_matcher_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FACEGATE_MATCHER_DATA_DIR": str(tmp_path / "shard"),
        # A matcher needs no model file or manifest.
        "FACEGATE_MODEL_DIR": str(tmp_path / "no-models"),
        "FACEGATE_MATCHER_SHARD_COUNT": "2",
        "FACEGATE_MATCHER_SHARD_INDEX": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "facegate", "serve", "matcher", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        port = 0
        deadline = time.monotonic() + 60
        while not port and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            if match := re.search(r"matcher gRPC listening on [\d.]+:(\d+)", line):
                port = int(match.group(1))
        assert port, "the matcher did not report its port"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = matcher_pb2_grpc.MatcherStub(channel)
            stats = stub.Stats(matcher_pb2.MatcherStatsRequest(), timeout=10)
            assert (stats.shard_index, stats.shard_count) == (1, 2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
