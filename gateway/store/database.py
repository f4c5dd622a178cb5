"""Engine set-up, transactions and schema upgrades for SQLite and PostgreSQL.

Every repository function takes a :class:`~sqlalchemy.Connection` inside a transaction
opened here: :meth:`Database.write` for changes, :meth:`Database.read` for consistent
reads. :func:`open_database` brings the schema to the newest Alembic revision first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DataError

from facegate.errors import ErrorType, FacegateError

MIGRATIONS = Path(__file__).parent / "migrations"

# Execution option naming the statement that opens a SQLite transaction.
_SQLITE_BEGIN = "facegate_sqlite_begin"
# Serialises concurrent upgrades of one PostgreSQL database (any constant works; this is
# "facegate" read as digits).
UPGRADE_LOCK_KEY = 0x66616365676174


def sqlite_url(path: Path) -> str:
    """The URL of the SQLite database file ``path``."""
    return f"sqlite+pysqlite:///{path.resolve()}"


class Database:
    """One engine and its transactions. Thread-safe: connections come from a pool."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self.dialect: str = engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One read-write transaction: commits on exit, rolls back on an exception.

        On SQLite it begins with BEGIN IMMEDIATE, taking the write lock up front: a
        deferred transaction that reads and then writes can fail with "database is
        locked" when another writer got there in between, whatever the busy timeout.
        """
        with _refused_values(), self.engine.connect() as conn:
            conn.execution_options(**{_SQLITE_BEGIN: "BEGIN IMMEDIATE"})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read-only transaction that sees a single snapshot of the database.

        Always rolled back, so nothing written through it persists; PostgreSQL also refuses
        writes in it.
        """
        with _refused_values(), self.engine.connect() as conn:
            conn.begin()
            try:
                if self.dialect == "postgresql":
                    conn.exec_driver_sql(
                        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                    )
                yield conn
            finally:
                conn.rollback()

    def close(self) -> None:
        """Closes every pooled connection; the object is unusable afterwards."""
        self.engine.dispose()


@contextmanager
def _refused_values() -> Iterator[None]:
    """A value the database refuses (PostgreSQL: a NUL in text, a number out of range)
    came from a request: the caller's error, not the service's."""
    try:
        yield
    except DataError as exc:
        raise FacegateError(
            ErrorType.INVALID_REQUEST, "A value in the request cannot be stored or searched."
        ) from exc


def open_database(url: str) -> Database:
    """Connects to ``url`` and upgrades its schema to the newest revision."""
    engine = _create_engine(url)
    try:
        _upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Database(url, engine)


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            # The gateway serves requests from many threads; the pool hands each
            # connection to one thread at a time.
            connect_args={"check_same_thread": False},
            pool_size=8,
            max_overflow=24,
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=24)


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # pysqlite would otherwise emit its own deferred BEGIN before DML only (not before
    # SELECT or DDL); _begin_sqlite_transaction takes over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.execute("PRAGMA journal_mode = WAL")
        # With WAL, NORMAL may lose the last commits on power loss; FULL syncs every commit.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_SQLITE_BEGIN, "BEGIN"))


def _alembic_config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _upgrade(engine: Engine) -> None:
    """Runs the pending migrations, if any, in one transaction.

    At head it only reads the current revision, so opening an up-to-date database neither
    writes nor waits for writers.
    """
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
        if current == head:
            return
        conn.execution_options(**{_SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the original, and dropping
            # a parent table with foreign keys on deletes its children through ON DELETE
            # CASCADE. SQLite's own procedure for schema changes: keys off (outside any
            # transaction, where the pragma is ignored), check them before committing.
            _sqlite_pragma(conn, "PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY}
                    )
                command.upgrade(_alembic_config(conn), "head")
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("the schema upgrade left rows without their parent")
        finally:
            if sqlite:
                _sqlite_pragma(conn, "PRAGMA foreign_keys = ON")


def _sqlite_pragma(conn: Connection, pragma: str) -> None:
    """Runs ``pragma`` on the driver's connection, outside any transaction (SQLAlchemy
    would begin one first)."""
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None
    dbapi_connection.execute(pragma)
