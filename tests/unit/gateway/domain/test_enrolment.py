"""Enrolment rules: what a registration stores and replicates, the gallery's size
limit, tags, and the subject/event lifecycle."""

from __future__ import annotations

import pytest

from facegate.errors import ErrorType, FacegateError
from gateway.enrolment import Enrolment
from gateway.store.records import Application
from gateway.tagging import Tagging
from tests.support.fakes import template_of
from tests.unit.gateway.domain.conftest import Domain


def listed(enrolment: Enrolment, application: Application) -> list[tuple[str, str, str]]:
    rows, _ = enrolment.list_rows(application, start=0, length=100, descending=False)
    return [(row.subject_id, row.event_id, row.status) for row in rows]


def test_a_registration_is_stored_and_replicated(domain: Domain, application: Application) -> None:
    enrolment = Enrolment(domain.deps)
    done = enrolment.register_subject(application, b"alice#1", [])
    assert listed(enrolment, application) == [(done.subject_id, done.event_id, "A")]
    entry = domain.index.galleries[application.gallery_id][done.event_id]
    assert entry.subject_id == done.subject_id
    assert entry.tag_mask == 0
    assert entry.template.model_id == template_of(b"alice#1").model_id
    assert entry.template.embedding.tolist() == template_of(b"alice#1").embedding.tolist()
    assert done.attributes.face_quality_score == domain.extractor.quality
    assert domain.pending() == []


def test_a_full_gallery_recycles_its_oldest_deleted_slot(domain: Domain) -> None:
    _, application = domain.gallery("small", size=2)
    enrolment = Enrolment(domain.deps)
    first = enrolment.register_subject(application, b"alice#1", [])
    second = enrolment.register_subject(application, b"bob#1", [])
    enrolment.unregister_subject(application, first.subject_id)
    third = enrolment.register_subject(application, b"carol#1", [])
    # The deleted row of the first subject made room; the gallery holds two rows again.
    assert listed(enrolment, application) == [
        (second.subject_id, second.event_id, "A"),
        (third.subject_id, third.event_id, "A"),
    ]
    assert domain.index.event_ids(application.gallery_id) == {second.event_id, third.event_id}


def test_the_oldest_deleted_slot_is_recycled_first(domain: Domain) -> None:
    _, application = domain.gallery("small", size=3)
    enrolment = Enrolment(domain.deps)
    alice, bob, carol = (
        enrolment.register_subject(application, person + b"#1", [])
        for person in (b"alice", b"bob", b"carol")
    )
    enrolment.unregister_subject(application, alice.subject_id)
    domain.clock.advance(1)
    enrolment.unregister_subject(application, bob.subject_id)
    dave = enrolment.register_subject(application, b"dave#1", [])
    assert sorted(listed(enrolment, application)) == sorted(
        [
            (bob.subject_id, bob.event_id, "D"),
            (carol.subject_id, carol.event_id, "A"),
            (dave.subject_id, dave.event_id, "A"),
        ]
    )


def test_a_gallery_full_of_active_events_refuses_a_registration(domain: Domain) -> None:
    _, application = domain.gallery("small", size=2)
    enrolment = Enrolment(domain.deps)
    enrolment.register_subject(application, b"alice#1", [])
    enrolment.register_subject(application, b"bob#1", [])
    with pytest.raises(FacegateError) as refused:
        enrolment.register_subject(application, b"carol#1", [])
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
    assert refused.value.message == "Gallery is full: 2 of 2 slots in use."
    _, total = enrolment.list_rows(application, start=0, length=10, descending=False)
    assert total == 2
    assert len(domain.index.event_ids(application.gallery_id)) == 2


def test_a_face_below_the_applications_quality_is_refused(
    domain: Domain, application: Application
) -> None:
    domain.extractor.quality = application.face_minimum_quality_score - 0.1
    with pytest.raises(FacegateError) as refused:
        Enrolment(domain.deps).register_subject(application, b"alice#1", [])
    assert refused.value.error_type is ErrorType.POOR_QUALITY
    assert domain.index.event_ids(application.gallery_id) == set()


def test_an_unknown_tag_is_refused_before_extracting(
    domain: Domain, application: Application
) -> None:
    with pytest.raises(FacegateError) as refused:
        Enrolment(domain.deps).register_subject(application, b"alice#1", ["vip"])
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
    assert refused.value.message == "Tag vip does not exist."
    assert domain.extractor.calls == 0


def test_tags_become_the_events_mask(domain: Domain, application: Application) -> None:
    tagging = Tagging(domain.deps)
    for name in ("staff", "vip", "visitor"):
        tagging.create(application, name)
    done = Enrolment(domain.deps).register_subject(application, b"alice#1", ["visitor", "staff"])
    entry = domain.index.galleries[application.gallery_id][done.event_id]
    assert entry.tag_mask == 0b101


def test_updating_a_subject_replaces_all_its_events(
    domain: Domain, application: Application
) -> None:
    enrolment = Enrolment(domain.deps)
    first = enrolment.register_subject(application, b"alice#1", [])
    second = enrolment.register_event(application, first.subject_id, b"alice#2", [])
    updated = enrolment.update_subject(application, first.subject_id, b"alice#3", [])
    assert enrolment.list_events(application, first.subject_id) == [updated.event_id]
    assert {(s, e, status) for s, e, status in listed(enrolment, application)} == {
        (first.subject_id, first.event_id, "D"),
        (first.subject_id, second.event_id, "D"),
        (first.subject_id, updated.event_id, "A"),
    }
    assert domain.index.event_ids(application.gallery_id) == {updated.event_id}


def test_updating_an_event_keeps_its_id_and_replaces_its_template(
    domain: Domain, application: Application
) -> None:
    enrolment = Enrolment(domain.deps)
    first = enrolment.register_subject(application, b"alice#1", [])
    updated = enrolment.update_event(application, first.subject_id, first.event_id, b"alice#2", [])
    assert updated.event_id == first.event_id
    entry = domain.index.galleries[application.gallery_id][first.event_id]
    assert entry.template.embedding.tolist() == template_of(b"alice#2").embedding.tolist()


def test_unregistering_removes_the_subject_everywhere(
    domain: Domain, application: Application
) -> None:
    enrolment = Enrolment(domain.deps)
    done = enrolment.register_subject(application, b"alice#1", [])
    enrolment.unregister_subject(application, done.subject_id)
    assert domain.index.event_ids(application.gallery_id) == set()
    with pytest.raises(FacegateError) as again:
        enrolment.unregister_subject(application, done.subject_id)
    assert again.value.error_type is ErrorType.NOT_FOUND


def test_an_event_of_an_unknown_subject_is_refused_before_extracting(
    domain: Domain, application: Application
) -> None:
    with pytest.raises(FacegateError) as refused:
        Enrolment(domain.deps).register_event(application, "nobody", b"alice#1", [])
    assert refused.value.error_type is ErrorType.NOT_FOUND
    assert domain.extractor.calls == 0


def test_an_event_of_another_subject_is_not_found(domain: Domain, application: Application) -> None:
    enrolment = Enrolment(domain.deps)
    alice = enrolment.register_subject(application, b"alice#1", [])
    bob = enrolment.register_subject(application, b"bob#1", [])
    with pytest.raises(FacegateError) as refused:
        enrolment.unregister_event(application, bob.subject_id, alice.event_id)
    assert refused.value.error_type is ErrorType.NOT_FOUND
    assert alice.event_id in domain.index.event_ids(application.gallery_id)


@pytest.mark.parametrize("subject_id", ["", "a\x00b", "x" * 257])
def test_ids_are_checked(domain: Domain, application: Application, subject_id: str) -> None:
    with pytest.raises(FacegateError) as refused:
        Enrolment(domain.deps).list_events(application, subject_id)
    assert refused.value.error_type is ErrorType.INVALID_REQUEST


def test_a_registration_is_committed_while_the_index_is_down(
    domain: Domain, application: Application
) -> None:
    domain.index.down = True
    done = Enrolment(domain.deps).register_subject(application, b"alice#1", [])
    assert [change.event_id for change in domain.pending()] == [done.event_id]
    domain.index.down = False
    assert domain.deps.replicator.replay() == 1
    assert domain.index.event_ids(application.gallery_id) == {done.event_id}
    assert domain.pending() == []


def test_a_gallery_lists_in_pages(domain: Domain, application: Application) -> None:
    enrolment = Enrolment(domain.deps)
    for person in (b"alice", b"bob", b"carol"):
        enrolment.register_subject(application, person + b"#1", [])
    rows, total = enrolment.list_rows(application, start=1, length=1, descending=False)
    assert total == 3
    assert len(rows) == 1
    with pytest.raises(FacegateError):
        enrolment.list_rows(application, start=0, length=1001, descending=False)
