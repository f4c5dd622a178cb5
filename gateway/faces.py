"""Faces as the gateway's domain holds them: a face's NEC attributes (facegate/faces.py)
and its template, plain frozen dataclasses (the adapters in gateway/adapters/ and the
servicers convert them to and from protobufs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import numpy as np

from facegate.faces import Box, FaceAttributes, Point


@dataclass(frozen=True, eq=False)
class Template:
    """The recognizer's L2-normalised float32 embedding of one face; only templates of
    the same model compare."""

    model_id: str
    embedding: np.ndarray

    @staticmethod
    def from_bytes(model_id: str, data: bytes) -> Template:
        """A template as the store keeps it (little-endian float32)."""
        return Template(model_id, np.frombuffer(data, dtype="<f4"))

    def to_bytes(self) -> bytes:
        return np.asarray(self.embedding, dtype="<f4").tobytes()


@dataclass(frozen=True)
class Face:
    """One face of a probe or registration image."""

    attributes: FaceAttributes
    template: Template

    @property
    def vector(self) -> np.ndarray:
        return self.template.embedding


def attributes_json(attributes: FaceAttributes) -> str:
    """The attributes in the protobuf JSON mapping of ``FaceAttributes`` (lowerCamelCase
    names), as the store keeps them for job records (read back with json_format)."""
    return json.dumps(_json_object(attributes), separators=(", ", ": "))


def _json_object(value: FaceAttributes | Box | Point) -> dict[str, object]:
    return {_camel(field.name): _json_value(getattr(value, field.name)) for field in fields(value)}


def _json_value(value: object) -> object:
    if isinstance(value, Box | Point):
        return _json_object(value)
    if isinstance(value, float):
        # The wire carries float32: its shortest decimal, as protobuf's JSON writes it.
        return float(str(np.float32(value)))
    return value


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)
