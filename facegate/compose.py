"""The one composition root: the services of ``facegate serve`` built from settings and
started, in dependency order, in this process. The all-in-one process, each
per-service process and the test stack all start their services here.

Order: the extractor and the matcher shard, then the gateway that calls them, then the
REST shim that calls the gateway; each is told the ports the previous ones actually
bound (port 0 = any free one). Each service's modules are imported only when it is
wanted, so that a REST-only process loads no store, model or index code.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from facegate.settings import Settings

if TYPE_CHECKING:
    import grpc

    from gateway.server import Gateway

SERVICES = ("extractor", "matcher", "gateway", "rest")

log = logging.getLogger(__name__)


@dataclass
class Composed:
    """Services started by :func:`compose`; ``settings`` carry the ports they bound."""

    settings: Settings
    ports: dict[str, int]
    gateway: Gateway | None
    _exits: ExitStack = field(repr=False)

    def close(self) -> None:
        """Stop the servers in reverse order (calls in flight get the grace period),
        then close what they used."""
        self._exits.close()


def compose(
    settings: Settings, services: Collection[str] = SERVICES, *, grace_s: float | None = 5.0
) -> Composed:
    """Start ``services`` (names of :data:`SERVICES`). A configuration error (no models,
    a bad shard index, an unreachable database) raises after closing whatever had
    started; ``grace_s``: how long a stopping server lets calls in flight finish."""
    unknown = set(services) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown services: {sorted(unknown)}")
    ports: dict[str, int] = {}
    gateway = None
    with ExitStack() as exits:

        def started(name: str, server: grpc.Server, port: int) -> None:
            server.start()
            exits.callback(lambda: server.stop(grace=grace_s).wait())
            ports[name] = port
            log.info("%s gRPC listening on %s:%d", name, settings.host, port)

        if "extractor" in services:
            from extractor.loader import load_extractor
            from extractor.server import ExtractorDeps
            from extractor.server import create_server as create_extractor_server

            extractor = load_extractor(settings)
            exits.callback(extractor.close)
            started("extractor", *create_extractor_server(settings, ExtractorDeps(extractor)))
            settings = replace(settings, extractor_port=ports["extractor"])
        if "matcher" in services:
            from matcher.server import MatcherDeps, open_shard
            from matcher.server import create_server as create_matcher_server

            shard = open_shard(settings)
            exits.callback(shard.close)
            started("matcher", *create_matcher_server(settings, MatcherDeps(shard)))
            settings = replace(settings, matcher_port=ports["matcher"])
        if "gateway" in services:
            from gateway.server import create_server as create_gateway_server
            from gateway.server import open_gateway

            gateway = open_gateway(settings)
            exits.callback(gateway.close)
            started("gateway", *create_gateway_server(settings, gateway))
            settings = replace(settings, grpc_port=ports["gateway"])
        if "rest" in services:
            from gateway.rest.server import create_server as create_rest_server

            rest, port = create_rest_server(settings)
            rest.start()
            exits.callback(rest.stop)
            ports["rest"] = port
            settings = replace(settings, rest_port=port)
            scheme = "https" if settings.tls.enabled else "http"
            log.info("REST API listening on %s://%s:%d", scheme, settings.host, port)
        return Composed(settings, ports, gateway, exits.pop_all())
