"""The REST shim holds no secret and runs no model: importing it loads neither the store
nor the credential code, nor any model or index library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
NEVER_LOADED = (
    "sqlalchemy",
    "hnswlib",
    "onnxruntime",
    "boto3",
    "cryptography",
    "gateway.credentials",
    "gateway.store",
    "gateway.tenancy",
    "gateway.identity",
)


def test_importing_the_rest_shim_loads_no_store_secret_or_model_code() -> None:
    code = (
        "import sys, gateway.rest.app, gateway.rest.server\nprint('\\n'.join(sorted(sys.modules)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded = set(run.stdout.split())
    assert "gateway.rest.app" in loaded
    assert "uvicorn" in loaded  # the probe sees what the shim does load
    found = sorted(
        name
        for name in loaded
        for banned in NEVER_LOADED
        if name.split(".")[: banned.count(".") + 1] == banned.split(".")
    )
    assert found == []
