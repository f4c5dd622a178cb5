"""Store fixtures: every test that takes ``database`` or ``empty_url`` runs on SQLite and
on PostgreSQL."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.database import Database, open_database, sqlite_url
from tests.support.postgres import create_database, empty_database
from tests.support.store import clear

BACKENDS = ["sqlite", "postgresql"]
_names = itertools.count()


def _database_name(prefix: str) -> str:
    # Unique on the session's server, which other test packages may use too.
    return f"{prefix}_{uuid.uuid4().hex[:8]}_{next(_names)}"


@pytest.fixture(scope="session")
def store_postgres(postgres_url: str) -> Iterator[Database]:
    """One PostgreSQL database at head for the session; ``database`` empties it per test."""
    database = open_database(create_database(postgres_url, _database_name("store")))
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, open store: a new SQLite file, or the emptied PostgreSQL database."""
    if request.param == "postgresql":
        shared: Database = request.getfixturevalue("store_postgres")
        clear(shared)
        yield shared
        return
    database = open_database(sqlite_url(tmp_path / "gateway.db"))
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(scope="session")
def store_postgres_empty(postgres_url: str) -> str:
    """The URL of a PostgreSQL database for ``empty_url``, which empties it per test."""
    return create_database(postgres_url, _database_name("empty"))


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database without any table: a new SQLite file, or the emptied
    PostgreSQL database (the test must close what it opens on it)."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("store_postgres_empty")
        empty_database(url)
        return url
    return sqlite_url(tmp_path / "gateway.db")
