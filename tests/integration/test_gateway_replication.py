"""The store -> matcher outbox (ADR 0006) against a real SQLite store and a real matcher
shard server: committed changes reach the shard even when the gateway died after the
commit or the shard was down, and replaying never resurrects a deleted event."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import numpy as np
import pytest

from extractor.models.manifest import load_manifest
from facegate.settings import Settings
from gateway.adapters.channel import open_channel
from gateway.adapters.matcher import MatcherClient
from gateway.faces import Template
from gateway.replication import Replicator, record_change
from gateway.resync import resync
from gateway.store import events, galleries, tenants
from gateway.store.changes import KIND_CLEAR_TAG_BIT, KIND_EVENT
from gateway.store.database import Database, open_database, sqlite_url
from matcher.placement import shard_of
from matcher.server import MatcherDeps, create_server, open_shard

BASE = Settings.from_env()
MANIFEST = load_manifest(BASE.models)
RECOGNIZER = MANIFEST.entry("edgeface-s-gamma05")
GALLERY = "g1"


class Shard:
    """A matcher shard server, stoppable and restartable on the same port and data."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = 0
        self.start()

    def start(self) -> None:
        self.shard = open_shard(self.settings)
        self.server, self.port = create_server(self.settings, MatcherDeps(self.shard))
        self.server.start()
        self.settings = replace(self.settings, matcher_port=self.port)

    def stop(self) -> None:
        self.server.stop(grace=None).wait()
        self.shard.close()


@dataclass
class World:
    database: Database
    shard: Shard
    matcher: MatcherClient
    replicator: Replicator
    channel: grpc.Channel


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    database = open_database(sqlite_url(tmp_path / "store.db"))
    with database.write() as conn:
        tenants.create_tenant(
            conn, id="t", name="t", access_key_id="AK", secret_ciphertext=b"x", now_ms=1
        )
        galleries.create_gallery(
            conn,
            id=GALLERY,
            tenant_id="t",
            name="g",
            description="",
            size=100,
            face_minimum_quality_score=0.45,
            now_ms=1,
        )
    shard = Shard(
        replace(BASE, data_dir=tmp_path, model_dir=BASE.models, host="127.0.0.1", matcher_port=0)
    )
    channel = open_channel(f"127.0.0.1:{shard.port}")
    matcher = MatcherClient([channel], timeout_s=2.0)
    replicator = Replicator(database, matcher)
    yield World(database, shard, matcher, replicator, channel)
    channel.close()
    shard.stop()
    database.close()


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(RECOGNIZER.embedding_dim)
    result: np.ndarray = (vector / np.linalg.norm(vector)).astype(np.float32)
    return result


def commit_event(world: World, event_id: str, seed: int, tag_mask: int = 0) -> None:
    """A registration committed by a gateway that died before telling the matcher."""
    with world.database.write() as conn:
        events.create_subject(conn, GALLERY, "s-" + event_id, 2)
        events.insert_event(
            conn,
            gallery_id=GALLERY,
            event_id=event_id,
            subject_id="s-" + event_id,
            tag_mask=tag_mask,
            model_id=RECOGNIZER.model_id,
            template=unit(seed).astype("<f4").tobytes(),
            attributes_json="{}",
            now_ms=2,
        )
        record_change(conn, GALLERY, KIND_EVENT, event_id=event_id, now_ms=2)


def found(world: World, seed: int, tag_mask: int = 0) -> list[str]:
    probe = Template(RECOGNIZER.model_id, unit(seed))
    hits = world.matcher.search(GALLERY, probe, k=10, min_similarity=0.9, tag_mask=tag_mask)
    return [hit.event_id for hit in hits]


def pending(world: World) -> int:
    from gateway.store.changes import pending_changes

    with world.database.read() as conn:
        return len(pending_changes(conn, 1000))


def test_replay_applies_changes_a_dead_gateway_committed(world: World) -> None:
    commit_event(world, "e1", seed=1)
    assert found(world, 1) == []
    assert world.replicator.replay() == 1
    assert found(world, 1) == ["e1"]
    assert pending(world) == 0


def test_replaying_an_old_change_never_resurrects_a_deleted_event(world: World) -> None:
    commit_event(world, "e1", seed=1)
    world.replicator.replay()
    with world.database.write() as conn:
        assert events.mark_event_deleted(conn, GALLERY, "s-e1", "e1", 3)
        old = record_change(conn, GALLERY, KIND_EVENT, event_id="e1", now_ms=3)
    world.replicator.push([old])
    assert found(world, 1) == []
    world.replicator.push([old])  # the same change again, late
    assert found(world, 1) == []


def test_a_shard_that_was_down_catches_up(world: World) -> None:
    world.shard.stop()
    commit_event(world, "e2", seed=2)
    with world.database.read() as conn:
        from gateway.store.changes import pending_changes

        changes = pending_changes(conn, 10)
    assert world.replicator.push(changes) is False  # acknowledged anyway: committed
    assert pending(world) == 1
    world.shard.start()  # same port, same data directory
    grpc.channel_ready_future(world.channel).result(timeout=10)
    assert world.replicator.replay() == 1
    assert found(world, 2) == ["e2"]
    assert pending(world) == 0


def test_cleared_tag_bits_reach_the_shard(world: World) -> None:
    commit_event(world, "e3", seed=3, tag_mask=1 << 5)
    world.replicator.replay()
    assert found(world, 3, tag_mask=1 << 5) == ["e3"]
    with world.database.write() as conn:
        record_change(conn, GALLERY, KIND_CLEAR_TAG_BIT, bit=5, now_ms=4)
    assert pending(world) == 1
    world.replicator.replay()
    assert pending(world) == 0
    assert found(world, 3, tag_mask=1 << 5) == []
    assert found(world, 3) == ["e3"]


def test_background_replay_runs_on_its_own(world: World) -> None:
    world.replicator.start(0.05)
    try:
        commit_event(world, "e4", seed=4)
        for _ in range(200):
            if found(world, 4):
                break
            import time

            time.sleep(0.02)
        assert found(world, 4) == ["e4"]
    finally:
        world.replicator.stop()


def test_resync_rebuilds_a_new_sharding_from_the_store(world: World, tmp_path: Path) -> None:
    for number in range(12):
        commit_event(world, f"r{number}", seed=100 + number)
    with world.database.write() as conn:
        assert events.mark_event_deleted(conn, GALLERY, "s-r0", "r0", 5)
    # Two new, empty shards: the placement of every event changes with the count.
    shards = [
        Shard(
            replace(
                BASE,
                data_dir=tmp_path / f"resharded-{index}",
                model_dir=BASE.models,
                host="127.0.0.1",
                matcher_port=0,
                matcher=replace(BASE.matcher, shard_index=index, shard_count=2),
            )
        )
        for index in range(2)
    ]
    channels = [open_channel(f"127.0.0.1:{shard.port}") for shard in shards]
    try:
        matcher = MatcherClient(channels, timeout_s=5.0)
        assert resync(world.database, matcher) == 11  # the deleted event is not sent
        counts = [shard.shard.stats().count for shard in shards]
        assert sum(counts) == 11
        assert min(counts) > 0
        for index, shard in enumerate(shards):
            held = shard.shard.stats(GALLERY).count
            expected = sum(shard_of(f"r{n}", 2) == index for n in range(1, 12))
            assert held == expected
        resharded = World(world.database, shards[0], matcher, world.replicator, channels[0])
        for number in range(1, 12):
            assert found(resharded, 100 + number) == [f"r{number}"]
        assert found(resharded, 100) == []
    finally:
        for channel in channels:
            channel.close()
        for shard in shards:
            shard.stop()
