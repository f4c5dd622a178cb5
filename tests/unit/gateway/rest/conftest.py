"""Fixtures of the REST shim tests: fully populated protobuf messages, built from the
descriptors so that a field added to a proto is set (and must be converted) at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.protobuf.timestamp_pb2 import Timestamp

Populate = Callable[[Descriptor, int], Message]
Fill = Callable[[Message, FieldDescriptor, int], None]


def _scalar(field: FieldDescriptor, variant: int) -> object:
    """A non-default value that passes validation; ``variant`` makes a different one."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{variant}"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return b"\x89PNG image " + field.name.encode() + bytes([variant])
    if field.enum_type is not None:
        values = [value.number for value in field.enum_type.values if value.number != 0]
        return values[(variant - 1) % len(values)]
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return 0.5 / variant  # exact in float32, six digits in %g
    if field.type == FieldDescriptor.TYPE_BOOL:
        return variant % 2 == 1
    return 6 + variant  # within every range the shim checks (limit, threshold, length...)


def populated(descriptor: Descriptor, variant: int = 1) -> Message:
    """An instance with every field set (two items for repeated fields)."""
    message = GetMessageClass(descriptor)()
    for field in descriptor.fields:
        fill(message, field, variant)
    return message


def fill(message: Message, field: FieldDescriptor, variant: int) -> None:
    """Sets ``field`` of ``message`` to the non-default value of ``variant``."""
    target: Any = message
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            # whole milliseconds: the wire form keeps three digits
            values: list[Message] = [
                Timestamp(seconds=1545092876 + variant, nanos=427_000_000),
                Timestamp(seconds=1545092877 + variant, nanos=428_000_000),
            ]
        else:
            values = [populated(field.message_type, variant), populated(field.message_type, 2)]
        if field.is_repeated:
            getattr(target, field.name).extend(values)
        else:
            getattr(target, field.name).CopyFrom(values[0])
    elif field.is_repeated:
        getattr(target, field.name).extend([_scalar(field, variant), _scalar(field, variant + 1)])
    else:
        setattr(target, field.name, _scalar(field, variant))


@pytest.fixture
def populate() -> Populate:
    return populated


@pytest.fixture
def fill_field() -> Fill:
    return fill
