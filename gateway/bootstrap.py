"""First-run set-up for a newcomer: a development tenant, gallery and application, and a
copy-paste example of a signed request (curl's built-in SigV4 signer)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from facegate.settings import Settings
from gateway.store import tenants
from gateway.store.database import Database
from gateway.tenancy import Tenancy

DEV_TENANT = "development"
DEV_GALLERY = "development"
DEV_GALLERY_SIZE = 100_000


@dataclass(frozen=True)
class DevCredentials:
    access_key_id: str
    secret_access_key: str
    gallery_id: str
    api_key: str

    def as_json(self) -> dict[str, str]:
        return {
            "accessKeyId": self.access_key_id,
            "secretAccessKey": self.secret_access_key,
            "galleryId": self.gallery_id,
            "apiKey": self.api_key,
        }


def create_dev_tenant_if_empty(database: Database, tenancy: Tenancy) -> DevCredentials | None:
    """The development tenant with a gallery and an application, when the store has no
    tenant at all; None otherwise (credentials are shown once, at creation)."""
    with database.read() as conn:
        if tenants.list_tenants(conn):
            return None
    created = tenancy.create_tenant(DEV_TENANT)
    gallery, application = tenancy.create_gallery(
        created.tenant,
        name=DEV_GALLERY,
        description="Created by the first `facegate serve` on this data directory.",
        size=DEV_GALLERY_SIZE,
        face_minimum_quality_score=None,
    )
    return DevCredentials(
        access_key_id=created.tenant.access_key_id,
        secret_access_key=created.secret_access_key,
        gallery_id=gallery.id,
        api_key=application.api_key,
    )


def example_request(settings: Settings, credentials: DevCredentials, image: str) -> str:
    """A shell command registering the face in ``image`` (POST /v1.1/subjects)."""
    host = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.rest_port}/v1.1/subjects"
    sign = f"aws:amz:{settings.rest.region}:execute-api"
    user = f"{credentials.access_key_id}:{credentials.secret_access_key}"
    body = f"""(printf '{{"face": "'; base64 -w0 {shlex.quote(image)}; printf '"}}')"""
    return (
        f"{body} | \\\n"
        f"  curl -sS -X POST {shlex.quote(url)} \\\n"
        f"  --aws-sigv4 {shlex.quote(sign)} --user {shlex.quote(user)} \\\n"
        f"  -H 'content-type: application/json' "
        f"-H {shlex.quote('x-api-key: ' + credentials.api_key)} \\\n"
        f"  --data-binary @-"
    )
