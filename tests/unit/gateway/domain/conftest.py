"""The gateway's domain on a real SQLite store and in-memory fakes of its ports: no
model, no server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.credentials import MASTER_KEY_BYTES, SecretBox
from gateway.deps import GatewayDeps
from gateway.replication import Replicator
from gateway.store import changes
from gateway.store.database import Database, open_database, sqlite_url
from gateway.store.records import Application, Change, Gallery, Tenant
from gateway.tenancy import Tenancy
from tests.support.fakes import FakeExtractor, FakeIndex, ManualClock


@dataclass
class Domain:
    database: Database
    extractor: FakeExtractor
    index: FakeIndex
    clock: ManualClock
    deps: GatewayDeps
    tenancy: Tenancy
    tenant: Tenant

    def gallery(self, name: str = "main", *, size: int = 100) -> tuple[Gallery, Application]:
        """A new gallery of the tenant and its first application."""
        gallery, created = self.tenancy.create_gallery(
            self.tenant, name=name, description="", size=size, face_minimum_quality_score=None
        )
        return gallery, created.application

    def pending(self) -> list[Change]:
        """The outbox: changes committed and not yet applied to the index."""
        with self.database.read() as conn:
            return changes.pending_changes(conn, 1000)


@pytest.fixture
def domain(tmp_path: Path) -> Iterator[Domain]:
    database = open_database(sqlite_url(tmp_path / "gateway.db"))
    clock = ManualClock()
    extractor = FakeExtractor()
    index = FakeIndex()
    deps = GatewayDeps(
        database=database,
        extractor=extractor,
        matcher=index,
        replicator=Replicator(database, index, clock_ms=clock),
        secrets=SecretBox(bytes(MASTER_KEY_BYTES)),
        clock=clock,
    )
    tenancy = Tenancy(deps)
    tenant = tenancy.create_tenant("acme").tenant
    try:
        yield Domain(database, extractor, index, clock, deps, tenancy, tenant)
    finally:
        database.close()


@pytest.fixture
def application(domain: Domain) -> Application:
    return domain.gallery()[1]
