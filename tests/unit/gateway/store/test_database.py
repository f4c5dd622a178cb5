"""Engine settings, transactions and schema upgrades, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from gateway.store import events, tenants
from gateway.store.database import (
    MIGRATIONS,
    UPGRADE_LOCK_KEY,
    Database,
    open_database,
    sqlite_url,
)
from gateway.store.schema import events as events_table
from gateway.store.schema import metadata
from gateway.store.schema import tenants as tenants_table
from tests.support.store import new_event, new_gallery, new_tenant


def _revision(database: Database) -> str | None:
    with database.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _tenant_count(conn: Connection) -> int:
    count: int = conn.execute(select(func.count()).select_from(tenants_table)).scalar_one()
    return count


def _insert_old_tenant(conn: Connection, tenant_id: str, access_key_id: str, sealed: bytes) -> None:
    """A tenant as revisions before 0005 stored it: its one key pair on its row."""
    conn.execute(
        text(
            "INSERT INTO tenants (id, name, access_key_id, secret_ciphertext, created_ms)"
            " VALUES (:id, :id, :key, :sealed, 7)"
        ),
        {"id": tenant_id, "key": access_key_id, "sealed": sealed},
    )


def _alembic(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def test_upgrade_builds_exactly_the_declared_schema(empty_url: str) -> None:
    database = open_database(empty_url)
    try:
        with database.read() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert differences == []
        assert _revision(database) == ScriptDirectory(str(MIGRATIONS)).get_current_head()
    finally:
        database.close()


def test_upgrade_creates_the_partial_unique_index(database: Database) -> None:
    # compare_metadata does not compare index predicates: one active row per event, any
    # number of deleted ones.
    with database.write() as conn:
        gallery = new_gallery(conn, new_tenant(conn).id)
        row = new_event(conn, gallery.id, event_id="e1")
    with database.write() as conn:
        conn.execute(text("UPDATE events SET status = 'D' WHERE row_id = :id"), {"id": row.row_id})
        new_event(conn, gallery.id, event_id="e1")
    with pytest.raises(IntegrityError), database.write() as conn:
        conn.execute(
            text(
                "INSERT INTO events (gallery_id, event_id, subject_id, status, tag_mask,"
                " model_id, template, attributes_json, last_updated_ms)"
                " SELECT gallery_id, event_id, subject_id, 'A', tag_mask, model_id, template,"
                " attributes_json, last_updated_ms FROM events WHERE status = 'A'"
            )
        )


def _hold_write_locks(conn: Connection) -> None:
    """What an upgrade would have to wait for: on SQLite the open write transaction already
    holds the lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
        conn.execute(text("LOCK TABLE alembic_version IN EXCLUSIVE MODE"))


def test_opening_a_database_at_head_writes_nothing_and_is_fast(empty_url: str) -> None:
    first = open_database(empty_url)
    try:
        revision = _revision(first)
        elapsed: list[float] = []

        def reopen() -> None:
            started = time.perf_counter()
            open_database(empty_url).close()
            elapsed.append(time.perf_counter() - started)

        with first.write() as conn:
            _hold_write_locks(conn)
            worker = threading.Thread(target=reopen)
            worker.start()
            worker.join(timeout=5)
            blocked = worker.is_alive()
        worker.join()
        assert not blocked, "opening waited for the writer: it tried to upgrade"
        assert elapsed[0] < 1.0
        assert _revision(first) == revision
    finally:
        first.close()


def test_committed_write_survives_closing_and_reopening(empty_url: str) -> None:
    database = open_database(empty_url)
    with database.write() as conn:
        created = new_tenant(conn, "durable")
    database.close()
    reopened = open_database(empty_url)
    try:
        with reopened.read() as conn:
            assert tenants.tenant_by_name(conn, "durable") == created
    finally:
        reopened.close()


def test_write_rolls_back_on_exception(database: Database) -> None:
    def doomed() -> None:
        with database.write() as conn:
            new_tenant(conn, "doomed")
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        doomed()
    with database.read() as conn:
        assert tenants.tenant_by_name(conn, "doomed") is None


def test_read_sees_one_snapshot(database: Database) -> None:
    with database.write() as conn:
        new_tenant(conn, "first")
    with database.read() as conn:
        before = _tenant_count(conn)

        def add() -> None:
            with database.write() as writer:
                new_tenant(writer, "second")

        worker = threading.Thread(target=add)
        worker.start()
        worker.join()
        assert _tenant_count(conn) == before == 1
    with database.read() as conn:
        assert _tenant_count(conn) == 2


def test_read_keeps_no_writes(database: Database) -> None:
    try:
        with database.read() as conn:
            new_tenant(conn, "sneaky")
    except DBAPIError:
        assert database.dialect == "postgresql"  # a read-only transaction there
    with database.read() as conn:
        assert tenants.tenant_by_name(conn, "sneaky") is None


def test_concurrent_read_then_write_transactions_all_commit(database: Database) -> None:
    # Deferred SQLite transactions that read, then write, fail with "database is locked"
    # when two of them hold read snapshots; BEGIN IMMEDIATE makes them wait their turn.
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for step in range(5):
                with database.write() as conn:
                    _tenant_count(conn)
                    time.sleep(0.001)
                    new_tenant(conn, f"t{worker}-{step}")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.read() as conn:
        assert _tenant_count(conn) == 30


def test_sqlite_connections_are_durable_and_enforce_foreign_keys(tmp_path: Path) -> None:
    database = open_database(sqlite_url(tmp_path / "pragmas.db"))
    try:
        with database.read() as conn:
            settings = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert settings == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "busy_timeout": 10_000,
        }
    finally:
        database.close()


def test_sqlite_url_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_url(Path("relative.db")) == f"sqlite+pysqlite:///{tmp_path}/relative.db"


def test_upgrade_to_0004_counts_each_gallerys_event_rows(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
            _insert_old_tenant(conn, "t", "AK", b"x")
            for gallery_id in ("full", "empty"):
                conn.execute(
                    text(
                        "INSERT INTO galleries (id, tenant_id, name, description, size,"
                        " face_minimum_quality_score, created_ms)"
                        " VALUES (:id, 't', :id, '', 10, 0.5, 1)"
                    ),
                    {"id": gallery_id},
                )
            conn.execute(
                insert(events_table),
                [
                    {
                        "gallery_id": "full",
                        "event_id": f"e{i}",
                        "subject_id": "s",
                        "status": status,
                        "tag_mask": 0,
                        "model_id": "m",
                        "template": b"",
                        "attributes_json": "{}",
                        "last_updated_ms": i,
                    }
                    for i, status in enumerate("AAD")
                ],
            )
    finally:
        engine.dispose()
    database = open_database(empty_url)
    try:
        with database.read() as conn:
            assert events.count_event_rows(conn, "full") == 3
            assert events.count_event_rows(conn, "empty") == 0
            assert events.count_event_rows(conn, "missing") == 0
    finally:
        database.close()


def test_upgrade_to_0005_moves_each_tenants_key_pair_and_downgrade_restores_it(
    empty_url: str,
) -> None:
    engine = create_engine(empty_url)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic(conn), "0004")
            _insert_old_tenant(conn, "acme", "AK-acme", b"\x00sealed-acme")
            _insert_old_tenant(conn, "beta", "AK-beta", b"\x00sealed-beta")
            command.upgrade(_alembic(conn), "0005")
            moved = conn.execute(
                text(
                    "SELECT access_key_id, tenant_id, secret_ciphertext, created_ms,"
                    " last_used_ms, revoked_ms FROM access_keys ORDER BY access_key_id"
                )
            ).all()
            assert [(*row[:2], bytes(row[2]), *row[3:]) for row in moved] == [
                ("AK-acme", "acme", b"\x00sealed-acme", 7, 0, 0),
                ("AK-beta", "beta", b"\x00sealed-beta", 7, 0, 0),
            ]
            conn.execute(
                text(
                    "INSERT INTO access_keys (access_key_id, tenant_id, secret_ciphertext,"
                    " created_ms, revoked_ms) VALUES ('AK-acme-2', 'acme', :sealed, 8, 0)"
                ),
                {"sealed": b"\x00sealed-acme-2"},
            )
            conn.execute(
                text("UPDATE access_keys SET revoked_ms = 9 WHERE access_key_id = 'AK-acme'")
            )
            command.downgrade(_alembic(conn), "0004")
            kept = conn.execute(
                text("SELECT id, access_key_id, secret_ciphertext FROM tenants ORDER BY id")
            ).all()
            assert [(row[0], row[1], bytes(row[2])) for row in kept] == [
                ("acme", "AK-acme-2", b"\x00sealed-acme-2"),
                ("beta", "AK-beta", b"\x00sealed-beta"),
            ]
    finally:
        engine.dispose()
    database = open_database(empty_url)
    try:
        with database.read() as conn:
            assert tenants.tenant_by_access_key(conn, "AK-acme-2") is not None
            assert tenants.tenant_by_access_key(conn, "AK-acme") is None
    finally:
        database.close()
