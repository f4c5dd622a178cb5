"""Tag rules: at most 64 per gallery, one bit each, unique names, and a deleted tag's
bit cleared everywhere before it serves another tag."""

from __future__ import annotations

import pytest

from facegate.errors import ErrorType, FacegateError
from gateway.enrolment import Enrolment
from gateway.search import Matching
from gateway.store import tags
from gateway.store.records import Application
from gateway.tagging import Tagging
from tests.unit.gateway.domain.conftest import Domain


def bits(domain: Domain, application: Application) -> dict[str, int]:
    with domain.database.read() as conn:
        return {tag.name: tag.bit for tag in tags.list_tags(conn, application.gallery_id)}


def test_tags_take_the_lowest_free_bits(domain: Domain, application: Application) -> None:
    tagging = Tagging(domain.deps)
    for name in ("a", "b", "c"):
        tagging.create(application, name)
    assert bits(domain, application) == {"a": 0, "b": 1, "c": 2}
    assert sorted(tagging.list(application)) == ["a", "b", "c"]


def test_a_tag_name_is_unique_in_its_gallery(domain: Domain, application: Application) -> None:
    tagging = Tagging(domain.deps)
    tagging.create(application, "vip")
    tagging.create(application, "staff")
    with pytest.raises(FacegateError) as duplicate:
        tagging.create(application, "vip")
    assert duplicate.value.error_type is ErrorType.DUPLICATE
    with pytest.raises(FacegateError) as taken:
        tagging.rename(application, "staff", "vip")
    assert taken.value.error_type is ErrorType.DUPLICATE
    # Another gallery may use the name.
    _, other = domain.gallery("other")
    tagging.create(other, "vip")


def test_renaming_keeps_the_bit(domain: Domain, application: Application) -> None:
    tagging = Tagging(domain.deps)
    tagging.create(application, "a")
    tagging.create(application, "b")
    tagging.rename(application, "b", "beta")
    assert bits(domain, application) == {"a": 0, "beta": 1}


def test_a_gallery_holds_at_most_64_tags(domain: Domain, application: Application) -> None:
    tagging = Tagging(domain.deps)
    for number in range(64):
        tagging.create(application, f"t{number}")
    with pytest.raises(FacegateError) as refused:
        tagging.create(application, "one-too-many")
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
    assert max(bits(domain, application).values()) == 63


def test_deleting_a_tag_clears_its_bit_in_the_store_and_the_index(
    domain: Domain, application: Application
) -> None:
    tagging = Tagging(domain.deps)
    tagging.create(application, "a")
    tagging.create(application, "b")
    done = Enrolment(domain.deps).register_subject(application, b"alice#1", ["a", "b"])
    tagging.delete(application, "a")
    assert domain.index.galleries[application.gallery_id][done.event_id].tag_mask == 0b10
    with domain.database.read() as conn:
        assert tags.tag_names(conn, application.gallery_id, 0b11) == ["b"]
    assert ("clear_tag_bit", application.gallery_id, "0") in domain.index.operations
    assert domain.pending() == []


def test_a_freed_bit_serves_a_new_tag_without_labelling_old_events(
    domain: Domain, application: Application
) -> None:
    tagging = Tagging(domain.deps)
    tagging.create(application, "old")
    Enrolment(domain.deps).register_subject(application, b"alice#1", ["old"])
    tagging.delete(application, "old")
    tagging.create(application, "new")
    assert bits(domain, application) == {"new": 0}
    found = Matching(domain.deps).search(application, b"alice#1", tag_names=["new"])
    assert found.candidates == ()


def test_a_bit_still_being_cleared_is_not_handed_out(
    domain: Domain, application: Application
) -> None:
    tagging = Tagging(domain.deps)
    tagging.create(application, "old")
    domain.index.down = True
    tagging.delete(application, "old")  # committed; the index has not cleared bit 0 yet
    tagging.create(application, "new")
    assert bits(domain, application) == {"new": 1}
    domain.index.down = False
    domain.deps.replicator.replay()
    tagging.create(application, "newer")
    assert bits(domain, application) == {"new": 1, "newer": 0}


def test_deleting_an_unknown_tag_is_not_found(domain: Domain, application: Application) -> None:
    with pytest.raises(FacegateError) as refused:
        Tagging(domain.deps).delete(application, "nothing")
    assert refused.value.error_type is ErrorType.NOT_FOUND


@pytest.mark.parametrize("name", ["", "   ", "x" * 129, "tab\tbed"])
def test_tag_names_are_checked(domain: Domain, application: Application, name: str) -> None:
    with pytest.raises(FacegateError) as refused:
        Tagging(domain.deps).create(application, name)
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
