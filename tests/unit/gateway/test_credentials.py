"""Credentials: secrets sealed under the master key, API keys hashed, the key file."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from gateway.credentials import (
    SecretBox,
    api_key_hint,
    hash_api_key,
    load_master_key,
    new_access_key_id,
    new_api_key,
    new_secret_access_key,
)


def test_sealed_secrets_open_only_for_their_key_id_and_master_key() -> None:
    box = SecretBox(bytes(range(32)))
    sealed = box.seal("s3cret", access_key_id="AKFGA")
    assert b"s3cret" not in sealed
    assert box.open(sealed, access_key_id="AKFGA") == "s3cret"
    assert box.seal("s3cret", access_key_id="AKFGA") != sealed  # a fresh nonce each time
    with pytest.raises(ValueError, match="AKFGB"):
        box.open(sealed, access_key_id="AKFGB")
    with pytest.raises(ValueError, match="does not decrypt"):
        SecretBox(bytes(32)).open(sealed, access_key_id="AKFGA")
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(b"short")


def test_new_credentials_look_like_aws_and_differ() -> None:
    ids = {new_access_key_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 20 and i.startswith("AKFG") and i.isupper() for i in ids)
    assert len(new_secret_access_key()) == 40
    key = new_api_key()
    assert len(key) == 40
    assert key != new_api_key()
    assert hash_api_key(key) == hash_api_key(key) != hash_api_key(key + "x")
    assert api_key_hint(key) == key[:8] + "…"


def test_master_key_from_settings_or_a_file_made_once(tmp_path: Path) -> None:
    configured = base64.b64encode(bytes(range(32))).decode()
    assert load_master_key(configured, tmp_path / "unused") == bytes(range(32))
    assert not (tmp_path / "unused").exists()
    with pytest.raises(ValueError, match="base64"):
        load_master_key("not base64!", tmp_path / "unused")
    key_file = tmp_path / "gateway" / "master.key"
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(load_master_key("", key_file)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert len(keys[0]) == 32
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert load_master_key("", key_file) == keys[0]
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["master.key"]


def test_a_shared_store_needs_the_deployment_master_key(tmp_path: Path) -> None:
    """Review finding: a process on another host would have made its own key and sealed
    secrets nobody else can open."""
    from dataclasses import replace

    from facegate.settings import Settings
    from gateway.server import open_store

    base = Settings.from_env({})
    shared = replace(
        base,
        data_dir=tmp_path,
        gateway=replace(base.gateway, database_url="postgresql+psycopg://db/facegate"),
    )
    with pytest.raises(ValueError, match="FACEGATE_GATEWAY_MASTER_KEY"):
        open_store(shared)
    assert not (tmp_path / "gateway" / "master.key").exists()


def test_api_keys_never_start_like_an_option() -> None:
    # One key in 64 would, from a plain URL-safe token: 2,000 keys make a miss unlikely.
    assert not any(new_api_key().startswith("-") for _ in range(2000))
