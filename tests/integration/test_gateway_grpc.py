"""The public gRPC API with the generated stubs: what internal services call directly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2 as grpc_health_pb2
from grpc_health.v1 import health_pb2_grpc as grpc_health_pb2_grpc

from bench.dataset import faces_dir
from facegate.contract import ACCESS_KEY_METADATA, API_KEY_METADATA
from facegate.errors import ErrorType, FacegateError
from facegate.rpc_auth import RpcSigner, sign_call
from facegate.v1 import (
    events_pb2,
    events_pb2_grpc,
    face_pb2,
    face_pb2_grpc,
    galleries_pb2,
    galleries_pb2_grpc,
    health_pb2,
    health_pb2_grpc,
    subjects_pb2,
    subjects_pb2_grpc,
    tags_pb2,
    tags_pb2_grpc,
)
from gateway.tenancy import NewTenant, create_tenant
from tests.support.stack import Stack, running_stack

FACES = faces_dir() / "test"
OBAMA = FACES / "face_recognition" / "obama"
BIDEN = FACES / "face_recognition" / "biden" / "biden.jpg"

Metadata = tuple[tuple[str, str | bytes], ...]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("grpc-stack")) as running:
        yield running


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(
        stack.grpc_address, options=[("grpc.max_send_message_length", 32 << 20)]
    ) as chan:
        yield chan


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> NewTenant:
    return create_tenant(stack.deps.database, stack.deps.secrets, "grpc-tenant")


def signed(
    channel: grpc.Channel,
    tenant: NewTenant,
    *,
    secret: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> grpc.Channel:
    """``channel`` with every call signed by ``tenant``'s key pair (or another secret)."""
    signer = RpcSigner(
        tenant.tenant.access_key_id,
        tenant.secret_access_key if secret is None else secret,
        clock=clock,
    )
    return grpc.intercept_channel(channel, signer)


def new_gallery(channel: grpc.Channel, tenant: NewTenant, name: str, size: int = 50) -> Metadata:
    created = galleries_pb2_grpc.GalleriesStub(signed(channel, tenant)).Create(
        galleries_pb2.GalleriesCreateRequest(name=name, size=size)
    )
    return ((API_KEY_METADATA, created.api_key),)


def error_of(call: pytest.ExceptionInfo[grpc.RpcError]) -> FacegateError:
    return FacegateError.from_rpc_error(call.value)


def test_register_search_verify_unregister(channel: grpc.Channel, tenant: NewTenant) -> None:
    key = new_gallery(channel, tenant, "grpc-main")
    subjects = subjects_pb2_grpc.SubjectsStub(channel)
    face = face_pb2_grpc.FaceStub(channel)
    registered = subjects.Register(
        subjects_pb2.SubjectsRegisterRequest(face=(OBAMA / "obama.jpg").read_bytes()), metadata=key
    )
    assert registered.attributes.face_quality_score > 0.45
    extra = events_pb2_grpc.EventsStub(channel).Register(
        events_pb2.EventsRegisterRequest(
            subject_id=registered.id, face=(OBAMA / "obama1.jpg").read_bytes()
        ),
        metadata=key,
    )
    found = face.Search(
        face_pb2.FaceSearchRequest(probe=(OBAMA / "obama2.jpg").read_bytes(), limit=5),
        metadata=key,
    )
    assert [c.id for c in found.candidates] == [registered.id]
    assert {e.id for e in found.candidates[0].events} == {registered.event_id, extra.event_id}
    verified = face.VerifySubject(
        face_pb2.FaceVerifySubjectRequest(
            id=registered.id, probe=(OBAMA / "obama3.jpg").read_bytes()
        ),
        metadata=key,
    )
    assert verified.score >= 7000
    impostor = face.VerifySubject(
        face_pb2.FaceVerifySubjectRequest(id=registered.id, probe=BIDEN.read_bytes()),
        metadata=key,
    )
    assert impostor.score < 7000  # over gRPC the score is the answer; REST turns it into 404
    subjects.Unregister(subjects_pb2.SubjectsUnregisterRequest(id=registered.id), metadata=key)
    after = face.Search(
        face_pb2.FaceSearchRequest(probe=(OBAMA / "obama2.jpg").read_bytes()), metadata=key
    )
    assert list(after.candidates) == []
    with pytest.raises(grpc.RpcError) as gone:
        subjects.Unregister(subjects_pb2.SubjectsUnregisterRequest(id=registered.id), metadata=key)
    assert error_of(gone).error_type is ErrorType.NOT_FOUND


def test_callers_without_a_valid_key_are_refused(channel: grpc.Channel, tenant: NewTenant) -> None:
    tags = tags_pb2_grpc.TagsStub(channel)
    for metadata in ((), ((API_KEY_METADATA, "not-a-key"),)):
        with pytest.raises(grpc.RpcError) as refused:
            tags.List(tags_pb2.TagsListRequest(), metadata=metadata)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert error_of(refused).message == "Forbidden"
    listing = galleries_pb2.GalleriesListRequest()
    assert galleries_pb2_grpc.GalleriesStub(signed(channel, tenant)).List(listing) is not None
    wrong_secret = galleries_pb2_grpc.GalleriesStub(signed(channel, tenant, secret="x"))
    with pytest.raises(grpc.RpcError) as bad_secret:
        wrong_secret.List(listing)
    assert error_of(bad_secret).error_type is ErrorType.FORBIDDEN
    assert error_of(bad_secret).message.startswith("The request signature we calculated")
    an_hour_ago = signed(channel, tenant, clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(grpc.RpcError) as stale:
        galleries_pb2_grpc.GalleriesStub(an_hour_ago).List(listing)
    assert error_of(stale).message.startswith("Signature expired: ")
    # A signature covers its request's bytes: replayed on another request, it fails.
    proof = sign_call(
        "/facegate.v1.Galleries/List",
        listing,
        access_key_id=tenant.tenant.access_key_id,
        secret=tenant.secret_access_key,
        now=datetime.now(UTC),
    )
    galleries = galleries_pb2_grpc.GalleriesStub(channel)
    assert galleries.List(listing, metadata=proof) is not None
    with pytest.raises(grpc.RpcError) as replayed:
        galleries.Create(galleries_pb2.GalleriesCreateRequest(name="replayed"), metadata=proof)
    assert error_of(replayed).message.startswith("The request signature we calculated")
    unsigned = ((ACCESS_KEY_METADATA, tenant.tenant.access_key_id),)
    with pytest.raises(grpc.RpcError) as no_signature:
        galleries.List(listing, metadata=unsigned)
    assert error_of(no_signature).error_type is ErrorType.FORBIDDEN


def test_gallery_size_and_quality_are_enforced(channel: grpc.Channel, tenant: NewTenant) -> None:
    key = new_gallery(channel, tenant, "grpc-tiny", size=1)
    subjects = subjects_pb2_grpc.SubjectsStub(channel)
    first = subjects.Register(
        subjects_pb2.SubjectsRegisterRequest(face=BIDEN.read_bytes()), metadata=key
    )
    with pytest.raises(grpc.RpcError) as full:
        subjects.Register(
            subjects_pb2.SubjectsRegisterRequest(face=(OBAMA / "obama.jpg").read_bytes()),
            metadata=key,
        )
    assert error_of(full).error_type is ErrorType.INVALID_REQUEST
    assert "full" in error_of(full).message
    # A deleted event's slot is recycled for the next registration.
    subjects.Unregister(subjects_pb2.SubjectsUnregisterRequest(id=first.id), metadata=key)
    subjects.Register(
        subjects_pb2.SubjectsRegisterRequest(face=(OBAMA / "obama.jpg").read_bytes()),
        metadata=key,
    )
    with pytest.raises(grpc.RpcError) as too_low:
        galleries_pb2_grpc.GalleriesStub(signed(channel, tenant)).Create(
            galleries_pb2.GalleriesCreateRequest(
                name="low", size=5, face_minimum_quality_score=0.3
            ),
        )
    assert error_of(too_low).error_type is ErrorType.INVALID_REQUEST


def test_poor_quality_faces_are_not_registered(channel: grpc.Channel, tenant: NewTenant) -> None:
    created = galleries_pb2_grpc.GalleriesStub(signed(channel, tenant)).Create(
        galleries_pb2.GalleriesCreateRequest(
            name="grpc-strict", size=5, face_minimum_quality_score=0.999
        ),
    )
    with pytest.raises(grpc.RpcError) as poor:
        subjects_pb2_grpc.SubjectsStub(channel).Register(
            subjects_pb2.SubjectsRegisterRequest(face=BIDEN.read_bytes()),
            metadata=((API_KEY_METADATA, created.api_key),),
        )
    assert error_of(poor).error_type is ErrorType.POOR_QUALITY
    assert error_of(poor).error_type.error_code == 2002


def test_duplicate_gallery_names_are_refused(channel: grpc.Channel, tenant: NewTenant) -> None:
    galleries = galleries_pb2_grpc.GalleriesStub(signed(channel, tenant))
    galleries.Create(galleries_pb2.GalleriesCreateRequest(name="twice", size=5))
    with pytest.raises(grpc.RpcError) as duplicate:
        galleries.Create(galleries_pb2.GalleriesCreateRequest(name="twice", size=5))
    assert error_of(duplicate).error_type is ErrorType.DUPLICATE
    assert error_of(duplicate).error_type.error_code == 1002


def test_health_and_standard_health(channel: grpc.Channel) -> None:
    assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status == "OK"
    standard = grpc_health_pb2_grpc.HealthStub(channel).Check(
        grpc_health_pb2.HealthCheckRequest(service="facegate.v1.Subjects")
    )
    assert standard.status == grpc_health_pb2.HealthCheckResponse.SERVING


def test_unknown_tags_are_refused_before_extraction(
    channel: grpc.Channel, tenant: NewTenant
) -> None:
    key = new_gallery(channel, tenant, "grpc-tags")
    with pytest.raises(grpc.RpcError) as unknown:
        face_pb2_grpc.FaceStub(channel).Search(
            face_pb2.FaceSearchRequest(probe=b"not even an image", tags=["nope"]), metadata=key
        )
    assert error_of(unknown).error_type is ErrorType.INVALID_REQUEST
    assert "nope" in error_of(unknown).message


def test_an_image_over_the_limit_is_an_invalid_request(stack: Stack, tenant: NewTenant) -> None:
    """The gateway takes messages the extractor would refuse at its transport; the caller
    hears that the image is too large, not that the extractor is unavailable."""
    limit = stack.settings.extractor.max_image_bytes
    with grpc.insecure_channel(
        stack.grpc_address, options=[("grpc.max_send_message_length", 2 * limit)]
    ) as large:
        key = new_gallery(large, tenant, "grpc-large")
        with pytest.raises(grpc.RpcError) as refused:
            face_pb2_grpc.FaceStub(large).Search(
                face_pb2.FaceSearchRequest(probe=b"\xff" * (limit + 1)), metadata=key
            )
    assert error_of(refused).error_type is ErrorType.INVALID_REQUEST
    assert error_of(refused).message == (
        f"image is {limit + 1} bytes, more than the limit of {limit} bytes"
    )
