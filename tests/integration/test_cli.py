"""The ``facegate`` command as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.dataset import faces_dir

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
