"""The exact texts of the verifier's refusals, which API Gateway clients may match on.

Each request here is refused before its signature is looked at, so none needs signing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facegate.sigv4 import MISSING_TOKEN, SignedRequest, SigV4Error, verify

AKID, REGION = "AKIAFACEGATETEST0001", "ap-southeast-2"
HOST = "a1b2c3d4e5.execute-api.ap-southeast-2.amazonaws.com"
AUTH = (
    f"AWS4-HMAC-SHA256 Credential={AKID}/20180816/{REGION}/execute-api/aws4_request, "
    f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
)
SOME_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)


def unsigned(headers: list[tuple[str, str]], query: bytes = b"") -> SignedRequest:
    return SignedRequest("GET", b"/v1.1/subjects", query, [("Host", HOST), *headers], b"")


def refusal(request: SignedRequest, now: datetime = SOME_TIME) -> str:
    with pytest.raises(SigV4Error) as refused:
        verify(
            request,
            secret_for=lambda key: "secret" if key == AKID else None,
            now=now,
            region=REGION,
        )
    return refused.value.message


def test_time_skew_messages() -> None:
    stale = unsigned([("X-Amz-Date", "20180816T032046Z"), ("Authorization", AUTH)])
    now = datetime(2018, 8, 16, 4, 8, 29, 412, tzinfo=UTC)
    assert refusal(stale, now) == (
        "Signature expired: 20180816T032046Z is now earlier than 20180816T040329Z "
        "(20180816T040829Z - 5 min.)"
    )
    early = datetime(2018, 8, 16, 3, 10, 0, tzinfo=UTC)
    assert refusal(stale, early) == (
        "Signature not yet current: 20180816T032046Z is still later than 20180816T031500Z "
        "(20180816T031000Z + 5 min.)"
    )
    by_date = unsigned([("Date", "Thu, 16 Aug 2018 03:20:46 GMT"), ("Authorization", AUTH)])
    assert refusal(by_date, now).startswith("Signature expired: 20180816T032046Z is now")


def test_missing_parts_messages() -> None:
    assert refusal(unsigned([])) == MISSING_TOKEN
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    assert refusal(unsigned([("Authorization", jwt)])) == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={jwt}"
    )
    partial = "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host"
    assert refusal(unsigned([("Authorization", partial), ("X-Amz-Date", "20150830T123600Z")])) == (
        f"Authorization header requires 'Signature' parameter. Authorization={partial}"
    )
    bearer = refusal(unsigned([("Authorization", f"Bearer {jwt}")]))
    assert bearer.startswith("Invalid key=value pair (missing equal-sign) in Authorization header")
    assert jwt not in bearer
    query = refusal(unsigned([], b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=x"))
    assert query == (
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "Re-examine the query-string parameters."
    )


def test_malformed_scope_and_header_messages() -> None:
    def with_auth(auth: str, date: str = "20180816T032046Z") -> str:
        request = unsigned([("X-Amz-Date", date), ("Authorization", auth)])
        return refusal(request, datetime(2018, 8, 16, 3, 20, tzinfo=UTC))

    assert with_auth(AUTH, "2018-08-16T03:20:46Z") == (
        "Date must be in ISO-8601 'basic format'. Got '2018-08-16T03:20:46Z'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )
    no_host = AUTH.replace("host;x-amz-date", "x-amz-date")
    assert with_auth(no_host) == "'Host' must be a 'SignedHeader' in the AWS Authorization."
    sha1 = AUTH.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")
    assert (
        with_auth(sha1)
        == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1' (only AWS4-HMAC-SHA256 for now). "
    )
    short = AUTH.replace(f"/{REGION}/execute-api", "")
    assert with_auth(short) == (
        "Credential must have exactly 5 slash-delimited elements, "
        f"e.g. keyid/date/region/service/term, got '{AKID}/20180816/aws4_request'"
    )
    scope = AUTH.replace(
        f"20180816/{REGION}/execute-api/aws4_request", "20180815/us-east-1/s3/aws5"
    )
    assert with_auth(scope) == (
        "Credential should be scoped to a valid region, not 'us-east-1'. "
        "Credential should be scoped to correct service: 'execute-api'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20180815' != '20180816', from '20180816T032046Z'. "
    )
    both = unsigned([("Authorization", AUTH)], b"X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert refusal(both).startswith("Found both 'X-Amz-Algorithm'")


auth_words = st.sampled_from(
    ["AWS4-HMAC-SHA256", "Credential=", "SignedHeaders=", "Signature=", f"{AKID}/", ",", " "]
)
header_values = st.one_of(st.text(max_size=30), st.lists(auth_words, max_size=12).map("".join))
header_names = st.sampled_from(
    ["Authorization", "X-Amz-Date", "Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256"]
)
query_words = st.sampled_from(
    [b"X-Amz-Algorithm=", b"X-Amz-Credential=", b"X-Amz-Expires=", b"X-Amz-Date=", b"&", b"%"]
)


@settings(max_examples=200, deadline=None)
@given(
    headers=st.lists(st.tuples(header_names, header_values), max_size=5),
    query=st.one_of(st.binary(max_size=40), st.lists(query_words, max_size=10).map(b"".join)),
    path=st.binary(max_size=20),
)
def test_any_input_is_verified_or_refused_with_a_message(
    headers: list[tuple[str, str]], query: bytes, path: bytes
) -> None:
    request = SignedRequest("GET", b"/" + path, query, [("Host", HOST), *headers], b"")
    with pytest.raises(SigV4Error) as refused:
        verify(request, secret_for=lambda _key: "secret", now=SOME_TIME, region=REGION)
    assert refused.value.message


def test_absurd_values_are_refused_not_crashed() -> None:
    """Found by review: these raised past the verifier (HTTP 500)."""
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    base = (
        b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261128%2Fap-southeast-2"
        b"%2Fexecute-api%2Faws4_request&X-Amz-Date=20261128T120000Z&X-Amz-SignedHeaders=host"
        b"&X-Amz-Signature=00"
    )
    for query in (base + b"&X-Amz-Expires=" + b"9" * 5000, base.replace(b"AKID", b"%00")):
        request = SignedRequest("GET", b"/v1.1/health", query, [("host", "h")], b"")
        with pytest.raises(SigV4Error):
            verify(request, secret_for=lambda _: "s", now=now, region="ap-southeast-2")
    header = (
        "AWS4-HMAC-SHA256 Credential=AKID/20261128/ap-southeast-2/execute-api/aws4_request, "
        "SignedHeaders=date;host, Signature=00"
    )
    dated = SignedRequest(
        "GET",
        b"/v1.1/health",
        b"",
        [("host", "h"), ("date", "Fri, 31 Dec 9999 23:59:59 -0100"), ("authorization", header)],
        b"",
    )
    with pytest.raises(SigV4Error):
        verify(dated, secret_for=lambda _: "s", now=now, region="ap-southeast-2")
