"""Bulk sources: filename and config validation, and reading a local folder safely.

The S3 half is in test_sources_s3.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from facegate.errors import ErrorType, FacegateError
from gateway.sources import (
    ImageSource,
    SourceConfig,
    SourceError,
    check_config,
    check_filename,
    open_source,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "filename",
    ["1.jpg", "a/b/c.jpg", "名前 1.jpg", ".hidden", "..a/b..", "x" * 1024, "é" * 512],
)
def test_check_filename_returns_valid_names_unchanged(filename: str) -> None:
    assert check_filename(filename) is filename


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("", "filename must not be empty."),
        ("x" * 1025, "filename must be at most 1024 bytes."),
        ("é" * 513, "filename must be at most 1024 bytes."),
        ("\udcff.jpg", "filename must be valid UTF-8."),
        ("a\x00b", "filename must not contain control characters."),
        ("a\nb.jpg", "filename must not contain control characters."),
        ("a\x7f", "filename must not contain control characters."),
        ("a\x85", "filename must not contain control characters."),
        ("/etc/passwd", "filename must be a relative path."),
        ("a\\b.jpg", "filename must not contain backslashes."),
        ("..\\x", "filename must not contain backslashes."),
        ("a/", "filename must not end with '/'."),
        ("a//b", "filename must not contain empty segments."),
        ("..", "filename must not contain '.' or '..' segments."),
        ("../a.jpg", "filename must not contain '.' or '..' segments."),
        ("a/../../b", "filename must not contain '.' or '..' segments."),
        ("./a", "filename must not contain '.' or '..' segments."),
        ("a/.", "filename must not contain '.' or '..' segments."),
    ],
)
def test_check_filename_refuses(filename: str, message: str) -> None:
    with pytest.raises(FacegateError) as info:
        check_filename(filename)
    assert info.value.error_type is ErrorType.INVALID_REQUEST
    assert info.value.message == message


@pytest.mark.parametrize(
    "config",
    [
        SourceConfig("file:///data/photos"),
        SourceConfig("file:///data/photos/"),
        SourceConfig("file:///"),
        SourceConfig("file:///no/such/folder/yet"),
        SourceConfig("s3://bucket"),
        SourceConfig("s3://bucket/"),
        SourceConfig("s3://my.bucket-1/photos/2024"),
        SourceConfig(
            "s3://bucket/photos/",
            endpoint_url="http://127.0.0.1:9000",
            region="eu-west-1",
            access_key_id="AKID",
            secret_access_key="secret",
        ),
        SourceConfig("s3://bucket", endpoint_url="https://minio.example:9000/base"),
    ],
)
def test_check_config_accepts(config: SourceConfig) -> None:
    assert check_config(config) is config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SourceConfig(""), "uri must be file:///absolute/folder or s3://bucket/prefix."),
        (SourceConfig("https://x/y"), "uri must be file:///absolute/folder or s3://bucket/prefix."),
        (SourceConfig("S3://bucket"), "uri must be file:///absolute/folder or s3://bucket/prefix."),
        (
            SourceConfig("/data/photos"),
            "uri must be file:///absolute/folder or s3://bucket/prefix.",
        ),
        (SourceConfig("file://data/photos"), "uri must name an absolute folder (file:///folder)."),
        (SourceConfig("file://"), "uri must name an absolute folder (file:///folder)."),
        (SourceConfig("file:///data/../etc"), "uri folder must not contain '.' or '..' segments."),
        (SourceConfig("file:///data//x"), "uri folder must not contain empty segments."),
        (SourceConfig("file:///da\x00ta"), "uri folder must not contain control characters."),
        (SourceConfig("s3://"), "uri must name a bucket (s3://bucket/prefix)."),
        (SourceConfig("s3:///photos"), "uri must name a bucket (s3://bucket/prefix)."),
        (SourceConfig("s3://ab"), "uri bucket name is not valid."),
        (SourceConfig("s3://bu cket"), "uri bucket name is not valid."),
        (SourceConfig("s3://bucket//x"), "uri prefix must be a relative path."),
        (SourceConfig("s3://bucket/a//x"), "uri prefix must not contain empty segments."),
        (SourceConfig("s3://bucket/a/../b"), "uri prefix must not contain '.' or '..' segments."),
        (
            SourceConfig("s3://bucket", endpoint_url="ftp://host"),
            "endpoint_url must be an http or https URL.",
        ),
        (
            SourceConfig("s3://bucket", endpoint_url="minio:9000"),
            "endpoint_url must be an http or https URL.",
        ),
        (
            SourceConfig("s3://bucket", endpoint_url="http://ho st"),
            "endpoint_url must be an http or https URL.",
        ),
        (SourceConfig("s3://bucket", region="eu west"), "region is not valid."),
        (
            SourceConfig("s3://bucket", access_key_id="AKID"),
            "access_key_id and secret_access_key must be given together.",
        ),
        (
            SourceConfig("s3://bucket", secret_access_key="secret"),
            "access_key_id and secret_access_key must be given together.",
        ),
        (
            SourceConfig("file:///data", endpoint_url="http://127.0.0.1:9000"),
            "endpoint_url, region and credentials are only valid for s3 sources.",
        ),
        (
            SourceConfig("file:///data", region="eu-west-1"),
            "endpoint_url, region and credentials are only valid for s3 sources.",
        ),
        (
            SourceConfig("file:///data", access_key_id="AKID", secret_access_key="secret"),
            "endpoint_url, region and credentials are only valid for s3 sources.",
        ),
    ],
)
def test_check_config_refuses(config: SourceConfig, message: str) -> None:
    with pytest.raises(FacegateError) as info:
        check_config(config)
    assert info.value.error_type is ErrorType.INVALID_REQUEST
    assert info.value.message == message
    with pytest.raises(FacegateError):
        open_source(config, max_bytes=100)


def test_the_secret_stays_out_of_the_config_repr() -> None:
    config = SourceConfig("s3://bucket", access_key_id="AKID", secret_access_key="hunter2")
    assert "hunter2" not in repr(config)
    assert "AKID" in repr(config)


# Local folders


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``root/`` with a few files, next to ``outside/`` holding a secret."""
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "1.jpg").write_bytes(b"one")
    (root / "a" / "b" / "2.jpg").write_bytes(b"two")
    (root / "a-c.jpg").write_bytes(b"a-c")
    (root / "名前.jpg").write_bytes(b"name")
    (root / "ten.jpg").write_bytes(b"0123456789")
    (root / "eleven.jpg").write_bytes(b"0123456789x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"secret")
    return root


@pytest.fixture
def local(tree: Path) -> Iterator[ImageSource]:
    source = open_source(SourceConfig(f"file://{tree}"), max_bytes=10)
    yield source
    source.close()


def failure(source: ImageSource, filename: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        source.read(filename)
    return info.value


def test_local_reads_files_by_relative_name(local: ImageSource) -> None:
    assert local.read("1.jpg") == b"one"
    assert local.read("a/b/2.jpg") == b"two"
    assert local.read("名前.jpg") == b"name"
    assert local.read("ten.jpg") == b"0123456789"  # exactly max_bytes


def test_local_root_may_be_given_with_a_trailing_slash_or_through_a_symlink(
    tree: Path, tmp_path: Path
) -> None:
    (tmp_path / "alias").symlink_to(tree)
    for uri in (f"file://{tree}/", f"file://{tmp_path}/alias"):
        assert open_source(SourceConfig(uri), max_bytes=10).read("a/b/2.jpg") == b"two"


@pytest.mark.parametrize(
    "filename", ["../outside/secret.jpg", "a/../../outside/secret.jpg", "/etc/passwd", "a\\b"]
)
def test_local_refuses_invalid_filenames(local: ImageSource, filename: str) -> None:
    error = failure(local, filename)
    assert (error.reason, error.transient) == ("invalid filename", False)


def test_local_refuses_symlinks_out_of_the_folder_whether_or_not_the_target_exists(
    local: ImageSource, tree: Path
) -> None:
    outside = tree.parent / "outside"
    (tree / "leak.jpg").symlink_to(outside / "secret.jpg")
    (tree / "ghost.jpg").symlink_to(outside / "missing.jpg")
    (tree / "door").symlink_to(outside)
    (tree / "up.jpg").symlink_to("../outside/secret.jpg")
    (tree / "passwd").symlink_to("/etc/passwd")
    for name in ("leak.jpg", "ghost.jpg", "door/secret.jpg", "up.jpg", "passwd"):
        error = failure(local, name)
        assert (name, error.reason, error.transient) == (name, "access denied", False)


def test_local_follows_symlinks_that_stay_inside_the_folder(local: ImageSource, tree: Path) -> None:
    (tree / "again.jpg").symlink_to("a/b/2.jpg")
    (tree / "a" / "b" / "back.jpg").symlink_to("../../1.jpg")
    (tree / "shortcut").symlink_to(tree / "a" / "b")
    assert local.read("again.jpg") == b"two"
    assert local.read("a/b/back.jpg") == b"one"
    assert local.read("shortcut/2.jpg") == b"two"


def test_local_missing_files_are_permanent(local: ImageSource, tree: Path) -> None:
    (tree / "dangling.jpg").symlink_to(tree / "nowhere.jpg")
    for name in ("nothing.jpg", "a/b/nothing.jpg", "1.jpg/below", "dangling.jpg"):
        error = failure(local, name)
        assert (name, error.reason, error.transient) == (name, "file not found", False)


@pytest.mark.timeout(10)
def test_local_refuses_what_is_not_a_regular_file_without_blocking(
    local: ImageSource, tree: Path
) -> None:
    os.mkfifo(tree / "pipe.jpg")
    for name in ("a", "a/b", "pipe.jpg"):
        error = failure(local, name)
        assert (name, error.reason, error.transient) == (name, "not a regular file", False)


def test_local_refuses_files_over_the_limit(local: ImageSource, tree: Path) -> None:
    error = failure(local, "eleven.jpg")
    assert (error.reason, error.transient) == ("file too large (11 bytes, limit 10)", False)
    with (tree / "sparse.jpg").open("wb") as file:
        file.truncate(1 << 40)  # a terabyte that would never fit in memory
    error = failure(local, "sparse.jpg")
    assert error.reason == f"file too large ({1 << 40} bytes, limit 10)"


def test_a_missing_local_folder_is_transient(tmp_path: Path) -> None:
    source = open_source(SourceConfig(f"file://{tmp_path}/not-mounted"), max_bytes=10)
    error = failure(source, "1.jpg")
    assert (error.reason, error.transient) == ("source folder not found", True)
    with pytest.raises(SourceError) as info:
        next(source.list())
    assert (info.value.reason, info.value.transient) == ("source folder not found", True)


def test_local_io_errors_are_transient(tree: Path) -> None:
    """Out of file descriptors (EMFILE) stands for the errors of the moment; it is
    provoked for real in a child process, whose descriptor limit can be lowered."""
    script = """
import os, resource, sys
from gateway.sources import SourceConfig, SourceError, open_source
source = open_source(SourceConfig(sys.argv[1]), max_bytes=10)
assert source.read("1.jpg") == b"one"
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
try:
    source.read("1.jpg")
except SourceError as error:
    print(error.transient, error.reason)
"""
    result = subprocess.run(
        [sys.executable, "-c", script, f"file://{tree}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "True read error (Too many open files)"


def test_local_list_is_sorted_and_holds_only_readable_files(local: ImageSource, tree: Path) -> None:
    outside = tree.parent / "outside"
    (tree / "leak.jpg").symlink_to(outside / "secret.jpg")
    (tree / "dangling.jpg").symlink_to(tree / "nowhere.jpg")
    (tree / "again.jpg").symlink_to("a/b/2.jpg")
    (tree / "door").symlink_to(outside)
    (tree / "shortcut").symlink_to(tree / "a")
    (tree / "bad\\name.jpg").write_bytes(b"x")
    (tree / "new\nline.jpg").write_bytes(b"x")
    (tree / "empty").mkdir()
    os.mkfifo(tree / "pipe.jpg")
    names = list(local.list())
    assert names == [
        "1.jpg",
        "a-c.jpg",
        "a/b/2.jpg",
        "again.jpg",
        "eleven.jpg",
        "ten.jpg",
        "名前.jpg",
    ]
    assert names == sorted(names)
    for name in names:
        assert check_filename(name) == name
