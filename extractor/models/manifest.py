"""The model manifest: what is in the model directory and how to run it.

``manifest.json`` lists every model file with its sha256, licence, input spec,
embedding size and score calibration. The extractor loads models only through it
and re-checks each file's sha256 at load time, so a swapped or damaged file is a
clear error rather than silently different templates.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from extractor.models.catalog import Preprocess, Role
from extractor.quality import QualityModel

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


class ModelError(RuntimeError):
    """A model file or the manifest is missing, damaged or inconsistent (operator error)."""


@dataclass(frozen=True)
class ScoreCalibration:
    """Piecewise-linear, strictly increasing map from cosine similarity to a 0..9999 score."""

    knots: tuple[tuple[float, int], ...]
    dataset: str
    fmr_at_knots: tuple[float, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoreCalibration:
        return cls(
            knots=tuple((float(s), int(v)) for s, v in data["knots"]),
            dataset=str(data["dataset"]),
            fmr_at_knots=tuple(float(f) for f in data["fmr_at_knots"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "knots": [list(knot) for knot in self.knots],
            "dataset": self.dataset,
            "fmr_at_knots": list(self.fmr_at_knots),
        }


@dataclass(frozen=True)
class ModelEntry:
    name: str
    role: Role
    architecture: str
    file: str
    sha256: str
    source: dict[str, str]
    licence: str
    commercial_use: bool
    upstream: str
    preprocess: Preprocess
    embedding_dim: int = 0
    transform: str = "none"
    aux: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    score_calibration: ScoreCalibration | None = None
    quality_model: QualityModel | None = None

    @property
    def model_id(self) -> str:
        """Names the embedding space: templates of different ids are never compared."""
        return f"{self.name}@{self.sha256[:12]}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelEntry:
        pre = data["preprocess"]
        calibration = data.get("score_calibration")
        quality = data.get("quality_model")
        return cls(
            name=str(data["name"]),
            role=Role(data["role"]),
            architecture=str(data["architecture"]),
            file=str(data["file"]),
            sha256=str(data["sha256"]),
            source={str(k): str(v) for k, v in data["source"].items()},
            licence=str(data["licence"]),
            commercial_use=bool(data["commercial_use"]),
            upstream=str(data.get("upstream", "")),
            preprocess=Preprocess(
                channel_order=str(pre["channel_order"]),
                mean=_triple(pre["mean"]),
                std=_triple(pre["std"]),
                size=(int(pre["size"][0]), int(pre["size"][1])) if pre.get("size") else None,
            ),
            embedding_dim=int(data.get("embedding_dim", 0)),
            transform=str(data.get("transform", "none")),
            aux=data.get("aux", {}),
            score_calibration=ScoreCalibration.from_json(calibration) if calibration else None,
            quality_model=QualityModel.from_json(quality) if quality else None,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["role"] = str(self.role)
        data["score_calibration"] = (
            self.score_calibration.to_json() if self.score_calibration else None
        )
        data["quality_model"] = self.quality_model.to_json() if self.quality_model else None
        data["model_id"] = self.model_id
        return data


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


@dataclass(frozen=True)
class Manifest:
    directory: Path
    defaults: dict[str, str]
    models: tuple[ModelEntry, ...]

    def entry(self, name: str) -> ModelEntry:
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models) or "none"
        raise ModelError(
            f"model {name!r} is not in {self.directory / MANIFEST_NAME} (has: {known})"
        )

    def default(self, role: Role) -> ModelEntry:
        name = self.defaults.get(str(role))
        if name is None:
            raise ModelError(f"the manifest names no default {role}")
        return self.entry(name)

    def path_of(self, entry: ModelEntry, *, verify: bool = True) -> Path:
        """The model file, after checking that its bytes are the ones the manifest pins."""
        path = self.directory / entry.file
        if not path.is_file():
            raise ModelError(f"model file {path} is missing: run `facegate models fetch`")
        if verify:
            actual = sha256_file(path)
            if actual != entry.sha256:
                raise ModelError(
                    f"model file {path} has sha256 {actual}, the manifest pins {entry.sha256}: "
                    "the file was modified or damaged; delete it and run `facegate models fetch`"
                )
        return path

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "defaults": dict(sorted(self.defaults.items())),
            "models": [m.to_json() for m in self.models],
        }

    def with_entry(self, entry: ModelEntry) -> Manifest:
        others = tuple(m for m in self.models if m.name != entry.name)
        return Manifest(self.directory, self.defaults, (*others, entry))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ModelError(f"no model manifest at {path}: run `facegate models fetch`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != MANIFEST_FORMAT:
            raise ModelError(
                f"{path} has format {data.get('format')!r}, expected {MANIFEST_FORMAT}"
            )
        models = tuple(ModelEntry.from_json(m) for m in data["models"])
        defaults = {str(k): str(v) for k, v in data["defaults"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path} is not a valid model manifest: {exc}") from exc
    return Manifest(directory, defaults, models)


def write_manifest(manifest: Manifest) -> Path:
    """Write atomically, so a crash never leaves a half-written manifest."""
    manifest.directory.mkdir(parents=True, exist_ok=True)
    target = manifest.directory / MANIFEST_NAME
    write_atomic(target, (json.dumps(manifest.to_json(), indent=2) + "\n").encode())
    return target


def write_atomic(target: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
