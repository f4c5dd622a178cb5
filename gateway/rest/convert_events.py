"""JSON of the Events service (/v1.1/subjects/{subjectId}/events): the event list. Register
and update read and answer as the Subjects service does (gateway/rest/convert_subjects.py)."""

from __future__ import annotations

from facegate.v1 import events_pb2
from gateway.rest.convert_common import JsonObject


def events_list_response_to_json(message: events_pb2.EventsListResponse) -> JsonObject:
    return {"id": message.id, "events": [{"id": event.id} for event in message.events]}
