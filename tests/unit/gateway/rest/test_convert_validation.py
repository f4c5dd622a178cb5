"""Request validation of the JSON converters: NEC-style InvalidRequest messages for missing,
mistyped and out-of-range fields; strict base64; unknown fields ignored."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest

from facegate.errors import ErrorType, FacegateError
from facegate.v1 import subjects_pb2
from gateway.rest import (
    convert_applications,
    convert_face,
    convert_galleries,
    convert_jobs,
    convert_subjects,
    convert_tags,
)

IMAGE = base64.b64encode(b"\xff\xd8\xff\xe0 jpeg bytes!").decode()  # padded: 16 bytes


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
    assert _message_of(lambda: convert_subjects.subjects_register_request_from_json(body)) == (
        message
    )


def test_register_body_ignores_unknown_fields_and_null_tags() -> None:
    request = convert_subjects.subjects_register_request_from_json(
        {"face": IMAGE, "tags": None, "extra": {"any": 1}}
    )
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
    assert _message_of(lambda: convert_face.face_search_request_from_json(body)) == message


def test_search_body_limits_are_inclusive() -> None:
    for threshold, limit in ((0, 1), (9999, 50)):
        request = convert_face.face_search_request_from_json(
            {"probe": IMAGE, "threshold": threshold, "limit": limit}
        )
        assert (request.threshold, request.limit) == (threshold, limit)
    assert not convert_face.face_search_request_from_json({"probe": IMAGE}).HasField("threshold")


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
    assert _message_of(lambda: convert_face.face_extract_request_from_json(body)) == message


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
    assert _message_of(lambda: convert_subjects.subjects_list_request_from_json(query)) == message


def test_subjects_list_query_takes_the_last_of_repeated_keys() -> None:
    request = convert_subjects.subjects_list_request_from_json(
        {"start": ["5", "10"], "dir": ["asc", "desc"], "other": ["x"]}
    )
    assert request == subjects_pb2.SubjectsListRequest(
        start=10, dir=subjects_pb2.SORT_DIRECTION_DESC
    )
    assert not convert_subjects.subjects_list_request_from_json({}).HasField("length")


@pytest.mark.parametrize(
    ("function", "args", "message"),
    [
        (
            convert_tags.tags_rename_request_from_json,
            ("a", {}),
            "newName property must be provided.",
        ),
        (
            convert_tags.tags_rename_request_from_json,
            ("a", {"newName": 1}),
            "newName must be a string.",
        ),
        (
            convert_galleries.galleries_create_request_from_json,
            ({"size": 10},),
            "name property must be provided.",
        ),
        (
            convert_galleries.galleries_create_request_from_json,
            ({"name": "g"},),
            "size property must be provided.",
        ),
        (
            convert_galleries.galleries_create_request_from_json,
            ({"name": "g", "size": "10"},),
            "size must be an integer.",
        ),
        (
            convert_galleries.galleries_create_request_from_json,
            ({"name": "g", "size": 1, "faceMinimumQualityScore": "0.5"},),
            "faceMinimumQualityScore must be a number.",
        ),
        (
            convert_galleries.galleries_update_request_from_json,
            ("g", {"description": 5}),
            "description must be a string.",
        ),
        (
            convert_applications.applications_create_request_from_json,
            ({"name": "a"},),
            "galleryId property must be provided.",
        ),
        (
            convert_jobs.jobs_bulk_register_request_from_json,
            ({},),
            "registrations property must be provided.",
        ),
        (
            convert_jobs.jobs_bulk_register_request_from_json,
            ({"registrations": ["1.jpg"]},),
            "registrations must be an array of objects.",
        ),
        (
            convert_jobs.jobs_bulk_register_request_from_json,
            ({"registrations": [{"tags": []}]},),
            "filename property must be provided.",
        ),
    ],
)
def test_other_body_errors(
    function: Callable[..., object], args: tuple[object, ...], message: str
) -> None:
    assert _message_of(lambda: function(*args)) == message


def test_ranges_the_gateway_checks_are_passed_through() -> None:
    """size < 1 and faceMinimumQualityScore outside 0.45..1 are the gateway's to refuse."""
    request = convert_galleries.galleries_create_request_from_json(
        {"name": "g", "size": 0, "faceMinimumQualityScore": 0.1}
    )
    assert request.size == 0
    assert request.face_minimum_quality_score == pytest.approx(0.1)
    update = convert_applications.applications_update_request_from_json("a", {"name": "n"})
    assert update.HasField("name")
    assert not update.HasField("description")
    assert not update.HasField("face_minimum_quality_score")


def test_a_multi_megabyte_image_decodes_exactly() -> None:
    image = os.urandom(4_000_001)
    body = {"probe": base64.b64encode(image).decode()}
    assert convert_face.face_search_request_from_json(body).probe == image
