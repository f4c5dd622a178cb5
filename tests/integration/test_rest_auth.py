"""Authentication and limits of the REST shim over real HTTP, as Amazon API Gateway
answers them: every SigV4 failure, the API key, presigned URLs, CORS preflight, body
size, rate limit and deadline."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from PIL import Image

from bench.dataset import faces_dir
from gateway.tenancy import create_tenant
from tests.support.stack import SignedClient, Stack, b64, extra_rest_server, running_stack

OBAMA = faces_dir() / "test" / "face_recognition" / "obama" / "obama.jpg"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details."
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("auth-stack"), rate_per_second=0) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[SignedClient]:
    created = create_tenant(stack.deps.database, stack.deps.secrets, "auth-tenant")
    signer = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
    gallery = signer.call("POST", "/api/galleries", {"name": "auth", "size": 10}).json()
    yield signer.with_api_key(gallery["apiKey"])
    signer.close()


def message(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/json"
    text: str = response.json()["message"]
    return text


def test_signed_requests_pass(client: SignedClient) -> None:
    assert client.call("GET", "/v1.1/tags").status_code == 200


def test_missing_signature_and_unknown_routes(stack: Stack, client: SignedClient) -> None:
    assert message(httpx.get(stack.rest_url + "/v1.1/tags")) == "Missing Authentication Token"
    assert message(client.call("GET", "/v1.1/nothing-here")) == "Missing Authentication Token"


def test_unknown_access_key(stack: Stack, client: SignedClient) -> None:
    stranger = SignedClient(stack.rest_url, "AKFGUNKNOWN000000000", "secret", api_key="k")
    try:
        assert message(stranger.call("GET", "/v1.1/tags")) == (
            "The security token included in the request is invalid."
        )
    finally:
        stranger.close()


def test_wrong_secret_and_tampering(stack: Stack, client: SignedClient) -> None:
    wrong = SignedClient(
        stack.rest_url, client.credentials.access_key, "not-the-secret", api_key=client.api_key
    )
    try:
        assert message(wrong.call("GET", "/v1.1/tags")) == MISMATCH
    finally:
        wrong.close()
    signed = client.signed("POST", "/v1.1/tags/original")
    tampered = httpx.post(
        stack.rest_url + "/v1.1/tags/changed", headers=dict(signed.headers.items())
    )
    assert message(tampered) == MISMATCH
    body = client.signed("POST", "/v1.1/face/search", {"probe": "AAAA"})
    swapped = httpx.post(
        stack.rest_url + "/v1.1/face/search",
        content=json.dumps({"probe": "BBBB"}),
        headers=dict(body.headers.items()),
    )
    assert message(swapped) == MISMATCH


def test_clock_skew(client: SignedClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for shift, start in (
        (-timedelta(minutes=6), "Signature expired: "),
        (timedelta(minutes=6), "Signature not yet current: "),
    ):
        when = datetime.now(UTC).replace(tzinfo=None) + shift
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_a, w=when, **_k: w)
        text = message(client.call("GET", "/v1.1/tags"))
        assert text.startswith(start)
        assert text.endswith(" - 5 min.)" if shift < timedelta(0) else " + 5 min.)")
    when = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=4)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_a, **_k: when)
    assert client.call("GET", "/v1.1/tags").status_code == 200


def test_incomplete_authorization_header(stack: Stack) -> None:
    header = "AWS4-HMAC-SHA256 SignedHeaders=host"
    response = httpx.get(stack.rest_url + "/v1.1/tags", headers={"Authorization": header})
    text = message(response)
    assert "Authorization header requires 'Credential' parameter." in text
    assert "Authorization header requires 'Signature' parameter." in text
    assert "'SignedHeaders' parameter" not in text
    assert text.endswith("Authorization=" + header)


def test_api_key_is_required_and_checked(stack: Stack, client: SignedClient) -> None:
    assert message(client.with_api_key(None).call("GET", "/v1.1/tags")) == "Forbidden"
    assert message(client.with_api_key("nope").call("GET", "/v1.1/tags")) == "Forbidden"
    # Tenant management needs no API key.
    assert client.with_api_key(None).call("GET", "/api/galleries").status_code == 200


def test_presigned_urls(stack: Stack, client: SignedClient) -> None:
    credentials = Credentials(client.credentials.access_key, client.credentials.secret_key)
    query = urlencode({"start": "0", "dir": "desc"})
    request = AWSRequest(
        method="GET",
        url=f"{stack.rest_url}/v1.1/subjects?{query}",
        headers={"x-api-key": client.api_key or ""},
    )
    SigV4QueryAuth(credentials, "execute-api", "ap-southeast-2", expires=60).add_auth(request)
    assert "X-Amz-Signature=" in request.url
    ok = httpx.get(request.url, headers=dict(request.headers.items()))
    # Authenticated: the (empty) gallery's answer, not a 403.
    assert (ok.status_code, ok.json()) == (404, {"message": "Subjects not found."})
    broken = httpx.get(request.url.replace("dir=desc", "dir=asc"), headers=dict(request.headers))
    assert message(broken) == MISMATCH


def test_cors_preflight_needs_no_signature(stack: Stack) -> None:
    response = httpx.options(
        stack.rest_url + "/v1.1/subjects",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-api-key",
        },
    )
    assert response.status_code == 204
    allowed = response.headers["access-control-allow-headers"]
    for header in (
        "authorization",
        "content-type",
        "x-amz-date",
        "x-amz-security-token",
        "x-api-key",
    ):
        assert header in allowed
    assert response.headers["access-control-allow-origin"] == "*"


def test_bodies_over_the_limit_are_refused(stack: Stack, client: SignedClient) -> None:
    with extra_rest_server(stack, max_body_bytes=1000) as url:
        small = SignedClient(
            url,
            client.credentials.access_key,
            client.credentials.secret_key,
            api_key=client.api_key,
        )
        try:
            response = small.call("POST", "/v1.1/face/search", {"probe": "A" * 2000})
            assert response.status_code == 413
            assert "message" in response.json()
            assert small.call("GET", "/v1.1/tags").status_code == 200
        finally:
            small.close()


def test_default_body_limit_is_ten_megabytes(stack: Stack, client: SignedClient) -> None:
    assert stack.settings.rest.max_body_bytes == 10 * 1024 * 1024
    response = client.call("POST", "/v1.1/face/search", {"probe": "A" * (10 * 1024 * 1024)})
    assert response.status_code == 413


def test_a_large_probe_round_trips(client: SignedClient) -> None:
    """A photo of megabytes, as phone cameras take them, is searched like a small one; a
    large body whose base64 is broken is an InvalidRequest, never a 500."""
    registered = client.call("POST", "/v1.1/subjects", {"face": b64(OBAMA.read_bytes())})
    assert registered.status_code == 201, registered.text
    with Image.open(OBAMA.with_name("obama3.jpg")) as photo:
        large = photo.convert("RGB").resize((photo.width * 2, photo.height * 2))
    encoded = io.BytesIO()
    large.save(encoded, "JPEG", quality=98, subsampling=0)
    image = encoded.getvalue()
    assert len(image) > 4_000_000
    found = client.call("POST", "/v1.1/face/search", {"probe": b64(image), "threshold": 0})
    assert found.status_code == 200, found.text
    assert registered.json()["id"] in [c["id"] for c in found.json()["candidates"]]
    broken = client.call("POST", "/v1.1/face/search", {"probe": b64(image)[:-8] + "AA!A===="})
    assert broken.status_code == 400
    assert broken.json()["errorCode"] == 1001


def test_rate_limit_per_api_key(stack: Stack, client: SignedClient) -> None:
    other_key = (
        client.with_api_key(None)
        .call("POST", "/api/galleries", {"name": "auth-rate", "size": 5})
        .json()["apiKey"]
    )
    with extra_rest_server(stack, rate_per_second=0.01, rate_burst=2) as url:
        limited = SignedClient(
            url,
            client.credentials.access_key,
            client.credentials.secret_key,
            api_key=client.api_key,
        )
        forger = SignedClient(
            url, client.credentials.access_key, "not-the-secret", api_key=client.api_key
        )
        try:
            # The shim cannot tell a forger from the key's owner before the gateway has
            # checked the signature; what the gateway refuses costs the owner nothing.
            assert {forger.call("GET", "/v1.1/tags").status_code for _ in range(4)} == {403}
            statuses = [limited.call("GET", "/v1.1/tags").status_code for _ in range(3)]
            assert statuses == [200, 200, 429]
            refused = limited.call("GET", "/v1.1/tags")
            assert refused.json() == {"message": "Too Many Requests"}
            assert limited.with_api_key(other_key).call("GET", "/v1.1/tags").status_code == 200
        finally:
            limited.close()
            forger.close()


def test_deadline_gives_timeout_1003(stack: Stack, client: SignedClient) -> None:
    with extra_rest_server(stack, request_timeout_s=0.001) as url:
        hurried = SignedClient(
            url,
            client.credentials.access_key,
            client.credentials.secret_key,
            api_key=client.api_key,
        )
        try:
            response = hurried.call("POST", "/v1.1/face/search", {"probe": b64(OBAMA.read_bytes())})
            assert response.status_code == 500
            assert response.json()["errorCode"] == 1003
            assert response.json()["errorType"] == "Timeout"
        finally:
            hurried.close()
