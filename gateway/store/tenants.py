"""Tenants: the accounts that own galleries, found by name or by access key id."""

from __future__ import annotations

from sqlalchemy import Connection, Row, insert, select

from facegate.errors import ErrorType, FacegateError
from gateway.store.common import try_execute
from gateway.store.records import Tenant
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
    """Adds a tenant; DUPLICATE when the name is taken."""
    if tenant_by_name(conn, name) is not None:
        raise _duplicate(name)
    tenant = Tenant(id, name, access_key_id, secret_ciphertext, now_ms)
    error = try_execute(
        conn,
        insert(tenants).values(
            id=id,
            name=name,
            access_key_id=access_key_id,
            secret_ciphertext=secret_ciphertext,
            created_ms=now_ms,
        ),
    )
    if error is not None:
        if tenant_by_name(conn, name) is not None:
            raise _duplicate(name) from error
        raise error
    return tenant


def tenant_by_access_key(conn: Connection, access_key_id: str) -> Tenant | None:
    row = conn.execute(select(tenants).where(tenants.c.access_key_id == access_key_id)).first()
    return None if row is None else _tenant(row)


def tenant_by_name(conn: Connection, name: str) -> Tenant | None:
    row = conn.execute(select(tenants).where(tenants.c.name == name)).first()
    return None if row is None else _tenant(row)


def list_tenants(conn: Connection) -> list[Tenant]:
    """Every tenant, by name."""
    return [_tenant(row) for row in conn.execute(select(tenants).order_by(tenants.c.name))]


def _duplicate(name: str) -> FacegateError:
    return FacegateError(ErrorType.DUPLICATE, f"Tenant {name} already exists.")


def _tenant(row: Row[tuple[object, ...]]) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        access_key_id=row.access_key_id,
        secret_ciphertext=bytes(row.secret_ciphertext),
        created_ms=row.created_ms,
    )
