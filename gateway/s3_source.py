"""Bulk job sources in S3 or an S3-compatible store (MinIO, Ceph): one bucket and prefix.

Reads go through obstore (Rust's object_store), which costs a fraction of botocore's
CPU per object (docs/benchmarks.md, "S3 client"); boto3 lists the prefix, resolves the
AWS default credential chain, and reads from stores that reply without a
Content-Length, which obstore refuses. Error replies and transport failures become
:class:`~gateway.sources.SourceError` with the same wording whichever client met them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import obstore
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from gateway.sources import SourceConfig, SourceError, checked_name, path_problem, too_large

if TYPE_CHECKING:
    from obstore.store import S3Credential

_S3_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_S3_TRANSIENT = {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"}


def _s3_error(code: str, status: int) -> SourceError:
    """An S3 error reply by its ``<Code>`` (or, without one, its HTTP status)."""
    code = code or str(status)
    if code in _S3_NOT_FOUND:
        return SourceError("file not found", transient=False)
    if code == "NoSuchBucket":
        return SourceError("bucket not found", transient=False)
    if code in ("AccessDenied", "403"):
        return SourceError("access denied", transient=False)
    transient = code in _S3_TRANSIENT or status >= 500 or status == 429
    return SourceError(f"S3 error {code}", transient=transient)


def _client_error(error: ClientError) -> SourceError:
    details: dict[str, Any] = error.response.get("Error", {})
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return _s3_error(str(details.get("Code", "")), status)


def _boto_error(error: BotoCoreError) -> SourceError:
    if isinstance(error, ConnectTimeoutError):
        return SourceError("connect timed out", transient=True)
    if isinstance(error, EndpointConnectionError):
        return SourceError("S3 endpoint unreachable", transient=True)
    if isinstance(error, ReadTimeoutError):
        return SourceError("read timed out", transient=True)
    if isinstance(error, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return SourceError("S3 connection failed", transient=True)
    if isinstance(error, ChecksumError):
        return SourceError("S3 checksum mismatch", transient=True)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return SourceError("no S3 credentials", transient=False)
    return SourceError(f"S3 client error ({type(error).__name__})", transient=False)


# obstore (Rust's object_store) reports a failure as an exception class and a text
# that carries the HTTP status, the reply's body and the transport error's kind.
_STORE_STATUS = re.compile(r"non-2xx status code: (\d{3})")
_STORE_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_STORE_HTTP_KIND = re.compile(r"HttpError \{\s*kind: (\w+)")
_NO_LENGTH = "MissingContentLength"


def _store_error(error: Exception) -> SourceError:
    text = str(error)
    status = _STORE_STATUS.search(text)
    if status is not None:
        code = _STORE_CODE.search(text)
        return _s3_error(code.group(1) if code else "", int(status.group(1)))
    kind = _STORE_HTTP_KIND.search(text)
    if kind is not None:
        # object_store reports a connect timeout and a wait for data alike (Timeout).
        if kind.group(1) == "Timeout":
            return SourceError("read timed out", transient=True)
        if kind.group(1) == "Connect":
            return SourceError("S3 endpoint unreachable", transient=True)
        return SourceError("S3 connection failed", transient=True)  # reset, cut short, ...
    if "BareRedirect" in text:  # AWS answers 301 for a bucket of another region
        return SourceError("S3 error PermanentRedirect (check the region)", transient=False)
    return SourceError(f"S3 client error ({type(error).__name__})", transient=False)


class _ChainCredentials:
    """Credentials of boto3's default chain (environment, config files, SSO, container
    and instance roles) for obstore, which asks again when the ones it holds expire.
    botocore refreshes temporary credentials at least 10 minutes before they expire, so
    what it hands out now is good for the next few minutes."""

    _ttl = timedelta(minutes=5)

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    def __call__(self) -> S3Credential:
        frozen = self._credentials.get_frozen_credentials()
        return {
            "access_key_id": str(frozen.access_key),
            "secret_access_key": str(frozen.secret_key),
            "token": frozen.token,
            "expires_at": datetime.now(UTC) + self._ttl,
        }


class _StaticCredentials:
    """A source's own keys; given as a provider so that no ``AWS_SESSION_TOKEN`` of the
    environment is mixed into them."""

    def __init__(self, access_key_id: str, secret_access_key: str) -> None:
        self._credential: S3Credential = {
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "token": None,
            "expires_at": None,
        }

    def __call__(self) -> S3Credential:
        return self._credential


class S3Source:
    """Objects under one bucket and prefix. Reads go through ``store`` (obstore: a
    fraction of botocore's CPU per object, see docs/benchmarks.md "S3 client"); listing
    and the rare reply without a Content-Length go through the boto3 ``client``. Both
    are shared by all threads. ``store`` is None where no credentials were found."""

    def __init__(
        self, client: Any, store: S3Store | None, bucket: str, prefix: str, *, max_bytes: int
    ) -> None:
        self._client = client
        self._store = store
        self._bucket = bucket
        self._prefix = prefix
        self._max_bytes = max_bytes
        # Set once a reply came without a Content-Length (chunked; some S3-compatible
        # stores), which obstore refuses: from then on boto3 reads, with a cap.
        self._unknown_lengths = False

    def read(self, filename: str) -> bytes:
        key = self._prefix + checked_name(filename)
        if self._store is None:
            raise SourceError("no S3 credentials", transient=False)
        data = self._read_with_boto3(key) if self._unknown_lengths else self._read(self._store, key)
        if len(data) > self._max_bytes:
            raise too_large(len(data), self._max_bytes)
        return data

    def _read(self, store: S3Store, key: str) -> bytes:
        try:
            result = obstore.get(store, key)
            size = result.meta["size"]
            if size > self._max_bytes:
                # Dropping the unread reply drops its connection instead of draining it.
                raise too_large(size, self._max_bytes)
            # A known length: the HTTP client checks that exactly that much arrived. The
            # stream hands out chunks of up to 10 MB as bytes, so a photo is one chunk
            # that join returns as it is (GetResult.bytes().to_bytes() copies, slowly).
            return b"".join(result)
        except (ObstoreError, OSError, ValueError) as error:
            if _NO_LENGTH in str(error):
                self._unknown_lengths = True
                return self._read_with_boto3(key)
            raise _store_error(error) from error

    def _read_with_boto3(self, key: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            body = response["Body"]
            try:
                size: int | None = response.get("ContentLength")
                if size is not None and size > self._max_bytes:
                    raise too_large(size, self._max_bytes)
                # A known length is read whole so botocore verifies it; an unknown one
                # (chunked replies) is read with a cap, which read() then refuses.
                data: bytes = body.read() if size is not None else body.read(self._max_bytes + 1)
            finally:
                body.close()
        except ClientError as error:
            raise _client_error(error) from error
        except BotoCoreError as error:
            raise _boto_error(error) from error
        return data

    def list(self) -> Iterator[str]:
        """In S3's own order, UTF-8 byte order, which is also Python's string order.
        boto3 lists (once per job, so its CPU does not matter): obstore refuses a whole
        listing that holds one key with a '.', '..' or empty segment; these are skipped."""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix):
                for item in page.get("Contents", ()):
                    name = str(item["Key"])[len(self._prefix) :]
                    if path_problem(name) is None:
                        yield name
        except ClientError as error:
            raise _client_error(error) from error
        except BotoCoreError as error:
            raise _boto_error(error) from error

    def close(self) -> None:
        self._client.close()
        self._store = None  # its pooled connections close with it


def open_s3_source(
    config: SourceConfig,
    bucket: str,
    prefix: str,
    *,
    max_bytes: int,
    timeout_s: float,
    max_connections: int,
) -> S3Source:
    """See :func:`gateway.sources.open_source`."""
    settings = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        # One attempt: the job worker retries with its own backoff and counts attempts.
        retries={"mode": "standard", "total_max_attempts": 1},
        # S3-compatible stores rarely serve virtual-hosted bucket names; set here, it
        # also wins over an AWS config file that asks for them.
        s3={"addressing_style": "path"} if config.endpoint_url else None,
        max_pool_connections=max_connections,
    )
    try:
        # Sessions are not thread-safe, clients are: the session is used once, here.
        session = boto3.session.Session(
            aws_access_key_id=config.access_key_id or None,
            aws_secret_access_key=config.secret_access_key or None,
            region_name=config.region or None,
        )
        client = session.client("s3", endpoint_url=config.endpoint_url or None, config=settings)
        chain = None if config.access_key_id else session.get_credentials()
    except BotoCoreError as error:  # the environment's AWS configuration is broken
        raise _boto_error(error) from error
    credentials: _ChainCredentials | _StaticCredentials | None
    if config.access_key_id:
        credentials = _StaticCredentials(config.access_key_id, config.secret_access_key)
    else:
        credentials = _ChainCredentials(chain) if chain is not None else None
    store = None
    if credentials is not None:
        region = str(client.meta.region_name or "us-east-1")
        timeout = timedelta(seconds=timeout_s)
        store = S3Store(
            bucket,
            credential_provider=credentials,
            region="us-east-1" if region == "aws-global" else region,
            # As boto3 addresses them: path-style for custom endpoints, virtual hosts on
            # AWS unless a dot in the bucket's name would break TLS.
            virtual_hosted_style_request=not config.endpoint_url and "." not in bucket,
            skip_signature=False,
            client_options={
                "connect_timeout": timeout,
                "read_timeout": timeout,  # each wait for data, as botocore's
                # object_store's default of 30 s for a whole request would cut a large
                # object on a slow link; the read timeout bounds each wait instead.
                "timeout": timedelta(hours=1),
                "allow_http": config.endpoint_url.startswith("http://"),
                "pool_max_idle_per_host": str(max_connections),
            },
            # One attempt: the job worker retries with its own backoff and counts attempts.
            retry_config={"max_retries": 0, "retry_timeout": timeout},
            config={"endpoint": config.endpoint_url} if config.endpoint_url else None,
        )
    return S3Source(client, store, bucket, prefix, max_bytes=max_bytes)
