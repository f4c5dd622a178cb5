"""`facegate serve` (what `make run` starts) on an empty data directory: it prints a
development tenant's credentials and a signed curl example, and that example, pasted
into a shell, registers a face (HTTP 201)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.rest_service import read_until_listening
from facegate.settings import Settings

START_TIMEOUT_S = 120


def test_first_run_prints_a_working_example(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is needed: the printed example uses its SigV4 signer")
    env = {**os.environ, "FACEGATE_MODEL_DIR": str(Settings.from_env().models)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "facegate",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--rest-port",
            "0",
            "--grpc-port",
            "0",
            "--extractor-port",
            "0",
            "--matcher-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        first_run = read_until_listening(process, START_TIMEOUT_S)
        listening = first_run.listening
        assert set(listening) == {"extractor", "matcher", "gateway", "rest"}
        printed = first_run.printed
        assert '"secretAccessKey"' in printed
        example = printed.split("expect HTTP 201):\n\n", 1)[1].strip()
        assert f":{listening['rest']}/v1.1/subjects" in example
        result = subprocess.run(
            ["bash", "-c", example + " -w '\\n%{http_code}'"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        body, status = result.stdout.rsplit("\n", 1)
        assert status == "201", result.stdout + result.stderr
        assert set(json.loads(body)) >= {"id", "eventId", "attributes"}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0


def test_tenant_create_prints_the_key_pair_once(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "facegate", "tenant", "create", "acme"]
    command += ["--data-dir", str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert set(created) == {"id", "name", "accessKeyId", "secretAccessKey"}
    assert created["accessKeyId"].startswith("AKFG")
    assert len(created["accessKeyId"]) == 20
    assert len(created["secretAccessKey"]) == 40
    # The store holds the secret sealed, never in clear.
    for stored in (tmp_path / "gateway").iterdir():
        assert created["secretAccessKey"].encode() not in stored.read_bytes()
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 1
    assert json.loads(again.stdout)["errorType"] == "Duplicate"
