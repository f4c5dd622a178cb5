"""Credential lifecycle rules: a second key pair, revocation, last use, API key
regeneration with an overlap."""

from __future__ import annotations

import pytest

from facegate.errors import ErrorType, FacegateError
from gateway.tenancy import (
    KEY_USE_RESOLUTION_MS,
    create_access_key,
    list_access_keys,
    regenerate_api_key,
    revoke_access_key,
    tenant_secret,
)
from tests.unit.gateway.domain.conftest import Domain


def test_both_key_pairs_of_a_tenant_prove_it_until_one_is_revoked(domain: Domain) -> None:
    box = domain.deps.secrets
    second = create_access_key(domain.database, box, "acme", clock=domain.clock)
    first_id = domain.tenant.access_key_id
    found_first = tenant_secret(domain.database, box, first_id)
    found_second = tenant_secret(domain.database, box, second.key.access_key_id)
    assert found_first is not None
    assert found_second is not None
    assert found_first[0].id == found_second[0].id == domain.tenant.id
    assert found_second[1] == second.secret_access_key != found_first[1]

    revoked = revoke_access_key(domain.database, "acme", first_id, clock=domain.clock)
    assert revoked.revoked_ms == domain.clock()
    assert tenant_secret(domain.database, box, first_id) is None
    assert tenant_secret(domain.database, box, second.key.access_key_id) == found_second


def test_a_third_key_and_revoking_the_last_one_are_refused(domain: Domain) -> None:
    box = domain.deps.secrets
    second = create_access_key(domain.database, box, "acme").key.access_key_id
    with pytest.raises(FacegateError) as third:
        create_access_key(domain.database, box, "acme")
    assert third.value.error_type is ErrorType.INVALID_REQUEST
    revoke_access_key(domain.database, "acme", domain.tenant.access_key_id)
    with pytest.raises(FacegateError) as last:
        revoke_access_key(domain.database, "acme", second)
    assert last.value.error_type is ErrorType.INVALID_REQUEST
    with pytest.raises(FacegateError) as unknown:
        list_access_keys(domain.database, "nobody")
    assert unknown.value.error_type is ErrorType.NOT_FOUND


def test_last_use_is_written_once_per_resolution(domain: Domain) -> None:
    key_id = domain.tenant.access_key_id
    start = domain.clock()
    domain.tenancy.record_key_use(key_id)
    domain.clock.advance(KEY_USE_RESOLUTION_MS - 1)
    domain.tenancy.record_key_use(key_id)
    assert [k.last_used_ms for k in list_access_keys(domain.database, "acme")] == [start]
    domain.clock.advance(1)
    domain.tenancy.record_key_use(key_id)
    assert [k.last_used_ms for k in list_access_keys(domain.database, "acme")] == [
        start + KEY_USE_RESOLUTION_MS
    ]


def test_a_regenerated_api_key_leaves_the_old_one_working_for_the_overlap(
    domain: Domain,
) -> None:
    _, created = domain.tenancy.create_gallery(
        domain.tenant, name="g", description="", size=5, face_minimum_quality_score=None
    )
    old_key = created.api_key
    regenerated = regenerate_api_key(
        domain.database, created.application.id, overlap_s=60, clock=domain.clock
    )
    assert regenerated.api_key != old_key
    assert regenerated.application.previous_api_key_hint == created.application.api_key_hint
    assert domain.tenancy.application_for_key(regenerated.api_key, domain.tenant).id == (
        created.application.id
    )
    domain.clock.advance(59_999)
    assert domain.tenancy.application_for_key(old_key, None).id == created.application.id
    domain.clock.advance(1)
    with pytest.raises(FacegateError) as ended:
        domain.tenancy.application_for_key(old_key, None)
    assert ended.value.error_type is ErrorType.FORBIDDEN
    assert domain.tenancy.application_for_key(regenerated.api_key, None).id == (
        created.application.id
    )


@pytest.mark.parametrize("overlap_s", [-1.0, float("nan"), 91 * 24 * 3600.0])
def test_an_overlap_out_of_range_is_refused(domain: Domain, overlap_s: float) -> None:
    application = domain.gallery()[1]
    with pytest.raises(FacegateError) as refused:
        regenerate_api_key(domain.database, application.id, overlap_s=overlap_s)
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
