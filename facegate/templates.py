"""The one protobuf form of a template, shared by every service that sends one."""

from __future__ import annotations

import numpy as np

from facegate.v1 import common_pb2

_FIELDS = common_pb2.Template.DESCRIPTOR.fields_by_name
_LENGTH_DELIMITED = 2
_MODEL_ID_TAG = bytes([_FIELDS["model_id"].number << 3 | _LENGTH_DELIMITED])
_EMBEDDING_TAG = bytes([_FIELDS["embedding"].number << 3 | _LENGTH_DELIMITED])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def template_to_proto(model_id: str, vector: np.ndarray) -> common_pb2.Template:
    """The message of a template. Built from its packed wire form: the embedding's
    float32 bytes go in as they are, where filling the repeated field would convert
    every value to a Python float and back, on every search and upsert."""
    name = model_id.encode("utf-8")
    data = np.asarray(vector, dtype="<f4").ravel().tobytes()
    wire = (_MODEL_ID_TAG + _varint(len(name)) + name) if name else b""
    if data:
        wire += _EMBEDDING_TAG + _varint(len(data)) + data
    return common_pb2.Template.FromString(wire)
