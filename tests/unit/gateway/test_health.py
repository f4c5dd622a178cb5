"""The gateway's dependency checks and the readiness they drive."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2

from gateway.health import DependencyChecker, DependencyStatus, Readiness
from gateway.store.database import open_database, sqlite_url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_services_are_reported_by_name(tmp_path: Path) -> None:
    database = open_database(sqlite_url(tmp_path / "store.db"))
    channels = [grpc.insecure_channel(f"127.0.0.1:{closed_port()}") for _ in range(3)]
    try:
        statuses = DependencyChecker(database, channels[0], channels[1:]).check()
    finally:
        for channel in channels:
            channel.close()
        database.close()
    assert [(s.name, s.ok) for s in statuses] == [
        ("store", True),
        ("extractor", False),
        ("matcher-0", False),
        ("matcher-1", False),
    ]
    # Waited for (a restarting service gets the check's timeout to come back), then
    # reported with the gRPC status.
    assert all(s.detail.startswith(("UNAVAILABLE", "DEADLINE_EXCEEDED")) for s in statuses[1:])


class FixedChecker(DependencyChecker):
    """Answers what the test sets, to drive Readiness through its states."""

    def __init__(self) -> None:
        self.statuses: list[DependencyStatus] = []

    def check(self) -> list[DependencyStatus]:
        return self.statuses

    def check_store(self) -> list[DependencyStatus]:
        return [s for s in self.statuses if s.name == "store"]


def serving(servicer: health.HealthServicer, name: str) -> int:
    request = health_pb2.HealthCheckRequest(service=name)
    status: int = servicer.Check(request, None).status
    return status


def test_readiness_follows_the_store_only() -> None:
    checker = FixedChecker()
    checker.statuses = [DependencyStatus("store", True), DependencyStatus("matcher-0", False)]
    readiness = Readiness(checker)
    servicer = health.HealthServicer()
    readiness.attach(servicer, ["facegate.v1.Face"])
    for name in ("", "facegate.v1.Face"):
        assert serving(servicer, name) == health_pb2.HealthCheckResponse.SERVING
    checker.statuses = [DependencyStatus("store", False, "OperationalError")]
    assert readiness.update() is False
    assert serving(servicer, "facegate.v1.Face") == health_pb2.HealthCheckResponse.NOT_SERVING
