"""A throwaway PostgreSQL server for tests.

:func:`running_postgres` initialises a cluster in a temporary directory, starts it on a
free 127.0.0.1 port (trust authentication, fsync on, a private unix-socket directory),
creates one database and yields its SQLAlchemy URL; it stops the server and removes the
directory afterwards, also on failure. initdb refuses to run as root, so as root the
directory belongs to the ``postgres`` system user and the server runs as that user.

:func:`postgres_url_fixture` is the body of the session fixture ``postgres_url`` in
tests/conftest.py: PostgreSQL missing fails the tests that need it, unless
``FACEGATE_TEST_SKIP_POSTGRES=1`` asks to skip them.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.support.net import free_port

SKIP_VARIABLE = "FACEGATE_TEST_SKIP_POSTGRES"
SERVER_USER = "postgres"
_BINARY_GLOB = "/usr/lib/postgresql/*/bin"
_START_ATTEMPTS = 3


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL is not installed or could not be started."""


def find_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: from PATH, else the newest Debian one."""
    on_path = shutil.which("pg_ctl")
    if on_path is not None and shutil.which("initdb") is not None:
        return Path(on_path).resolve().parent
    candidates = [
        path
        for path in Path("/").glob(_BINARY_GLOB.lstrip("/"))
        if (path / "pg_ctl").exists() and (path / "initdb").exists()
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda path: _version_key(path.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


class _Cluster:
    """Runs the PostgreSQL tools, as ``postgres`` when this process is root."""

    def __init__(self, bindir: Path, base: Path) -> None:
        self.bindir = bindir
        self.data = base / "data"
        self.sockets = base / "sockets"
        self.log = base / "server.log"
        self.prefix: list[str] = []
        self.sockets.mkdir()
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError as error:
                raise PostgresUnavailableError(
                    f"running as root needs a {SERVER_USER!r} system user for PostgreSQL"
                ) from error
            self.prefix = ["runuser", "-u", SERVER_USER, "--"]
            for path in (base, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)

    def run(self, tool: str, *args: str, check: bool = True) -> None:
        command = [*self.prefix, str(self.bindir / tool), *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise PostgresUnavailableError(f"cannot run {' '.join(command)}: {error}") from error
        if check and done.returncode != 0:
            raise PostgresUnavailableError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                f"{self.server_log()}"
            )

    def server_log(self) -> str:
        try:
            return "\nserver log:\n" + self.log.read_text(errors="replace")
        except OSError:
            return ""

    def init(self) -> None:
        # --no-sync: the cluster is thrown away, so flushing initdb's files only costs time;
        # the server itself runs with fsync on.
        self.run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SERVER_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> int:
        """Starts the server on a free port and returns the port."""
        failure: PostgresUnavailableError | None = None
        # Another process may take the free port before the server binds it.
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {port} -k {self.sockets} -c fsync=on"
            try:
                self.run(
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-o",
                    options,
                    "start",
                )
            except PostgresUnavailableError as error:
                failure = error
                continue
            return port
        assert failure is not None
        raise failure

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)


def admin_url(port: int, database: str = "postgres") -> str:
    return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{port}/{database}"


def create_database(url: str, name: str, *, template: str = "template1") -> str:
    """Creates the database ``name`` on the server of ``url`` as a copy of ``template``
    (which nobody may be connected to); returns its URL."""
    with _autocommit(url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def empty_database(url: str) -> None:
    """Drops every table of the database at ``url`` (cheaper than a new database: each
    one makes the server's shutdown and clean-up slower)."""
    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    ) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@contextmanager
def _autocommit(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        yield conn


@contextmanager
def running_postgres(database: str = "facegate_test") -> Iterator[str]:
    """Starts a private server and yields the SQLAlchemy URL of a new, empty database."""
    bindir = find_binaries()
    if bindir is None:
        raise PostgresUnavailableError(
            f"PostgreSQL is not installed: no initdb/pg_ctl on PATH or in {_BINARY_GLOB}. "
            f"Install it (Debian: apt-get install postgresql) or set {SKIP_VARIABLE}=1 "
            "to skip the PostgreSQL tests."
        )
    base = Path(tempfile.mkdtemp(prefix="facegate-pg-"))
    try:
        cluster = _Cluster(bindir, base)
        try:
            cluster.init()
            port = cluster.start()
            yield create_database(admin_url(port), database)
        finally:
            # Also after a failed start: pg_ctl may have given up on a server still starting.
            cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def postgres_url_fixture() -> Iterator[str]:
    """The session fixture's body: a server for the whole test session."""
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"PostgreSQL tests skipped ({SKIP_VARIABLE}=1)")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(running_postgres())
        except PostgresUnavailableError as error:
            pytest.fail(str(error), pytrace=False)
        yield url
