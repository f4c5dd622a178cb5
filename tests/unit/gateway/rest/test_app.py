"""The ASGI app refuses paths that SigV4 would normalise, and answers bodies that are not
JSON as invalid requests (never a 500)."""

from __future__ import annotations

import pytest

from facegate.errors import ErrorType, FacegateError
from gateway.rest.app import _needs_normalising, _parse_json


def test_paths_that_normalisation_would_change() -> None:
    for path in ("/v1.1/./tags", "/v1.1/x/../tags", "/v1.1//tags", "/v1.1/tags/.."):
        assert _needs_normalising(path), path
    for path in ("/v1.1/tags", "/v1.1/tags/", "/v1.1/tags/a.b", "/v1.1/tags/..a"):
        assert not _needs_normalising(path), path


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"a": NaN}', b'{"a": 1,}', b"\xef\xbb\xbf{}", b'{"a": "\xff"}', b"[" * 100_000],
)
def test_bodies_that_are_not_json_are_invalid_requests(body: bytes) -> None:
    with pytest.raises(FacegateError) as caught:
        _parse_json(body)
    assert caught.value.error_type is ErrorType.INVALID_REQUEST
    assert caught.value.message == "The request body is not valid JSON."


def test_json_bodies_parse_as_plain_values() -> None:
    parsed = _parse_json(b'{"probe": "QUJD", "limit": 5, "tags": ["a"], "x": null, "a": 1.5}')
    assert parsed == {"probe": "QUJD", "limit": 5, "tags": ["a"], "x": None, "a": 1.5}


def test_a_body_of_json_null_is_refused_not_read_as_no_body() -> None:
    for body in (b"null", b" null\n"):
        with pytest.raises(FacegateError) as caught:
            _parse_json(body)
        assert caught.value.error_type is ErrorType.INVALID_REQUEST
