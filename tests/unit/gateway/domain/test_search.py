"""Search and verification rules: hits the store no longer holds as active are dropped,
hits group by subject, tags filter, and the probe's checks."""

from __future__ import annotations

import pytest

from facegate.contract import DEFAULT_THRESHOLD
from facegate.errors import ErrorType, FacegateError
from gateway.enrolment import Enrolment
from gateway.search import CandidateMatch, EventMatch, Matching, group_by_subject
from gateway.store.records import Application
from gateway.tagging import Tagging
from tests.unit.gateway.domain.conftest import Domain


def test_hits_group_by_subject_in_order_of_each_best_hit() -> None:
    hits = [("s1", "e1", 9000), ("s2", "e2", 8500), ("s1", "e3", 8000), ("s3", "e4", 7100)]
    assert group_by_subject(hits) == (
        CandidateMatch("s1", 9000, (EventMatch("e1", 9000), EventMatch("e3", 8000))),
        CandidateMatch("s2", 8500, (EventMatch("e2", 8500),)),
        CandidateMatch("s3", 7100, (EventMatch("e4", 7100),)),
    )
    assert group_by_subject([]) == ()


def test_a_search_finds_the_person_and_not_the_others(
    domain: Domain, application: Application
) -> None:
    enrolment = Enrolment(domain.deps)
    alice = enrolment.register_subject(application, b"alice#1", [])
    enrolment.register_subject(application, b"bob#1", [])
    result = Matching(domain.deps).search(application, b"alice#probe")
    assert [c.subject_id for c in result.candidates] == [alice.subject_id]
    assert result.candidates[0].score >= DEFAULT_THRESHOLD
    assert result.attributes.face_quality_score == domain.extractor.quality


def test_a_subjects_events_form_one_candidate_scored_by_the_best(
    domain: Domain, application: Application
) -> None:
    enrolment = Enrolment(domain.deps)
    first = enrolment.register_subject(application, b"alice#1", [])
    second = enrolment.register_event(application, first.subject_id, b"alice#2", [])
    # The probe is the second photo itself: that event scores highest.
    (candidate,) = Matching(domain.deps).search(application, b"alice#2").candidates
    assert candidate.subject_id == first.subject_id
    assert [e.event_id for e in candidate.events] == [second.event_id, first.event_id]
    assert candidate.score == candidate.events[0].score > candidate.events[1].score


def test_a_hit_whose_event_the_store_deleted_is_dropped(
    domain: Domain, application: Application
) -> None:
    enrolment = Enrolment(domain.deps)
    alice = enrolment.register_subject(application, b"alice#1", [])
    enrolment.register_subject(application, b"alice#2", [])
    # The delete is committed, but the index missed it: it still holds the event.
    domain.index.down = True
    enrolment.unregister_subject(application, alice.subject_id)
    domain.index.down = False
    assert alice.event_id in domain.index.event_ids(application.gallery_id)
    result = Matching(domain.deps).search(application, b"alice#1")
    assert alice.subject_id not in [c.subject_id for c in result.candidates]
    assert len(result.candidates) == 1


def test_the_limit_counts_events_after_dropping_stale_hits(
    domain: Domain, application: Application
) -> None:
    enrolment = Enrolment(domain.deps)
    stale = enrolment.register_subject(application, b"alice#1", [])
    kept = [enrolment.register_subject(application, b"alice#%d" % n, []) for n in (2, 3)]
    domain.index.down = True
    enrolment.unregister_subject(application, stale.subject_id)
    domain.index.down = False
    result = Matching(domain.deps).search(application, b"alice#1", limit=2)
    assert sorted(c.subject_id for c in result.candidates) == sorted(k.subject_id for k in kept)


def test_tags_filter_a_search(domain: Domain, application: Application) -> None:
    Tagging(domain.deps).create(application, "vip")
    enrolment = Enrolment(domain.deps)
    vip = enrolment.register_subject(application, b"alice#1", ["vip"])
    enrolment.register_subject(application, b"alice#2", [])
    matching = Matching(domain.deps)
    assert len(matching.search(application, b"alice#3").candidates) == 2
    tagged = matching.search(application, b"alice#3", tag_names=["vip"])
    assert [c.subject_id for c in tagged.candidates] == [vip.subject_id]
    with pytest.raises(FacegateError) as refused:
        matching.search(application, b"alice#3", tag_names=["staff"])
    assert refused.value.error_type is ErrorType.INVALID_REQUEST


def test_the_threshold_applies(domain: Domain, application: Application) -> None:
    Enrolment(domain.deps).register_subject(application, b"alice#1", [])
    matching = Matching(domain.deps)
    assert matching.search(application, b"bob#1").candidates == ()
    assert len(matching.search(application, b"bob#1", threshold=0).candidates) == 1


@pytest.mark.parametrize(("threshold", "limit"), [(-1, 10), (10_000, 10), (7000, 0), (7000, 101)])
def test_search_parameters_are_checked(
    domain: Domain, application: Application, threshold: int, limit: int
) -> None:
    with pytest.raises(FacegateError) as refused:
        Matching(domain.deps).search(application, b"alice#1", threshold=threshold, limit=limit)
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
    assert domain.extractor.calls == 0


def test_verifying_a_subject_scores_its_best_event(
    domain: Domain, application: Application
) -> None:
    alice = Enrolment(domain.deps).register_subject(application, b"alice#1", [])
    matching = Matching(domain.deps)
    assert matching.verify_subject(application, alice.subject_id, b"alice#1") == 9999
    assert matching.verify_subject(application, alice.subject_id, b"alice#2") >= DEFAULT_THRESHOLD
    assert matching.verify_subject(application, alice.subject_id, b"bob#1") < DEFAULT_THRESHOLD
    with pytest.raises(FacegateError) as unknown:
        matching.verify_subject(application, "nobody", b"alice#1")
    assert unknown.value.error_type is ErrorType.NOT_FOUND


def test_verifying_two_faces(domain: Domain) -> None:
    matching = Matching(domain.deps)
    assert matching.verify_faces(b"alice#1", b"alice#2") >= DEFAULT_THRESHOLD
    assert matching.verify_faces(b"alice#1", b"bob#1") < DEFAULT_THRESHOLD


def test_extracting_checks_the_limit_and_needs_a_face(domain: Domain) -> None:
    matching = Matching(domain.deps)
    assert len(matching.extract(b"alice#1", limit=None)) == 1
    with pytest.raises(FacegateError) as refused:
        matching.extract(b"alice#1", limit=0)
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
    domain.extractor.faceless.add(b"empty")
    with pytest.raises(FacegateError) as faceless:
        matching.extract(b"empty", limit=None)
    assert faceless.value.error_type is ErrorType.NO_FACE
