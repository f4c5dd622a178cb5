"""Plumbing every facegate gRPC server shares: the one error/metrics interceptor,
health checking and reflection."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from facegate.errors import ErrorType, FacegateError
from facegate.logs import (
    BACKEND_MS_METADATA,
    BACKEND_SECONDS,
    REQUEST_ID,
    REQUEST_ID_METADATA,
    request_id_from,
)
from facegate.metrics import GRPC_HANDLED, GRPC_LATENCY
from facegate.settings import TlsSettings
from facegate.tls import grpc_server_credentials

log = logging.getLogger(__name__)


Behaviour = Callable[[Any, grpc.ServicerContext], Any]


def around_unary(
    handler: grpc.RpcMethodHandler[Any, Any] | None, wrap: Callable[[Behaviour], Behaviour]
) -> grpc.RpcMethodHandler[Any, Any] | None:
    """``handler`` with its unary behaviour wrapped (other kinds of handler as they are):
    what a server interceptor returns to run code around each unary call."""
    if handler is None or handler.unary_unary is None:
        return handler
    return grpc.unary_unary_rpc_method_handler(
        wrap(handler.unary_unary),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _split_method(full_method: str) -> tuple[str, str]:
    _, service, method = full_method.split("/", 2)
    return service, method


class ErrorAndMetricsInterceptor(grpc.ServerInterceptor):
    """Maps :class:`FacegateError` (and anything unexpected) to a gRPC status, and times
    every unary call. The only place a servicer's exception becomes a status."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        service, method = _split_method(handler_call_details.method)
        return around_unary(
            continuation(handler_call_details),
            lambda behavior: self._wrap(behavior, service, method),
        )

    @staticmethod
    def _wrap(behavior: Behaviour, service: str, method: str) -> Behaviour:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            given = dict(context.invocation_metadata() or ()).get(REQUEST_ID_METADATA)
            token = REQUEST_ID.set(request_id_from(given if isinstance(given, str) else None))
            backend: list[float] = []
            backend_token = BACKEND_SECONDS.set(backend)
            try:
                response = behavior(request, context)
                context.set_trailing_metadata(
                    ((BACKEND_MS_METADATA, f"{sum(backend) * 1000:.3f}"),)
                )
                return response
            except FacegateError as error:
                code = error.error_type.grpc_status
                context.set_trailing_metadata(error.grpc_trailing_metadata())
                context.abort(code, error.message)
            except Exception:
                aborted = context.code()  # type: ignore[attr-defined]
                if aborted not in (None, grpc.StatusCode.OK):
                    code = aborted  # the servicer called context.abort itself
                    raise
                log.exception("unexpected error in %s/%s", service, method)
                failure = FacegateError(ErrorType.INTERNAL, "Internal server error.")
                code = failure.error_type.grpc_status
                context.set_trailing_metadata(failure.grpc_trailing_metadata())
                context.abort(code, failure.message)
            finally:
                elapsed = time.perf_counter() - started
                GRPC_LATENCY.labels(service, method).observe(elapsed)
                GRPC_HANDLED.labels(service, method, code.name).inc()
                log.info(
                    "grpc call",
                    extra={
                        "service": service,
                        "method": method,
                        "code": code.name,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )
                BACKEND_SECONDS.reset(backend_token)
                REQUEST_ID.reset(token)

        return wrapped


MESSAGE_OVERHEAD = 1 << 20
"""Room for a message's framing and other fields beside the images it carries."""


def new_server(
    *,
    workers: int,
    max_message_bytes: int,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
) -> grpc.Server:
    """A server whose calls pass the shared interceptor first, then ``interceptors``."""
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        interceptors=[ErrorAndMetricsInterceptor(), *interceptors],
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # Never share a port with another process that already holds it.
            ("grpc.so_reuseport", 0),
        ],
    )


def add_health_and_reflection(
    server: grpc.Server, service_names: Iterable[str]
) -> health.HealthServicer:
    """The standard health service (every name SERVING: a server is only created once
    it can serve) and reflection; the health servicer, for servers whose readiness
    changes later (the gateway's follows its dependencies)."""
    names = list(service_names)
    health_servicer = health.HealthServicer()
    for name in ("", *names):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return health_servicer


def bind(server: grpc.Server, host: str, port: int, tls: TlsSettings | None = None) -> int:
    """Bind a port (0 = any free one), over TLS when ``tls`` is enabled, and return the
    port actually bound."""
    address = f"{host}:{port}"
    try:
        if tls is not None and tls.enabled:
            bound = server.add_secure_port(address, grpc_server_credentials(tls))
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"could not bind gRPC port {host}:{port}: {exc}") from exc
    if bound == 0:
        raise OSError(f"could not bind gRPC port {host}:{port}")
    return bound
