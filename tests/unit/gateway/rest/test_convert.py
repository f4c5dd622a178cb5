"""The response renderers of the REST shim: NEC's exact wire forms. That every field of
every request and response is converted: test_endpoints.py."""

from __future__ import annotations

import json

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from facegate.errors import ErrorType, FacegateError
from facegate.faces import attributes_to_proto
from facegate.v1 import (
    applications_pb2,
    common_pb2,
    face_pb2,
    galleries_pb2,
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
from gateway.rest.routes import match
from tests.support.attributes import SPEC_ATTRIBUTES, spec_example_attributes

# ------------------------------------------------------------------ exact wire forms


def spec_attributes() -> common_pb2.FaceAttributes:
    return attributes_to_proto(spec_example_attributes())


def test_attributes_render_as_nec_strings() -> None:
    assert convert_common.face_attributes_to_json(spec_attributes()) == SPEC_ATTRIBUTES


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


def _entry(
    event_id: str, status: subjects_pb2.EventStatus.ValueType, seconds: int, nanos: int
) -> subjects_pb2.SubjectEntry:
    return subjects_pb2.SubjectEntry(
        id="necidguid-fcdf-49eb-9182-5a6825ed2a3b",
        event_id=event_id,
        status=status,
        last_updated=Timestamp(seconds=seconds, nanos=nanos),
    )


def test_subjects_list_matches_the_spec_example() -> None:
    active, deleted = subjects_pb2.EVENT_STATUS_ACTIVE, subjects_pb2.EVENT_STATUS_DELETED
    response = subjects_pb2.SubjectsListResponse(
        subjects=[
            _entry("eventguid-caf3-4e0f-92b9-101a9e73a3ee", active, 1545092876, 427_000_000),
            _entry("eventguid-f99a-41dc-8eb1-cd7b1b3dcdec", deleted, 1551377509, 157_000_000),
            _entry("eventguid-f99a-41dc-8eb1-cd7b1b3dcdec", active, 1551377509, 174_000_000),
        ],
        total=3,
    )
    assert convert_subjects.subjects_list_response_to_json(response) == SPEC_SUBJECTS


def test_last_updated_truncates_to_milliseconds_in_utc() -> None:
    entry = _entry("e", subjects_pb2.EVENT_STATUS_ACTIVE, 1551377509, 174_999_999)
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
    rendered = convert_applications.application_detail_to_json(
        applications_pb2.ApplicationsGetResponse(application=application)
    )
    assert json.dumps(rendered["faceMinimumQualityScore"]) == "0.8"


def test_gallery_create_answers_flat_with_the_api_key() -> None:
    response = galleries_pb2.GalleriesCreateResponse(
        gallery=galleries_pb2.Gallery(
            id="galleryguid-28da", name="Y10Students", description="Year 10 Students", size=1000
        ),
        api_key="k3y",
    )
    rendered = convert_galleries.galleries_create_response_to_json(response)
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
    found = match("POST", "/v1.1/subjects")
    assert found is not None
    with pytest.raises(FacegateError) as caught:
        found[0].build(found[1], {}, {"tags": ["passport"]})
    assert caught.value.nec_body() == {
        "message": "face property must be provided.",
        "errorCode": 1001,
        "errorType": "InvalidRequest",
    }
