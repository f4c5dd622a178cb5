"""Tenants, their galleries and applications, and who a caller is.

A tenant signs requests with its access key (SigV4 on REST; the key pair as metadata on
gRPC) and owns galleries; an application is an API key bound to one gallery. Every
gallery-scoped call names its application by API key, and when the caller is also a
signed tenant, the application must be that tenant's: a key leaked across tenants
reaches nothing.

Credentials are rotated without downtime (docs/operations.md "Key rotation", ADR 0014):
a tenant may hold two active key pairs, and a regenerated API key leaves the one it
replaced working for an overlap period. A revocation made elsewhere (the CLI, another
gateway) reaches this gateway within ACCESS_TTL_S, the life of its lookup caches.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from sqlalchemy import Connection

from facegate.errors import ErrorType, FacegateError
from gateway.cache import TtlCache
from gateway.credentials import (
    SecretBox,
    api_key_hint,
    hash_api_key,
    new_access_key_id,
    new_api_key,
    new_secret_access_key,
)
from gateway.deps import MIN_QUALITY_FLOOR, GatewayDeps, new_id
from gateway.enrolment import require_printable
from gateway.ports import Clock, system_clock_ms
from gateway.replication import record_change
from gateway.search import SearchStatistics, search_statistics
from gateway.store import access_keys, galleries, tenants
from gateway.store.changes import KIND_DROP_GALLERY
from gateway.store.database import Database
from gateway.store.events import count_active_events
from gateway.store.galleries import GalleryNameTaken
from gateway.store.records import AccessKey, Application, Gallery, Tenant

FORBIDDEN_MESSAGE = "Forbidden"
INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."
MAX_NAME_LENGTH = 256
ACCESS_TTL_S = 5.0
"""How long a gateway may go on accepting a key revoked elsewhere (the bound
docs/operations.md states)."""
ACCESS_CACHE_ENTRIES = 10_000
KEY_USE_RESOLUTION_MS = 60_000
"""An access key's last use is recorded at most this often: not a store write per call."""
MAX_OVERLAP_S = 90 * 24 * 3600


@dataclass(frozen=True)
class NewTenant:
    tenant: Tenant
    secret_access_key: str


@dataclass(frozen=True)
class NewAccessKey:
    key: AccessKey
    secret_access_key: str


@dataclass(frozen=True)
class NewApplication:
    application: Application
    api_key: str


def _name(value: str, what: str) -> str:
    require_printable(value, what)
    name = value.strip()
    if not name:
        raise FacegateError(ErrorType.INVALID_REQUEST, f"{what} must not be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise FacegateError(
            ErrorType.INVALID_REQUEST, f"{what} must be at most {MAX_NAME_LENGTH} characters."
        )
    return name


# The value arrives as a protobuf float (32 bits): 0.45 is 0.44999998807907104 there.
_FLOAT32_SLACK = 1e-6


def _quality(value: float) -> float:
    """The quality minimum, at least 0.45 and at most 1 (as sent in float32)."""
    if not (
        math.isfinite(value) and MIN_QUALITY_FLOOR - _FLOAT32_SLACK <= value <= 1.0 + _FLOAT32_SLACK
    ):
        raise FacegateError(
            ErrorType.INVALID_REQUEST,
            f"faceMinimumQualityScore must be between {MIN_QUALITY_FLOOR} and 1.",
        )
    return min(max(value, MIN_QUALITY_FLOOR), 1.0)


def create_tenant(
    database: Database, box: SecretBox, name: str, *, clock: Clock = system_clock_ms
) -> NewTenant:
    """A tenant with a new key pair; the secret is returned once and kept encrypted."""
    access_key_id = new_access_key_id()
    secret = new_secret_access_key()
    sealed = box.seal(secret, access_key_id=access_key_id)
    with database.write() as conn:
        tenant = tenants.create_tenant(
            conn,
            id=new_id(),
            name=_name(name, "name"),
            access_key_id=access_key_id,
            secret_ciphertext=sealed,
            now_ms=clock(),
        )
    return NewTenant(tenant, secret)


def tenant_secret(
    database: Database, box: SecretBox, access_key_id: str
) -> tuple[Tenant, str] | None:
    """The tenant of an active access key and its secret, from the store (uncached);
    None when the key is unknown or revoked."""
    with database.read() as conn:
        found = access_keys.active_access_key(conn, access_key_id)
    if found is None:
        return None
    tenant, key = found
    return tenant, box.open(key.secret_ciphertext, access_key_id=access_key_id)


def create_access_key(
    database: Database, box: SecretBox, tenant_name: str, *, clock: Clock = system_clock_ms
) -> NewAccessKey:
    """A further key pair for the tenant (at most two active); the secret is returned
    once and kept encrypted."""
    access_key_id = new_access_key_id()
    secret = new_secret_access_key()
    sealed = box.seal(secret, access_key_id=access_key_id)
    with database.write() as conn:
        key = access_keys.add_access_key(
            conn,
            tenant_id=_tenant_named(conn, tenant_name).id,
            access_key_id=access_key_id,
            secret_ciphertext=sealed,
            now_ms=clock(),
        )
    return NewAccessKey(key, secret)


def list_access_keys(database: Database, tenant_name: str) -> list[AccessKey]:
    """The tenant's key pairs, revoked ones included, oldest first."""
    with database.read() as conn:
        return access_keys.list_access_keys(conn, _tenant_named(conn, tenant_name).id)


def revoke_access_key(
    database: Database, tenant_name: str, access_key_id: str, *, clock: Clock = system_clock_ms
) -> AccessKey:
    """Revokes one of the tenant's key pairs (never its last active one); every gateway
    refuses it within ACCESS_TTL_S."""
    with database.write() as conn:
        tenant = _tenant_named(conn, tenant_name)
        return access_keys.revoke_access_key(conn, tenant.id, access_key_id, now_ms=clock())


def regenerate_api_key(
    database: Database, application_id: str, *, overlap_s: float, clock: Clock = system_clock_ms
) -> NewApplication:
    """A new API key for the application; the current one keeps working for
    ``overlap_s`` seconds (and, on gateways other than the caller's, for at most
    ACCESS_TTL_S after this call however short the overlap)."""
    if not (math.isfinite(overlap_s) and 0 <= overlap_s <= MAX_OVERLAP_S):
        raise FacegateError(
            ErrorType.INVALID_REQUEST,
            f"The overlap must be between 0 and {MAX_OVERLAP_S} seconds.",
        )
    api_key = new_api_key()
    with database.write() as conn:
        application = galleries.replace_api_key(
            conn,
            application_id,
            api_key_hash=hash_api_key(api_key),
            api_key_hint=api_key_hint(api_key),
            previous_until_ms=clock() + round(overlap_s * 1000),
        )
    return NewApplication(application, api_key)


def _tenant_named(conn: Connection, name: str) -> Tenant:
    tenant = tenants.tenant_by_name(conn, name)
    if tenant is None:
        raise FacegateError(ErrorType.NOT_FOUND, f"Tenant {name} not found.")
    return tenant


def accepts_key(application: Application, key_hash: bytes, now_ms: int) -> bool:
    """Whether the key of that hash reaches the application now: its current key, or
    the previous one until its overlap ends."""
    return application.api_key_hash == key_hash or (
        application.previous_api_key_hash == key_hash
        and now_ms < application.previous_api_key_until_ms
    )


class Tenancy:
    def __init__(self, deps: GatewayDeps) -> None:
        self._deps = deps
        # Every gallery-scoped call looks up its tenant and application; a change made
        # through another gateway is seen here within ACCESS_TTL_S (this gateway's own
        # deletes and updates clear the caches at once).
        self._secrets: TtlCache[str, tuple[Tenant, str] | None] = TtlCache(
            ACCESS_TTL_S, ACCESS_CACHE_ENTRIES
        )
        self._applications: TtlCache[bytes, Application | None] = TtlCache(
            ACCESS_TTL_S, ACCESS_CACHE_ENTRIES
        )
        # When this gateway last recorded each key's use.
        self._key_uses: dict[str, int] = {}
        self._key_uses_lock = threading.Lock()

    # ------------------------------------------------------------------ tenants

    def create_tenant(self, name: str) -> NewTenant:
        return create_tenant(self._deps.database, self._deps.secrets, name, clock=self._deps.clock)

    def secret_for(self, access_key_id: str) -> tuple[Tenant, str] | None:
        """The tenant of an access key and its secret (for verifying a signature)."""
        return self._secrets.get(access_key_id, lambda: self._load_secret(access_key_id))

    def _load_secret(self, access_key_id: str) -> tuple[Tenant, str] | None:
        return tenant_secret(self._deps.database, self._deps.secrets, access_key_id)

    def record_key_use(self, access_key_id: str) -> None:
        """Notes that a call proved this key: in the store at most once per
        KEY_USE_RESOLUTION_MS (per gateway, and the store skips a recent one)."""
        now = self._deps.clock()
        with self._key_uses_lock:
            last = self._key_uses.get(access_key_id)
            if last is not None and now - last < KEY_USE_RESOLUTION_MS:
                return
            if len(self._key_uses) >= ACCESS_CACHE_ENTRIES:
                self._key_uses.clear()
            self._key_uses[access_key_id] = now
        with self._deps.database.write() as conn:
            access_keys.record_use(
                conn, access_key_id, now_ms=now, resolution_ms=KEY_USE_RESOLUTION_MS
            )

    def application_for_key(self, api_key: str, tenant: Tenant | None) -> Application:
        """The application an API key names; Forbidden when there is none, when a
        signed tenant presents another tenant's key, or for a replaced key whose overlap
        has ended."""
        if not api_key:
            raise FacegateError(ErrorType.FORBIDDEN, FORBIDDEN_MESSAGE)
        key_hash = hash_api_key(api_key)
        application = self._applications.get(key_hash, lambda: self._load_application(key_hash))
        if (
            application is None
            or (tenant is not None and application.tenant_id != tenant.id)
            or not accepts_key(application, key_hash, self._deps.clock())
        ):
            raise FacegateError(ErrorType.FORBIDDEN, FORBIDDEN_MESSAGE)
        return application

    def _load_application(self, key_hash: bytes) -> Application | None:
        with self._deps.database.read() as conn:
            return galleries.application_by_key_hash(conn, key_hash)

    # ---------------------------------------------------------------- galleries

    def list_galleries(self, tenant: Tenant) -> list[Gallery]:
        with self._deps.database.read() as conn:
            return galleries.list_galleries(conn, tenant.id)

    def get_gallery(
        self, tenant: Tenant, gallery_id: str
    ) -> tuple[Gallery, list[Application], SearchStatistics]:
        with self._deps.database.read() as conn:
            gallery = self._gallery(conn, tenant, gallery_id)
            applications = galleries.list_applications(conn, tenant.id, gallery.id)
            active = count_active_events(conn, gallery.id)
        return gallery, applications, search_statistics(active, self._deps.extractor.score_map())

    def create_gallery(
        self,
        tenant: Tenant,
        *,
        name: str,
        description: str,
        size: int,
        face_minimum_quality_score: float | None,
    ) -> tuple[Gallery, NewApplication]:
        """A gallery and a first application (named like it) to reach it."""
        name = _name(name, "name")
        require_printable(description, "description", free_text=True)
        if size < 1:
            raise FacegateError(ErrorType.INVALID_REQUEST, "size must be at least 1.")
        quality = _quality(
            MIN_QUALITY_FLOOR if face_minimum_quality_score is None else face_minimum_quality_score
        )
        with self._deps.database.write() as conn:
            try:
                gallery = galleries.create_gallery(
                    conn,
                    id=new_id(),
                    tenant_id=tenant.id,
                    name=name,
                    description=description,
                    size=size,
                    face_minimum_quality_score=quality,
                    now_ms=self._deps.clock(),
                )
            except GalleryNameTaken as taken:
                existing = galleries.list_applications(conn, tenant.id, taken.existing_gallery_id)
                keys = ", ".join(a.api_key_hint for a in existing) or "none"
                raise FacegateError(
                    ErrorType.DUPLICATE,
                    f"Gallery {name} already exists (id {taken.existing_gallery_id}, "
                    f"apiKey {keys}).",
                ) from None
            created = self._insert_application(
                conn, tenant, gallery, name=name, description=description, quality=quality
            )
        return gallery, created

    def update_gallery(
        self,
        tenant: Tenant,
        gallery_id: str,
        *,
        name: str | None,
        description: str | None,
        size: int | None,
    ) -> Gallery:
        if description is not None:
            require_printable(description, "description", free_text=True)
        with self._deps.database.write() as conn:
            gallery = self._gallery(conn, tenant, gallery_id)
            if size is not None and size < gallery.size:
                raise FacegateError(
                    ErrorType.INVALID_REQUEST,
                    f"size can only be increased (it is {gallery.size}).",
                )
            try:
                return galleries.update_gallery(
                    conn,
                    gallery.id,
                    name=None if name is None else _name(name, "name"),
                    description=description,
                    size=size,
                )
            except GalleryNameTaken:
                raise FacegateError(
                    ErrorType.DUPLICATE, f"Gallery {name} already exists."
                ) from None

    def delete_gallery(self, tenant: Tenant, gallery_id: str) -> None:
        with self._deps.database.write() as conn:
            gallery = self._gallery(conn, tenant, gallery_id)
            galleries.delete_gallery(conn, gallery.id)
            drop = record_change(conn, gallery.id, KIND_DROP_GALLERY, now_ms=self._deps.clock())
        self._applications.clear()
        self._deps.replicator.push([drop])

    # ------------------------------------------------------------- applications

    def list_applications(self, tenant: Tenant) -> list[Application]:
        with self._deps.database.read() as conn:
            return galleries.list_applications(conn, tenant.id)

    def get_application(self, tenant: Tenant, application_id: str) -> Application:
        with self._deps.database.read() as conn:
            return self._application(conn, tenant, application_id)

    def create_application(
        self,
        tenant: Tenant,
        *,
        gallery_id: str,
        name: str,
        description: str,
        face_minimum_quality_score: float | None,
    ) -> NewApplication:
        name = _name(name, "name")
        require_printable(description, "description", free_text=True)
        with self._deps.database.write() as conn:
            gallery = self._gallery(conn, tenant, gallery_id)
            quality = _quality(
                gallery.face_minimum_quality_score
                if face_minimum_quality_score is None
                else face_minimum_quality_score
            )
            return self._insert_application(
                conn, tenant, gallery, name=name, description=description, quality=quality
            )

    def update_application(
        self,
        tenant: Tenant,
        application_id: str,
        *,
        name: str | None,
        description: str | None,
        face_minimum_quality_score: float | None,
    ) -> Application:
        if description is not None:
            require_printable(description, "description", free_text=True)
        with self._deps.database.write() as conn:
            application = self._application(conn, tenant, application_id)
            updated = galleries.update_application(
                conn,
                application.id,
                name=None if name is None else _name(name, "name"),
                description=description,
                face_minimum_quality_score=None
                if face_minimum_quality_score is None
                else _quality(face_minimum_quality_score),
            )
        self._applications.clear()
        return updated

    def delete_application(self, tenant: Tenant, application_id: str) -> None:
        with self._deps.database.write() as conn:
            application = self._application(conn, tenant, application_id)
            galleries.delete_application(conn, application.id)
        self._applications.clear()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _gallery(conn: Connection, tenant: Tenant, gallery_id: str) -> Gallery:
        gallery = galleries.get_gallery(conn, tenant.id, gallery_id)
        if gallery is None:
            raise FacegateError(ErrorType.NOT_FOUND, f"Gallery {gallery_id} not found.")
        return gallery

    @staticmethod
    def _application(conn: Connection, tenant: Tenant, application_id: str) -> Application:
        application = galleries.get_application(conn, tenant.id, application_id)
        if application is None:
            raise FacegateError(ErrorType.NOT_FOUND, f"Application {application_id} not found.")
        return application

    def _insert_application(
        self,
        conn: Connection,
        tenant: Tenant,
        gallery: Gallery,
        *,
        name: str,
        description: str,
        quality: float,
    ) -> NewApplication:
        api_key = new_api_key()
        application = galleries.create_application(
            conn,
            id=new_id(),
            tenant_id=tenant.id,
            gallery_id=gallery.id,
            name=name,
            description=description,
            api_key_hash=hash_api_key(api_key),
            api_key_hint=api_key_hint(api_key),
            face_minimum_quality_score=quality,
            now_ms=self._deps.clock(),
        )
        return NewApplication(application, api_key)
