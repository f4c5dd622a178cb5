"""The endpoint table is whole: every public service has a stub, every request field is
filled from the path, query or body, and every response field is rendered unless NEC's
view of it leaves it out on purpose. A field added to a proto fails here until the table
or a renderer says what becomes of it."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.rest.endpoints import ENDPOINTS, STUBS, Endpoint, Rpc
from gateway.rest.fields import Field, Inputs
from gateway.server import PUBLIC_SERVICES

USES = [(endpoint, rpc) for endpoint in ENDPOINTS for rpc in endpoint.rpcs]


def _use_id(use: tuple[Endpoint, Rpc]) -> str:
    endpoint, rpc = use
    return f"{endpoint.method} {endpoint.path} {rpc.name}"


def test_every_public_service_has_a_stub() -> None:
    assert set(STUBS) == {service.name for service in PUBLIC_SERVICES}
    for name, stub in STUBS.items():
        assert getattr(stub, "__name__", "") == f"{name}Stub"


# ------------------------------------------------------------------ requests


def _targets(inputs: Inputs, message: Descriptor) -> set[str]:
    """The fields of ``message`` that ``inputs`` fill; nested tables checked alike."""
    targets = set()
    for row in inputs.fields:
        targets.add(row.target)
        if row.items is not None:
            nested = message.fields_by_name[row.target].message_type
            assert nested is not None
            assert _targets(row.items, nested) == {field.name for field in nested.fields}
    return targets


@pytest.mark.parametrize("use", USES, ids=_use_id)
def test_path_query_and_body_name_every_request_field(use: tuple[Endpoint, Rpc]) -> None:
    endpoint, rpc = use
    assert set(rpc.path_fields) == set(re.findall(r"\{(\w+)\}", endpoint.path))
    request = rpc.descriptor.input_type
    filled = list(rpc.path_fields.values())
    for inputs in (rpc.query, rpc.body):
        if inputs is not None:
            filled += _targets(inputs, request)
    assert sorted(filled) == sorted(field.name for field in request.fields)


def _value(row: Field) -> object:
    """A value of the row that is not its field's default and passes its checks."""
    if row.kind == "image":
        return base64.b64encode(b"image of " + row.name.encode()).decode()
    if row.kind == "string":
        return f"{row.name} text"
    if row.kind == "strings":
        return [f"{row.name} item"]
    if row.kind == "choice":
        return list(row.choices)[-1]
    if row.kind == "objects":
        assert row.items is not None
        return [_body(row.items)]
    if row.kind == "integer":
        low = int(row.minimum or 0) + 1
        return low if row.maximum is None else min(low, int(row.maximum))
    return 0.5


def _body(inputs: Inputs) -> dict[str, object]:
    return {row.name: _value(row) for row in inputs.fields}


def _unset_fields(message: Message) -> Iterator[str]:
    set_fields = {field.name: value for field, value in message.ListFields()}
    for field in message.DESCRIPTOR.fields:
        if field.name not in set_fields:
            yield field.name
        elif field.message_type is not None and field.is_repeated:
            for item in set_fields[field.name]:
                yield from (f"{field.name}.{name}" for name in _unset_fields(item))


@pytest.mark.parametrize("use", USES, ids=_use_id)
def test_a_full_request_fills_every_request_field(use: tuple[Endpoint, Rpc]) -> None:
    endpoint, rpc = use
    path = {name: f"{name}-value" for name in rpc.path_fields}
    query = {}
    if rpc.query is not None:
        query = {row.name: [str(_value(row))] for row in rpc.query.fields}
    body = None if rpc.body is None else _body(rpc.body)
    call = endpoint.build(path, query, body)
    assert (call.service, call.method) == (rpc.service.name, rpc.name)
    assert list(_unset_fields(call.request)) == []


# ------------------------------------------------------------------ responses

NOT_SHOWN: dict[str, set[str]] = {
    "Galleries.List": {
        "galleries.face_minimum_quality_score",
        "galleries.applications",
        "galleries.statistics",
    },
    "Galleries.Get": {
        "gallery.face_minimum_quality_score",
        "gallery.applications.description",
        "gallery.applications.face_minimum_quality_score",
        "gallery.applications.gallery_id",
    },
    "Galleries.Create": {
        "gallery.count",
        "gallery.face_minimum_quality_score",
        "gallery.applications",
        "gallery.statistics",
    },
    "Galleries.Update": {
        "gallery.count",
        "gallery.face_minimum_quality_score",
        "gallery.applications",
        "gallery.statistics",
    },
    "Applications.List": {
        "applications.description",
        "applications.face_minimum_quality_score",
        "applications.gallery_id",
    },
    "Applications.Get": {"application.gallery_id"},
    "Applications.Create": {"application.gallery_id"},
    "Applications.Update": {"application.gallery_id"},
}
"""What NEC's view of a response leaves out: a whole field, or (dotted) one of its parts."""


def _leaves(descriptor: Descriptor, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    """Every scalar field, repeated field and nested field of a message type, as its
    dotted name and the path to it (a repeated message's first item)."""
    for field in descriptor.fields:
        name = prefix + field.name
        if field.message_type is None or field.message_type.full_name.startswith("google."):
            yield name, name.split(".")
        else:
            yield from _leaves(field.message_type, name + ".")


def _changed(
    message: Message, path: list[str], fill: Callable[[Message, FieldDescriptor, int], None]
) -> None:
    """Changes the field at ``path``: a repeated one is emptied, any other set anew."""
    target: Any = message
    for part in path[:-1]:
        target = getattr(target, part)
        if not isinstance(target, Message):
            target = target[0]
    field = target.DESCRIPTOR.fields_by_name[path[-1]]
    if field.is_repeated or field.message_type is not None:
        target.ClearField(field.name)
    else:
        fill(target, field, 2)


def _not_shown(rpc: Rpc, name: str) -> bool:
    return any(
        name == hidden or name.startswith(hidden + ".")
        for hidden in NOT_SHOWN.get(f"{rpc.service.name}.{rpc.name}", set())
    )


@pytest.mark.parametrize("use", [use for use in USES if use[1].to_json is not None], ids=_use_id)
def test_the_renderer_writes_every_response_field(
    use: tuple[Endpoint, Rpc],
    populate: Callable[[Descriptor, int], Message],
    fill_field: Callable[[Message, FieldDescriptor, int], None],
) -> None:
    """Changing any field of the response changes the JSON, but for what NEC's view leaves
    out, which changes nothing."""
    _, rpc = use
    assert rpc.to_json is not None
    response = rpc.descriptor.output_type
    rendered = rpc.to_json(populate(response, 1))
    for name, path in _leaves(response):
        changed = populate(response, 1)
        _changed(changed, path, fill_field)
        shown = rpc.to_json(changed) != rendered
        assert shown != _not_shown(rpc, name), f"{rpc.name}: {name} shown: {shown}"
