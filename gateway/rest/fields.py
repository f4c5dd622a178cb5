"""The JSON inputs of the NEC ID REST endpoints, as tables that two readers share.

Each request body or query string is an :class:`Inputs` table of :class:`Field` rows.
Requests are read through :func:`body_fields` / :func:`query_fields`, which check every
row (presence, JSON type, range), raise NEC-style ``InvalidRequest`` errors and name each
value by the request message field it fills; the OpenAPI document
(gateway/rest/schemas.py) turns the same rows into JSON schemas. So what is validated,
what reaches the gateway and what is documented cannot drift apart.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pybase64

from facegate.errors import invalid_request

Kind = Literal["image", "string", "integer", "number", "strings", "choice", "objects"]
"""image: base64 string decoded to bytes; strings: array of strings; choice: one of a fixed
set of strings, each standing for an enum value; objects: array of objects described by
``Field.items``."""

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")

RequestFields = dict[str, object]
"""Keyword arguments of a request message's constructor: field name -> checked value."""


@dataclass(frozen=True)
class Field:
    """One JSON property (or query parameter) of a request, and the message field it fills."""

    name: str
    """The NEC name, as sent on the wire."""
    kind: Kind
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    enforced: bool = True
    """False where the gateway checks the range itself (size, faceMinimumQualityScore):
    the schema documents it, the shim does not repeat the check."""
    min_length: int | None = None
    """Documented only: the gateway rejects empty names itself."""
    choices: Mapping[str, int] = field(default_factory=dict)
    """A choice's wire texts and the enum numbers they stand for."""
    items: Inputs | None = None
    description: str = ""
    message_field: str = ""
    """The request message field it fills, where that is not the snake_case of ``name``."""

    @property
    def target(self) -> str:
        return self.message_field or _WORD_START.sub("_", self.name).lower()


@dataclass(frozen=True)
class Inputs:
    """The fields of one request body or query string, in the order they are checked."""

    fields: tuple[Field, ...]


# ------------------------------------------------------------------ primitive readers


def as_object(value: object, name: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise invalid_request(f"{name} must be an object.")
    return {str(key): item for key, item in value.items()}


def as_string(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise invalid_request(f"{name} must be a string.")
    return value


def as_integer(value: object, name: str) -> int:
    """A JSON integer that fits int32 (booleans and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request(f"{name} must be an integer.")
    if not INT32_MIN <= value <= INT32_MAX:
        raise invalid_request(f"{name} is out of range.")
    return value


def as_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_request(f"{name} must be a number.")
    return float(value)


def as_strings(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_request(f"{name} must be an array of strings.")
    return [str(item) for item in value]


def as_image(value: object, name: str) -> bytes:
    """Plain standard base64 with padding, as NEC's SDKs send it; nothing else (no data-URL
    prefix, URL-safe alphabet, whitespace or missing padding)."""
    if isinstance(value, str) and value:
        try:
            # pybase64's SIMD decoder reads the str's own buffer (no copy to bytes) and,
            # with validate, refuses anything outside the alphabet or after the padding;
            # binascii's scalar decoder was the largest single cost of a multi-megabyte probe.
            return pybase64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise invalid_request(f"{name} property must be a base64 encoded image.")


# ------------------------------------------------------------------ request readers


def body_fields(inputs: Inputs, body: object) -> RequestFields:
    """Checks a parsed JSON body against ``inputs``. No body (None) reads as ``{}``, so a
    missing required field is reported by name; unknown properties are ignored; absent or
    null fields are left out (the message field keeps its default, unset where optional)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object.")
    return _read(inputs, body)


def query_fields(inputs: Inputs, query: Mapping[str, Sequence[str]]) -> RequestFields:
    """Checks query parameters against ``inputs``. A repeated key counts with its last
    value, as AWS API Gateway (NEC's front end) does."""
    parsed: dict[str, object] = {}
    for row in inputs.fields:
        given = query.get(row.name)
        if not given:
            continue
        text = given[-1]
        if row.kind == "integer":
            if _INTEGER_TEXT.fullmatch(text) is None:
                raise invalid_request(f"{row.name} must be an integer.")
            if len(text) > 12:  # past int32 anyway; int() of thousands of digits fails
                raise invalid_request(f"{row.name} is out of range.")
            parsed[row.name] = int(text)
        elif row.kind in ("string", "choice"):
            parsed[row.name] = text
        else:
            raise TypeError(f"query parameter {row.name} cannot be of kind {row.kind}")
    return _read(inputs, parsed)


def _read(inputs: Inputs, obj: Mapping[str, object]) -> RequestFields:
    values: RequestFields = {}
    for row in inputs.fields:
        raw = obj.get(row.name)
        if raw is None:
            if row.required:
                raise invalid_request(f"{row.name} property must be provided.")
            continue
        values[row.target] = _check(row, raw)
    return values


def _check(row: Field, raw: object) -> object:
    name = row.name
    if row.kind == "image":
        return as_image(raw, name)
    if row.kind == "string":
        return as_string(raw, name)
    if row.kind == "strings":
        return as_strings(raw, name)
    if row.kind == "choice":
        if not isinstance(raw, str) or raw not in row.choices:
            raise invalid_request(f"{name} must be {_alternatives(list(row.choices))}.")
        return row.choices[raw]
    if row.kind == "objects":
        if row.items is None:
            raise TypeError(f"{name} has no item fields")
        if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
            raise invalid_request(f"{name} must be an array of objects.")
        items = row.items
        return [_read(items, as_object(item, name)) for item in raw]
    number: float = as_integer(raw, name) if row.kind == "integer" else as_number(raw, name)
    if row.enforced:
        _check_range(row, number)
    return number


def _check_range(row: Field, value: float) -> None:
    low, high = row.minimum, row.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            raise invalid_request(f"{row.name} must be between {low:g} and {high:g}.")
        if low is not None:
            raise invalid_request(f"{row.name} must be at least {low:g}.")
        raise invalid_request(f"{row.name} must be at most {high:g}.")


def _alternatives(choices: Sequence[str]) -> str:
    if len(choices) == 1:
        return choices[0]
    return ", ".join(choices[:-1]) + " or " + choices[-1]
