"""``facegate models register``: add an operator's own ONNX model to the manifest.

The file is copied into the model directory, its sha256 recorded, and an entry with
``source.kind = "local"`` added; ``facegate models fetch`` keeps such entries. A
recognizer registered this way still needs a calibration (``python -m bench.calibrate
--recognizer NAME``) before the extractor will use it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from extractor.models.catalog import Preprocess, Role
from extractor.models.manifest import (
    ModelEntry,
    ModelError,
    load_manifest,
    sha256_file,
    write_manifest,
)

ARCHITECTURES = {
    Role.DETECTOR: ("retinaface", "yunet"),
    Role.RECOGNIZER: ("arcface-112",),
}


def register_model(
    model_dir: Path,
    *,
    name: str,
    role: Role,
    architecture: str,
    source_file: Path,
    preprocess: Preprocess,
    licence: str,
    commercial_use: bool,
    embedding_dim: int = 0,
) -> ModelEntry:
    manifest = load_manifest(model_dir)
    if role not in ARCHITECTURES:
        raise ModelError(f"only detectors and recognizers can be registered, not a {role}")
    if architecture not in ARCHITECTURES[role]:
        raise ModelError(
            f"a {role} must have one of the architectures {ARCHITECTURES[role]}, "
            f"not {architecture!r}"
        )
    if role is Role.RECOGNIZER and embedding_dim <= 0:
        raise ModelError("a recognizer needs its embedding size (--embedding-dim)")
    if not source_file.is_file():
        raise ModelError(f"{source_file} is not a file")
    if any(m.name == name and m.source.get("kind") != "local" for m in manifest.models):
        raise ModelError(f"{name!r} is a shipped model; choose another name")
    _check_onnx(source_file)
    target = model_dir / f"local-{name}.onnx"
    shutil.copyfile(source_file, target)
    entry = ModelEntry(
        name=name,
        role=role,
        architecture=architecture,
        file=target.name,
        sha256=sha256_file(target),
        source={"kind": "local", "path": str(source_file.resolve())},
        licence=licence,
        commercial_use=commercial_use,
        upstream="",
        preprocess=preprocess,
        embedding_dim=embedding_dim,
    )
    write_manifest(manifest.with_entry(entry))
    return entry


def _check_onnx(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a valid ONNX model: {exc}") from exc
