"""Protobuf checks shared by converter tests."""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message


def unset_fields(message: Message) -> list[str]:
    """Fields (recursively, through the first element of repeated messages) left unset."""
    present = {field.name for field, _ in message.ListFields()}
    missing = []
    for field in message.DESCRIPTOR.fields:
        if field.name not in present:
            missing.append(field.name)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            value = getattr(message, field.name)
            first = value[0] if field.is_repeated else value
            missing += [f"{field.name}.{name}" for name in unset_fields(first)]
    return missing
