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
MAX_LIST_PAGE: Final = 1000
"""The most rows one page of the subject list returns, and the page size when a request
does not say (NEC ID's ``length``)."""

API_KEY_METADATA: Final = "x-api-key"
"""gRPC metadata of the public API: the application's API key (selects the gallery)."""
ACCESS_KEY_METADATA: Final = "facegate-access-key-id"
"""gRPC metadata of the public API: the access key id of a call signed by its caller
(facegate/rpc_auth.py)."""
SIGNED_AT_METADATA: Final = "facegate-signed-at"
"""gRPC metadata of the public API: when a signed call was signed."""
SIGNATURE_METADATA: Final = "facegate-signature"
"""gRPC metadata of the public API: a signed call's signature. No secret is ever sent."""
FORWARDED_REQUEST_METADATA: Final = "facegate-forwarded-request-bin"
"""gRPC metadata from the REST shim: the HTTP request's SigV4 signature and what it
covers, a serialised facegate.v1.ForwardedHttpRequest, verified by the gateway."""
