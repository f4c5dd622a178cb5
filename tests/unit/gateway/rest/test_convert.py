"""The JSON <-> protobuf converters of the REST shim: one per message and direction, lossless
both ways, NEC's exact wire forms, NEC-style validation messages."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from facegate.errors import ErrorType, FacegateError
from facegate.v1 import (
    applications_pb2,
    common_pb2,
    events_pb2,
    face_pb2,
    galleries_pb2,
    health_pb2,
    jobs_pb2,
    subjects_pb2,
    tags_pb2,
)
from gateway.rest import (
    convert_applications,
    convert_common,
    convert_face,
    convert_galleries,
    convert_jobs,
    convert_subjects,
    convert_tags,
)

SERVICE_MODULES = (
    subjects_pb2,
    events_pb2,
    face_pb2,
    tags_pb2,
    galleries_pb2,
    applications_pb2,
    health_pb2,
    jobs_pb2,
)
CONVERTERS: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"gateway.rest.convert_{name}")
    for name in (
        "common",
        "subjects",
        "events",
        "face",
        "tags",
        "galleries",
        "applications",
        "health",
        "jobs",
    )
)

# Request fields that travel in the URL path, in the order the from_json takes them.
PATH_FIELDS: dict[str, tuple[str, ...]] = {
    "SubjectsUpdateRequest": ("id",),
    "SubjectsUnregisterRequest": ("id",),
    "EventsListRequest": ("subject_id",),
    "EventsRegisterRequest": ("subject_id",),
    "EventsUpdateRequest": ("subject_id", "event_id"),
    "EventsUnregisterRequest": ("subject_id", "event_id"),
    "TagsCreateRequest": ("name",),
    "TagsRenameRequest": ("old_name",),
    "TagsDeleteRequest": ("name",),
    "GalleriesGetRequest": ("id",),
    "GalleriesUpdateRequest": ("id",),
    "GalleriesDeleteRequest": ("id",),
    "ApplicationsGetRequest": ("id",),
    "ApplicationsUpdateRequest": ("id",),
    "ApplicationsDeleteRequest": ("id",),
    "JobsGetBulkRegisterProgressRequest": ("batch_id", "paging_id"),
}


def _public_messages() -> list[Descriptor]:
    """Every facegate.v1 message the public services use, nested ones included."""
    found: dict[str, Descriptor] = {}

    def visit(descriptor: Descriptor) -> None:
        if descriptor.full_name in found or not descriptor.full_name.startswith("facegate.v1."):
            return
        found[descriptor.full_name] = descriptor
        for field in descriptor.fields:
            if field.message_type is not None:
                visit(field.message_type)

    for module in SERVICE_MODULES:
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            visit(descriptor)
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                visit(method.input_type)
                visit(method.output_type)
    return sorted(found.values(), key=lambda descriptor: descriptor.full_name)


MESSAGES = _public_messages()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _converter(name: str) -> Callable[..., Any]:
    for module in CONVERTERS:
        function = getattr(module, name, None)
        if callable(function):
            return function  # type: ignore[no-any-return]
    raise AssertionError(f"no converter {name} in gateway/rest/convert_*.py")


def _from_json(message: Message, rendered: object) -> Message:
    """Calls the message's from_json with its path fields and, if it takes one, the JSON."""
    name = type(message).DESCRIPTOR.name
    function = _converter(f"{_snake(name)}_from_json")
    path = [getattr(message, field) for field in PATH_FIELDS.get(name, ())]
    parameters = list(inspect.signature(function).parameters)
    takes_json = len(parameters) == len(path) + 1
    if takes_json:
        assert parameters[-1] in ("body", "query"), f"{function.__name__}{parameters}"
    else:
        assert len(parameters) == len(path), f"{function.__name__}{parameters}"
        assert rendered is None, f"{name} renders JSON that its from_json cannot take"
    result = function(*path, rendered) if takes_json else function(*path)
    assert isinstance(result, type(message))
    return result


def _to_json(message: Message) -> object:
    return _converter(f"{_snake(type(message).DESCRIPTOR.name)}_to_json")(message)


def test_the_walk_finds_the_public_messages() -> None:
    names = {descriptor.name for descriptor in MESSAGES}
    assert {"FaceAttributes", "Box", "Point", "SubjectEntry", "JobRecord", "Gallery"} <= names
    assert {"Template", "ErrorDetail"}.isdisjoint(names)  # used by no public service
    assert len(names) == len(MESSAGES)


@pytest.mark.parametrize("descriptor", MESSAGES, ids=lambda descriptor: descriptor.name)
def test_every_message_has_both_converters(descriptor: Descriptor) -> None:
    _converter(f"{_snake(descriptor.name)}_from_json")
    _converter(f"{_snake(descriptor.name)}_to_json")


@pytest.mark.parametrize("descriptor", MESSAGES, ids=lambda descriptor: descriptor.name)
def test_round_trip_of_a_fully_populated_message(
    descriptor: Descriptor, populate: Callable[[Descriptor, int], Message]
) -> None:
    message = populate(descriptor, 1)
    rendered = _to_json(message)
    wire = json.loads(json.dumps(rendered))  # JSON-ready: no bytes, tuples or numpy
    assert _from_json(message, wire) == message


@pytest.mark.parametrize("descriptor", MESSAGES, ids=lambda descriptor: descriptor.name)
def test_to_json_renders_every_field(
    descriptor: Descriptor,
    populate: Callable[[Descriptor, int], Message],
    fill_field: Callable[[Message, FieldDescriptor, int], None],
) -> None:
    """Changing any non-path field changes the JSON, so none is dropped silently."""
    message = populate(descriptor, 1)
    rendered = _to_json(message)
    for field in descriptor.fields:
        if field.name in PATH_FIELDS.get(descriptor.name, ()):
            continue
        changed = populate(descriptor, 1)
        if field.message_type is not None or field.is_repeated:
            changed.ClearField(field.name)
        else:
            fill_field(changed, field, 2)
        assert _to_json(changed) != rendered, f"{descriptor.name}.{field.name} is not rendered"


# ------------------------------------------------------------------ exact wire forms

SPEC_ATTRIBUTES = {
    "faceArea": {"left": "161", "top": "156", "right": "318", "bottom": "313"},
    "headArea": {"left": "131", "top": "86", "right": "345", "bottom": "343"},
    "rightEyeCenter": {"x": "195", "y": "198"},
    "leftEyeCenter": {"x": "276", "y": "191"},
    "frontalFaceScore": "0.569824",
    "faceRoll": "4.93922",
    "facePan": "-9.34863",
    "faceTilt": "7.613",
    "faceScore": "0.999591",
    "faceQualityScore": "0.86541",
}


def spec_attributes() -> common_pb2.FaceAttributes:
    return common_pb2.FaceAttributes(
        face_area=common_pb2.Box(left=161, top=156, right=318, bottom=313),
        head_area=common_pb2.Box(left=131, top=86, right=345, bottom=343),
        right_eye_center=common_pb2.Point(x=195, y=198),
        left_eye_center=common_pb2.Point(x=276, y=191),
        frontal_face_score=0.569824,
        face_roll=4.93922,
        face_pan=-9.34863,
        face_tilt=7.613,
        face_score=0.999591,
        face_quality_score=0.86541,
    )


def test_attributes_render_as_nec_strings() -> None:
    assert convert_common.face_attributes_to_json(spec_attributes()) == SPEC_ATTRIBUTES
    assert convert_common.face_attributes_from_json(SPEC_ATTRIBUTES) == spec_attributes()


@pytest.mark.parametrize(
    ("value", "text"),
    [(-0.0, "-0"), (0.0, "0"), (1.0, "1"), (0.749248, "0.749248"), (-3.17983, "-3.17983")],
)
def test_attribute_numbers_are_c_percent_g(value: float, text: str) -> None:
    attributes = common_pb2.FaceAttributes(face_roll=value)
    assert convert_common.face_attributes_to_json(attributes)["faceRoll"] == text


def test_search_response_matches_the_spec_example() -> None:
    response = face_pb2.FaceSearchResponse(
        candidates=[
            face_pb2.Candidate(
                id="necidguid-fcdf-49eb-9182-5a6825ed2a3b",
                score=8200,
                events=[
                    face_pb2.CandidateEvent(id="eventguid-caf3-4e0f-92b9-101a9e73a3ee", score=8200),
                    face_pb2.CandidateEvent(id="eventguid-f99a-41dc-8eb1-cd7b1b3dcdec", score=8000),
                ],
            ),
            face_pb2.Candidate(
                id="necidguid-0d05-4052-a44f-83f6b243e70b",
                score=7600,
                events=[
                    face_pb2.CandidateEvent(id="eventguid-f8bc-47d1-a976-7e8b953da664", score=7600)
                ],
            ),
        ],
        attributes=spec_attributes(),
    )
    expected = {
        "candidates": [
            {
                "id": "necidguid-fcdf-49eb-9182-5a6825ed2a3b",
                "score": 8200,
                "events": [
                    {"id": "eventguid-caf3-4e0f-92b9-101a9e73a3ee", "score": 8200},
                    {"id": "eventguid-f99a-41dc-8eb1-cd7b1b3dcdec", "score": 8000},
                ],
            },
            {
                "id": "necidguid-0d05-4052-a44f-83f6b243e70b",
                "score": 7600,
                "events": [{"id": "eventguid-f8bc-47d1-a976-7e8b953da664", "score": 7600}],
            },
        ],
        "attributes": SPEC_ATTRIBUTES,
    }
    assert convert_face.face_search_response_to_json(response) == expected
    assert convert_face.face_search_response_from_json(expected) == response


SPEC_SUBJECTS = {
    "subjects": [
        {
            "id": "necidguid-fcdf-49eb-9182-5a6825ed2a3b",
            "eventId": "eventguid-caf3-4e0f-92b9-101a9e73a3ee",
            "status": "A",
            "lastUpdated": "2018-12-18T00:27:56.427+00:00",
        },
        {
            "id": "necidguid-fcdf-49eb-9182-5a6825ed2a3b",
            "eventId": "eventguid-f99a-41dc-8eb1-cd7b1b3dcdec",
            "status": "D",
            "lastUpdated": "2019-02-28T18:11:49.157+00:00",
        },
        {
            "id": "necidguid-fcdf-49eb-9182-5a6825ed2a3b",
            "eventId": "eventguid-f99a-41dc-8eb1-cd7b1b3dcdec",
            "status": "A",
            "lastUpdated": "2019-02-28T18:11:49.174+00:00",
        },
    ],
    "total": 3,
}


def test_subjects_list_matches_the_spec_example() -> None:
    response = convert_subjects.subjects_list_response_from_json(SPEC_SUBJECTS)
    assert response.subjects[0].last_updated.seconds == 1545092876
    assert response.subjects[0].last_updated.nanos == 427_000_000
    assert response.subjects[1].status == subjects_pb2.EVENT_STATUS_DELETED
    assert convert_subjects.subjects_list_response_to_json(response) == SPEC_SUBJECTS


def test_last_updated_truncates_to_milliseconds_in_utc() -> None:
    entry = convert_subjects.subject_entry_from_json(
        {"id": "s", "eventId": "e", "status": "A", "lastUpdated": "2019-02-28T20:11:49.1749+02:00"}
    )
    assert entry.last_updated.seconds == 1551377509
    assert convert_subjects.subject_entry_to_json(entry)["lastUpdated"] == (
        "2019-02-28T18:11:49.174+00:00"
    )


def test_unset_event_status_is_a_server_error() -> None:
    with pytest.raises(FacegateError) as caught:
        convert_subjects.subject_entry_to_json(subjects_pb2.SubjectEntry(id="s"))
    assert caught.value.error_type is ErrorType.INTERNAL


def test_tags_list_is_a_bare_array() -> None:
    response = tags_pb2.TagsListResponse(names=["passport", "licence"])
    assert convert_tags.tags_list_response_to_json(response) == ["passport", "licence"]


def test_float32_fields_render_as_the_shortest_decimal() -> None:
    application = applications_pb2.Application(face_minimum_quality_score=0.8)
    rendered = convert_applications.application_to_json(application)
    assert json.dumps(rendered["faceMinimumQualityScore"]) == "0.8"


def test_gallery_create_answers_flat_with_the_api_key() -> None:
    response = galleries_pb2.GalleriesCreateResponse(
        gallery=galleries_pb2.Gallery(
            id="galleryguid-28da", name="Y10Students", description="Year 10 Students", size=1000
        ),
        api_key="k3y",
    )
    rendered = convert_galleries.galleries_create_response_to_json(
        response, convert_galleries.GALLERY_CREATE_KEYS
    )
    assert rendered == {
        "id": "galleryguid-28da",
        "name": "Y10Students",
        "description": "Year 10 Students",
        "size": 1000,
        "apiKey": "k3y",
    }


def test_job_record_renders_attempts_and_attributes_as_strings() -> None:
    record = jobs_pb2.JobRecord(
        id="51448BB9",
        filename="1.jpg",
        attempts=1,
        register_status=jobs_pb2.REGISTER_STATUS_FAILED,
        reason="Image too small",
        status=jobs_pb2.JOB_RECORD_STATUS_PROCESSED,
    )
    rendered = convert_jobs.job_record_to_json(record)
    assert rendered["attempts"] == "1"
    assert rendered["attributesJson"] == ""
    assert rendered["registerStatus"] == "Failed"
    record.attributes.CopyFrom(spec_attributes())
    attributes_json = convert_jobs.job_record_to_json(record)["attributesJson"]
    assert isinstance(attributes_json, str)
    assert json.loads(attributes_json) == SPEC_ATTRIBUTES


def test_error_body_matches_the_spec_example() -> None:
    with pytest.raises(FacegateError) as caught:
        convert_subjects.subjects_register_request_from_json({"tags": ["passport"]})
    assert caught.value.nec_body() == {
        "message": "face property must be provided.",
        "errorCode": 1001,
        "errorType": "InvalidRequest",
    }
