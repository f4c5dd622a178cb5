"""Tenants: the accounts that own galleries, found by name or by one of their access
keys (gateway/store/access_keys.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, Select, insert, select

from facegate.errors import ErrorType, FacegateError
from gateway.store import access_keys
from gateway.store.common import try_execute
from gateway.store.records import Tenant
from gateway.store.schema import access_keys as access_keys_table
from gateway.store.schema import tenants


def create_tenant(
    conn: Connection,
    *,
    id: str,
    name: str,
    access_key_id: str,
    secret_ciphertext: bytes,
    now_ms: int,
) -> Tenant:
    """Adds a tenant with its first key pair; DUPLICATE when the name is taken."""
    if tenant_by_name(conn, name) is not None:
        raise _duplicate(name)
    error = try_execute(conn, insert(tenants).values(id=id, name=name, created_ms=now_ms))
    if error is not None:
        if tenant_by_name(conn, name) is not None:
            raise _duplicate(name) from error
        raise error
    access_keys.add_access_key(
        conn,
        tenant_id=id,
        access_key_id=access_key_id,
        secret_ciphertext=secret_ciphertext,
        now_ms=now_ms,
    )
    return Tenant(id, name, access_key_id, now_ms)


def tenant_by_access_key(conn: Connection, access_key_id: str) -> Tenant | None:
    """The tenant of an active (not revoked) access key."""
    found = access_keys.active_access_key(conn, access_key_id)
    return None if found is None else found[0]


def tenant_by_name(conn: Connection, name: str) -> Tenant | None:
    row = conn.execute(_with_oldest_key().where(tenants.c.name == name)).first()
    return None if row is None else _tenant(row)


def list_tenants(conn: Connection) -> list[Tenant]:
    """Every tenant, by name."""
    return [_tenant(row) for row in conn.execute(_with_oldest_key().order_by(tenants.c.name))]


def _with_oldest_key() -> Select[Any]:
    keys = access_keys_table.c
    oldest = (
        select(keys.access_key_id)
        .where(keys.tenant_id == tenants.c.id, keys.revoked_ms == 0)
        .order_by(keys.created_ms, keys.access_key_id)
        .limit(1)
        .scalar_subquery()
    )
    return select(tenants, oldest.label("access_key_id"))


def _duplicate(name: str) -> FacegateError:
    return FacegateError(ErrorType.DUPLICATE, f"Tenant {name} already exists.")


def _tenant(row: Row[Any]) -> Tenant:
    return Tenant(
        id=row.id, name=row.name, access_key_id=row.access_key_id or "", created_ms=row.created_ms
    )
