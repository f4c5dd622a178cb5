"""The credential lifecycle commands (docs/operations.md "Key rotation"):

    facegate tenant keys create TENANT        a second key pair, printed once as JSON
    facegate tenant keys list TENANT          id, created, last used, status; no secret
    facegate tenant keys revoke TENANT ACCESS_KEY_ID
    facegate gallery list TENANT              galleries and their applications' key hints
    facegate gallery regenerate-key APPLICATION_ID [--overlap-s SECONDS]
                                              a new API key, printed once as JSON

They work on the store directly, like ``facegate tenant create``, also while the
service runs. None takes a secret: secrets are made here and printed once on stdout,
never read from the command line (where ``ps`` and shell history would keep them).
The store's modules are imported only when a command runs, as elsewhere in the CLI: a
REST shim process, which runs the same command, never loads them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from facegate.errors import ErrorType, FacegateError

if TYPE_CHECKING:
    from gateway.credentials import SecretBox
    from gateway.store.database import Database
    from gateway.store.records import AccessKey, Application

StoreCommand: TypeAlias = "Callable[[Database, SecretBox, argparse.Namespace], Any]"
"""A command run on the open store; returns what to print as JSON."""

DEFAULT_OVERLAP_S = 24 * 3600


def keys_create(database: Database, box: SecretBox, args: argparse.Namespace) -> Any:
    from gateway.tenancy import create_access_key

    created = create_access_key(database, box, args.tenant)
    return {
        "tenant": args.tenant,
        "accessKeyId": created.key.access_key_id,
        "secretAccessKey": created.secret_access_key,
        "created": _time(created.key.created_ms),
    }


def keys_list(database: Database, _box: SecretBox, args: argparse.Namespace) -> Any:
    from gateway.tenancy import list_access_keys

    return {
        "tenant": args.tenant,
        "accessKeys": [_key(key) for key in list_access_keys(database, args.tenant)],
    }


def keys_revoke(database: Database, _box: SecretBox, args: argparse.Namespace) -> Any:
    from gateway.tenancy import ACCESS_TTL_S, revoke_access_key

    revoked = revoke_access_key(database, args.tenant, args.access_key_id)
    return {**_key(revoked), "refusedEverywhereWithinSeconds": ACCESS_TTL_S}


def gallery_list(database: Database, _box: SecretBox, args: argparse.Namespace) -> Any:
    from gateway.store import galleries, tenants

    with database.read() as conn:
        tenant = tenants.tenant_by_name(conn, args.tenant)
        if tenant is None:
            raise FacegateError(ErrorType.NOT_FOUND, f"Tenant {args.tenant} not found.")
        found = galleries.list_galleries(conn, tenant.id)
        applications = galleries.list_applications(conn, tenant.id)
    return {
        "tenant": args.tenant,
        "galleries": [
            {
                "id": gallery.id,
                "name": gallery.name,
                "applications": [
                    _application(a) for a in applications if a.gallery_id == gallery.id
                ],
            }
            for gallery in found
        ],
    }


def gallery_regenerate_key(database: Database, _box: SecretBox, args: argparse.Namespace) -> Any:
    from gateway.tenancy import regenerate_api_key

    regenerated = regenerate_api_key(database, args.application_id, overlap_s=args.overlap_s)
    return {**_application(regenerated.application), "apiKey": regenerated.api_key}


def add_credential_commands(
    tenant_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    run: Callable[[StoreCommand], Callable[[argparse.Namespace], int]],
) -> None:
    """Adds ``tenant keys ...`` under ``tenant_commands`` and ``gallery ...`` under
    ``commands``; ``run`` opens the store, runs a command and prints its result."""
    keys = tenant_commands.add_parser("keys", help="a tenant's SigV4 key pairs").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION", help="what to do with key pairs"
    )
    create = keys.add_parser(
        "create", parents=[common], help="a second key pair (two at most); printed once"
    )
    create.add_argument("tenant", metavar="TENANT", help="the tenant's name")
    create.set_defaults(func=run(keys_create))
    listing = keys.add_parser(
        "list", parents=[common], help="id, created, last used and status of each key"
    )
    listing.add_argument("tenant", metavar="TENANT", help="the tenant's name")
    listing.set_defaults(func=run(keys_list))
    revoke = keys.add_parser(
        "revoke",
        parents=[common],
        help="revoke a key pair (every gateway refuses it within seconds: docs/operations.md)",
    )
    revoke.add_argument("tenant", metavar="TENANT", help="the tenant's name")
    revoke.add_argument(
        "access_key_id", metavar="ACCESS_KEY_ID", help="the key pair's id, as keys list shows it"
    )
    revoke.set_defaults(func=run(keys_revoke))

    gallery = commands.add_parser("gallery", help="galleries' applications").add_subparsers(
        dest="gallery_command", required=True, metavar="ACTION", help="what to do with galleries"
    )
    listed = gallery.add_parser(
        "list", parents=[common], help="a tenant's galleries, applications and key hints"
    )
    listed.add_argument("tenant", metavar="TENANT", help="the tenant's name")
    listed.set_defaults(func=run(gallery_list))
    regenerate = gallery.add_parser(
        "regenerate-key",
        parents=[common],
        help="a new API key for an application; the old one works for the overlap",
    )
    regenerate.add_argument(
        "application_id",
        metavar="APPLICATION_ID",
        help="the application's id, as gallery list shows it",
    )
    regenerate.add_argument(
        "--overlap-s",
        type=float,
        default=DEFAULT_OVERLAP_S,
        help=f"seconds the replaced key keeps working (default {DEFAULT_OVERLAP_S})",
    )
    regenerate.set_defaults(func=run(gallery_regenerate_key))


def _key(key: AccessKey) -> dict[str, Any]:
    return {
        "accessKeyId": key.access_key_id,
        "created": _time(key.created_ms),
        "lastUsed": _time(key.last_used_ms) if key.last_used_ms else None,
        "status": "revoked" if key.revoked_ms else "active",
        "revoked": _time(key.revoked_ms) if key.revoked_ms else None,
    }


def _application(application: Application) -> dict[str, Any]:
    return {
        "id": application.id,
        "name": application.name,
        "galleryId": application.gallery_id,
        "apiKeyHint": application.api_key_hint,
        "previousApiKeyHint": application.previous_api_key_hint or None,
        "previousApiKeyValidUntil": _time(application.previous_api_key_until_ms)
        if application.previous_api_key_hash is not None
        else None,
    }


def _time(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
