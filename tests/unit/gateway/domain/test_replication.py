"""Outbox rules: committed changes reach the index in commit order, a failure leaves
the rows it did not apply for a retry, and applying reads the store's current state."""

from __future__ import annotations

import pytest

from facegate.errors import ErrorType, FacegateError
from gateway.enrolment import Enrolment
from gateway.replication import Replicator, record_change
from gateway.store import events
from gateway.store.changes import KIND_CLEAR_TAG_BIT, KIND_EVENT
from gateway.store.records import Application, Change
from tests.support.fakes import FakeIndex
from tests.unit.gateway.domain.conftest import Domain


class IndexRefusingClears(FakeIndex):
    def clear_tag_bit(self, gallery_id: str, bit: int) -> None:
        raise FacegateError(ErrorType.UNAVAILABLE, "Matcher shard 0 is unavailable.")


def register_unreplicated(domain: Domain, application: Application, image: bytes) -> str:
    """A registration whose change stays in the outbox; its event id."""
    domain.index.down = True
    try:
        return Enrolment(domain.deps).register_subject(application, image, []).event_id
    finally:
        domain.index.down = False


def record(
    domain: Domain,
    application: Application,
    kind: str,
    *,
    event_id: str | None = None,
    bit: int | None = None,
) -> Change:
    with domain.database.write() as conn:
        return record_change(
            conn, application.gallery_id, kind, now_ms=domain.clock(), event_id=event_id, bit=bit
        )


def test_changes_reach_the_index_in_commit_order(domain: Domain, application: Application) -> None:
    first = register_unreplicated(domain, application, b"alice#1")
    record(domain, application, KIND_CLEAR_TAG_BIT, bit=3)
    second = register_unreplicated(domain, application, b"bob#1")
    assert domain.deps.replicator.replay() == 3
    gallery = application.gallery_id
    assert domain.index.operations == [
        ("upsert", gallery, first),
        ("clear_tag_bit", gallery, "3"),
        ("upsert", gallery, second),
    ]
    assert domain.pending() == []


def test_a_failing_index_leaves_the_rows_for_a_later_retry(
    domain: Domain, application: Application
) -> None:
    event_id = register_unreplicated(domain, application, b"alice#1")
    domain.index.down = True
    assert domain.deps.replicator.push(domain.pending()) is False
    with pytest.raises(FacegateError):
        domain.deps.replicator.replay()
    assert [change.event_id for change in domain.pending()] == [event_id]
    domain.index.down = False
    assert domain.deps.replicator.replay() == 1
    assert domain.index.event_ids(application.gallery_id) == {event_id}
    assert domain.pending() == []


def test_a_failure_keeps_the_failed_change_and_every_later_one(
    domain: Domain, application: Application
) -> None:
    index = IndexRefusingClears()
    replicator = Replicator(domain.database, index, clock_ms=domain.clock)
    applied = register_unreplicated(domain, application, b"alice#1")
    clear = record(domain, application, KIND_CLEAR_TAG_BIT, bit=1)
    register_unreplicated(domain, application, b"bob#1")
    later = domain.pending()[-1]
    with pytest.raises(FacegateError):
        replicator.replay()
    assert index.event_ids(application.gallery_id) == {applied}
    assert [change.id for change in domain.pending()] == [clear.id, later.id]


def test_replay_leaves_changes_younger_than_its_minimum_age(
    domain: Domain, application: Application
) -> None:
    event_id = register_unreplicated(domain, application, b"alice#1")
    replicator = domain.deps.replicator
    assert replicator.replay(min_age_ms=1000) == 0  # its request may still be pushing it
    domain.clock.advance(1001)
    assert replicator.replay(min_age_ms=1000) == 1
    assert domain.index.event_ids(application.gallery_id) == {event_id}


def test_an_old_change_applied_late_never_resurrects_a_deleted_event(
    domain: Domain, application: Application
) -> None:
    enrolment = Enrolment(domain.deps)
    done = enrolment.register_subject(application, b"alice#1", [])
    old = record(domain, application, KIND_EVENT, event_id=done.event_id)
    enrolment.unregister_subject(application, done.subject_id)
    assert domain.deps.replicator.push([old]) is True
    assert domain.index.event_ids(application.gallery_id) == set()


def test_an_event_change_carries_the_stores_current_template_and_tags(
    domain: Domain, application: Application
) -> None:
    event_id = register_unreplicated(domain, application, b"alice#1")
    with domain.database.write() as conn:
        row = events.active_event(conn, application.gallery_id, event_id)
        assert row is not None
    domain.deps.replicator.replay()
    entry = domain.index.galleries[application.gallery_id][event_id]
    assert entry.subject_id == row.subject_id
    assert entry.template.to_bytes() == row.template
    assert entry.template.model_id == row.model_id
