"""The matcher shard's write-ahead log: a write is acknowledged only once it is on disk.

A shard appends every change (upsert, delete, ...) here before applying it, and answers
the caller only after ``append`` returns, so a returned sequence number survives kill -9
and power loss. On restart the shard loads its newest snapshot and replays the records
after the snapshot's sequence; after a snapshot it calls ``truncate_through`` to drop the
segments the snapshot covers (ADR 0005).

Directory layout
----------------
``NNNNNNNNNNNNNNNNNNNN.log``
    Segments, named by the sequence of the first record they hold (20 digits, zero
    padded: any u64). Records are appended to the newest segment, the *active* one; a
    new segment is started when the active one has reached ``segment_bytes``.
``wal.lock``
    Held with ``flock`` while a ``WriteAheadLog`` is open, so two processes (or two
    handles in one process) can never append to the same log. The kernel releases it
    when the holder dies, even by SIGKILL.

Record framing (little-endian, an 18-byte header then the payload)
-------------------------------------------------------------------
======  ====  ==================================================================
offset  size  field
======  ====  ==================================================================
0       1     format byte ``0xF1`` (format 1; zero-filled or foreign bytes fail it)
1       1     kind, u8, 1..255 (the shard's record type; 0 is never written)
2       8     sequence, u64: one more than the previous record's, starting at 1
10      4     payload length, u32, at most 256 MiB
14      4     CRC-32 (``zlib.crc32``) of bytes 1..13 (kind, sequence, length)
              followed by the payload
18      n     payload
======  ====  ==================================================================

Sequences are dense: within a segment each record's is one more than the one before,
the first equals the file's name, and each segment's name is one more than the last
sequence of the segment before it. So a missing, repeated or reordered record or
segment is detectable, not silently skipped.

Durability
----------
``append`` writes the record with one ``writev`` and calls ``os.fdatasync`` before it
returns (fdatasync also persists the file size, which is what reading the record back
needs). A new segment is fsynced and so is the directory after creating it, and the
directory is fsynced after each segment removed, so a segment never appears or
disappears across a power loss out of order.

If ``fdatasync`` fails, the kernel may already have dropped the dirty pages and will not
report the loss again, so the record cannot be acknowledged and the log cannot safely
take more: the handle closes itself and every later call raises ``WalError``; the shard
must reopen (recover from what is really on disk). A failed ``write`` (e.g. ENOSPC) is
rolled back with ``ftruncate`` and the log stays usable.

Recovery
--------
``open`` checks the structure of every segment (framing, sequence continuity, segment
boundaries: header reads only) and every CRC of the last segment. A record that fails
its framing or CRC at the END of the last segment is what an append interrupted by a
crash leaves behind: that tail was never acknowledged, so it is cut off (``ftruncate`` +
fsync) and logged. It is treated as a torn tail only if no valid record follows it;
anything else (a bad CRC followed by a valid record, a gap or repeat in sequences, a
kind of 0, a defect in an earlier segment) raises ``WalError`` naming the file and
offset, because dropping it would lose acknowledged writes. ``replay`` verifies every
CRC it reads.

Sequences never go backwards across restarts: ``truncate_through`` of everything
starts a new, empty segment named ``last_sequence + 1`` before it deletes the old ones,
so the newest segment's name always carries the sequence even when the log holds no
records; there is no separate state file to keep consistent with the segments.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NamedTuple, Self

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "Record",
    "WalError",
    "WriteAheadLog",
]

log = logging.getLogger(__name__)

FORMAT_BYTE = 0xF1
_HEADER = struct.Struct("<BBQII")
_FIELDS = struct.Struct("<BQI")  # kind, sequence, length: the CRC-covered header fields
HEADER_SIZE = _HEADER.size
MAX_PAYLOAD = 256 << 20
DEFAULT_SEGMENT_BYTES = 64 << 20
LOCK_FILE = "wal.lock"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.log$")
_MAX_SEQUENCE = (1 << 64) - 1
_NO_PAYLOADS = _MAX_SEQUENCE + 1  # `payload_from` that reads no payload at all


class WalError(Exception):
    """The log is damaged, in use elsewhere, or no longer usable.

    Raised instead of guessing: recovering past it would lose acknowledged writes.
    """


class Record(NamedTuple):
    """One replayed record; unpacks as ``sequence, kind, payload``."""

    sequence: int
    kind: int
    payload: bytes


class _RecordError(Exception):
    """A record that failed a check, at ``offset`` of the file being read.

    ``torn`` says whether an interrupted append could have produced it (short header,
    wrong format byte, short payload, bad CRC); a record whose CRC is right but whose
    sequence or kind is wrong was written whole, so it is corruption, never a torn tail.
    """

    def __init__(self, offset: int, reason: str, *, torn: bool) -> None:
        super().__init__(f"offset {offset}: {reason}")
        self.offset = offset
        self.reason = reason
        self.torn = torn


class _Entry(NamedTuple):
    offset: int
    sequence: int
    kind: int
    length: int
    payload: bytes | None


def _segment_name(first_sequence: int) -> str:
    return f"{first_sequence:020d}.log"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crc(fields: bytes, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(fields))


def _read_records(
    f: BinaryIO, size: int, first_sequence: int, *, payload_from: int
) -> Iterator[_Entry]:
    """The records of one segment, checked, from the start of ``f``.

    Records with ``sequence >= payload_from`` are read whole and their CRC checked;
    earlier ones are only framed (header checks, then a seek past the payload), which is
    how ``open`` walks old segments and ``replay`` reaches its start cheaply.
    Raises ``_RecordError`` at the first bad record; stops cleanly at the exact end of file.
    """
    expected = first_sequence
    offset = 0
    while True:
        head = f.read(HEADER_SIZE)
        if not head:
            return
        if len(head) < HEADER_SIZE:
            raise _RecordError(
                offset, f"partial header ({len(head)} of {HEADER_SIZE} bytes)", torn=True
            )
        magic, kind, sequence, length, crc = _HEADER.unpack(head)
        if magic != FORMAT_BYTE:
            raise _RecordError(
                offset, f"format byte 0x{magic:02x}, not 0x{FORMAT_BYTE:02x}", torn=True
            )
        if length > MAX_PAYLOAD:
            raise _RecordError(offset, f"payload length {length} over the maximum", torn=True)
        end = offset + HEADER_SIZE + length
        payload: bytes | None = None
        if sequence >= payload_from:
            payload = f.read(length)
            if len(payload) < length:
                raise _RecordError(
                    offset, f"payload cut short ({len(payload)} of {length} bytes)", torn=True
                )
            if _crc(head[1:14], payload) != crc:
                raise _RecordError(
                    offset, f"CRC mismatch (record claims sequence {sequence})", torn=True
                )
        else:
            if end > size:
                raise _RecordError(
                    offset, f"record runs {end - size} bytes past the end", torn=True
                )
            f.seek(length, os.SEEK_CUR)
        if kind == 0:
            raise _RecordError(offset, "record of kind 0", torn=False)
        if sequence != expected:
            raise _RecordError(
                offset, f"sequence {sequence} where {expected} was expected", torn=False
            )
        yield _Entry(offset, sequence, kind, length, payload)
        expected += 1
        offset = end


def _find_valid_record(data: bytes, start: int, min_sequence: int) -> tuple[int, int] | None:
    """The first (offset, sequence) at or after ``start`` in ``data`` where a whole record
    with a correct CRC and a sequence >= ``min_sequence`` sits, if any.

    Used to tell a torn tail (nothing valid after the bad bytes) from corruption in the
    middle of acknowledged records. The sequence window keeps random bytes from costing a
    CRC computation at every occurrence of the format byte.
    """
    marker = bytes([FORMAT_BYTE])
    view = memoryview(data)
    position = data.find(marker, start)
    while 0 <= position <= len(data) - HEADER_SIZE:
        _, _, sequence, length, crc = _HEADER.unpack_from(data, position)
        body = position + HEADER_SIZE
        if (
            0 <= sequence - min_sequence < (1 << 40)
            and length <= MAX_PAYLOAD
            and body + length <= len(data)
            and _crc(data[position + 1 : position + 14], view[body : body + length]) == crc
        ):
            return position, sequence
        position = data.find(marker, position + 1)
    return None


class WriteAheadLog:
    """An append-only, fsynced, segmented record log; see the module docstring.

    ``append`` and ``truncate_through`` are serialised by one lock and may be called from
    any thread. ``replay`` may run while other threads append (it stops at the sequence
    that was last when it was called) but not concurrently with ``truncate_through``,
    which may delete the segment it is about to read (that raises ``WalError``).
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int,
        lock_fd: int,
        firsts: list[int],
        last_sequence: int,
        active_fd: int,
        active_size: int,
    ) -> None:
        """Use ``WriteAheadLog.open``; this only stores recovered state."""
        self._directory = directory
        self._segment_bytes = segment_bytes
        self._lock_fd: int | None = lock_fd
        self._firsts = firsts  # first sequence of each segment, ascending; the last is active
        self._last = last_sequence
        self._active_fd: int | None = active_fd
        self._active_size = active_size
        self._lock = threading.Lock()
        self._failure: str | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, directory: Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> Self:
        """Open (creating it if missing) and recover the log in ``directory``.

        Cuts off a torn tail of the last segment; raises ``WalError`` on any other damage
        and if another handle holds the log.
        """
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be positive, not {segment_bytes}")
        directory = Path(directory)
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_dir(directory.parent)
        lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WalError(f"{directory}: the log is already open elsewhere") from None
            firsts = _list_segments(directory)
            if not firsts:
                firsts = [1]
                _create_segment(directory, 1)
            for index, first in enumerate(firsts[:-1]):
                last = _walk_segment(directory / _segment_name(first), first)
                if last + 1 != firsts[index + 1]:
                    raise WalError(
                        f"{directory / _segment_name(first)}: ends at sequence {last} but the "
                        f"next segment starts at {firsts[index + 1]}: a segment is missing "
                        f"or records overlap"
                    )
            active_path = directory / _segment_name(firsts[-1])
            last_sequence, active_size = _recover_last_segment(active_path, firsts[-1])
            active_fd = os.open(active_path, os.O_WRONLY | os.O_APPEND)
        except BaseException:
            os.close(lock_fd)  # releases the flock
            raise
        return cls(
            directory,
            segment_bytes=segment_bytes,
            lock_fd=lock_fd,
            firsts=firsts,
            last_sequence=last_sequence,
            active_fd=active_fd,
            active_size=active_size,
        )

    # ------------------------------------------------------------------ state

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def last_sequence(self) -> int:
        """The highest sequence durably in the log; 0 if nothing was ever appended."""
        return self._last

    # ------------------------------------------------------------------ writing

    def append(self, kind: int, payload: bytes | bytearray | memoryview) -> int:
        """Write one record and make it durable; returns its sequence (last + 1)."""
        if not 1 <= kind <= 255:
            raise ValueError(f"record kind must be 1..255, not {kind}")
        view = memoryview(payload).cast("B")
        length = view.nbytes
        if length > MAX_PAYLOAD:
            raise ValueError(f"payload of {length} bytes is over the {MAX_PAYLOAD}-byte maximum")
        with self._lock:
            fd = self._usable_fd()
            sequence = self._last + 1
            if self._active_size >= self._segment_bytes:
                fd = self._start_segment(sequence)
            fields = _FIELDS.pack(kind, sequence, length)
            header = bytes((FORMAT_BYTE,)) + fields + struct.pack("<I", _crc(fields, view))
            start = self._active_size
            try:
                _write_all(fd, header, view)
            except OSError as exc:
                self._roll_back(fd, start, exc)
                raise WalError(f"appending sequence {sequence} failed: {exc}") from exc
            try:
                os.fdatasync(fd)
            except OSError as exc:
                self._fail(f"fdatasync failed at sequence {sequence}: {exc}")
                raise WalError(f"appending sequence {sequence} failed: {exc}") from exc
            self._active_size = start + HEADER_SIZE + length
            self._last = sequence
            return sequence

    def truncate_through(self, sequence: int) -> None:
        """Drop the segments whose records all have sequences <= ``sequence``.

        Called after a snapshot at ``sequence``. If that covers the active segment too, a
        new empty segment named ``sequence + 1`` is started first, so the log empties and
        still remembers where its sequence stands.
        """
        with self._lock:
            self._usable_fd()
            if not 0 <= sequence <= self._last:
                raise ValueError(
                    f"cannot truncate through {sequence}: the log ends at {self._last}"
                )
            if sequence == self._last and self._active_size > 0:
                self._start_segment(sequence + 1)
            while len(self._firsts) > 1 and self._firsts[1] - 1 <= sequence:
                path = self._directory / _segment_name(self._firsts[0])
                path.unlink()
                # One fsync per removal, oldest first: whatever a crash keeps is a
                # contiguous run of segments, never one with a hole in it.
                _fsync_dir(self._directory)
                del self._firsts[0]

    # ------------------------------------------------------------------ reading

    def replay(self, after: int = 0) -> Iterator[Record]:
        """Every record with a sequence > ``after``, in order, CRC-checked.

        Raises ``WalError`` at once if records after ``after`` were already truncated or
        ``after`` is beyond the end of the log (the log is behind the snapshot that asks),
        and while iterating if a record is damaged.
        """
        with self._lock:
            self._usable_fd()
            end = self._last
            firsts = list(self._firsts)
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")
        if after > end:
            raise WalError(
                f"{self._directory}: replay after sequence {after} was asked for but the log "
                f"ends at {end}: the log is behind its snapshot"
            )
        if after + 1 < firsts[0]:
            raise WalError(
                f"{self._directory}: records {after + 1}..{firsts[0] - 1} were truncated; "
                f"replay can only start at {firsts[0] - 1} or later"
            )
        if after == end:
            return iter(())
        return self._replay(after, end, firsts)

    def _replay(self, after: int, end: int, firsts: list[int]) -> Iterator[Record]:
        index = bisect.bisect_right(firsts, after + 1) - 1
        expected = firsts[index]
        while expected <= end:
            first = firsts[index]
            path = self._directory / _segment_name(first)
            try:
                with path.open("rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    for entry in _read_records(f, size, first, payload_from=after + 1):
                        if entry.payload is not None:
                            yield Record(entry.sequence, entry.kind, entry.payload)
                        expected = entry.sequence + 1
                        if expected > end:
                            return
            except _RecordError as defect:
                raise WalError(f"{path}: {defect}") from None
            except FileNotFoundError:
                raise WalError(f"{path}: segment vanished during replay") from None
            index += 1
            if index == len(firsts) or firsts[index] != expected:
                raise WalError(
                    f"{path}: ends at sequence {expected - 1}, but the log should continue to {end}"
                )

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the files and release the directory lock; idempotent."""
        with self._lock:
            self._close_fds()
            if self._failure is None:
                self._failure = "the log is closed"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WriteAheadLog({str(self._directory)!r}, last_sequence={self._last})"

    # ------------------------------------------------------------------ internals

    def _usable_fd(self) -> int:
        if self._failure is not None or self._active_fd is None:
            raise WalError(f"{self._directory}: {self._failure or 'the log is closed'}")
        return self._active_fd

    def _start_segment(self, first_sequence: int) -> int:
        """Make a new, durable, empty segment the active one (the old one is synced)."""
        try:
            fd = _create_segment(self._directory, first_sequence)
        except OSError as exc:
            raise WalError(f"cannot start segment {first_sequence}: {exc}") from exc
        if self._active_fd is not None:
            os.close(self._active_fd)
        self._active_fd = fd
        self._active_size = 0
        self._firsts.append(first_sequence)
        return fd

    def _roll_back(self, fd: int, size: int, exc: OSError) -> None:
        """Undo a partly written record so the next append does not follow garbage."""
        try:
            os.ftruncate(fd, size)
        except OSError as again:
            self._fail(f"a write failed ({exc}) and could not be undone ({again})")

    def _fail(self, reason: str) -> None:
        log.error("write-ahead log %s is unusable: %s", self._directory, reason)
        self._failure = reason + "; reopen the log to recover"
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._active_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._active_fd = None
        self._lock_fd = None


def _list_segments(directory: Path) -> list[int]:
    firsts = []
    for entry in os.listdir(directory):
        match = _SEGMENT_NAME.match(entry)
        if match is None:
            continue
        first = int(match.group(1))
        if not 1 <= first <= _MAX_SEQUENCE:
            raise WalError(f"{directory / entry}: not a valid segment name")
        firsts.append(first)
    return sorted(firsts)


def _create_segment(directory: Path, first_sequence: int) -> int:
    """Create an empty segment file, durably (file and directory entry); returns its fd."""
    path = directory / _segment_name(first_sequence)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    try:
        os.fsync(fd)
        _fsync_dir(directory)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, header: bytes, payload: memoryview) -> None:
    """One writev for header and payload (no copy of the payload), looping on short writes."""
    buffers = [memoryview(header), payload]
    while buffers:
        written = os.writev(fd, buffers)
        while buffers and written >= buffers[0].nbytes:
            written -= buffers[0].nbytes
            buffers.pop(0)
        if buffers and written:
            buffers[0] = buffers[0][written:]


def _walk_segment(path: Path, first: int) -> int:
    """Check the framing of a sealed segment (headers only); returns its last sequence."""
    last = first - 1
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            for entry in _read_records(f, size, first, payload_from=_NO_PAYLOADS):
                last = entry.sequence
    except _RecordError as defect:
        raise WalError(f"{path}: {defect} (not the last segment, so not a torn tail)") from None
    return last


def _recover_last_segment(path: Path, first: int) -> tuple[int, int]:
    """Check every record of the active segment and cut off a torn tail.

    Returns (last sequence, size of the valid part).
    """
    last, valid_size = first - 1, 0
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            for entry in _read_records(f, size, first, payload_from=0):
                last = entry.sequence
                valid_size = entry.offset + HEADER_SIZE + entry.length
            return last, valid_size
        except _RecordError as caught:
            if not caught.torn:
                raise WalError(f"{path}: {caught}") from None
            defect = caught  # `caught` is unbound after the except block
            f.seek(defect.offset)
            rest = f.read()
    found = _find_valid_record(rest, 1, last + 1)
    if found is not None:
        offset, sequence = found
        raise WalError(
            f"{path}: {defect}, yet a valid record (sequence {sequence}) follows at offset "
            f"{defect.offset + offset}: corruption inside acknowledged records, not a torn tail"
        )
    log.warning(
        "write-ahead log %s: dropping a torn tail of %d bytes at offset %d after sequence %d "
        "(%s): an append interrupted by a crash, never acknowledged",
        path,
        size - defect.offset,
        defect.offset,
        last,
        defect.reason,
    )
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, defect.offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return last, defect.offset
