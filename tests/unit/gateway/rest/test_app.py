"""The ASGI app can reach every public service, and refuses paths that SigV4 would
normalise."""

from __future__ import annotations

from gateway.rest.app import _STUBS, _needs_normalising
from gateway.rest.routes import ROUTES
from gateway.server import PUBLIC_SERVICES


def test_every_public_service_has_a_stub() -> None:
    assert ROUTES
    assert set(_STUBS) == {service.name for service in PUBLIC_SERVICES}


def test_paths_that_normalisation_would_change() -> None:
    for path in ("/v1.1/./tags", "/v1.1/x/../tags", "/v1.1//tags", "/v1.1/tags/.."):
        assert _needs_normalising(path), path
    for path in ("/v1.1/tags", "/v1.1/tags/", "/v1.1/tags/a.b", "/v1.1/tags/..a"):
        assert not _needs_normalising(path), path
