"""Tenancy rules: galleries and applications belong to one tenant, names are unique per
tenant, quality minimums and sizes are checked, a deleted gallery leaves the index."""

from __future__ import annotations

import pytest

from facegate.errors import ErrorType, FacegateError
from gateway.deps import MIN_QUALITY_FLOOR
from gateway.enrolment import Enrolment
from gateway.tenancy import Tenancy
from tests.support.fakes import SCORE_MAP
from tests.unit.gateway.domain.conftest import Domain


def test_a_gallery_comes_with_an_application_whose_key_reaches_it(domain: Domain) -> None:
    gallery, created = domain.tenancy.create_gallery(
        domain.tenant, name="main", description="d", size=10, face_minimum_quality_score=None
    )
    assert created.application.gallery_id == gallery.id
    assert created.application.face_minimum_quality_score == MIN_QUALITY_FLOOR
    assert domain.tenancy.application_for_key(created.api_key, domain.tenant) == (
        created.application
    )
    assert domain.tenancy.application_for_key(created.api_key, None) == created.application


def test_a_gallery_name_is_unique_per_tenant(domain: Domain) -> None:
    first, _ = domain.gallery("main")
    with pytest.raises(FacegateError) as duplicate:
        domain.gallery("main")
    assert duplicate.value.error_type is ErrorType.DUPLICATE
    assert first.id in duplicate.value.message
    other, _ = domain.gallery("other")
    with pytest.raises(FacegateError) as renamed:
        domain.tenancy.update_gallery(
            domain.tenant, other.id, name="main", description=None, size=None
        )
    assert renamed.value.error_type is ErrorType.DUPLICATE
    # Another tenant may use the name.
    stranger = domain.tenancy.create_tenant("stranger").tenant
    domain.tenancy.create_gallery(
        stranger, name="main", description="", size=1, face_minimum_quality_score=None
    )


def test_another_tenants_gallery_and_key_are_out_of_reach(domain: Domain) -> None:
    gallery, application = domain.gallery()
    api_key = domain.tenancy.create_application(
        domain.tenant,
        gallery_id=gallery.id,
        name="second",
        description="",
        face_minimum_quality_score=None,
    ).api_key
    stranger = domain.tenancy.create_tenant("stranger").tenant
    with pytest.raises(FacegateError) as hidden:
        domain.tenancy.get_gallery(stranger, gallery.id)
    assert hidden.value.error_type is ErrorType.NOT_FOUND
    with pytest.raises(FacegateError) as forbidden:
        domain.tenancy.application_for_key(api_key, stranger)
    assert forbidden.value.error_type is ErrorType.FORBIDDEN
    with pytest.raises(FacegateError):
        domain.tenancy.get_application(stranger, application.id)
    assert domain.tenancy.list_galleries(stranger) == []


@pytest.mark.parametrize("quality", [0.3, 1.5, float("nan")])
def test_the_quality_minimum_is_between_the_floor_and_one(domain: Domain, quality: float) -> None:
    with pytest.raises(FacegateError) as refused:
        domain.tenancy.create_gallery(
            domain.tenant, name="g", description="", size=1, face_minimum_quality_score=quality
        )
    assert refused.value.error_type is ErrorType.INVALID_REQUEST


def test_an_application_inherits_its_gallerys_quality_minimum(domain: Domain) -> None:
    gallery, _ = domain.tenancy.create_gallery(
        domain.tenant, name="g", description="", size=1, face_minimum_quality_score=0.7
    )
    created = domain.tenancy.create_application(
        domain.tenant,
        gallery_id=gallery.id,
        name="a",
        description="",
        face_minimum_quality_score=None,
    )
    assert created.application.face_minimum_quality_score == pytest.approx(0.7)


def test_a_gallery_can_only_grow(domain: Domain) -> None:
    gallery, _ = domain.gallery(size=10)
    grown = domain.tenancy.update_gallery(
        domain.tenant, gallery.id, name=None, description=None, size=20
    )
    assert grown.size == 20
    with pytest.raises(FacegateError) as refused:
        domain.tenancy.update_gallery(
            domain.tenant, gallery.id, name=None, description=None, size=5
        )
    assert refused.value.error_type is ErrorType.INVALID_REQUEST


def test_a_gallerys_statistics_follow_its_active_events(domain: Domain) -> None:
    gallery, application = domain.gallery()
    enrolment = Enrolment(domain.deps)
    for person in (b"alice", b"bob"):
        enrolment.register_subject(application, person + b"#1", [])
    _, applications, statistics = domain.tenancy.get_gallery(domain.tenant, gallery.id)
    assert [a.id for a in applications] == [application.id]
    assert statistics.active_events == 2
    assert statistics.threshold_fpir_1e2 == SCORE_MAP.threshold_for_fpir(1e-2, 2)


def test_deleting_a_gallery_drops_it_from_the_index_and_its_keys(domain: Domain) -> None:
    gallery, created = domain.tenancy.create_gallery(
        domain.tenant, name="g", description="", size=5, face_minimum_quality_score=None
    )
    Enrolment(domain.deps).register_subject(created.application, b"alice#1", [])
    domain.tenancy.delete_gallery(domain.tenant, gallery.id)
    assert gallery.id not in domain.index.galleries
    assert domain.index.operations[-1] == ("drop_gallery", gallery.id, "")
    with pytest.raises(FacegateError) as forbidden:
        domain.tenancy.application_for_key(created.api_key, domain.tenant)
    assert forbidden.value.error_type is ErrorType.FORBIDDEN


def test_deleting_an_application_revokes_its_key(domain: Domain) -> None:
    tenancy: Tenancy = domain.tenancy
    _, created = tenancy.create_gallery(
        domain.tenant, name="g", description="", size=5, face_minimum_quality_score=None
    )
    tenancy.application_for_key(created.api_key, None)  # cached now
    tenancy.delete_application(domain.tenant, created.application.id)
    with pytest.raises(FacegateError) as forbidden:
        tenancy.application_for_key(created.api_key, None)
    assert forbidden.value.error_type is ErrorType.FORBIDDEN


@pytest.mark.parametrize("name", ["", "  ", "x" * 257, "nul\x00"])
def test_names_are_checked(domain: Domain, name: str) -> None:
    with pytest.raises(FacegateError) as refused:
        domain.gallery(name)
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
