"""Bulk sources on S3 (obstore reads, boto3 lists) against real HTTP endpoints: moto's S3
server for buckets and objects, canned or raw replies for what moto cannot be asked to
fail with."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.sources import ImageSource, SourceConfig, SourceError, open_source
from tests.support.s3 import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    CannedReply,
    canned_endpoint,
    new_bucket,
    s3_error,
)

OBJECTS = {
    "top.jpg": b"top",
    "photos/1.jpg": b"one",
    "photos/sub/2.jpg": b"two",
    "photos/ten.jpg": b"0123456789",
    "photos/eleven.jpg": b"0123456789x",
    "photos2/other.jpg": b"other",
}


def s3_config(endpoint: str, uri: str) -> SourceConfig:
    return SourceConfig(
        uri,
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    return new_bucket(s3_endpoint, OBJECTS)


@pytest.fixture
def photos(s3_endpoint: str, bucket: str) -> Iterator[ImageSource]:
    source = open_source(s3_config(s3_endpoint, f"s3://{bucket}/photos"), max_bytes=10)
    yield source
    source.close()


def failure(source: ImageSource, filename: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        source.read(filename)
    return info.value


def test_s3_reads_objects_under_the_prefix(photos: ImageSource) -> None:
    assert photos.read("1.jpg") == b"one"
    assert photos.read("sub/2.jpg") == b"two"
    assert photos.read("ten.jpg") == b"0123456789"  # exactly max_bytes


@pytest.mark.parametrize(
    ("path", "filename", "data"),
    [("", "top.jpg", b"top"), ("/", "photos/1.jpg", b"one"), ("/photos/", "1.jpg", b"one")],
)
def test_s3_prefix_with_or_without_slash(
    s3_endpoint: str, bucket: str, path: str, filename: str, data: bytes
) -> None:
    source = open_source(s3_config(s3_endpoint, f"s3://{bucket}{path}"), max_bytes=10)
    assert source.read(filename) == data
    source.close()


def test_s3_prefix_is_a_folder_not_a_string_prefix(photos: ImageSource) -> None:
    error = failure(photos, "../photos2/other.jpg")
    assert (error.reason, error.transient) == ("invalid filename", False)
    assert "other.jpg" not in list(photos.list())


def test_s3_missing_object_and_bucket_are_permanent(s3_endpoint: str, photos: ImageSource) -> None:
    error = failure(photos, "nothing.jpg")
    assert (error.reason, error.transient) == ("file not found", False)
    error = failure(photos, "sub")  # a "folder" is no object
    assert (error.reason, error.transient) == ("file not found", False)
    gone = open_source(s3_config(s3_endpoint, "s3://no-such-bucket-here/x"), max_bytes=10)
    error = failure(gone, "1.jpg")
    assert (error.reason, error.transient) == ("bucket not found", False)
    with pytest.raises(SourceError) as info:
        list(gone.list())
    assert (info.value.reason, info.value.transient) == ("bucket not found", False)


def test_s3_refuses_objects_over_the_limit(photos: ImageSource) -> None:
    error = failure(photos, "eleven.jpg")
    assert (error.reason, error.transient) == ("file too large (11 bytes, limit 10)", False)


def test_s3_refuses_a_large_object_from_its_length_without_reading_it() -> None:
    """The reply announces 10 GB and sends 3 bytes: reading the body would wait for
    the rest until the read timeout."""
    huge = CannedReply(body=b"abc", headers={"Content-Length": str(10**10)})
    with canned_endpoint(huge) as endpoint:
        source = open_source(s3_config(endpoint.url, "s3://bucket/p"), max_bytes=10, timeout_s=5)
        started = time.monotonic()
        error = failure(source, "big.jpg")
        elapsed = time.monotonic() - started
        source.close()
    assert (error.reason, error.transient) == (f"file too large ({10**10} bytes, limit 10)", False)
    assert elapsed < 2


def test_s3_list_pages_through_more_than_1000_keys(s3_endpoint: str) -> None:
    names = {f"img/{i:05d}.jpg" for i in range(1005)}
    objects = dict.fromkeys(names, b"x")
    objects |= {
        "img/a/b.jpg": b"x",
        "img/zz-marker/": b"",  # a "folder" marker is no file
        "img/bad\\name.jpg": b"x",  # fails check_filename: not listed
        "img-sibling/1.jpg": b"x",  # outside the folder img/
        "top.jpg": b"x",
    }
    bucket = new_bucket(s3_endpoint, objects)
    source = open_source(s3_config(s3_endpoint, f"s3://{bucket}/img"), max_bytes=10)
    listed = list(source.list())
    expected = sorted([name.removeprefix("img/") for name in names] + ["a/b.jpg"])
    assert listed == expected
    assert source.read(listed[-1]) == b"x"
    source.close()


def test_s3_default_credential_chain(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = SourceConfig(f"s3://{bucket}/photos", endpoint_url=s3_endpoint, region=REGION)

    anonymous = open_source(config, max_bytes=10)
    error = failure(anonymous, "1.jpg")
    assert (error.reason, error.transient) == ("no S3 credentials", False)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    assert open_source(config, max_bytes=10).read("1.jpg") == b"one"


def test_a_broken_aws_configuration_fails_at_open(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(SourceError) as info:
        open_source(s3_config(s3_endpoint, "s3://bucket/p"), max_bytes=10)
    assert (info.value.reason, info.value.transient) == ("S3 client error (ProfileNotFound)", False)


@pytest.mark.parametrize(
    ("reply", "reason", "transient"),
    [
        (s3_error(503, "SlowDown"), "S3 error SlowDown", True),
        (s3_error(500, "InternalError"), "S3 error InternalError", True),
        (s3_error(400, "RequestTimeout"), "S3 error RequestTimeout", True),
        (s3_error(429, "TooManyRequests"), "S3 error TooManyRequests", True),
        (CannedReply(status=502), "S3 error 502", True),
        (s3_error(403, "AccessDenied"), "access denied", False),
        (s3_error(404, "NoSuchKey"), "file not found", False),
        (s3_error(400, "InvalidArgument"), "S3 error InvalidArgument", False),
        (s3_error(403, "InvalidAccessKeyId"), "S3 error InvalidAccessKeyId", False),
    ],
)
def test_s3_errors_are_classified_and_never_retried_by_the_client(
    reply: CannedReply, reason: str, transient: bool
) -> None:
    with canned_endpoint(reply) as endpoint:
        source = open_source(s3_config(endpoint.url, "s3://bucket/p"), max_bytes=10, timeout_s=5)
        error = failure(source, "1.jpg")
        source.close()
    assert (error.reason, error.transient) == (reason, transient)
    # One request, path-style: the job worker does the retrying.
    assert endpoint.requests == ["GET /bucket/p/1.jpg HTTP/1.1"]


def test_s3_endpoints_are_addressed_path_style(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Even where the AWS config file asks for virtual hosts (bucket.localhost, which
    does not resolve here)."""
    (tmp_path / "config").write_text("[default]\ns3 =\n  addressing_style = virtual\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with canned_endpoint(CannedReply(body=b"abc")) as endpoint:
        source = open_source(s3_config(endpoint.url, "s3://bucket/p"), max_bytes=10, timeout_s=5)
        assert source.read("1.jpg") == b"abc"
        source.close()
    assert endpoint.requests == ["GET /bucket/p/1.jpg HTTP/1.1"]


def test_s3_listing_errors_are_classified() -> None:
    with canned_endpoint(s3_error(503, "SlowDown")) as endpoint:
        source = open_source(s3_config(endpoint.url, "s3://bucket/p/"), max_bytes=10, timeout_s=5)
        with pytest.raises(SourceError) as info:
            next(source.list())
        source.close()
    assert (info.value.reason, info.value.transient) == ("S3 error SlowDown", True)
    assert len(endpoint.requests) == 1
    assert endpoint.requests[0].startswith("GET /bucket?list-type=2&prefix=p%2F")


def test_s3_read_timeout_is_transient() -> None:
    with canned_endpoint(CannedReply(stall_s=30)) as endpoint:
        source = open_source(s3_config(endpoint.url, "s3://bucket/p"), max_bytes=10, timeout_s=0.5)
        started = time.monotonic()
        error = failure(source, "1.jpg")
        elapsed = time.monotonic() - started
        source.close()
    assert (error.reason, error.transient) == ("read timed out", True)
    assert 0.4 < elapsed < 5
    assert len(endpoint.requests) == 1


def test_s3_refused_connection_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = open_source(
        s3_config(f"http://127.0.0.1:{port}", "s3://bucket/p"), max_bytes=10, timeout_s=1
    )
    started = time.monotonic()
    error = failure(source, "1.jpg")
    elapsed = time.monotonic() - started
    with pytest.raises(SourceError) as info:
        next(source.list())
    source.close()
    assert (error.reason, error.transient) == ("S3 endpoint unreachable", True)
    assert (info.value.reason, info.value.transient) == ("S3 endpoint unreachable", True)
    assert elapsed < 1


@contextmanager
def raw_endpoint(reply: bytes) -> Iterator[str]:
    """A loopback server that answers each connection's first request with ``reply``,
    bytes as they are (no HTTP framing added), then closes it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                connection.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{listener.getsockname()[1]}"
    finally:
        stopping.set()
        thread.join()
        listener.close()


def chunked(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )


def test_s3_reads_a_reply_without_content_length_with_a_cap() -> None:
    """Some S3-compatible stores send objects chunked; the reader falls back to boto3,
    which reads at most one byte over the limit."""
    with raw_endpoint(chunked(b"abc")) as endpoint:
        source = open_source(s3_config(endpoint, "s3://bucket/p"), max_bytes=10, timeout_s=5)
        assert source.read("1.jpg") == b"abc"
        assert source.read("2.jpg") == b"abc"  # straight to the fallback now
        source.close()
    with raw_endpoint(chunked(b"0123456789x")) as endpoint:
        source = open_source(s3_config(endpoint, "s3://bucket/p"), max_bytes=10, timeout_s=5)
        error = failure(source, "1.jpg")
        source.close()
    assert (error.reason, error.transient) == ("file too large (11 bytes, limit 10)", False)


@pytest.mark.parametrize(
    "reply",
    [
        # The length announced, part of the body sent, then the connection closed.
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc",
        b"this is no HTTP reply\r\n\r\n",
        b"",  # closed without a word
    ],
)
def test_s3_broken_replies_are_transient(reply: bytes) -> None:
    with raw_endpoint(reply) as endpoint:
        source = open_source(s3_config(endpoint, "s3://bucket/p"), max_bytes=10, timeout_s=5)
        error = failure(source, "1.jpg")
        source.close()
    assert (error.reason, error.transient) == ("S3 connection failed", True)


def test_s3_redirect_to_another_region_is_permanent() -> None:
    """AWS answers 301 PermanentRedirect, without a Location, for a bucket of another
    region; no retry helps until the source's region is fixed."""
    with canned_endpoint(s3_error(301, "PermanentRedirect")) as endpoint:
        source = open_source(s3_config(endpoint.url, "s3://bucket/p"), max_bytes=10, timeout_s=5)
        error = failure(source, "1.jpg")
        source.close()
    assert (error.reason, error.transient) == (
        "S3 error PermanentRedirect (check the region)",
        False,
    )
    assert endpoint.requests == ["GET /bucket/p/1.jpg HTTP/1.1"]


def test_s3_connect_timeout_is_transient() -> None:
    """A listener whose backlog is full: the kernel drops further SYNs, so connecting
    waits until the client's connect timeout."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        address = listener.getsockname()
        fillers = []
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(address)
            fillers.append(filler)
        source = open_source(
            s3_config(f"http://127.0.0.1:{address[1]}", "s3://bucket/p"),
            max_bytes=10,
            timeout_s=0.5,
        )
        started = time.monotonic()
        error = failure(source, "1.jpg")
        elapsed = time.monotonic() - started
        source.close()
        for filler in fillers:
            filler.close()
    # object_store reports a connect timeout as it does a wait for data.
    assert (error.reason, error.transient) == ("read timed out", True)
    assert 0.4 < elapsed < 5


def test_s3_reads_concurrently_from_one_source(s3_endpoint: str) -> None:
    objects = {f"many/{i:03d}.jpg": bytes([i]) * (i + 1) for i in range(64)}
    bucket = new_bucket(s3_endpoint, objects)
    source = open_source(s3_config(s3_endpoint, f"s3://{bucket}/many"), max_bytes=100)
    with ThreadPoolExecutor(max_workers=12) as pool:
        names = [key.removeprefix("many/") for key in objects]
        got = dict(zip(names, pool.map(source.read, names), strict=True))
    source.close()
    assert got == {key.removeprefix("many/"): data for key, data in objects.items()}
