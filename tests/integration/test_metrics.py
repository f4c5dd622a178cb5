"""Prometheus metrics recorded by a real request flow, as a scrape would read them."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY

from bench.dataset import faces_dir
from gateway.tenancy import create_tenant
from tests.support.stack import SignedClient, Stack, extra_rest_server, running_stack

OBAMA = faces_dir() / "test" / "face_recognition" / "obama"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("metrics-stack"), rate_per_second=0) as running:
        yield running


def value(name: str, **labels: str) -> float:
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_requests_auth_failures_and_stages_are_counted(stack: Stack) -> None:
    created = create_tenant(stack.deps.database, stack.deps.secrets, "metrics")
    client = SignedClient(stack.rest_url, created.tenant.access_key_id, created.secret_access_key)
    route = {"method": "POST", "route": "/v1.1/face/search"}
    before = {
        "search_ok": value("facegate_http_requests_total", status="200", **route),
        "search_seconds": value("facegate_http_request_seconds_count", **route),
        "missing": value("facegate_auth_failures_total", reason="missing_token"),
        "mismatch": value("facegate_auth_failures_total", reason="signature_mismatch"),
        "limited": value("facegate_rate_limited_total"),
        "decode": value("facegate_extractor_stage_seconds_count", stage="decode"),
        "plans": sum(
            value("facegate_matcher_search_seconds_count", plan=plan) for plan in ("exact", "hnsw")
        ),
        "grpc": value(
            "facegate_grpc_server_handled_total",
            service="facegate.v1.Face",
            method="Search",
            code="OK",
        ),
    }
    try:
        gallery = client.call("POST", "/api/galleries", {"name": "m", "size": 10}).json()
        keyed = client.with_api_key(gallery["apiKey"])
        image = base64.b64encode((OBAMA / "obama.jpg").read_bytes()).decode()
        assert keyed.call("POST", "/v1.1/subjects", {"face": image}).status_code == 201
        assert keyed.call("POST", "/v1.1/face/search", {"probe": image}).status_code == 200
        assert httpx.get(stack.rest_url + "/v1.1/tags").status_code == 403
        wrong = SignedClient(stack.rest_url, created.tenant.access_key_id, "wrong")
        assert wrong.call("GET", "/api/galleries").status_code == 403
        wrong.close()
        with extra_rest_server(stack, rate_per_second=0.01, rate_burst=1) as url:
            limited = SignedClient(
                url, created.tenant.access_key_id, created.secret_access_key
            ).with_api_key(gallery["apiKey"])
            statuses = [limited.call("GET", "/v1.1/tags").status_code for _ in range(2)]
            limited.close()
        assert statuses == [200, 429]
    finally:
        client.close()

    assert value("facegate_http_requests_total", status="200", **route) == before["search_ok"] + 1
    assert value("facegate_http_request_seconds_count", **route) == before["search_seconds"] + 1
    assert value("facegate_auth_failures_total", reason="missing_token") == before["missing"] + 1
    assert (
        value("facegate_auth_failures_total", reason="signature_mismatch") == before["mismatch"] + 1
    )
    assert value("facegate_rate_limited_total") == before["limited"] + 1
    assert value("facegate_extractor_stage_seconds_count", stage="decode") >= before["decode"] + 2
    plans = sum(
        value("facegate_matcher_search_seconds_count", plan=plan) for plan in ("exact", "hnsw")
    )
    assert plans == before["plans"] + 1
    grpc_ok = value(
        "facegate_grpc_server_handled_total",
        service="facegate.v1.Face",
        method="Search",
        code="OK",
    )
    assert grpc_ok == before["grpc"] + 1
    assert value("facegate_matcher_templates", shard="0", gallery=gallery["id"]) == 1
    assert value("facegate_model_batch_size_count", model="recognizer") >= 2
