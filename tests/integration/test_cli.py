"""The ``facegate`` command as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.dataset import faces_dir
from gateway.credentials import api_key_hint, hash_api_key
from gateway.store import galleries
from gateway.store.database import open_database, sqlite_url
from tests.support.store import new_gallery, new_id

FACES = faces_dir() / "test"


def _facegate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facegate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_extract_lists_every_face_in_nec_format() -> None:
    done = _facegate("extract", str(FACES / "compreface/_multi/016_8.jpg"))
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert len(payload["faces"]) == 8
    attributes = payload["faces"][0]["attributes"]
    assert set(attributes) == {
        "faceArea",
        "headArea",
        "rightEyeCenter",
        "leftEyeCenter",
        "frontalFaceScore",
        "faceRoll",
        "facePan",
        "faceTilt",
        "faceScore",
        "faceQualityScore",
    }
    assert all(isinstance(v, str) for v in attributes["faceArea"].values())
    assert isinstance(attributes["faceQualityScore"], str)
    float(attributes["faceQualityScore"])


def test_extract_prints_one_line_per_image_and_fails_on_a_bad_one(tmp_path: object) -> None:
    done = _facegate(
        "extract",
        str(FACES / "face_recognition/obama/obama.jpg"),
        str(FACES / "dlib/_noface/dog.jpg"),
        "--limit",
        "3",
    )
    assert done.returncode == 1
    first, second = (json.loads(line) for line in done.stdout.splitlines())
    assert len(first["faces"]) == 1
    assert second == {
        "message": "No face was found in the provided image.",
        "errorCode": 2001,
        "errorType": "NoFace",
    }


def test_verify_prints_a_score() -> None:
    same = _facegate(
        "verify",
        str(FACES / "face_recognition/obama/obama.jpg"),
        str(FACES / "face_recognition/obama/obama2.jpg"),
    )
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["score"] > 7000
    different = _facegate(
        "verify",
        str(FACES / "face_recognition/obama/obama.jpg"),
        str(FACES / "face_recognition/biden/biden.jpg"),
    )
    assert json.loads(different.stdout)["score"] < 7000


def test_verify_takes_the_most_prominent_face_of_a_group_photo() -> None:
    group = str(FACES / "face_recognition/_multi/obama_and_biden.jpg")
    # Biden is nearer the centre than Obama, whose face is about as wide.
    biden = _facegate("verify", group, str(FACES / "face_recognition/biden/biden.jpg"))
    obama = _facegate("verify", group, str(FACES / "face_recognition/obama/obama.jpg"))
    assert json.loads(biden.stdout)["score"] >= 7000
    assert json.loads(obama.stdout)["score"] < 7000


def test_verify_fails_with_the_nec_error() -> None:
    done = _facegate(
        "verify",
        str(next((FACES / "compreface/_noface").iterdir())),
        str(FACES / "face_recognition/obama/obama.jpg"),
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["errorType"] == "NoFace"
    missing = _facegate(
        "verify", "/nonexistent.jpg", str(FACES / "face_recognition/obama/obama.jpg")
    )
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["errorCode"] == 1001


def _store_command(data_dir: Path, *args: str) -> tuple[int, Any]:
    """Runs a command on the store of ``data_dir``: its exit status and JSON output."""
    done = _facegate(*args, "--data-dir", str(data_dir))
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_tenant_keys_create_list_and_revoke(tmp_path: Path) -> None:
    code, tenant = _store_command(tmp_path, "tenant", "create", "acme")
    assert code == 0
    code, second = _store_command(tmp_path, "tenant", "keys", "create", "acme")
    assert code == 0
    assert second["accessKeyId"] != tenant["accessKeyId"]
    assert len(second["secretAccessKey"]) == 40
    code, third = _store_command(tmp_path, "tenant", "keys", "create", "acme")
    assert code == 1
    assert third["errorType"] == "InvalidRequest"

    code, listed = _store_command(tmp_path, "tenant", "keys", "list", "acme")
    assert code == 0
    keys = listed["accessKeys"]
    assert [k["accessKeyId"] for k in keys] == [tenant["accessKeyId"], second["accessKeyId"]]
    assert {k["status"] for k in keys} == {"active"}
    assert all(k["lastUsed"] is None for k in keys)
    listing = json.dumps(listed)
    assert tenant["secretAccessKey"] not in listing
    assert second["secretAccessKey"] not in listing

    code, revoked = _store_command(
        tmp_path, "tenant", "keys", "revoke", "acme", tenant["accessKeyId"]
    )
    assert code == 0
    assert revoked["status"] == "revoked"
    code, last = _store_command(tmp_path, "tenant", "keys", "revoke", "acme", second["accessKeyId"])
    assert code == 1
    assert "only active access key" in last["message"]
    code, listed = _store_command(tmp_path, "tenant", "keys", "list", "acme")
    assert [k["status"] for k in listed["accessKeys"]] == ["revoked", "active"]


def test_gallery_regenerate_key_prints_the_new_key_once(tmp_path: Path) -> None:
    code, tenant = _store_command(tmp_path, "tenant", "create", "acme")
    assert code == 0
    database = open_database(sqlite_url(tmp_path / "gateway" / "facegate.db"))
    try:
        with database.write() as conn:
            gallery = new_gallery(conn, tenant["id"])
            application = galleries.create_application(
                conn,
                id=new_id(),
                tenant_id=tenant["id"],
                gallery_id=gallery.id,
                name="main",
                description="",
                api_key_hash=hash_api_key("the-first-key"),
                api_key_hint=api_key_hint("the-first-key"),
                face_minimum_quality_score=0.5,
                now_ms=1,
            )
    finally:
        database.close()

    code, regenerated = _store_command(
        tmp_path, "gallery", "regenerate-key", application.id, "--overlap-s", "3600"
    )
    assert code == 0
    assert regenerated["previousApiKeyHint"] == api_key_hint("the-first-key")
    assert regenerated["previousApiKeyValidUntil"] is not None
    code, listed = _store_command(tmp_path, "gallery", "list", "acme")
    assert code == 0
    (shown,) = listed["galleries"][0]["applications"]
    assert shown["apiKeyHint"] == api_key_hint(regenerated["apiKey"])
    assert regenerated["apiKey"] not in json.dumps(listed)
    code, missing = _store_command(tmp_path, "gallery", "regenerate-key", "nothing")
    assert code == 1
    assert missing == {"message": "Application not found."}
