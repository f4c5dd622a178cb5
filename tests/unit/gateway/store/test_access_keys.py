"""Tenants' key pairs and applications' previous API keys, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest

from facegate.errors import ErrorType, FacegateError
from gateway.store import access_keys, galleries, tenants
from gateway.store.database import Database
from gateway.store.records import AccessKey, Tenant
from tests.support.store import new_gallery, new_id, new_tenant


def _add(database: Database, tenant: Tenant, access_key_id: str, now_ms: int) -> AccessKey:
    with database.write() as conn:
        return access_keys.add_access_key(
            conn,
            tenant_id=tenant.id,
            access_key_id=access_key_id,
            secret_ciphertext=b"sealed-" + access_key_id.encode(),
            now_ms=now_ms,
        )


def test_a_tenant_holds_two_active_keys_and_not_a_third(database: Database) -> None:
    with database.write() as conn:
        acme = new_tenant(conn, "acme", now_ms=1)
    second = _add(database, acme, "AK-second", 2)
    assert second == AccessKey("AK-second", acme.id, b"sealed-AK-second", 2, 0, 0)
    with pytest.raises(FacegateError) as refused:
        _add(database, acme, "AK-third", 3)
    assert refused.value.error_type is ErrorType.INVALID_REQUEST
    assert "AK-acme, AK-second" in refused.value.message
    with database.read() as conn:
        listed = access_keys.list_access_keys(conn, acme.id)
        assert [key.access_key_id for key in listed] == ["AK-acme", "AK-second"]
        found = access_keys.active_access_key(conn, "AK-second")
    assert found == (Tenant(acme.id, "acme", "AK-second", 1), second)


def test_a_revoked_key_is_no_longer_found_and_frees_its_place(database: Database) -> None:
    with database.write() as conn:
        acme = new_tenant(conn, "acme", now_ms=1)
    _add(database, acme, "AK-second", 2)
    with database.write() as conn:
        revoked = access_keys.revoke_access_key(conn, acme.id, "AK-acme", now_ms=5)
        again = access_keys.revoke_access_key(conn, acme.id, "AK-acme", now_ms=9)
    assert revoked.revoked_ms == 5
    assert again == revoked
    with database.read() as conn:
        assert access_keys.active_access_key(conn, "AK-acme") is None
        assert tenants.tenant_by_access_key(conn, "AK-acme") is None
        assert tenants.tenant_by_name(conn, "acme") == Tenant(acme.id, "acme", "AK-second", 1)
        assert [k.revoked_ms for k in access_keys.list_access_keys(conn, acme.id)] == [5, 0]
    _add(database, acme, "AK-third", 6)


def test_the_last_active_key_and_other_tenants_keys_cannot_be_revoked(
    database: Database,
) -> None:
    with database.write() as conn:
        acme, beta = new_tenant(conn, "acme"), new_tenant(conn, "beta")
    with pytest.raises(FacegateError) as last, database.write() as conn:
        access_keys.revoke_access_key(conn, acme.id, "AK-acme", now_ms=5)
    assert last.value.error_type is ErrorType.INVALID_REQUEST
    _add(database, beta, "AK-beta-2", 2)
    with pytest.raises(FacegateError) as foreign, database.write() as conn:
        access_keys.revoke_access_key(conn, acme.id, "AK-beta-2", now_ms=5)
    assert foreign.value.error_type is ErrorType.NOT_FOUND
    with pytest.raises(FacegateError) as missing, database.write() as conn:
        access_keys.add_access_key(
            conn, tenant_id="nobody", access_key_id="AK-x", secret_ciphertext=b"", now_ms=1
        )
    assert missing.value.error_type is ErrorType.NOT_FOUND


def test_last_use_is_recorded_at_most_once_per_resolution(database: Database) -> None:
    with database.write() as conn:
        acme = new_tenant(conn, "acme")
        access_keys.record_use(conn, "AK-acme", now_ms=100_000, resolution_ms=60_000)
        access_keys.record_use(conn, "AK-acme", now_ms=159_999, resolution_ms=60_000)
    with database.read() as conn:
        assert access_keys.list_access_keys(conn, acme.id)[0].last_used_ms == 100_000
    with database.write() as conn:
        access_keys.record_use(conn, "AK-acme", now_ms=160_000, resolution_ms=60_000)
    with database.read() as conn:
        assert access_keys.list_access_keys(conn, acme.id)[0].last_used_ms == 160_000


def test_a_replaced_api_key_is_found_until_replaced_again(database: Database) -> None:
    def digest(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    with database.write() as conn:
        acme = new_tenant(conn, "acme")
        gallery = new_gallery(conn, acme.id)
        created = galleries.create_application(
            conn,
            id=new_id(),
            tenant_id=acme.id,
            gallery_id=gallery.id,
            name="app",
            description="",
            api_key_hash=digest("first"),
            api_key_hint="first…",
            face_minimum_quality_score=0.5,
            now_ms=1,
        )
        replaced = galleries.replace_api_key(
            conn,
            created.id,
            api_key_hash=digest("second"),
            api_key_hint="second…",
            previous_until_ms=500,
        )
    assert (replaced.api_key_hash, replaced.api_key_hint) == (digest("second"), "second…")
    assert (replaced.previous_api_key_hash, replaced.previous_api_key_hint) == (
        digest("first"),
        "first…",
    )
    assert replaced.previous_api_key_until_ms == 500
    with database.read() as conn:
        assert galleries.application_by_key_hash(conn, digest("first")) == replaced
        assert galleries.application_by_key_hash(conn, digest("second")) == replaced
    with database.write() as conn:
        galleries.replace_api_key(
            conn, created.id, api_key_hash=digest("third"), api_key_hint="", previous_until_ms=9
        )
        assert galleries.application_by_key_hash(conn, digest("first")) is None
        with pytest.raises(FacegateError) as missing:
            galleries.replace_api_key(
                conn, "nothing", api_key_hash=b"", api_key_hint="", previous_until_ms=0
            )
    assert missing.value.error_type is ErrorType.NOT_FOUND
