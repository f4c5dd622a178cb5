"""Request validation of the endpoints: NEC-style InvalidRequest messages for missing,
mistyped and out-of-range fields; strict base64; unknown fields ignored."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest
from google.protobuf.message import Message

from facegate.errors import ErrorType, FacegateError
from facegate.v1 import applications_pb2, face_pb2, galleries_pb2, subjects_pb2
from gateway.rest.routes import match

IMAGE = base64.b64encode(b"\xff\xd8\xff\xe0 jpeg bytes!").decode()  # padded: 16 bytes


def _request(
    method: str, path: str, body: object, query: dict[str, list[str]] | None = None
) -> Message:
    found = match(method, path)
    assert found is not None
    return found[0].build(found[1], query or {}, body).request


def _register(body: object) -> Message:
    return _request("POST", "/v1.1/subjects", body)


def _search(body: object) -> face_pb2.FaceSearchRequest:
    request = _request("POST", "/v1.1/face/search", body)
    assert isinstance(request, face_pb2.FaceSearchRequest)
    return request


def _list(query: dict[str, list[str]]) -> Message:
    return _request("GET", "/v1.1/subjects", None, query)


def _message_of(call: Callable[[], object]) -> str:
    with pytest.raises(FacegateError) as caught:
        call()
    assert caught.value.error_type is ErrorType.INVALID_REQUEST
    return caught.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "face property must be provided."),
        (None, "face property must be provided."),
        ({"face": None}, "face property must be provided."),
        ({"face": ""}, "face property must be a base64 encoded image."),
        ({"face": 12}, "face property must be a base64 encoded image."),
        ({"face": "not base64!"}, "face property must be a base64 encoded image."),
        ({"face": IMAGE.rstrip("=")}, "face property must be a base64 encoded image."),
        (
            {"face": "data:image/jpeg;base64," + IMAGE},
            "face property must be a base64 encoded image.",
        ),
        ({"face": IMAGE[:8] + "\n" + IMAGE[8:]}, "face property must be a base64 encoded image."),
        ({"face": IMAGE.replace("/", "_")}, "face property must be a base64 encoded image."),
        ({"face": "YWJj="}, "face property must be a base64 encoded image."),
        ({"face": IMAGE[:-4] + "YWé="}, "face property must be a base64 encoded image."),
        ({"face": IMAGE + "YWJj"}, "face property must be a base64 encoded image."),
        ({"face": IMAGE, "tags": "passport"}, "tags must be an array of strings."),
        ({"face": IMAGE, "tags": ["passport", 3]}, "tags must be an array of strings."),
        ([IMAGE], "Request body must be a JSON object."),
        ("face", "Request body must be a JSON object."),
    ],
)
def test_register_body_errors(body: object, message: str) -> None:
    assert _message_of(lambda: _register(body)) == (message)


def test_register_body_ignores_unknown_fields_and_null_tags() -> None:
    request = _register({"face": IMAGE, "tags": None, "extra": {"any": 1}})
    assert request == subjects_pb2.SubjectsRegisterRequest(face=base64.b64decode(IMAGE))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "probe property must be provided."),
        ({"probe": IMAGE, "threshold": "7000"}, "threshold must be an integer."),
        ({"probe": IMAGE, "threshold": 7000.5}, "threshold must be an integer."),
        ({"probe": IMAGE, "threshold": True}, "threshold must be an integer."),
        ({"probe": IMAGE, "threshold": -1}, "threshold must be between 0 and 9999."),
        ({"probe": IMAGE, "threshold": 10000}, "threshold must be between 0 and 9999."),
        ({"probe": IMAGE, "limit": 0}, "limit must be between 1 and 50."),
        ({"probe": IMAGE, "limit": 51}, "limit must be between 1 and 50."),
        ({"probe": IMAGE, "limit": 2**40}, "limit is out of range."),
    ],
)
def test_search_body_errors(body: object, message: str) -> None:
    assert _message_of(lambda: _search(body)) == message


def test_search_body_limits_are_inclusive() -> None:
    for threshold, limit in ((0, 1), (9999, 50)):
        request = _search({"probe": IMAGE, "threshold": threshold, "limit": limit})
        assert (request.threshold, request.limit) == (threshold, limit)
    assert not _search({"probe": IMAGE}).HasField("threshold")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "faces property must be provided."),
        ({"faces": "%%%"}, "faces property must be a base64 encoded image."),
        ({"faces": IMAGE, "limit": 21}, "limit must be between 1 and 20."),
        ({"faces": IMAGE, "limit": 0}, "limit must be between 1 and 20."),
    ],
)
def test_extract_body_errors(body: object, message: str) -> None:
    assert _message_of(lambda: _request("POST", "/v1.1/face/extract", body)) == message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": ["-1"]}, "start must be at least 0."),
        ({"start": ["x"]}, "start must be an integer."),
        ({"start": [" 1"]}, "start must be an integer."),
        ({"length": ["0"]}, "length must be between 1 and 1000."),
        ({"length": ["1001"]}, "length must be between 1 and 1000."),
        ({"length": [""]}, "length must be an integer."),
        ({"dir": ["up"]}, "dir must be asc or desc."),
        ({"start": ["99999999999"]}, "start is out of range."),
    ],
)
def test_subjects_list_query_errors(query: dict[str, list[str]], message: str) -> None:
    assert _message_of(lambda: _list(query)) == message


def test_subjects_list_query_takes_the_last_of_repeated_keys() -> None:
    request = _list({"start": ["5", "10"], "dir": ["asc", "desc"], "other": ["x"]})
    assert request == subjects_pb2.SubjectsListRequest(
        start=10, dir=subjects_pb2.SORT_DIRECTION_DESC
    )
    assert not _list({}).HasField("length")


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "PUT",
            "/v1.1/tags/a",
            {},
            "newName property must be provided.",
        ),
        (
            "PUT",
            "/v1.1/tags/a",
            {"newName": 1},
            "newName must be a string.",
        ),
        (
            "POST",
            "/api/galleries",
            {"size": 10},
            "name property must be provided.",
        ),
        (
            "POST",
            "/api/galleries",
            {"name": "g"},
            "size property must be provided.",
        ),
        (
            "POST",
            "/api/galleries",
            {"name": "g", "size": "10"},
            "size must be an integer.",
        ),
        (
            "POST",
            "/api/galleries",
            {"name": "g", "size": 1, "faceMinimumQualityScore": "0.5"},
            "faceMinimumQualityScore must be a number.",
        ),
        (
            "PATCH",
            "/api/galleries/g",
            {"description": 5},
            "description must be a string.",
        ),
        (
            "POST",
            "/api/applications",
            {"name": "a"},
            "galleryId property must be provided.",
        ),
        (
            "POST",
            "/v1.1/jobs/bulkregister",
            {},
            "registrations property must be provided.",
        ),
        (
            "POST",
            "/v1.1/jobs/bulkregister",
            {"registrations": ["1.jpg"]},
            "registrations must be an array of objects.",
        ),
        (
            "POST",
            "/v1.1/jobs/bulkregister",
            {"registrations": [{"tags": []}]},
            "filename property must be provided.",
        ),
    ],
)
def test_other_body_errors(method: str, path: str, body: object, message: str) -> None:
    assert _message_of(lambda: _request(method, path, body)) == message


def test_ranges_the_gateway_checks_are_passed_through() -> None:
    """size < 1 and faceMinimumQualityScore outside 0.45..1 are the gateway's to refuse."""
    request = _request(
        "POST", "/api/galleries", {"name": "g", "size": 0, "faceMinimumQualityScore": 0.1}
    )
    assert isinstance(request, galleries_pb2.GalleriesCreateRequest)
    assert request.size == 0
    assert request.face_minimum_quality_score == pytest.approx(0.1)
    update = _request("PATCH", "/api/applications/a", {"name": "n"})
    assert isinstance(update, applications_pb2.ApplicationsUpdateRequest)
    assert update.HasField("name")
    assert not update.HasField("description")
    assert not update.HasField("face_minimum_quality_score")


def test_a_multi_megabyte_image_decodes_exactly() -> None:
    image = os.urandom(4_000_001)
    body = {"probe": base64.b64encode(image).decode()}
    assert _search(body).probe == image
