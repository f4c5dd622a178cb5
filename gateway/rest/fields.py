"""The JSON inputs of the NEC ID REST endpoints, as tables that two readers share.

Each request body or query string is an :class:`Inputs` table of :class:`Field` rows.
The converters read requests through :func:`read_body` / :func:`read_query`, which check
every row (presence, JSON type, range) and raise NEC-style ``InvalidRequest`` errors; the
OpenAPI document (gateway/rest/openapi.py) turns the same rows into JSON schemas. So what
is validated and what is documented cannot drift apart.

The primitive readers (``as_*``) are shared with the response converters, which parse the
JSON the shim itself renders (for clients and tests).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pybase64

from facegate.errors import invalid_request

Kind = Literal["image", "string", "integer", "number", "strings", "choice", "objects"]
"""image: base64 string decoded to bytes; strings: array of strings; choice: one of a fixed
set of strings; objects: array of objects described by ``Field.items``."""

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

_INTEGER_TEXT = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Field:
    """One JSON property (or query parameter) of a request."""

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
    choices: tuple[str, ...] = ()
    items: Inputs | None = None
    description: str = ""


@dataclass(frozen=True)
class Inputs:
    """The fields of one request body or query string, in the order they are checked."""

    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for row in self.fields:
            if row.name == name:
                return row
        raise KeyError(name)


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


def as_integer_text(value: object, name: str) -> int:
    """An int32 written as decimal digits, as NEC sends coordinates ("161")."""
    if not isinstance(value, str) or _INTEGER_TEXT.fullmatch(value) is None:
        raise invalid_request(f"{name} must be a string of an integer.")
    return as_integer(int(value), name)


def as_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_request(f"{name} must be a number.")
    return float(value)


def as_number_text(value: object, name: str) -> float:
    """A number written as a decimal string, as NEC sends scores ("0.569824")."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise invalid_request(f"{name} must be a string of a number.")


def as_strings(value: object, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_request(f"{name} must be an array of strings.")
    return [str(item) for item in value]


def as_list(value: object, name: str) -> list[object]:
    if not isinstance(value, list):
        raise invalid_request(f"{name} must be an array.")
    return list(value)


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


def image_text(image: bytes) -> str:
    """The wire form of an image: standard base64 with padding."""
    return base64.b64encode(image).decode("ascii")


# ------------------------------------------------------------------ request readers


@dataclass(frozen=True)
class Values:
    """The checked values of one request, by NEC name; absent or null fields are missing."""

    inputs: Inputs
    values: Mapping[str, object]

    def _get(self, name: str, kind: Kind) -> object:
        if self.inputs.field(name).kind != kind:
            raise TypeError(f"{name} is not a field of kind {kind}")
        return self.values.get(name)

    def image(self, name: str) -> bytes:
        value = self._get(name, "image")
        return value if isinstance(value, bytes) else b""

    def string(self, name: str) -> str:
        """The string, or "" when absent."""
        value = self.optional_string(name)
        return "" if value is None else value

    def optional_string(self, name: str) -> str | None:
        value = self._get(name, "string")
        return value if isinstance(value, str) else None

    def choice(self, name: str) -> str | None:
        value = self._get(name, "choice")
        return value if isinstance(value, str) else None

    def integer(self, name: str) -> int:
        """The integer, or 0 when absent."""
        value = self.optional_integer(name)
        return 0 if value is None else value

    def optional_integer(self, name: str) -> int | None:
        value = self._get(name, "integer")
        return value if isinstance(value, int) else None

    def optional_number(self, name: str) -> float | None:
        value = self._get(name, "number")
        return value if isinstance(value, float) else None

    def strings(self, name: str) -> list[str]:
        value = self._get(name, "strings")
        return [str(item) for item in value] if isinstance(value, list) else []

    def objects(self, name: str) -> list[Values]:
        value = self._get(name, "objects")
        if not isinstance(value, list):
            return []
        return [item for item in value if isinstance(item, Values)]


def read_body(inputs: Inputs, body: object) -> Values:
    """Checks a parsed JSON body against ``inputs``. No body (None) reads as ``{}``, so a
    missing required field is reported by name; unknown properties are ignored."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object.")
    return _read(inputs, body)


def read_query(inputs: Inputs, query: Mapping[str, Sequence[str]]) -> Values:
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


def _read(inputs: Inputs, obj: Mapping[str, object]) -> Values:
    values: dict[str, object] = {}
    for row in inputs.fields:
        raw = obj.get(row.name)
        if raw is None:
            if row.required:
                raise invalid_request(f"{row.name} property must be provided.")
            continue
        values[row.name] = _check(row, raw)
    return Values(inputs, values)


def _check(row: Field, raw: object) -> object:
    name = row.name
    if row.kind == "image":
        return as_image(raw, name)
    if row.kind == "string":
        return as_string(raw, name)
    if row.kind == "strings":
        return as_strings(raw, name)
    if row.kind == "choice":
        if raw not in row.choices:
            raise invalid_request(f"{name} must be {_alternatives(row.choices)}.")
        return raw
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
