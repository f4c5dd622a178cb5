"""The composition root starts what it is asked for, in order, and closes it."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from facegate.compose import compose
from facegate.settings import Settings


def test_unknown_services_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown services"):
        compose(replace(Settings.from_env(), data_dir=tmp_path), ("rest", "cache"))


def test_a_rest_only_process_serves_and_closes(tmp_path: Path) -> None:
    settings = replace(Settings.from_env(), data_dir=tmp_path, host="127.0.0.1", rest_port=0)
    composed = compose(settings, ("rest",))
    port = composed.ports["rest"]
    try:
        assert composed.settings.rest_port == port
        assert composed.gateway is None
        answer = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10)
        assert answer.status_code == 200
    finally:
        composed.close()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=1),
    ):
        pass
