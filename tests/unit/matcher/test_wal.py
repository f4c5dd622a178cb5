"""The matcher's write-ahead log: round trips, rotation, truncation, torn tails, damage
that must not be skipped, concurrent appends, and a real kill -9 of an appending process."""

from __future__ import annotations

import hashlib
import inspect
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from matcher import wal as wal_module
from matcher.wal import HEADER_SIZE, WalError, WriteAheadLog

REPO_ROOT = Path(__file__).resolve().parents[3]


def payload_for(sequence: int) -> bytes:
    """A payload derived from its sequence, of a size that varies with it (0..~3 KiB)."""
    seed = hashlib.sha256(str(sequence).encode()).digest()
    return (seed * 100)[: (sequence * 37) % 3000]


def fill(directory: Path, count: int, *, segment_bytes: int = 64 << 20) -> None:
    with WriteAheadLog.open(directory, segment_bytes=segment_bytes) as wal:
        for sequence in range(1, count + 1):
            assert wal.append(1 + sequence % 255, payload_for(sequence)) == sequence


def records(wal: WriteAheadLog, after: int = 0) -> list[tuple[int, int, bytes]]:
    return [(r.sequence, r.kind, r.payload) for r in wal.replay(after)]


def expected(first: int, last: int) -> list[tuple[int, int, bytes]]:
    return [(s, 1 + s % 255, payload_for(s)) for s in range(first, last + 1)]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def record_offsets(path: Path) -> list[int]:
    """Start offsets of the records of a segment, read from their headers."""
    data = path.read_bytes()
    offsets, offset = [], 0
    while offset < len(data):
        offsets.append(offset)
        length = int.from_bytes(data[offset + 10 : offset + 14], "little")
        offset += HEADER_SIZE + length
    assert offset == len(data)
    return offsets


# ---------------------------------------------------------------------- round trips


def test_round_trip_mixed_kinds_and_sizes(tmp_path: Path) -> None:
    rng = random.Random(1)
    written = []
    with WriteAheadLog.open(tmp_path / "wal") as wal:
        assert wal.last_sequence == 0
        assert list(wal.replay(0)) == []
        for _ in range(300):
            kind = rng.randint(1, 255)
            payload = rng.randbytes(rng.choice([0, 1, 17, 200, 5000, 70_000]))
            written.append((wal.append(kind, payload), kind, payload))
        written.append((wal.append(255, memoryview(b"view")), 255, b"view"))
        assert wal.last_sequence == 301
        assert records(wal) == written
        assert [s for s, _, _ in written] == list(range(1, 302))
    with WriteAheadLog.open(tmp_path / "wal") as wal:
        assert wal.last_sequence == 301
        assert records(wal) == written


def test_replay_after_from_the_middle_and_the_end(tmp_path: Path) -> None:
    fill(tmp_path, 50)
    with WriteAheadLog.open(tmp_path) as wal:
        assert records(wal, 20) == expected(21, 50)
        assert records(wal, 49) == expected(50, 50)
        assert records(wal, 50) == []
        with pytest.raises(WalError, match="behind its snapshot"):
            wal.replay(51)
        with pytest.raises(ValueError, match="after"):
            wal.replay(-1)


def test_rotation_across_segments(tmp_path: Path) -> None:
    fill(tmp_path, 120, segment_bytes=4096)
    files = segments(tmp_path)
    assert len(files) > 10
    # Each segment is named by its first sequence and starts with that record.
    firsts = [int(f.stem) for f in files]
    assert firsts[0] == 1
    assert firsts == sorted(firsts)
    for path in files:
        head = path.read_bytes()[:HEADER_SIZE]
        assert int.from_bytes(head[2:10], "little") == int(path.stem)
    with WriteAheadLog.open(tmp_path, segment_bytes=4096) as wal:
        assert wal.last_sequence == 120
        assert records(wal) == expected(1, 120)
        for after in (0, firsts[3] - 1, firsts[3], firsts[-1], 119):
            assert records(wal, after) == expected(after + 1, 120)


def test_append_after_replay_continues_the_sequence(tmp_path: Path) -> None:
    fill(tmp_path, 10, segment_bytes=2000)
    with WriteAheadLog.open(tmp_path, segment_bytes=2000) as wal:
        assert records(wal, 5) == expected(6, 10)
        assert wal.append(1 + 11 % 255, payload_for(11)) == 11
        assert records(wal, 0) == expected(1, 11)


# ---------------------------------------------------------------------- truncation


def test_truncate_through_then_replay_and_append(tmp_path: Path) -> None:
    with WriteAheadLog.open(tmp_path, segment_bytes=4096) as wal:
        for s in range(1, 101):
            wal.append(1 + s % 255, payload_for(s))
        firsts = [int(f.stem) for f in segments(tmp_path)]
        snapshot = firsts[4] + 1  # in the middle of the fifth segment
        wal.truncate_through(snapshot)
        kept = [int(f.stem) for f in segments(tmp_path)]
        assert kept == firsts[4:]  # the segment holding snapshot + 1 stays
        assert records(wal, snapshot) == expected(snapshot + 1, 100)
        with pytest.raises(WalError, match="truncated"):
            wal.replay(firsts[4] - 2)
        assert wal.append(1 + 101 % 255, payload_for(101)) == 101
        assert records(wal, snapshot) == expected(snapshot + 1, 101)
    with WriteAheadLog.open(tmp_path, segment_bytes=4096) as wal:
        assert wal.last_sequence == 101
        assert records(wal, snapshot) == expected(snapshot + 1, 101)


def test_truncate_never_drops_the_active_segments_unsnapshotted_records(tmp_path: Path) -> None:
    with WriteAheadLog.open(tmp_path) as wal:  # one big segment
        for s in range(1, 21):
            wal.append(1 + s % 255, payload_for(s))
        wal.truncate_through(19)
        assert records(wal, 19) == expected(20, 20)
        with pytest.raises(ValueError, match="ends at 20"):
            wal.truncate_through(21)


def test_everything_truncated_then_reopened_keeps_the_sequence(tmp_path: Path) -> None:
    fill(tmp_path, 30, segment_bytes=4096)
    with WriteAheadLog.open(tmp_path, segment_bytes=4096) as wal:
        wal.truncate_through(30)
        assert [f.name for f in segments(tmp_path)] == [f"{31:020d}.log"]
        assert records(wal, 30) == []
    for _ in range(2):  # reopening an empty log twice changes nothing
        with WriteAheadLog.open(tmp_path, segment_bytes=4096) as wal:
            assert wal.last_sequence == 30
            assert records(wal, 30) == []
            with pytest.raises(WalError, match="truncated"):
                wal.replay(0)
    with WriteAheadLog.open(tmp_path, segment_bytes=4096) as wal:
        assert wal.append(1 + 31 % 255, payload_for(31)) == 31
        wal.truncate_through(31)
        wal.truncate_through(31)  # idempotent on an empty log
    with WriteAheadLog.open(tmp_path) as wal:
        assert wal.last_sequence == 31
        assert wal.append(1 + 32 % 255, payload_for(32)) == 32
        assert records(wal, 31) == expected(32, 32)


# ---------------------------------------------------------------------- torn tails


@pytest.mark.parametrize("segment_bytes", [64 << 20, 3000])
def test_torn_tail_at_every_offset_of_the_last_record(tmp_path: Path, segment_bytes: int) -> None:
    """Cut the last file inside its last record (every header byte, every 37th payload
    byte, the last byte): reopening keeps exactly the complete records and the next append
    reuses the lost sequence."""
    source = tmp_path / "source"
    count = 12  # payload_for(12) is 444 bytes, so the record is 462 bytes long
    fill(source, count, segment_bytes=segment_bytes)
    last_file = segments(source)[-1]
    start = record_offsets(last_file)[-1]
    full_size = last_file.stat().st_size
    assert full_size - start == HEADER_SIZE + len(payload_for(count))
    record_size = full_size - start
    cuts = sorted({*range(HEADER_SIZE + 1), *range(HEADER_SIZE, record_size, 37), record_size - 1})
    for cut in (start + c for c in cuts):
        work = tmp_path / f"cut{cut}"
        shutil.copytree(source, work)
        os.truncate(work / last_file.name, cut)
        with WriteAheadLog.open(work, segment_bytes=segment_bytes) as wal:
            assert wal.last_sequence == count - 1, cut
            assert (work / last_file.name).stat().st_size == start
            assert records(wal) == expected(1, count - 1)
            assert wal.append(1 + count % 255, payload_for(count)) == count
        with WriteAheadLog.open(work, segment_bytes=segment_bytes) as wal:
            assert records(wal) == expected(1, count)
        shutil.rmtree(work)


def test_torn_tail_leaving_an_empty_last_segment(tmp_path: Path) -> None:
    fill(tmp_path, 10, segment_bytes=1)  # one record per segment
    last_file = segments(tmp_path)[-1]
    assert last_file.name == f"{10:020d}.log"
    os.truncate(last_file, 7)
    with WriteAheadLog.open(tmp_path, segment_bytes=1) as wal:
        assert wal.last_sequence == 9
        assert last_file.stat().st_size == 0
        assert wal.append(1 + 10 % 255, payload_for(10)) == 10
        assert records(wal) == expected(1, 10)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00" * 4096,  # blocks zero-filled by a power loss
        bytes(range(256)) * 3,
        b"\xf1",
        b"\xf1" * 40,
        "random",
        "partial record",
    ],
)
def test_garbage_after_the_last_record_is_cut_off(tmp_path: Path, garbage: bytes | str) -> None:
    fill(tmp_path, 20)
    path = segments(tmp_path)[-1]
    size = path.stat().st_size
    if garbage == "random":
        garbage = random.Random(7).randbytes(10_000)
    elif garbage == "partial record":
        # A whole valid record for sequence 21 minus its last byte.
        with WriteAheadLog.open(tmp_path / "other") as other:
            for s in range(1, 22):
                other.append(1 + s % 255, payload_for(s))
        other_file = segments(tmp_path / "other")[-1]
        garbage = other_file.read_bytes()[record_offsets(other_file)[-1] : -1]
    assert isinstance(garbage, bytes)
    with path.open("ab") as f:
        f.write(garbage)
    with WriteAheadLog.open(tmp_path) as wal:
        assert path.stat().st_size == size
        assert wal.last_sequence == 20
        assert records(wal) == expected(1, 20)
        assert wal.append(5, b"next") == 21


# ---------------------------------------------------------------------- damage


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_flipped_payload_byte_before_valid_records_raises(tmp_path: Path) -> None:
    fill(tmp_path, 20)
    path = segments(tmp_path)[0]
    offset = record_offsets(path)[5]
    flip(path, offset + HEADER_SIZE + 10)  # inside record 6's payload
    with pytest.raises(WalError, match=rf"{path.name}.*offset {offset}: CRC mismatch"):
        WriteAheadLog.open(tmp_path)
    assert path.stat().st_size == record_offsets(path)[-1] + HEADER_SIZE + len(payload_for(20))


@pytest.mark.parametrize(
    ("field_offset", "message"),
    [
        (0, "format byte"),
        (2, "CRC mismatch"),  # sequence
        (11, "CRC mismatch|past the end|cut short"),  # length
        (15, "CRC mismatch"),  # the CRC itself
    ],
)
def test_flipped_header_byte_in_the_last_segment_raises(
    tmp_path: Path, field_offset: int, message: str
) -> None:
    fill(tmp_path, 20)
    path = segments(tmp_path)[0]
    flip(path, record_offsets(path)[10] + field_offset)
    with pytest.raises(WalError, match=message):
        WriteAheadLog.open(tmp_path)


def test_flipped_byte_in_an_earlier_segment_raises(tmp_path: Path) -> None:
    fill(tmp_path, 60, segment_bytes=4096)
    files = segments(tmp_path)
    target = files[1]
    offset = record_offsets(target)[1]
    sequence = int(target.stem) + 1
    # In the payload: open frames sealed segments by their headers; replay checks the CRC.
    flip(target, offset + HEADER_SIZE + 3)
    with WriteAheadLog.open(tmp_path, segment_bytes=4096) as wal:
        with pytest.raises(WalError, match=rf"{target.name}.*offset {offset}: CRC mismatch"):
            list(wal.replay(0))
        # Replaying from after the damaged record (the snapshot covers it) is fine.
        assert records(wal, sequence) == expected(sequence + 1, 60)
    # In the header (sequence field): open already refuses.
    flip(target, offset + HEADER_SIZE + 3)
    flip(target, offset + 2)
    with pytest.raises(WalError, match=rf"{target.name}.*offset {offset}: sequence"):
        WriteAheadLog.open(tmp_path, segment_bytes=4096)


def test_missing_middle_segment_raises(tmp_path: Path) -> None:
    fill(tmp_path, 60, segment_bytes=4096)
    files = segments(tmp_path)
    files[2].unlink()
    with pytest.raises(WalError, match=rf"{files[1].name}.*segment is missing"):
        WriteAheadLog.open(tmp_path, segment_bytes=4096)


def test_missing_first_segments_look_like_truncation(tmp_path: Path) -> None:
    fill(tmp_path, 60, segment_bytes=4096)
    files = segments(tmp_path)
    files[0].unlink()
    with WriteAheadLog.open(tmp_path, segment_bytes=4096) as wal:
        first = int(files[1].stem)
        assert records(wal, first - 1) == expected(first, 60)
        with pytest.raises(WalError, match="truncated"):
            wal.replay(0)


def test_repeated_record_raises(tmp_path: Path) -> None:
    """A valid record with the wrong sequence (here a copy of an earlier one) at the end is
    not a torn tail: it was written whole."""
    fill(tmp_path, 10)
    path = segments(tmp_path)[0]
    offsets = record_offsets(path)
    data = path.read_bytes()
    with path.open("ab") as f:
        f.write(data[offsets[3] : offsets[4]])
    with pytest.raises(WalError, match="sequence 4 where 11 was expected"):
        WriteAheadLog.open(tmp_path)


def test_repeated_segment_start_raises(tmp_path: Path) -> None:
    fill(tmp_path, 60, segment_bytes=4096)
    files = segments(tmp_path)
    shutil.copy(files[1], tmp_path / f"{int(files[1].stem) + 1:020d}.log")
    with pytest.raises(WalError):
        WriteAheadLog.open(tmp_path, segment_bytes=4096)


def test_kind_zero_raises(tmp_path: Path) -> None:
    fill(tmp_path, 5)
    path = segments(tmp_path)[0]
    data = path.read_bytes()
    # A record that is valid in every way except its kind.
    fields = (0).to_bytes(1, "little") + (6).to_bytes(8, "little") + (3).to_bytes(4, "little")
    crc = wal_module._crc(fields, b"abc")
    path.write_bytes(data + b"\xf1" + fields + crc.to_bytes(4, "little") + b"abc")
    with pytest.raises(WalError, match="kind 0"):
        WriteAheadLog.open(tmp_path)


# ---------------------------------------------------------------------- misuse and failures


def test_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="segment_bytes"):
        WriteAheadLog.open(tmp_path, segment_bytes=0)
    with WriteAheadLog.open(tmp_path) as wal:
        for kind in (0, 256, -1):
            with pytest.raises(ValueError, match="kind"):
                wal.append(kind, b"")
        monkeypatch.setattr(wal_module, "MAX_PAYLOAD", 100)
        with pytest.raises(ValueError, match="maximum"):
            wal.append(1, bytes(101))
        assert wal.append(1, bytes(100)) == 1


def test_second_handle_is_refused_and_close_releases(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path)
    with pytest.raises(WalError, match="already open"):
        WriteAheadLog.open(tmp_path)
    wal.append(1, b"x")
    wal.close()
    wal.close()
    with pytest.raises(WalError, match="closed"):
        wal.append(1, b"y")
    with WriteAheadLog.open(tmp_path) as again:
        assert again.append(1, b"y") == 2


def test_failed_write_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with WriteAheadLog.open(tmp_path) as wal:
        wal.append(1, b"first")
        real_writev = os.writev
        calls = 0

        def half_then_fail(fd: int, buffers: list[memoryview]) -> int:
            nonlocal calls
            calls += 1
            if calls == 1:
                return os.write(fd, bytes(buffers[0])[:7])  # a short write...
            raise OSError(28, "No space left on device")  # ...then a full disk

        monkeypatch.setattr(os, "writev", half_then_fail)
        with pytest.raises(WalError, match="No space"):
            wal.append(1, b"second")
        monkeypatch.setattr(os, "writev", real_writev)
        assert wal.append(1, b"third") == 2
    with WriteAheadLog.open(tmp_path) as wal:
        assert records(wal) == [(1, 1, b"first"), (2, 1, b"third")]


def test_failed_fdatasync_makes_the_log_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = WriteAheadLog.open(tmp_path)
    wal.append(1, b"first")

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", fail)
    with pytest.raises(WalError, match="Input/output"):
        wal.append(1, b"second")
    monkeypatch.undo()
    with pytest.raises(WalError, match="reopen"):
        wal.append(1, b"third")
    wal.close()
    with WriteAheadLog.open(tmp_path) as again:  # the lock was released
        # The unacknowledged record may or may not be there; the acknowledged one is.
        assert records(again)[0] == (1, 1, b"first")
        assert again.last_sequence in (1, 2)


def test_appends_and_new_segments_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 cannot show a missing fsync (the page cache survives it), so check the
    calls: one fdatasync of the segment per append, after the record is written, and an
    fsync of the directory for every segment created or removed."""
    synced: list[tuple[str, int]] = []
    real_fdatasync, real_fsync = os.fdatasync, os.fsync

    def spy(real: Callable[[int], None], what: str) -> Callable[[int], None]:
        def call(fd: int) -> None:
            info = os.fstat(fd)
            synced.append(("dir" if stat.S_ISDIR(info.st_mode) else what, info.st_size))
            real(fd)

        return call

    monkeypatch.setattr(os, "fdatasync", spy(real_fdatasync, "data"))
    monkeypatch.setattr(os, "fsync", spy(real_fsync, "file"))
    with WriteAheadLog.open(tmp_path / "wal", segment_bytes=100) as wal:
        assert "dir" in [k for k, _ in synced]  # the first segment's directory entry
        synced.clear()
        wal.append(1, bytes(50))
        assert synced == [("data", HEADER_SIZE + 50)]
        synced.clear()
        wal.append(1, bytes(60))
        assert synced == [("data", 2 * HEADER_SIZE + 110)]
        synced.clear()
        wal.append(1, bytes(10))  # the active segment is past 100 bytes: a new one
        assert [k for k, _ in synced] == ["file", "dir", "data"]
        synced.clear()
        wal.truncate_through(2)
        assert [k for k, _ in synced] == ["dir"]


# ---------------------------------------------------------------------- concurrency


def test_concurrent_appends_are_unique_gap_free_and_ordered(tmp_path: Path) -> None:
    threads, per_thread = 8, 60
    got: dict[int, bytes] = {}
    guard = threading.Lock()
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            payload = f"thread {t} item {i}".encode() * (1 + i % 5)
            sequence = wal.append(1 + t, payload)
            with guard:
                assert sequence not in got
                got[sequence] = payload

    with WriteAheadLog.open(tmp_path, segment_bytes=8192) as wal:
        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert sorted(got) == list(range(1, threads * per_thread + 1))
        assert wal.last_sequence == threads * per_thread
    with WriteAheadLog.open(tmp_path, segment_bytes=8192) as wal:
        replayed = records(wal)
    assert [s for s, _, _ in replayed] == list(range(1, threads * per_thread + 1))
    assert all(got[s] == payload for s, _, payload in replayed)
    # Each thread's own records keep their order.
    for t in range(threads):
        mine = [p for _, kind, p in replayed if kind == 1 + t]
        assert mine == [f"thread {t} item {i}".encode() * (1 + i % 5) for i in range(per_thread)]


# ---------------------------------------------------------------------- kill -9


def crash_payload(sequence: int) -> bytes:
    """The crash test's payloads: mostly small, every 8th one 3 MiB, so that SIGKILL
    sometimes lands inside a write and leaves a torn tail."""
    seed = hashlib.sha256(str(sequence).encode()).digest()
    size = 3 << 20 if sequence % 8 == 0 else (sequence * 37) % 3000
    return (seed * (size // len(seed) + 1))[:size]


# The child defines the same payload function (its source, so nothing but matcher.wal
# has to be importable there).
CHILD = textwrap.dedent(
    """
    import hashlib, sys
    from pathlib import Path
    from matcher.wal import WriteAheadLog

    {payload_function}

    wal = WriteAheadLog.open(Path(sys.argv[1]), segment_bytes=int(sys.argv[2]))
    while True:
        sequence = wal.last_sequence + 1
        assert wal.append(1 + sequence % 255, crash_payload(sequence)) == sequence
        print(sequence, flush=True)
    """
).format(payload_function=inspect.getsource(crash_payload))


@pytest.mark.parametrize("round_", range(3))
def test_every_acknowledged_append_survives_sigkill(tmp_path: Path, round_: int) -> None:
    """A child appends and prints each returned sequence; SIGKILL at a random moment; every
    printed sequence must be in the reopened log with its payload, and the log stays
    gap-free and appendable. Runs twice on the same log (the second run continues it)."""
    rng = random.Random(round_)
    directory = tmp_path / "wal"
    printed: list[int] = []
    for _ in range(2):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(directory), "20000"],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
        )
        assert child.stdout is not None
        first_line = child.stdout.readline()  # wait until it is appending
        assert first_line.endswith(b"\n"), first_line
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        lines = (first_line + rest).split(b"\n")
        printed.extend(int(line) for line in lines[:-1])  # the last piece may be cut short
    assert len(printed) > 2
    assert printed == sorted(printed)

    with WriteAheadLog.open(directory, segment_bytes=20000) as wal:
        assert wal.last_sequence >= printed[-1]
        replayed = records(wal)
        assert replayed == [
            (s, 1 + s % 255, crash_payload(s)) for s in range(1, wal.last_sequence + 1)
        ]
        last = wal.last_sequence
        assert wal.append(1, b"after the crash") == last + 1
