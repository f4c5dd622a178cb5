"""JSON of the Tags service (/v1.1/tags): the tag list is a bare JSON array; create,
rename and delete answer with no body."""

from __future__ import annotations

from typing import Literal

from facegate.v1 import tags_pb2
from gateway.rest.fields import Field, Inputs

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


def tags_list_response_to_json(message: tags_pb2.TagsListResponse) -> list[str]:
    return list(message.names)


def tags_post_rpc(body: object | None) -> Literal["Create", "Rename"]:
    """The rpc a POST to a tag asks for: the published text creates a tag by a POST
    without a body and renames one by POSTing {"newName"} to it (its example), so any
    body is a rename, checked as one."""
    return "Create" if body is None else "Rename"
