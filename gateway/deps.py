"""What the gateway's domain logic works with, built once by the composition root
(``gateway.server.open_gateway``) and passed down."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gateway.backends import ExtractorClient, MatcherClient
from gateway.credentials import SecretBox
from gateway.replication import Replicator
from gateway.store.database import Database

MIN_QUALITY_FLOOR = 0.45
"""The lowest faceMinimumQualityScore NEC ID allows a gallery or application."""


@dataclass(frozen=True)
class GatewayDeps:
    database: Database
    extractor: ExtractorClient
    matcher: MatcherClient
    replicator: Replicator
    secrets: SecretBox


def new_id() -> str:
    return str(uuid.uuid4())
