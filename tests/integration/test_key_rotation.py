"""Credential rotation over real HTTP, through two gateways sharing one store: two key
pairs at once, revocation honoured by every gateway within ACCESS_TTL_S, an API key
regenerated with an overlap in which both keys work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

import pytest

from facegate.compose import compose
from gateway.store import galleries
from gateway.tenancy import (
    ACCESS_TTL_S,
    INVALID_TOKEN_MESSAGE,
    create_access_key,
    create_tenant,
    list_access_keys,
    regenerate_api_key,
    revoke_access_key,
)
from tests.support.stack import SignedClient, Stack, running_stack

# Time for a poll and a request on top of the bound itself.
SLACK_S = 1.5


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("rotation-stack"), rate_per_second=0) as running:
        yield running


@pytest.fixture(scope="module")
def second_rest_url(stack: Stack) -> Iterator[str]:
    """A second gateway (and its REST shim) over the first one's store, extractor and
    matcher: what another pod of a deployment is."""
    settings = replace(stack.settings, grpc_port=0, rest_port=0)
    composed = compose(settings, ("gateway", "rest"))
    try:
        yield f"http://127.0.0.1:{composed.ports['rest']}"
    finally:
        composed.close()


def _seconds_until(refused: Callable[[], bool], limit_s: float) -> float:
    """How long until ``refused()`` holds, polled; fails the test past ``limit_s``."""
    start = time.monotonic()
    while not refused():
        elapsed = time.monotonic() - start
        assert elapsed < limit_s, f"still accepted after {elapsed:.1f} s"
        time.sleep(0.1)
    return time.monotonic() - start


def _signature_refused(client: SignedClient) -> bool:
    """Whether the client's key pair is refused, as API Gateway refuses an unknown one."""
    response = client.call("GET", "/api/galleries")
    if response.status_code == 200:
        return False
    assert response.status_code == 403, response.text
    assert response.json()["message"] == INVALID_TOKEN_MESSAGE
    return True


def _api_key_refused(client: SignedClient) -> bool:
    response = client.call("GET", "/v1.1/tags")
    if response.status_code == 200:
        return False
    assert response.status_code == 403, response.text
    assert response.json()["message"] == "Forbidden"
    return True


def test_two_key_pairs_at_once_and_a_revocation_every_gateway_honours(
    stack: Stack, second_rest_url: str
) -> None:
    database, box = stack.deps.database, stack.deps.secrets
    created = create_tenant(database, box, "rotating")
    second = create_access_key(database, box, "rotating")
    old_id, new_id = created.tenant.access_key_id, second.key.access_key_id
    clients = {
        (url, key_id): SignedClient(url, key_id, secret)
        for url in (stack.rest_url, second_rest_url)
        for key_id, secret in (
            (old_id, created.secret_access_key),
            (new_id, second.secret_access_key),
        )
    }
    try:
        for client in clients.values():
            assert client.call("GET", "/api/galleries").status_code == 200
        used = {
            key.access_key_id: key.last_used_ms for key in list_access_keys(database, "rotating")
        }
        assert used[old_id] > 0
        assert used[new_id] > 0

        revoke_access_key(database, "rotating", old_id)
        for url in (stack.rest_url, second_rest_url):
            _seconds_until(
                partial(_signature_refused, clients[(url, old_id)]), ACCESS_TTL_S + SLACK_S
            )
            assert clients[(url, new_id)].call("GET", "/api/galleries").status_code == 200
    finally:
        for client in clients.values():
            client.close()


def test_a_regenerated_api_key_leaves_the_old_one_working_for_the_overlap(
    stack: Stack, second_rest_url: str
) -> None:
    created = create_tenant(stack.deps.database, stack.deps.secrets, "regenerating")
    signer = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
    other = SignedClient(second_rest_url, created.tenant.access_key_id, created.secret_access_key)
    try:
        gallery = signer.call("POST", "/api/galleries", {"name": "g", "size": 10}).json()
        old_key = gallery["apiKey"]
        for client in (signer, other):
            assert client.with_api_key(old_key).call("GET", "/v1.1/tags").status_code == 200

        overlap_s = 2.0
        with stack.deps.database.read() as conn:
            (application,) = galleries.list_applications(conn, created.tenant.id)
        regenerated = regenerate_api_key(stack.deps.database, application.id, overlap_s=overlap_s)
        for client in (signer, other):
            assert client.with_api_key(old_key).call("GET", "/v1.1/tags").status_code == 200
            new = client.with_api_key(regenerated.api_key).call("GET", "/v1.1/tags")
            assert new.status_code == 200, new.text

        # Refused once the overlap ends (or, for a gateway that read the application
        # before the regeneration, once its cache does).
        for client in (signer, other):
            _seconds_until(
                partial(_api_key_refused, client.with_api_key(old_key)),
                max(overlap_s, ACCESS_TTL_S) + SLACK_S,
            )
            assert (
                client.with_api_key(regenerated.api_key).call("GET", "/v1.1/tags").status_code
                == 200
            )
    finally:
        signer.close()
        other.close()
