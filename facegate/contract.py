"""What the services agree on, declared once: the score scale, the search and extract
limits, and the public API's gRPC metadata keys. Any service may import this module; it
imports none of them."""

from __future__ import annotations

from typing import Final

MAX_SCORE: Final = 9999
"""Scores run from 0 to this (ADR 0001)."""
DEFAULT_THRESHOLD: Final = 7000
"""The threshold of search and verify when none is given: FMR 1e-4 on the calibration
set, and NEC ID's default."""
MAX_CANDIDATES: Final = 50
"""The most candidates a search may ask for (NEC ID's limit), and the most a matcher
shard returns for one query."""
DEFAULT_CANDIDATES: Final = 10
"""Candidates a search returns when it does not say."""
MAX_FACES: Final = 20
"""The most faces one extraction reports (NEC ID's limit)."""
DEFAULT_FACES: Final = 10
"""Faces an extraction reports when it does not say."""

API_KEY_METADATA: Final = "x-api-key"
"""gRPC metadata of the public API: the application's API key (selects the gallery)."""
ACCESS_KEY_METADATA: Final = "facegate-access-key-id"
"""gRPC metadata of the public API: the tenant's access key id."""
SECRET_KEY_METADATA: Final = "facegate-secret-access-key"
"""gRPC metadata of the public API: the tenant's secret (issue 15 replaces it with a
signature, so that no secret crosses a process boundary)."""
