"""Where bulk registration jobs read their images: a local folder or an S3 bucket.

A gallery's bulk source is a :class:`SourceConfig` (``file:///folder`` or
``s3://bucket/prefix``); :func:`open_source` turns it into an :class:`ImageSource` whose
``read`` returns one file's bytes by the registration's ``filename``. Every failure of a
read is a :class:`SourceError` that says whether retrying later can help (``transient``:
throttling, 5xx, timeouts, lost connections, I/O errors) or not (missing, forbidden, too
large). Nothing here retries: the job worker owns retries, backoff and attempt counts.

Local folders: a filename is resolved (symlinks included) and must stay inside the
folder; a path that leaves it is refused as "access denied" before the target is opened,
so the refusal says nothing about what exists outside. On Linux the opened file's real
path is checked again, which closes the window where a folder is swapped for a symlink
between the check and the open. A folder that does not exist is accepted by
:func:`check_config` (it may be a volume mounted only on the workers); reading from it
fails with the transient "source folder not found".

S3 sources live in :mod:`gateway.s3_source`, imported only when one is opened.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from facegate.errors import invalid_request

MAX_FILENAME_BYTES = 1024
_FILE_SCHEME = "file://"
_S3_SCHEME = "s3://"
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,254}")
_REGION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PROC_FD = "/proc/self/fd"
_HAS_PROC_FD = os.path.isdir(_PROC_FD)

# Errors of a local read that no retry can fix; every other OSError (EIO, ESTALE,
# EMFILE, ETIMEDOUT, ...) is a property of the moment and is retried.
_PERMANENT_ERRNOS = {
    errno.ENOENT: "file not found",
    errno.ENOTDIR: "file not found",
    errno.EACCES: "access denied",
    errno.EPERM: "access denied",
    errno.ELOOP: "access denied",
    errno.EISDIR: "not a regular file",
    errno.ENAMETOOLONG: "file name too long",
}


class SourceError(Exception):
    """A read or listing failed. ``reason`` is short enough for a job record;
    ``transient`` says whether the same read may succeed later."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient

    def __repr__(self) -> str:
        return f"SourceError({self.reason!r}, transient={self.transient})"


@dataclass(frozen=True)
class SourceConfig:
    """A gallery's bulk source. ``uri`` is ``file:///absolute/folder`` or
    ``s3://bucket/prefix`` (the prefix may be empty; ``photos`` and ``photos/`` both
    mean the folder ``photos/``). The other fields apply to S3 only; empty credentials
    mean boto3's default chain (environment, config files, instance role)."""

    uri: str
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)


class ImageSource(Protocol):
    """One opened source. ``read`` may be called from several threads at once."""

    def read(self, filename: str) -> bytes:
        """The file's bytes, or :class:`SourceError`."""
        ...

    def list(self) -> Iterator[str]:
        """Every filename under the source that passes :func:`check_filename`, sorted."""
        ...

    def close(self) -> None: ...


def path_problem(path: str) -> str | None:
    """What is wrong with a relative, ``/``-separated path, or None."""
    if not path:
        return "must not be empty"
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8"
    if size > MAX_FILENAME_BYTES:
        return f"must be at most {MAX_FILENAME_BYTES} bytes"
    if any(unicodedata.category(char) == "Cc" for char in path):
        return "must not contain control characters"
    if path.startswith("/"):
        return "must be a relative path"
    if "\\" in path:
        return "must not contain backslashes"
    if path.endswith("/"):
        return "must not end with '/'"
    segments = path.split("/")
    if "" in segments:
        return "must not contain empty segments"
    if "." in segments or ".." in segments:
        return "must not contain '.' or '..' segments"
    return None


def check_filename(filename: str) -> str:
    """The one validation of a registration's filename: a relative path below the
    source, with no way to leave it. Returns it unchanged."""
    problem = path_problem(filename)
    if problem is not None:
        raise invalid_request(f"filename {problem}.")
    return filename


def check_config(config: SourceConfig) -> SourceConfig:
    """Refuses a malformed source with INVALID_REQUEST; returns it unchanged. Nothing is
    contacted: a local folder need not exist yet, a bucket is not looked up."""
    s3_only = (config.endpoint_url, config.region, config.access_key_id, config.secret_access_key)
    if config.uri.startswith(_FILE_SCHEME):
        _local_root(config.uri)
        if any(s3_only):
            raise invalid_request(
                "endpoint_url, region and credentials are only valid for s3 sources."
            )
        return config
    if not config.uri.startswith(_S3_SCHEME):
        raise invalid_request("uri must be file:///absolute/folder or s3://bucket/prefix.")
    _bucket_and_prefix(config.uri)
    if config.endpoint_url:
        parts = urlsplit(config.endpoint_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(unicodedata.category(char) in ("Cc", "Zs") for char in config.endpoint_url)
        ):
            raise invalid_request("endpoint_url must be an http or https URL.")
    if config.region and not _REGION.fullmatch(config.region):
        raise invalid_request("region is not valid.")
    if bool(config.access_key_id) != bool(config.secret_access_key):
        raise invalid_request("access_key_id and secret_access_key must be given together.")
    return config


def _local_root(uri: str) -> str:
    path = uri[len(_FILE_SCHEME) :]
    if not path.startswith("/"):
        raise invalid_request("uri must name an absolute folder (file:///folder).")
    relative = path[1:].removesuffix("/")
    if relative:
        problem = path_problem(relative)
        if problem is not None:
            raise invalid_request(f"uri folder {problem}.")
    return path


def _bucket_and_prefix(uri: str) -> tuple[str, str]:
    """The bucket and the key prefix, the latter empty or ending with ``/``."""
    bucket, _, prefix = uri[len(_S3_SCHEME) :].partition("/")
    if not bucket:
        raise invalid_request("uri must name a bucket (s3://bucket/prefix).")
    if not _BUCKET.fullmatch(bucket):
        raise invalid_request("uri bucket name is not valid.")
    prefix = prefix.removesuffix("/")
    if not prefix:
        return bucket, ""
    problem = path_problem(prefix)
    if problem is not None:
        raise invalid_request(f"uri prefix {problem}.")
    return bucket, prefix + "/"


def checked_name(filename: str) -> str:
    """``filename``, or a permanent :class:`SourceError` if it is not a valid path."""
    if path_problem(filename) is not None:
        raise SourceError("invalid filename", transient=False)
    return filename


def too_large(size: int, limit: int) -> SourceError:
    """The permanent error for a file of ``size`` bytes over ``limit``."""
    return SourceError(f"file too large ({size} bytes, limit {limit})", transient=False)


def _inside(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _os_error(error: OSError) -> SourceError:
    reason = _PERMANENT_ERRNOS.get(error.errno or 0)
    if reason is not None:
        return SourceError(reason, transient=False)
    return SourceError(f"read error ({error.strerror or type(error).__name__})", transient=True)


def _read_up_to(fd: int, limit: int, *, expected: int) -> bytes:
    """At most ``limit + 1`` bytes (one more than allowed shows the file grew); the
    expected size is read in one call, with one more to see the end."""
    parts: list[bytes] = []
    left = limit + 1
    size = expected + 1
    while left > 0:
        part = os.read(fd, min(size, left))
        if not part:
            break
        parts.append(part)
        left -= len(part)
        size = 1 << 20
    return b"".join(parts)


class LocalFolderSource:
    """Files below one folder of the worker's filesystem. Holds no open handles."""

    def __init__(self, root: str, *, max_bytes: int) -> None:
        self._root = root
        self._max_bytes = max_bytes

    def _real_root(self) -> str:
        # Resolved on every call: the folder may be a symlink that is re-pointed (an
        # atomically swapped mount) while the source is open.
        real = os.path.realpath(self._root)
        if not os.path.isdir(real):
            raise SourceError("source folder not found", transient=True)
        return real

    def read(self, filename: str) -> bytes:
        name = checked_name(filename)
        root = self._real_root()
        target = os.path.realpath(os.path.join(root, name))
        if not _inside(target, root):
            raise SourceError("access denied", transient=False)
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; it changes nothing
            # for regular files.
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise _os_error(error) from error
        try:
            if _HAS_PROC_FD and not _inside(os.readlink(f"{_PROC_FD}/{fd}"), root):
                raise SourceError("access denied", transient=False)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SourceError("not a regular file", transient=False)
            if info.st_size > self._max_bytes:
                raise too_large(info.st_size, self._max_bytes)
            data = _read_up_to(fd, self._max_bytes, expected=info.st_size)
        except OSError as error:
            raise _os_error(error) from error
        finally:
            os.close(fd)
        if len(data) > self._max_bytes:  # grew after fstat
            raise too_large(len(data), self._max_bytes)
        return data

    def list(self) -> Iterator[str]:
        """Regular files, and symlinks to regular files inside the folder. Symlinked
        subfolders are not descended into (no cycles, no escapes)."""
        root = self._real_root()
        names: list[str] = []

        def fail(error: OSError) -> None:
            raise _os_error(error) from error

        for folder, _, files in os.walk(root, onerror=fail):
            for name in files:
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, root)
                if path_problem(relative) is not None:
                    continue
                try:
                    if os.path.islink(path) and not _inside(os.path.realpath(path), root):
                        continue
                    if not stat.S_ISREG(os.stat(path).st_mode):
                        continue
                except FileNotFoundError:  # a dangling symlink, or removed meanwhile
                    continue
                except OSError as error:
                    raise _os_error(error) from error
                names.append(relative)
        yield from sorted(names)

    def close(self) -> None:
        """Nothing to release: every read opens and closes its own file."""


def open_source(
    config: SourceConfig, *, max_bytes: int, timeout_s: float = 30.0, max_connections: int = 10
) -> ImageSource:
    """An :class:`ImageSource` for a valid config (INVALID_REQUEST otherwise) that
    refuses files over ``max_bytes``. For S3, ``timeout_s`` bounds connecting and each
    wait for data; ``max_connections`` should cover the threads reading at once; a
    broken AWS configuration of the environment (a missing profile, ...) is a
    permanent :class:`SourceError` here already."""
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    check_config(config)
    if config.uri.startswith(_FILE_SCHEME):
        return LocalFolderSource(_local_root(config.uri), max_bytes=max_bytes)
    # Imported here: boto3 and obstore load only in processes that read from S3.
    from gateway.s3_source import open_s3_source

    bucket, prefix = _bucket_and_prefix(config.uri)
    return open_s3_source(
        config,
        bucket,
        prefix,
        max_bytes=max_bytes,
        timeout_s=timeout_s,
        max_connections=max_connections,
    )
