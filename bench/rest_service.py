"""The whole service as a client meets it: ``python -m facegate serve`` as a subprocess on
an empty data directory (every port ephemeral, REST rate limit off), its first-run
credentials, and SigV4-signed REST calls to it from several threads
(tests/support/stack.py's botocore signer, service execute-api, plus the x-api-key)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import httpx

from bench.dataset import REPO_ROOT
from facegate.settings import Settings
from tests.support.stack import SignedClient

START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 60
NOT_REFUSALS = frozenset({401, 403, 429})
"""4xx answers that say the benchmark is misconfigured, not that a photo was refused."""

Outcome = tuple[dict[str, Any], str | None]
"""A request's JSON answer and its NEC error type (None when accepted)."""


class ServiceError(RuntimeError):
    """The service failed a request (5xx, transport error): a bug, not a refusal."""


@dataclass(frozen=True)
class Service:
    rest_url: str
    access_key_id: str
    secret_access_key: str
    api_key: str
    start_s: float
    pid: int = 0
    """The server process (its CPU time: /proc/<pid>/stat)."""


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_service(work_dir: Path, source: Path = REPO_ROOT) -> Iterator[Service]:
    """``facegate serve`` over an empty data directory in ``work_dir``, as a subprocess;
    stopped with SIGTERM when the block ends, however it ends. ``source``: the tree whose
    code runs (another revision's, to compare with this one)."""
    env = {
        **os.environ,
        "FACEGATE_MODEL_DIR": str(Settings.from_env().models),
        "FACEGATE_REST_RATE_PER_SECOND": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "facegate", "serve", "--data-dir", str(work_dir / "data")]
    for port in ("--rest-port", "--grpc-port", "--extractor-port", "--matcher-port"):
        command += [port, "0"]
    log_path = work_dir / "serve.log"
    with log_path.open("w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=source
        )
        try:
            yield replace(_listening(process, log_path, started), pid=process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode != 0:
                print(
                    f"facegate serve exited with {process.returncode}:\n{_log_tail(log_path)}",
                    file=sys.stderr,
                )


@dataclass(frozen=True)
class FirstRun:
    printed: str
    """Everything ``facegate serve`` printed before its listening line."""
    listening: dict[str, int]
    """Service name -> the port it bound."""


def read_until_listening(process: subprocess.Popen[str], timeout_s: float) -> FirstRun:
    """What ``facegate serve`` prints on stdout up to its ``{"listening": ...}`` line;
    the process is killed if that takes longer than ``timeout_s``."""
    assert process.stdout is not None
    timer = threading.Timer(timeout_s, process.kill)
    timer.start()
    printed: list[str] = []
    try:
        for line in process.stdout:
            if line.startswith('{"listening"'):
                return FirstRun("".join(printed), json.loads(line)["listening"])
            printed.append(line)
    finally:
        timer.cancel()
    raise ServiceError("facegate serve exited before listening:\n" + "".join(printed))


def _listening(process: subprocess.Popen[str], log_path: Path, started: float) -> Service:
    """The credentials printed on first run and the REST port of the listening line."""
    try:
        first_run = read_until_listening(process, START_TIMEOUT_S)
    except ServiceError as error:
        raise ServiceError(f"{error}{_log_tail(log_path)}") from None
    start_s = time.perf_counter() - started
    text = first_run.printed
    if "{" not in text:
        raise ServiceError(f"facegate serve printed no first-run credentials:\n{text}")
    credentials, _ = json.JSONDecoder().raw_decode(text, text.index("{"))
    # Nothing more is expected on stdout, but a full pipe would block the server.
    assert process.stdout is not None
    threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
    return Service(
        rest_url=f"http://127.0.0.1:{first_run.listening['rest']}",
        access_key_id=credentials["accessKeyId"],
        secret_access_key=credentials["secretAccessKey"],
        api_key=credentials["apiKey"],
        start_s=start_s,
    )


def _drain(stream: IO[str]) -> None:
    for _ in stream:
        pass


class RestClient:
    """Signed POSTs from several threads, each thread on its own connection."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._local = threading.local()
        self._clients: list[SignedClient] = []
        self._lock = threading.Lock()

    def _client(self) -> SignedClient:
        client: SignedClient | None = getattr(self._local, "client", None)
        if client is None:
            s = self._service
            client = SignedClient(
                s.rest_url, s.access_key_id, s.secret_access_key, api_key=s.api_key
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def post(self, path: str, body: dict[str, Any]) -> Outcome:
        """The answer, and its error type when the service refused the request."""
        try:
            response = self._client().call("POST", path, body)
        except httpx.TransportError as error:
            raise ServiceError(f"POST {path}: {error!r}") from error
        status = response.status_code
        if 200 <= status < 300:
            return response.json(), None
        if 400 <= status < 500 and status not in NOT_REFUSALS:
            answer = response.json()
            return answer, str(answer.get("errorType") or f"HTTP {status}")
        raise ServiceError(f"POST {path}: HTTP {status}: {response.text[:500]}")

    def close(self) -> None:
        for client in self._clients:
            client.close()
