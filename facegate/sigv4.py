"""Server-side AWS Signature Version 4 verification, as Amazon API Gateway does it.

The gateway calls :func:`verify` for every REST request (except CORS preflight) so that
clients written for API Gateway's ``AWS_IAM`` authorisation (botocore, the AWS SDKs,
``aws4``-style signers) work unchanged; the REST shim, which holds no secret, first
runs :func:`check_claim`, the part of the check that needs none. Both the
``Authorization`` header form and presigned query strings are accepted. Failures raise
:class:`SigV4Error` whose ``message`` is the text API Gateway puts in its 403 JSON
body, checked in the order AWS's common front end checks them: parameter presence,
date format, clock skew, ``host`` signed, algorithm, credential shape, credential
scope, access key, signature, session token.

Canonicalisation follows the non-S3 rules: the path has its dot segments and duplicate
slashes removed and is then URI-encoded *again* (``%3D`` on the wire signs as
``%253D``); query keys and values are decoded and re-encoded with the RFC 3986
unreserved set. Pure functions only: no I/O, no web framework.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
TERMINATOR = "aws4_request"
MAX_PRESIGNED_EXPIRES = 604800
"""API Gateway, like S3, refuses presigned URLs valid for more than seven days."""

ISO_BASIC = "%Y%m%dT%H%M%SZ"
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z", re.ASCII)
_DIGITS = re.compile(r"-?[0-9]+", re.ASCII)
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9]{1,128}", re.ASCII)
_PAIR_SEPARATORS = re.compile(r"[\s,]+")
_HEADER_PARAMS = ("Credential", "Signature", "SignedHeaders")
_QUERY_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
)
_SIGNATURE_PARAM = b"X-Amz-Signature"
_ALGORITHM_PARAM = b"X-Amz-Algorithm"
_TOKEN = "x-amz-security-token"

MISSING_TOKEN = "Missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
BOTH_FORMS = (
    "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
)
HOST_NOT_SIGNED = "'Host' must be a 'SignedHeader' in the AWS Authorization."
TOKEN_NOT_SIGNED = "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization."
CONTENT_SHA256_MISMATCH = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)


@dataclass(frozen=True)
class SignedRequest:
    """One HTTP request as it arrived: path and query still %-encoded as on the wire."""

    method: str
    raw_path: bytes
    raw_query: bytes
    headers: Sequence[tuple[str, str]]
    body: bytes
    payload_sha256: str | None = None
    """The body's SHA-256 in hex where the caller already has it (the shim hashes a large
    body while reading it); else it is computed from ``body``."""


@dataclass(frozen=True)
class Credential:
    """Who signed a verified request, parsed from its credential scope."""

    access_key_id: str
    date: str
    region: str
    service: str
    session_token: str | None


class SigV4Error(Exception):
    """Authentication failed; ``message`` is API Gateway's JSON ``message`` (HTTP 403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


SecretLookup = Callable[[str], str | None]
SessionTokenCheck = Callable[[str, str], bool]


@dataclass(frozen=True)
class _Claim:
    """What the client says it signed, before any of it is trusted."""

    presigned: bool
    algorithm: str
    credential: str
    signed_headers: tuple[str, ...]
    signature: str
    time: datetime
    expires: int | None


def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key: HMAC chain over date, region, service and terminator."""
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


# Deriving the key costs four HMACs; a small LRU makes a repeat caller's request cost one.
signing_key = lru_cache(maxsize=256)(derive_signing_key)


def canonical_request(
    request: SignedRequest, signed_headers: Sequence[str], payload_hash: str
) -> str:
    """The SigV4 canonical request for ``request``. ``X-Amz-Signature`` is left out of the
    query when the request is presigned (carries ``X-Amz-Algorithm``)."""
    pairs = _query_pairs(request.raw_query)
    presigned = any(key == _ALGORITHM_PARAM for key, _ in pairs)
    return _canonical_request(
        request.method,
        request.raw_path,
        pairs,
        headers=_header_map(request.headers),
        signed_headers=tuple(name.lower() for name in signed_headers),
        payload_hash=payload_hash,
        presigned=presigned,
    )


@dataclass(frozen=True)
class Claimed:
    """A request's signature as far as it can be checked without a secret: present,
    well formed, current and scoped to this gateway. The REST shim refuses at this
    point what fails (no secret is needed to), and forwards the rest to the gateway."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    _claim: _Claim
    _headers: dict[str, list[str]]
    _pairs: list[tuple[bytes, bytes]]

    def forwarded_headers(self) -> frozenset[str]:
        """The lower-case names of the headers the signature check reads."""
        return SIGNATURE_HEADERS | frozenset(self.signed_headers)


SIGNATURE_HEADERS = frozenset(
    {"authorization", "x-amz-date", "date", _TOKEN, "x-amz-content-sha256"}
)
"""Headers the check reads whether or not they are signed."""


def check_claim(
    request: SignedRequest,
    *,
    now: datetime,
    region: str,
    service: str = "execute-api",
    max_skew: timedelta = timedelta(minutes=5),
) -> Claimed:
    """What ``request`` claims about its signature, checked in API Gateway's order as
    far as no secret is needed (presence, date, skew, ``host`` signed, algorithm,
    scope, the access key's shape); else :class:`SigV4Error`."""
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    headers = _header_map(request.headers)
    pairs = _query_pairs(request.raw_query)
    authorization = headers.get("authorization")
    presigned = any(key == _ALGORITHM_PARAM for key, _ in pairs)
    if authorization is not None and presigned:
        raise SigV4Error(BOTH_FORMS)
    if presigned:
        claim = _claim_from_query(pairs)
    elif authorization is not None:
        claim = _claim_from_header(",".join(authorization), headers)
    else:
        raise SigV4Error(MISSING_TOKEN)

    check_signing_time(claim.time, now, max_skew, expires=claim.expires)
    if "host" not in claim.signed_headers:
        raise SigV4Error(HOST_NOT_SIGNED)
    if claim.algorithm != ALGORITHM:
        raise SigV4Error(
            f"Unsupported AWS 'algorithm': '{claim.algorithm}' (only {ALGORITHM} for now). "
        )
    access_key_id, date, scope_region, scope_service = _check_scope(claim, region, service)
    # Access key ids are short and alphanumeric: anything else is unknown without a
    # lookup (no store query, no cache entry for junk).
    if not _ACCESS_KEY_ID.fullmatch(access_key_id):
        raise SigV4Error(INVALID_TOKEN)
    return Claimed(
        access_key_id,
        date,
        scope_region,
        scope_service,
        claim.signed_headers,
        claim,
        headers,
        pairs,
    )


def verify(
    request: SignedRequest,
    *,
    secret_for: SecretLookup,
    now: datetime,
    region: str,
    service: str = "execute-api",
    max_skew: timedelta = timedelta(minutes=5),
    session_token_valid: SessionTokenCheck | None = None,
) -> Credential:
    """The signer's credential if ``request`` carries a valid SigV4 signature for
    ``region``/``service`` at time ``now``; else :class:`SigV4Error`.

    ``secret_for`` maps an access key id to its secret (``None``: unknown key).
    ``session_token_valid(access_key_id, token)`` judges an ``X-Amz-Security-Token``;
    without it every request carrying a token is refused.
    """
    claimed = check_claim(request, now=now, region=region, service=service, max_skew=max_skew)
    claim, headers, pairs = claimed._claim, claimed._headers, claimed._pairs
    secret = secret_for(claimed.access_key_id)
    if secret is None:
        raise SigV4Error(INVALID_TOKEN)
    token = _session_token(headers, pairs, claim.signed_headers)

    key = signing_key(secret, claimed.date, claimed.region, claimed.service)
    amz_date = claim.time.strftime(ISO_BASIC)
    credential_scope = f"{claimed.date}/{claimed.region}/{claimed.service}/{TERMINATOR}"
    provided = claim.signature.encode("utf-8", "surrogatepass")
    matched = False
    # Every candidate is computed and compared so the time taken does not say which failed.
    actual = request.payload_sha256 or sha256_hex(request.body)
    for payload_hash in _payload_hashes(headers, actual, presigned=claim.presigned):
        creq = _canonical_request(
            request.method,
            request.raw_path,
            pairs,
            headers=headers,
            signed_headers=claim.signed_headers,
            payload_hash=payload_hash,
            presigned=claim.presigned,
        )
        string_to_sign = "\n".join(
            (
                ALGORITHM,
                amz_date,
                credential_scope,
                sha256_hex(creq.encode("utf-8", "surrogatepass")),
            )
        )
        expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected.encode("ascii"), provided)
    if not matched:
        raise SigV4Error(SIGNATURE_MISMATCH)
    if token is not None and (
        session_token_valid is None or not session_token_valid(claimed.access_key_id, token)
    ):
        raise SigV4Error(INVALID_TOKEN)
    return Credential(claimed.access_key_id, claimed.date, claimed.region, claimed.service, token)


def _claim_from_header(value: str, headers: dict[str, list[str]]) -> _Claim:
    words = value.split(None, 1)
    algorithm = words[0] if words else ""
    params: dict[str, str] = {}
    for pair in _PAIR_SEPARATORS.split(words[1] if len(words) > 1 else ""):
        if not pair:
            continue
        name, equals, param = pair.partition("=")
        if not equals:
            # API Gateway no longer echoes a malformed header (it may be a bearer secret).
            digest = base64.b64encode(
                hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
            ).decode()
            raise SigV4Error(
                "Invalid key=value pair (missing equal-sign) in Authorization header "
                f"(hashed with SHA-256 and encoded with Base64): '{digest}'."
            )
        params[name] = param
    problems = [
        f"Authorization header requires '{name}' parameter. "
        for name in _HEADER_PARAMS
        if not params.get(name)
    ]
    amz_date = headers.get("x-amz-date")
    http_date = headers.get("date")
    if amz_date is None and http_date is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        )
    if problems:
        raise SigV4Error("".join(problems) + "Authorization=" + value)
    time = (
        parse_amz_date(",".join(amz_date))
        if amz_date is not None
        else _parse_http_date(",".join(http_date or ()))
    )
    return _Claim(
        presigned=False,
        algorithm=algorithm,
        credential=params["Credential"],
        signed_headers=tuple(params["SignedHeaders"].lower().split(";")),
        signature=params["Signature"],
        time=time,
        expires=None,
    )


def _claim_from_query(pairs: list[tuple[bytes, bytes]]) -> _Claim:
    params: dict[str, str] = {}
    signatures = 0
    for key, value in pairs:
        name = _text(key)
        signatures += key == _SIGNATURE_PARAM
        params.setdefault(name, _text(value))
    problems = [
        f"AWS query-string parameters must include '{name}'. "
        for name in _QUERY_PARAMS
        if not params.get(name)
    ]
    if problems:
        raise SigV4Error("".join(problems) + "Re-examine the query-string parameters.")
    expires = params.get("X-Amz-Expires")
    return _Claim(
        presigned=True,
        algorithm=params["X-Amz-Algorithm"],
        credential=params["X-Amz-Credential"],
        signed_headers=tuple(params["X-Amz-SignedHeaders"].lower().split(";")),
        # A second X-Amz-Signature would ride along unsigned; refuse it outright.
        signature=params["X-Amz-Signature"] if signatures == 1 else "",
        time=parse_amz_date(params["X-Amz-Date"]),
        expires=None if expires is None else _parse_expires(expires),
    )


def parse_amz_date(value: str) -> datetime:
    try:
        if _AMZ_DATE.fullmatch(value):
            return datetime.strptime(value, ISO_BASIC).replace(tzinfo=UTC)
    except ValueError:
        pass
    raise SigV4Error(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):  # OverflowError: year 9999 west of UTC
        raise SigV4Error(f"Date must be in RFC 1123 format. Got '{value}'.") from None


def _parse_expires(value: str) -> int:
    # At most 12 digits: int() of thousands of digits is refused by Python (and slow).
    if len(value) > 12 or not _DIGITS.fullmatch(value):
        raise SigV4Error("X-Amz-Expires should be a number")
    expires = int(value)
    if expires < 0:
        raise SigV4Error("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGNED_EXPIRES:
        raise SigV4Error(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}"
        )
    return expires


def check_signing_time(
    signed_at: datetime, now: datetime, max_skew: timedelta, *, expires: int | None = None
) -> None:
    """Refuse a request signed too far in the future, or too long ago: ``max_skew``, or
    ``expires`` seconds for a presigned URL that has an ``X-Amz-Expires``."""
    stamp = signed_at.strftime(ISO_BASIC)
    latest = now + max_skew
    if signed_at > latest:
        raise SigV4Error(
            f"Signature not yet current: {stamp} is still later than "
            f"{latest.strftime(ISO_BASIC)} ({now.strftime(ISO_BASIC)} + {_minutes(max_skew)})"
        )
    if expires is None:
        window, label = max_skew, f"- {_minutes(max_skew)}"
    else:
        window, label = timedelta(seconds=expires), f"- {expires} sec."
    earliest = now - window
    if signed_at < earliest:
        raise SigV4Error(
            f"Signature expired: {stamp} is now earlier than "
            f"{earliest.strftime(ISO_BASIC)} ({now.strftime(ISO_BASIC)} {label})"
        )


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g} min."


def _check_scope(claim: _Claim, region: str, service: str) -> tuple[str, str, str, str]:
    """(access key id, date, region, service) of a credential scoped to this gateway."""
    parts = claim.credential.rstrip("/").split("/")
    if len(parts) != 5:
        raise SigV4Error(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{claim.credential}'"
        )
    access_key_id, date, scope_region, scope_service, terminator = parts
    problems = []
    if scope_region != region:
        problems.append(f"Credential should be scoped to a valid region, not '{scope_region}'. ")
    if scope_service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'. ")
    if terminator != TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'. "
        )
    day = claim.time.strftime("%Y%m%d")
    if date != day:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{day}', from '{claim.time.strftime(ISO_BASIC)}'. "
        )
    if problems:
        raise SigV4Error("".join(problems))
    return access_key_id, date, scope_region, scope_service


def _session_token(
    headers: dict[str, list[str]], pairs: list[tuple[bytes, bytes]], signed: tuple[str, ...]
) -> str | None:
    """The session token, which must be signed: a header one must be a signed header; a
    query one is always in the canonical query. Two different tokens are refused."""
    tokens = {_text(value) for key, value in pairs if key.lower() == _TOKEN.encode()}
    header = headers.get(_TOKEN)
    if header is not None:
        if _TOKEN not in signed:
            raise SigV4Error(TOKEN_NOT_SIGNED)
        tokens.add(",".join(header))
    if len(tokens) > 1:
        raise SigV4Error(INVALID_TOKEN)
    return tokens.pop() if tokens else None


def _payload_hashes(
    headers: dict[str, list[str]], actual: str, *, presigned: bool
) -> tuple[str, ...]:
    """The payload hashes the client may have signed, given the body's real hash
    ``actual``. A claimed x-amz-content-sha256 must be that, else the signature would not
    cover the body. Only a presigned URL may leave the payload unsigned."""
    claimed = headers.get("x-amz-content-sha256")
    if claimed is None:
        return (actual, UNSIGNED_PAYLOAD) if presigned else (actual,)
    value = ",".join(claimed)
    if (presigned and value == UNSIGNED_PAYLOAD) or value.lower() == actual:
        return (value,)
    raise SigV4Error(CONTENT_SHA256_MISMATCH)


def _canonical_request(
    method: str,
    raw_path: bytes,
    pairs: list[tuple[bytes, bytes]],
    *,
    headers: dict[str, list[str]],
    signed_headers: tuple[str, ...],
    payload_hash: str,
    presigned: bool,
) -> str:
    query = sorted(
        (quote(key, safe=""), quote(value, safe=""))
        for key, value in pairs
        if not (presigned and key == _SIGNATURE_PARAM)
    )
    header_lines = "".join(
        f"{name}:{','.join(' '.join(value.split()) for value in headers.get(name, ()))}\n"
        for name in signed_headers
    )
    return "\n".join(
        (
            method,
            canonical_uri(raw_path),
            "&".join(f"{key}={value}" for key, value in query),
            header_lines,
            ";".join(signed_headers),
            payload_hash,
        )
    )


def canonical_uri(raw_path: bytes) -> str:
    """The canonical URI of a wire path: dot segments and empty segments removed (a
    trailing slash kept), then every byte outside the unreserved set and ``/`` encoded,
    which encodes the wire's own %-escapes a second time."""
    kept: list[bytes] = []
    for segment in raw_path.split(b"/"):
        if segment == b"..":
            if kept:
                kept.pop()
        elif segment not in (b"", b"."):
            kept.append(segment)
    path = b"/" + b"/".join(kept)
    if kept and raw_path.endswith(b"/"):
        path += b"/"
    return quote(path, safe="/")


def _query_pairs(raw_query: bytes) -> list[tuple[bytes, bytes]]:
    """Decoded (key, value) pairs in wire order; ``+`` is a space, as form encoding has it
    and as botocore sends spaces in query parameters it signs as ``%20``."""
    pairs = []
    for piece in raw_query.split(b"&"):
        if piece:
            key, _, value = piece.replace(b"+", b" ").partition(b"=")
            pairs.append((unquote_to_bytes(key), unquote_to_bytes(value)))
    return pairs


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    mapped: dict[str, list[str]] = {}
    for name, value in headers:
        mapped.setdefault(name.lower(), []).append(value)
    return mapped


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
