"""The OpenAPI document the REST shim serves is true: schemathesis generates requests
from it (valid and invalid), each is signed like a real client's and sent to the live
service, and every answer must conform to the document and never be a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from gateway.tenancy import create_tenant
from tests.support.stack import REGION, SignedClient, Stack, running_stack

EXAMPLES_PER_OPERATION = 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("openapi-stack"), rate_per_second=0) as running:
        yield running


@pytest.fixture(scope="module")
def caller(stack: Stack) -> Iterator[SignedClient]:
    created = create_tenant(stack.deps.database, stack.deps.secrets, "openapi-tenant")
    client = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
    gallery = client.call("POST", "/api/galleries", {"name": "openapi", "size": 1000}).json()
    keyed = client.with_api_key(gallery["apiKey"])
    for tag in ("passport", "licence"):
        keyed.call("POST", f"/v1.1/tags/{tag}")
    yield keyed
    client.close()


def send_signed(case: Any, stack: Stack, caller: SignedClient) -> httpx.Response:
    """The generated request, with the generated credentials replaced by real ones: signed
    as a NEC ID SDK signs, and the gallery's API key. A case generated without an
    Authorization header or without an x-api-key (a negative case) is sent without it."""
    kwargs = case.as_transport_kwargs(base_url=stack.rest_url)
    # A negative case's body may be raw bytes that are not JSON at all: sent as they are.
    body_kwargs = {"json": kwargs["json"]} if "json" in kwargs else {"content": kwargs.get("data")}
    request = httpx.Request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), **body_kwargs
    )
    body = request.read()
    generated = {name.lower() for name in (case.headers or {})}
    headers = {"content-type": "application/json"}
    if "x-api-key" in generated:
        headers["x-api-key"] = caller.api_key or ""
    signed = AWSRequest(method=request.method, url=str(request.url), data=body, headers=headers)
    if "authorization" in generated:
        credentials = Credentials(caller.credentials.access_key, caller.credentials.secret_key)
        SigV4Auth(credentials, "execute-api", REGION).add_auth(signed)
    return caller.http.request(
        signed.method, signed.url, content=body, headers=dict(signed.headers.items())
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_documented_answers(
    mode: GenerationMode, stack: Stack, caller: SignedClient
) -> None:
    schema = schemathesis.openapi.from_url(stack.rest_url + "/openapi.json")
    operations: list[Any] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 20
    statuses: list[int] = []

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = send_signed(case, stack, caller)
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, response.text)
            # A schema-valid body still holds random bytes, not a face photo: a 400
            # for it is right, so "valid data must be accepted" does not apply. Every
            # request is signed with real credentials (the generated Authorization and
            # x-api-key are replaced), so "invalid auth is refused" does not apply either:
            # test_rest_auth.py covers it.
            case.validate_response(
                response, excluded_checks=[positive_data_acceptance, ignored_auth]
            )

        check()
    # The generated requests did reach the API (not all refused at the door).
    if mode is GenerationMode.POSITIVE:
        assert sum(status == 200 for status in statuses) >= 10, statuses
    assert sum(status == 400 for status in statuses) >= 10, statuses
