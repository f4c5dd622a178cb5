"""An operator's own ONNX model, registered through the manifest."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.dataset import faces_dir
from extractor.loader import load_extractor
from extractor.models.catalog import ARCFACE_112_RGB_HALF, Preprocess, Role
from extractor.models.manifest import MANIFEST_NAME, ModelError, load_manifest
from extractor.models.register import register_model
from facegate.settings import Settings

SFACE_INPUT = Preprocess("RGB", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (112, 112))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A copy of the real model directory (files linked, manifest copied)."""
    source = Settings.from_env().models
    for path in source.iterdir():
        if path.suffix == ".onnx":
            (tmp_path / path.name).symlink_to(path)
    shutil.copyfile(source / MANIFEST_NAME, tmp_path / MANIFEST_NAME)
    return tmp_path


def _register_sface_copy(model_dir: Path, tmp_path: Path) -> Path:
    own = tmp_path / "my-model.onnx"
    shutil.copyfile(model_dir / "face_recognition_sface_2021dec.onnx", own)
    register_model(
        model_dir,
        name="my-sface",
        role=Role.RECOGNIZER,
        architecture="arcface-112",
        source_file=own,
        preprocess=SFACE_INPUT,
        licence="Apache-2.0",
        commercial_use=True,
        embedding_dim=128,
    )
    return own


def test_registered_recognizer_is_in_the_manifest_and_needs_a_calibration(
    model_dir: Path, tmp_path: Path
) -> None:
    _register_sface_copy(model_dir, tmp_path)
    entry = load_manifest(model_dir).entry("my-sface")
    assert entry.source["kind"] == "local"
    assert entry.embedding_dim == 128
    base = Settings.from_env()
    settings = replace(
        base, model_dir=model_dir, extractor=replace(base.extractor, recognizer="my-sface")
    )
    with pytest.raises(ModelError, match="no score/quality calibration"):
        load_extractor(settings)
    # The calibration tool can run it, and its templates are its own.
    extractor = load_extractor(settings, calibrating=True)
    try:
        photo = (faces_dir() / "test/face_recognition/obama/obama.jpg").read_bytes()
        face = extractor.extract(photo).faces[0]
        assert face.embedding is not None
        assert face.embedding.shape == (128,)
        assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-4
        assert extractor.model_id.startswith("my-sface@")
    finally:
        extractor.close()


def test_a_changed_registered_file_is_refused(model_dir: Path, tmp_path: Path) -> None:
    _register_sface_copy(model_dir, tmp_path)
    manifest = load_manifest(model_dir)
    entry = manifest.entry("my-sface")
    with (model_dir / entry.file).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        manifest.path_of(entry)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"architecture": "resnet"}, "architectures"),
        ({"embedding_dim": 0}, "embedding size"),
        ({"role": Role.POSE}, "only detectors and recognizers"),
        ({"name": "edgeface-s-gamma05"}, "shipped model"),
    ],
)
def test_bad_registrations_are_refused(
    model_dir: Path, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    own = tmp_path / "my-model.onnx"
    shutil.copyfile(model_dir / "face_recognition_sface_2021dec.onnx", own)
    arguments: dict[str, object] = {
        "name": "mine",
        "role": Role.RECOGNIZER,
        "architecture": "arcface-112",
        "source_file": own,
        "preprocess": ARCFACE_112_RGB_HALF,
        "licence": "MIT",
        "commercial_use": True,
        "embedding_dim": 512,
        **kwargs,
    }
    with pytest.raises(ModelError, match=message):
        register_model(model_dir, **arguments)  # type: ignore[arg-type]


def test_a_file_that_is_not_onnx_is_refused(model_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        register_model(
            model_dir,
            name="junk",
            role=Role.RECOGNIZER,
            architecture="arcface-112",
            source_file=junk,
            preprocess=ARCFACE_112_RGB_HALF,
            licence="MIT",
            commercial_use=True,
            embedding_dim=512,
        )
