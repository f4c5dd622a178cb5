"""The gateway benchmark's pure parts: percentiles and level summaries, the gRPC
counterparts of REST calls, overheads and the target, the report text, the synthetic
enrolment's layout, and the load generator against a real local HTTP server."""

from __future__ import annotations

import base64
import copy
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from bench import gateway_bench, synthetic
from bench.gateway_load import (
    GRPC,
    REST,
    Call,
    LoadRun,
    LoadSpec,
    Target,
    grpc_request,
    percentile,
    run_load,
    server_timing,
    summarise,
)
from bench.gateway_report import overheads, render, target
from facegate.v1 import face_pb2


def test_percentile_interpolates_linearly() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(list(map(float, range(101))), 99) == 99.0


@pytest.mark.parametrize(("values", "q"), [([], 50.0), ([1.0], -1.0), ([1.0], 100.5)])
def test_percentile_refuses_nonsense(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match=r"no values|outside"):
        percentile(values, q)


def test_summarise_counts_requests_per_wall_second_and_failures() -> None:
    run = LoadRun(
        latencies_ms=(10.0, 20.0, 30.0, 40.0),
        own_ms=(1.0, 2.0, 3.0),
        wall_s=2.0,
        failures={"http 404": 3},
    )
    level = summarise(run, clients=8)
    assert level.to_dict() == {
        "clients": 8,
        "requests": 4,
        "p50_ms": 25.0,
        "p99_ms": pytest.approx(39.7),
        "rps": 2.0,
        "failures": 3,
        "own_p50_ms": 2.0,
        "server_own_p50_ms": None,
    }
    with pytest.raises(ValueError, match="wall time"):
        summarise(LoadRun((1.0,), (), 0.0, {}), clients=1)


def test_grpc_request_mirrors_search_and_subject_verify() -> None:
    probe = base64.b64encode(b"jpeg bytes").decode()
    rpc, message = grpc_request(Call("POST", "/v1.1/face/search", {"probe": probe}))
    assert rpc == "Search"
    assert message == face_pb2.FaceSearchRequest(probe=b"jpeg bytes")
    rpc, message = grpc_request(Call("POST", "/v1.1/face/verify", {"id": "s1", "probe": probe}))
    assert rpc == "VerifySubject"
    assert message == face_pb2.FaceVerifySubjectRequest(id="s1", probe=b"jpeg bytes")
    with pytest.raises(ValueError, match="no gRPC counterpart"):
        grpc_request(Call("POST", "/v1.1/face/verify", {"face": probe, "probe": probe}))
    with pytest.raises(ValueError, match="no gRPC counterpart"):
        grpc_request(Call("GET", "/v1.1/tags"))


def _level(p50: float, clients: int = 1, rps: float = 10.0) -> dict[str, Any]:
    return {
        "clients": clients,
        "requests": 200,
        "p50_ms": p50,
        "p99_ms": 2 * p50,
        "rps": rps,
        "failures": 0,
    }


def _size(n: int, rest_search: float, grpc_search: float = 21.0) -> dict[str, Any]:
    size: dict[str, Any] = {
        "n": n,
        "synthetic": n - 20,
        "real": 20,
        "enrol": {"store_s": 12.5, "matcher_s": 3.25, "restart_s": 40.0},
        "genuine_top1": 1.0,
        "floor": {
            "extract": {"p50_ms": 15.0, "p99_ms": 40.0, "requests": 200},
            "matcher": {"p50_ms": 4.0, "p99_ms": 6.0, "requests": 200},
        },
        "rest": {
            "search": {
                "1": _level(rest_search),
                "8": _level(60.0, 8, 90.0),
                "32": _level(250.0, 32, 100.0),
            },
            "verify": {"1": _level(17.5), "8": _level(50.0, 8), "32": _level(200.0, 32)},
        },
        "grpc": {"search": _level(grpc_search), "verify": _level(16.0)},
    }
    size["overhead"], size["ratios"] = overheads(size)
    return size


def test_overheads_subtract_the_floor_from_the_one_client_medians() -> None:
    overhead, ratios = overheads(_size(10_000, rest_search=22.0))
    assert overhead == pytest.approx(
        {
            "search_p50_ms": 3.0,  # 22 - 15 - 4
            "search_grpc_p50_ms": 2.0,  # 21 - 15 - 4
            "rest_shim_p50_ms": 1.0,  # 22 - 21
            "verify_p50_ms": 2.5,  # 17.5 - 15
            "search_paired_p50_ms": None,  # no request reported its backend time
            "search_server_p50_ms": None,
            "search_grpc_paired_p50_ms": None,
            "verify_paired_p50_ms": None,
        }
    )
    assert ratios == pytest.approx(
        {"rest_over_grpc_search_p50": 22.0 / 21.0, "rest_over_floor_search_p50": 22.0 / 19.0}
    )


def test_target_is_judged_on_the_worst_size() -> None:
    sizes = {"10000": _size(10_000, 21.5), "100000": _size(100_000, 23.5)}
    assert target(sizes, 3.0) == {
        "met": False,
        "value": pytest.approx(4.5),
        "limit": 3.0,
        "size": 100_000,
    }
    met = target({"10000": _size(10_000, 22.0)}, 3.0)
    assert (met["met"], met["size"]) == (True, 10_000)
    # Where requests reported their backend time, the paired figure is the one judged.
    paired = _size(10_000, 30.0)
    paired["overhead"]["search_paired_p50_ms"] = 3.5
    assert target({"10000": paired}, 3.0)["value"] == 3.5
    paired["overhead"]["search_server_p50_ms"] = 2.5  # the service's own measure wins
    assert target({"10000": paired}, 3.0)["value"] == 2.5


def test_server_timing_header_is_parsed() -> None:
    assert server_timing("gateway;dur=12.5, backend;dur=10.25, total;dur=14") == {
        "gateway": 12.5,
        "backend": 10.25,
        "total": 14.0,
    }
    assert server_timing("") == {}
    assert server_timing("backend;dur=x, total;dur=3") == {"total": 3.0}
    assert target({}, 3.0) == {"met": None, "value": None, "limit": 3.0, "size": None}


def _result() -> dict[str, Any]:
    sizes = {"10000": _size(10_000, 21.5), "100000": _size(100_000, 23.5)}
    cheap_level = {**_level(5.0, 8, 700.0), "rps_per_core": 350.0}
    return {
        "schema": 1,
        "machine": "test machine",
        "command": "python -m bench.gateway_bench",
        "server_cores": 2,
        "load_generator": "one separate process",
        "probes": ["a.jpg", "b.jpg"],
        "requests": {"1": 200, "8": 400, "32": 400},
        "warmup": 20,
        "synthetic": {
            "templates_per_subject": 4,
            "spread": 0.59,
            "effective_dim": 80.0,
            "seed": 0,
            "dim": 512,
            "model_id": "edgeface-s",
        },
        "sizes": sizes,
        "cheap": {
            "endpoint": "GET /v1.1/tags",
            "tags": 3,
            "size": 100_000,
            "levels": {"8": cheap_level, "32": {**cheap_level, "clients": 32}},
            "transport": _level(0.4),
        },
        "targets": {"overhead_p50_ms": target(sizes, 3.0)},
        "rest_cpu_note": "the shim's own threads",
    }


def test_render_reports_every_size_the_overheads_and_the_verdict() -> None:
    text = render(_result())
    assert "#### 10,000 enrolled events (9,980 synthetic, 20 real)" in text
    assert "#### 100,000 enrolled events" in text
    assert "| REST POST /v1.1/face/search | 32 | 250.0 / 500.0 | 100.0 |" in text
    assert "| gRPC Face.Search | 1 | 21.0 / 42.0 | 10.0 |" in text
    assert "search 4.50 ms over the extractor + matcher floor" in text
    assert "REST shim's share is 2.50 ms" in text
    assert "| 8 | 5.0 / 10.0 | 700.0 | 350.0 |" in text
    assert "p50 0.40 ms" in text
    assert "(worst size: 4.50 ms): NOT met." in text
    assert "200 with 1, 400 with 8, 400 with 32 clients" in text


def test_synthetic_rows_come_four_per_person() -> None:
    per = synthetic.TEMPLATES_PER_CLUSTER
    x = gateway_bench.synthetic_vectors(40, 64)
    assert x.shape == (40, 64)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    similarity = x @ x.T
    same = np.arange(40)[:, None] // per == np.arange(40)[None, :] // per
    off_diagonal = ~np.eye(40, dtype=bool)
    # Templates of one person are far closer than templates of different people.
    assert similarity[same & off_diagonal].min() > similarity[~same].max()
    assert [gateway_bench._subject_id(r) for r in range(per)] == [
        gateway_bench._subject_id(0)
    ] * per
    assert gateway_bench._subject_id(per) != gateway_bench._subject_id(0)
    assert len({gateway_bench._event_id(r) for r in range(40)}) == 40


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status = 404 if self.path == "/missing" else 200
        body = b"[]"
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_run_load_measures_every_request_and_counts_failures(http_url: str) -> None:
    target_ = Target(http_url, "127.0.0.1:1", "AKIDEXAMPLE", "secret", "api-key")
    calls = (Call("GET", "/v1.1/tags"), Call("GET", "/v1.1/tags"), Call("GET", "/missing"))
    run = run_load(LoadSpec(target_, REST, calls, clients=4, requests=30, warmup=5))
    assert len(run.latencies_ms) == 30
    assert all(latency > 0 for latency in run.latencies_ms)
    assert run.failures == {"http 404": 10}  # every third request
    assert run.wall_s > 0


def test_run_load_refuses_empty_or_unknown_loads(http_url: str) -> None:
    target_ = Target(http_url, "127.0.0.1:1", "AKIDEXAMPLE", "secret", "api-key")
    calls = (Call("GET", "/v1.1/tags"),)
    with pytest.raises(ValueError, match="clients, requests and calls"):
        run_load(LoadSpec(target_, REST, calls, clients=0, requests=1, warmup=0))
    with pytest.raises(ValueError, match="unknown protocol"):
        run_load(LoadSpec(target_, "soap", calls, clients=1, requests=1, warmup=0))
    # A gRPC load of a call without a gRPC counterpart fails in its client, and says so.
    with pytest.raises(ValueError, match="no gRPC counterpart"):
        run_load(LoadSpec(target_, GRPC, calls, clients=2, requests=4, warmup=1))


def test_render_compares_with_the_baseline_revision() -> None:
    current = _result()
    for size in current["sizes"].values():
        for levels in size["rest"].values():
            for level in levels.values():
                level["rest_cpu_ms_per_request"] = 1.2
        size["overhead"]["search_server_p50_ms"] = 2.0
    before = copy.deepcopy(current)
    for size in before["sizes"].values():
        for levels in size["rest"].values():
            for level in levels.values():
                level["rest_cpu_ms_per_request"] = 1.5
        size["overhead"]["search_server_p50_ms"] = 2.5
    for result in (current, before):
        for level in result["cheap"]["levels"].values():
            level["rest_cpu_ms_per_request"] = 0.5
    plain = render(current)
    assert "| 100,000 | search | 32 | 1.20 ms |" in plain
    current["baseline"] = {"ref": "abc1234", "revision": "abc1234", **before}
    current["comparison"] = gateway_bench.comparison(current, before)
    current["interleaving"] = "alternating"
    text = render(current)
    assert "Against revision abc1234 (`--baseline abc1234`)" in text
    assert (
        "| 100,000 | search overhead p50 ms (Server-Timing total - backend) | "
        "2.00 | 2.50 | 0.80x |" in text
    )
    assert "| 10,000 | REST CPU ms/request, verify, 8 clients | 1.200 | 1.500 | 0.80x |" in text
    assert "| - | REST CPU ms/request, GET /v1.1/tags, 32 clients | 0.500 | 0.500 | 1.00x |" in text
