"""The router of the REST shim: the endpoint (gateway/rest/endpoints.py) of an HTTP method
and path, and its path parameters."""

from __future__ import annotations

import re

from gateway.rest.endpoints import ENDPOINTS, Endpoint, RestCall

__all__ = ["ANY_CHARACTERS", "RestCall", "match"]

ANY_CHARACTERS = frozenset({"name"})
"""Path parameters that match any characters: tag names are chosen by users and may hold
'/' once the app has %-decoded the path. Ids are made by the server and never hold '/', so
they match one path segment."""


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", path)
    regex = "".join(
        re.escape(part)
        if index % 2 == 0
        else f"(?P<{part}>{'.+' if part in ANY_CHARACTERS else '[^/]+'})"
        for index, part in enumerate(parts)
    )
    return re.compile(regex, re.DOTALL)


_PATTERNS = tuple((endpoint, _pattern(endpoint.path)) for endpoint in ENDPOINTS)


def match(method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
    """The endpoint of ``method`` and ``path`` (already %-decoded) and its path parameters,
    or None."""
    for endpoint, pattern in _PATTERNS:
        if endpoint.method == method:
            found = pattern.fullmatch(path)
            if found is not None:
                return endpoint, found.groupdict()
    return None
