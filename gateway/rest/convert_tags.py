"""JSON <-> protobuf for the Tags service (/v1.1/tags), one function per message and
direction. The tag list is a bare JSON array; create, rename and delete answer with no
body."""

from __future__ import annotations

from typing import Literal

from facegate.v1 import tags_pb2
from gateway.rest.convert_common import JsonObject
from gateway.rest.fields import Field, Inputs, as_strings, read_body

RENAME_BODY = Inputs(
    (
        Field(
            "newName",
            "string",
            required=True,
            min_length=1,
            description="The tag's new name, not empty, unique in the gallery.",
        ),
    )
)


def tags_list_request_from_json() -> tags_pb2.TagsListRequest:
    return tags_pb2.TagsListRequest()


def tags_list_request_to_json(message: tags_pb2.TagsListRequest) -> None:
    """No body."""


def tags_list_response_to_json(message: tags_pb2.TagsListResponse) -> list[str]:
    return list(message.names)


def tags_list_response_from_json(body: object) -> tags_pb2.TagsListResponse:
    return tags_pb2.TagsListResponse(names=as_strings(body, "body"))


def tags_create_request_from_json(name: str) -> tags_pb2.TagsCreateRequest:
    return tags_pb2.TagsCreateRequest(name=name)


def tags_create_request_to_json(message: tags_pb2.TagsCreateRequest) -> None:
    """No body: the name travels in the path."""


def tags_create_response_to_json(message: tags_pb2.TagsCreateResponse) -> None:
    """No body (200)."""


def tags_create_response_from_json(body: object) -> tags_pb2.TagsCreateResponse:
    return tags_pb2.TagsCreateResponse()


def tags_post_rpc(body: object | None) -> Literal["Create", "Rename"]:
    """The rpc a POST to a tag asks for: the published text creates a tag by a POST
    without a body and renames one by POSTing {"newName"} to it (its example), so any
    body is a rename, checked as one."""
    return "Create" if body is None else "Rename"


def tags_rename_request_from_json(old_name: str, body: object) -> tags_pb2.TagsRenameRequest:
    values = read_body(RENAME_BODY, body)
    return tags_pb2.TagsRenameRequest(old_name=old_name, new_name=values.string("newName"))


def tags_rename_request_to_json(message: tags_pb2.TagsRenameRequest) -> JsonObject:
    return {"newName": message.new_name}


def tags_rename_response_to_json(message: tags_pb2.TagsRenameResponse) -> None:
    """No body (200)."""


def tags_rename_response_from_json(body: object) -> tags_pb2.TagsRenameResponse:
    return tags_pb2.TagsRenameResponse()


def tags_delete_request_from_json(name: str) -> tags_pb2.TagsDeleteRequest:
    return tags_pb2.TagsDeleteRequest(name=name)


def tags_delete_request_to_json(message: tags_pb2.TagsDeleteRequest) -> None:
    """No body: the name travels in the path."""


def tags_delete_response_to_json(message: tags_pb2.TagsDeleteResponse) -> None:
    """No body (200)."""


def tags_delete_response_from_json(body: object) -> tags_pb2.TagsDeleteResponse:
    return tags_pb2.TagsDeleteResponse()
