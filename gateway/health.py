"""Whether the gateway can serve: its dependencies (the store, the extractor, every
matcher shard), for /v1.1/health and for the gateway's own readiness.

The extractor and matcher processes only open their ports once their models are loaded
and their shard recovered, and answer the standard gRPC health check from then on, so a
dependency that answers SERVING is ready. /v1.1/health reports all of them. The
gateway's own readiness (its standard gRPC health status, checked every few seconds by
:class:`Readiness`) follows only the store: the extractor and the shards are shared by
every gateway, so taking gateways out of rotation when one of them is down would not
route around the failure, only turn a partial outage (one shard: searches fail with a
clear 503, tenant management and the other calls work) into a total one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.periodic import Periodic
from gateway.store.database import Database

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
OK = "OK"
UNAVAILABLE = "UNAVAILABLE"
READINESS_DEPENDENCIES = frozenset({"store"})
"""What a gateway needs to be ready: see the module docstring for why not the others."""


@dataclass(frozen=True)
class DependencyStatus:
    name: str
    ok: bool
    detail: str = ""

    @property
    def status(self) -> str:
        return OK if self.ok else UNAVAILABLE


class DependencyChecker:
    def __init__(
        self,
        database: Database,
        extractor: grpc.Channel,
        matchers: Sequence[grpc.Channel],
    ) -> None:
        self._database = database
        self._services = [("extractor", extractor)] + [
            (f"matcher-{index}", channel) for index, channel in enumerate(matchers)
        ]

    def check_store(self) -> list[DependencyStatus]:
        """Only what readiness follows (no calls to the other services every few
        seconds)."""
        return [self._store()]

    def check(self) -> list[DependencyStatus]:
        results = [self._store()]
        pending = [
            (
                name,
                health_pb2_grpc.HealthStub(channel).Check.future(
                    health_pb2.HealthCheckRequest(), timeout=CHECK_TIMEOUT_S, wait_for_ready=True
                ),
            )
            for name, channel in self._services
        ]
        for name, future in pending:
            try:
                answer = future.result()
            except grpc.RpcError as error:
                call: grpc.Call = error  # type: ignore[assignment]
                results.append(
                    DependencyStatus(name, False, f"{call.code().name}: {call.details()}")
                )
                continue
            serving = answer.status == health_pb2.HealthCheckResponse.SERVING
            detail = (
                "" if serving else health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            )
            results.append(DependencyStatus(name, serving, detail))
        return results

    def _store(self) -> DependencyStatus:
        try:
            with self._database.read() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return DependencyStatus("store", False, type(exc).__name__)
        return DependencyStatus("store", True)


class Readiness:
    """Keeps a gRPC health servicer's statuses in step with the dependencies."""

    def __init__(self, checker: DependencyChecker) -> None:
        self._checker = checker
        self._targets: list[tuple[health.HealthServicer, list[str]]] = []
        self._background = Periodic("facegate-readiness", self._refresh)

    def attach(self, servicer: health.HealthServicer, service_names: Iterable[str]) -> None:
        """Follow the dependencies on ``servicer`` from now on (checked at once)."""
        self._targets.append((servicer, ["", *service_names]))
        self.update()

    def update(self) -> bool:
        statuses = self._checker.check_store()
        ready = all(s.ok for s in statuses if s.name in READINESS_DEPENDENCIES)
        serving = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for servicer, names in self._targets:
            for name in names:
                servicer.set(name, serving)
        if not ready:
            log.warning("not ready: the store is unavailable (%s)", statuses[0].detail)
        return ready

    def _refresh(self) -> None:
        self.update()

    def start(self, interval_s: float) -> None:
        self._background.start(interval_s)

    def stop(self) -> None:
        self._background.stop()
