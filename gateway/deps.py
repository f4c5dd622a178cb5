"""What the gateway's domain logic works with, built once by the composition root
(``gateway.server.open_gateway``) and passed down: the store, and the ports of
gateway/ports.py (the gRPC clients of gateway/adapters/ in the service, in-memory fakes
in the domain's unit tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gateway.credentials import SecretBox
from gateway.ports import Clock, Extractor, TemplateIndex, system_clock_ms
from gateway.replication import Replicator
from gateway.store.database import Database

MIN_QUALITY_FLOOR = 0.45
"""The lowest faceMinimumQualityScore NEC ID allows a gallery or application."""


@dataclass(frozen=True)
class GatewayDeps:
    database: Database
    extractor: Extractor
    matcher: TemplateIndex
    replicator: Replicator
    secrets: SecretBox
    clock: Clock = system_clock_ms


def new_id() -> str:
    return str(uuid.uuid4())
