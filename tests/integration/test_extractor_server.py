"""The Extractor gRPC service over a real channel, started on an ephemeral port."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bench.dataset import faces_dir
from extractor.loader import load_extractor
from extractor.server import ExtractorDeps, create_server
from facegate.errors import ErrorType, FacegateError
from facegate.settings import Settings
from facegate.v1 import common_pb2, extractor_pb2, extractor_pb2_grpc

FACES = faces_dir()


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    base = Settings.from_env()
    settings = replace(base, host="127.0.0.1", extractor_port=0)
    extractor = load_extractor(settings)
    server, port = create_server(settings, ExtractorDeps(extractor))
    server.start()
    with grpc.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
    ) as chan:
        yield chan
    server.stop(grace=None).wait()
    extractor.close()


@pytest.fixture
def stub(channel: grpc.Channel) -> extractor_pb2_grpc.ExtractorStub:
    return extractor_pb2_grpc.ExtractorStub(channel)


def _photo(name: str) -> bytes:
    return (FACES / "test" / name).read_bytes()


def _error(call: object) -> FacegateError:
    assert isinstance(call, grpc.RpcError)
    return FacegateError.from_rpc_error(call)


def test_extract_returns_every_face_with_templates(stub: extractor_pb2_grpc.ExtractorStub) -> None:
    response = stub.Extract(
        extractor_pb2.ExtractorExtractRequest(
            image=_photo("compreface/_multi/016_8.jpg"), limit=20, with_templates=True
        )
    )
    assert len(response.faces) == 8
    assert (response.image_width, response.image_height) == (800, 533)
    for face in response.faces:
        assert face.template.model_id == response.model_id
        assert len(face.template.embedding) == 512
        assert face.attributes.face_area.right > face.attributes.face_area.left


def test_compare_scores_same_person_high(stub: extractor_pb2_grpc.ExtractorStub) -> None:
    templates = [
        stub.Extract(
            extractor_pb2.ExtractorExtractRequest(
                image=_photo(f"face_recognition/obama/{name}"),
                selection=extractor_pb2.FACE_SELECTION_SINGLE,
                with_templates=True,
            )
        )
        .faces[0]
        .template
        for name in ("obama.jpg", "obama2.jpg")
    ]
    response = stub.Compare(extractor_pb2.ExtractorCompareRequest(a=templates[0], b=templates[1]))
    assert response.score > 7000
    info = stub.Info(extractor_pb2.ExtractorInfoRequest())
    assert info.recognizer_model_id == templates[0].model_id
    assert info.default_threshold == 7000
    assert next(k.score for k in info.score_calibration) == 0


def test_errors_carry_the_nec_error_type(stub: extractor_pb2_grpc.ExtractorStub) -> None:
    cases = [
        (extractor_pb2.ExtractorExtractRequest(image=b""), ErrorType.INVALID_REQUEST),
        (extractor_pb2.ExtractorExtractRequest(image=b"GIF89a garbage"), ErrorType.INVALID_REQUEST),
        (
            extractor_pb2.ExtractorExtractRequest(
                image=_photo("dlib/_noface/dog.jpg"), selection=extractor_pb2.FACE_SELECTION_SINGLE
            ),
            ErrorType.NO_FACE,
        ),
        (
            extractor_pb2.ExtractorExtractRequest(
                image=_photo("face_recognition/_multi/two_people.jpg"),
                selection=extractor_pb2.FACE_SELECTION_SINGLE,
            ),
            ErrorType.MULTIPLE_FACES,
        ),
        (
            extractor_pb2.ExtractorExtractRequest(
                image=_photo("face_recognition/obama/obama.jpg"),
                selection=extractor_pb2.FACE_SELECTION_SINGLE,
                min_quality=1.0,
            ),
            ErrorType.POOR_QUALITY,
        ),
        (extractor_pb2.ExtractorExtractRequest(image=b"x", limit=21), ErrorType.INVALID_REQUEST),
    ]
    for request, expected in cases:
        with pytest.raises(grpc.RpcError) as caught:
            stub.Extract(request)
        error = _error(caught.value)
        assert error.error_type is expected, (expected, error)
        assert caught.value.code() is expected.grpc_status


def test_compare_refuses_templates_of_another_model(
    stub: extractor_pb2_grpc.ExtractorStub,
) -> None:
    good = (
        stub.Extract(
            extractor_pb2.ExtractorExtractRequest(
                image=_photo("face_recognition/obama/obama.jpg"), with_templates=True
            )
        )
        .faces[0]
        .template
    )
    foreign = common_pb2.Template(model_id="other@0", embedding=list(good.embedding))
    short = common_pb2.Template(model_id=good.model_id, embedding=[1.0, 0.0])
    zero = common_pb2.Template(model_id=good.model_id, embedding=[0.0] * len(good.embedding))
    for bad in (foreign, short, zero):
        with pytest.raises(grpc.RpcError) as caught:
            stub.Compare(extractor_pb2.ExtractorCompareRequest(a=good, b=bad))
        assert _error(caught.value).error_type is ErrorType.INVALID_REQUEST


def test_oversized_message_is_refused(stub: extractor_pb2_grpc.ExtractorStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Extract(extractor_pb2.ExtractorExtractRequest(image=b"\xff" * (40 << 20)))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_hostile_input_keeps_memory_bounded(stub: extractor_pb2_grpc.ExtractorStub) -> None:
    """Header-only bombs in parallel: refused from the header, no giant allocation."""
    import struct
    import zlib

    def png(width: int, height: int) -> bytes:
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        chunk = b"IHDR" + header
        return (
            b"\x89PNG\r\n\x1a\n"
            + struct.pack(">I", len(header))
            + chunk
            + struct.pack(">I", zlib.crc32(chunk))
            + b"\x00" * 64
        )

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bombs = [png(60000, 60000), png(16000, 16000), png(10000, 12000)] * 10

    def send(data: bytes) -> ErrorType:
        try:
            stub.Extract(extractor_pb2.ExtractorExtractRequest(image=data))
        except grpc.RpcError as error:
            return _error(error).error_type
        return ErrorType.INTERNAL

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(send, bombs))
    assert set(outcomes) == {ErrorType.INVALID_REQUEST}
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 512 * 1024, f"peak memory grew by {grown_kib} KiB"
    # The server still works afterwards.
    ok = stub.Extract(
        extractor_pb2.ExtractorExtractRequest(image=_photo("face_recognition/obama/obama.jpg"))
    )
    assert len(ok.faces) == 1


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="facegate.v1.Extractor"))
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert "facegate.v1.Extractor" in names
