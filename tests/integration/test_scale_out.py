"""The multi-process topology on one machine: 1 extractor, 2 matcher shards, 2 gateways,
2 REST shims and PostgreSQL on loopback, each a `facegate serve <service>` process as
Kubernetes would run them. A subject registered through one gateway is found through the
other; a killed shard makes searches fail fast with a clear 503 (never a hang, never a
silently partial answer) and a restarted shard brings full results back."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.dataset import faces_dir
from facegate.settings import Settings
from gateway.credentials import SecretBox, parse_master_key
from gateway.store.database import open_database
from gateway.tenancy import create_tenant
from matcher.placement import shard_of
from tests.support.postgres import create_database
from tests.support.stack import SignedClient

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
START_TIMEOUT_S = 120
LFW = faces_dir() / "lfw-dev"
MAX_PEOPLE = 12


@dataclass
class Service:
    name: str
    process: subprocess.Popen[str]
    port: int
    command: list[str]
    env: dict[str, str]


class Topology:
    """Starts and stops `facegate serve <service>` processes."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir = data_dir
        self.base_env = {
            **os.environ,
            "FACEGATE_MODEL_DIR": str(Settings.from_env().models),
            "FACEGATE_DATA_DIR": str(data_dir),
            "FACEGATE_GATEWAY_DATABASE_URL": database_url,
            "FACEGATE_GATEWAY_MASTER_KEY": MASTER_KEY,
            "FACEGATE_GATEWAY_CALL_TIMEOUT_S": "5",
            "FACEGATE_MATCHER_SHARD_COUNT": "2",
            "FACEGATE_REST_RATE_PER_SECOND": "0",
        }
        self.services: dict[str, Service] = {}

    def start(self, name: str, service: str, port: int = 0, **env: str) -> Service:
        command = [sys.executable, "-m", "facegate", "serve", service, "--port", str(port)]
        full_env = {**self.base_env, **env}
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=full_env
        )
        assert process.stdout is not None
        timer = threading.Timer(START_TIMEOUT_S, process.kill)
        timer.start()
        try:
            listening = _listening(process.stdout)
        finally:
            timer.cancel()
        started = Service(name, process, listening[service], command, full_env)
        self.services[name] = started
        return started

    def kill(self, name: str) -> None:
        service = self.services[name]
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(timeout=30)

    def restart(self, name: str) -> None:
        """The same service again on the same port (its clients keep their address)."""
        old = self.services[name]
        command = [*old.command[:-1], str(old.port)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=old.env
        )
        assert process.stdout is not None
        _listening(process.stdout)
        self.services[name] = Service(name, process, old.port, command, old.env)

    def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in self.services.values():
            try:
                service.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.process.kill()


def _listening(stdout: IO[str]) -> dict[str, int]:
    for line in stdout:
        if line.startswith('{"listening"'):
            listening: dict[str, int] = json.loads(line)["listening"]
            return listening
    raise AssertionError("the service exited before listening")


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Topology]:
    database_url = create_database(postgres_url, "scale_out")
    topology = Topology(tmp_path_factory.mktemp("scale-out"), database_url)
    try:
        extractor = topology.start("extractor", "extractor")
        # Matcher pods hold templates, never models: they start without a model directory.
        no_models = str(topology.data_dir / "no-models")
        shards = [
            topology.start(
                f"matcher-{i}",
                "matcher",
                FACEGATE_MATCHER_SHARD_INDEX=str(i),
                FACEGATE_MODEL_DIR=no_models,
            )
            for i in range(2)
        ]
        addresses = ",".join(f"127.0.0.1:{s.port}" for s in shards)
        for i in range(2):
            gateway = topology.start(
                f"gateway-{i}",
                "gateway",
                FACEGATE_GATEWAY_EXTRACTOR_ADDRESS=f"127.0.0.1:{extractor.port}",
                FACEGATE_GATEWAY_MATCHER_ADDRESSES=addresses,
            )
            topology.start(
                f"rest-{i}", "rest", FACEGATE_REST_GATEWAY_ADDRESS=f"127.0.0.1:{gateway.port}"
            )
        yield topology
    finally:
        topology.stop_all()


def wait_for_serving(topology: Topology, name: str, *, serving: bool) -> bool:
    """Whether the service's standard gRPC health reaches the state within 15 s."""
    wanted = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    address = f"127.0.0.1:{topology.services[name].port}"
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(75):
            if stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == wanted:
                return True
            time.sleep(0.2)
    return False


def rest_client(topology: Topology, index: int, access: tuple[str, str]) -> SignedClient:
    return SignedClient(f"http://127.0.0.1:{topology.services[f'rest-{index}'].port}", *access)


def photos() -> Iterator[Path]:
    """One photo of each lfw-dev person, in a fixed order."""
    for person in sorted(p for p in LFW.iterdir() if p.is_dir()):
        yield min(person.glob("*.jpg"))


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_two_gateways_two_shards_one_store(topology: Topology) -> None:
    database = open_database(topology.base_env["FACEGATE_GATEWAY_DATABASE_URL"])
    try:
        created = create_tenant(database, SecretBox(parse_master_key(MASTER_KEY)), "scale")
    finally:
        database.close()
    access = (created.tenant.access_key_id, created.secret_access_key)
    first, second = rest_client(topology, 0, access), rest_client(topology, 1, access)
    try:
        gallery = first.call("POST", "/api/galleries", {"name": "g", "size": 100}).json()
        first, second = (
            first.with_api_key(gallery["apiKey"]),
            second.with_api_key(gallery["apiKey"]),
        )
        # Register through gateway 0 until both shards hold at least two events (event
        # ids are random, so placement is too).
        registered: dict[Path, tuple[str, str]] = {}
        for path in photos():
            body = first.call("POST", "/v1.1/subjects", {"face": b64(path)}).json()
            if "id" in body:  # a few LFW photos hold a second face: skip them
                registered[path] = (body["id"], body["eventId"])
            holders = [shard_of(event_id, 2) for _, event_id in registered.values()]
            if min(holders.count(0), holders.count(1)) >= 2 or len(registered) >= MAX_PEOPLE:
                break
        assert min(holders.count(0), holders.count(1)) >= 1, holders

        # Found through the other gateway, on whichever shard it lives.
        for path, (subject_id, _) in registered.items():
            found = second.call("POST", "/v1.1/face/search", {"probe": b64(path)})
            assert found.status_code == 200, found.text
            assert found.json()["candidates"][0]["id"] == subject_id

        # A dead shard: a fast, clear failure naming the shard, never a partial answer.
        topology.kill("matcher-1")
        for path in registered:
            failed = second.call("POST", "/v1.1/face/search", {"probe": b64(path)})
            assert failed.status_code == 503, failed.text
            assert "Matcher shard 1 of 2" in failed.json()["message"]

        # Health says which dependency is down; the gateways stay ready (every gateway
        # shares the shard: taking them out would only make the outage total).
        health = second.call("GET", "/v1.1/health").json()
        assert health["status"] == "UNAVAILABLE"
        down = [d["name"] for d in health["dependencies"] if d["status"] != "OK"]
        assert down == ["matcher-1"]
        assert second.call("GET", "/v1.1/tags").status_code == 200
        assert wait_for_serving(topology, "gateway-1", serving=True)

        # Restarted on the same port: its log brings every acknowledged entry back.
        topology.restart("matcher-1")
        for path, (subject_id, _) in registered.items():
            # gRPC's reconnect backoff grows to seconds after the failed attempts above;
            # a failing search answers at once, so wait by the clock, not by attempts.
            deadline = time.monotonic() + 20.0
            while True:
                found = first.call("POST", "/v1.1/face/search", {"probe": b64(path)})
                if found.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert found.status_code == 200, found.text
            assert found.json()["candidates"][0]["id"] == subject_id
        assert wait_for_serving(topology, "gateway-1", serving=True)
        for _ in range(25):  # each gateway's channel to the shard reconnects on its own
            if second.call("GET", "/v1.1/health").json()["status"] == "OK":
                break
            time.sleep(0.2)
        assert second.call("GET", "/v1.1/health").json()["status"] == "OK"
    finally:
        first.close()
        second.close()
