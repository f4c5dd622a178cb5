"""The PostgreSQL test server helper: missing PostgreSQL fails, unless asked to skip."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support import postgres


@pytest.fixture
def no_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postgres, "_BINARY_GLOB", str(tmp_path / "nowhere" / "*" / "bin"))
    monkeypatch.delenv(postgres.SKIP_VARIABLE, raising=False)


@pytest.mark.usefixtures("no_postgres")
def test_missing_postgres_fails_with_a_clear_message() -> None:
    assert postgres.find_binaries() is None
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is not installed"):
        next(postgres.postgres_url_fixture())


@pytest.mark.usefixtures("no_postgres")
def test_missing_postgres_is_skipped_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(postgres.SKIP_VARIABLE, "1")
    with pytest.raises(pytest.skip.Exception):
        next(postgres.postgres_url_fixture())


def test_installed_postgres_serves_a_database(postgres_url: str) -> None:
    url = make_url(postgres_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    ) as conn:
        fsync = conn.execute("SHOW fsync").fetchone()
        listen = conn.execute("SHOW listen_addresses").fetchone()
    assert fsync == ("on",)
    assert listen == ("127.0.0.1",)
