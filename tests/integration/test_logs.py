"""Structured logs across the services: one request id from the REST answer through the
gateway to the extractor and the matcher; and nothing secret or biometric in any line."""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dataset import faces_dir
from facegate.logs import JsonFormatter
from gateway.tenancy import create_tenant
from tests.support.stack import SignedClient, Stack, running_stack

OBAMA = faces_dir() / "test" / "face_recognition" / "obama"


@pytest.fixture(scope="module")
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, captured: io.StringIO) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("logs-stack"), rate_per_second=0) as running:
        yield running


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_one_request_id_across_services_and_no_secrets(
    stack: Stack, captured: io.StringIO, tmp_path: Path
) -> None:
    created = create_tenant(stack.deps.database, stack.deps.secrets, "logs")
    client = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
    try:
        gallery = client.call("POST", "/api/galleries", {"name": "logs", "size": 10}).json()
        keyed = client.with_api_key(gallery["apiKey"])
        image = base64.b64encode((OBAMA / "obama.jpg").read_bytes()).decode()
        signed = keyed.signed(
            "POST", "/v1.1/subjects", {"face": image}, headers={"x-request-id": "trace-42"}
        )
        registered = keyed.send(signed)
        assert registered.status_code == 201
        assert registered.headers["x-request-id"] == "trace-42"
        found = keyed.call("POST", "/v1.1/face/search", {"probe": image})
        search_id = found.headers["x-request-id"]
        assert len(search_id) == 32
        assert search_id != "trace-42"
        folder = stack.settings.bulk_root / gallery["id"]
        folder.mkdir(parents=True)
        shutil.copy(OBAMA / "obama2.jpg", folder / "a.jpg")
        batch = keyed.call(
            "POST", "/v1.1/jobs/bulkregister", {"registrations": [{"filename": "a.jpg"}]}
        ).json()["batchId"]
        for _ in range(100):
            page = keyed.call("GET", f"/v1.1/jobs/bulkregister/{batch}").json()
            if page["processed"][0]["status"] == "Processed":
                break
            time.sleep(0.1)
        template = stack.deps.extractor.probe_face((OBAMA / "obama.jpg").read_bytes()).template
    finally:
        client.close()

    logged = lines(captured)
    # The test's own HTTP client and signer log at DEBUG too; only the service's lines
    # count.
    client_side = ("botocore", "httpx", "httpcore", "urllib3")
    text = "\n".join(
        json.dumps(line) for line in logged if not str(line["logger"]).startswith(client_side)
    )
    # The register request's id is on its REST line and on the gRPC lines it caused in the
    # gateway, the extractor and the matcher.
    traced = {
        (line.get("service"), line.get("method"))
        for line in logged
        if line.get("request_id") == "trace-42"
    }
    assert ("facegate.v1.Subjects", "Register") in traced
    assert ("facegate.v1.Extractor", "Extract") in traced
    assert ("facegate.v1.Matcher", "Upsert") in traced
    assert any(
        line.get("route") == "/v1.1/subjects" and line.get("status") == 201
        for line in logged
        if line.get("request_id") == "trace-42"
    )
    searched = {line.get("service") for line in logged if line.get("request_id") == search_id}
    assert {"facegate.v1.Face", "facegate.v1.Extractor", "facegate.v1.Matcher"} <= searched
    # Nothing that would let a reader of the logs act as a tenant or rebuild a face.
    for secret in (
        created.secret_access_key,
        gallery["apiKey"],
        image[:64],
        image[-64:],
        f"{template.embedding[0]:.6f}"[:8],
        (stack.settings.gateway_dir / "master.key").read_text().strip()[:16],
    ):
        assert secret not in text
