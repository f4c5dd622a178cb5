"""bench.dataset: finding the labelled photos and listing an identity set."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import dataset
from bench.dataset import FacesNotFoundError, LabelledImage, faces_dir, load_identity_set


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_load_identity_set_sorts_and_skips(tmp_path: Path) -> None:
    # Created in reverse order, so a listing-order result would fail.
    _touch(tmp_path / "zed" / "b.JPG")
    _touch(tmp_path / "zed" / "a.png")
    _touch(tmp_path / "Bob" / "2.jpg")
    _touch(tmp_path / "Bob" / "10.jpg")
    _touch(tmp_path / "alice" / "1.jpeg")
    _touch(tmp_path / "alice" / ".hidden.jpg")
    _touch(tmp_path / "alice" / "notes.txt")
    _touch(tmp_path / "_multi" / "group.jpg")
    _touch(tmp_path / "_meta" / "x.xml")
    _touch(tmp_path / "loose.jpg")  # a file at the top is no identity

    images = load_identity_set(tmp_path)

    assert [(i.identity, i.path.name) for i in images] == [
        ("Bob", "10.jpg"),
        ("Bob", "2.jpg"),
        ("alice", "1.jpeg"),
        ("zed", "a.png"),
        ("zed", "b.JPG"),
    ]
    assert images[0] == LabelledImage(tmp_path / "Bob" / "10.jpg", "Bob")


def test_load_identity_set_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(FacesNotFoundError):
        load_identity_set(tmp_path / "nope")
    (tmp_path / "_multi").mkdir()
    with pytest.raises(ValueError, match="no photo"):
        load_identity_set(tmp_path)


def test_faces_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dataset.FACES_DIR_ENV, str(tmp_path))
    assert faces_dir() == tmp_path
    monkeypatch.setenv(dataset.FACES_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(FacesNotFoundError, match="FACEGATE_FACES_DIR"):
        faces_dir()


def test_faces_dir_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.delenv(dataset.FACES_DIR_ENV, raising=False)
    monkeypatch.setattr(dataset, "REPO_ROOT", repo)
    with pytest.raises(FacesNotFoundError, match="not found"):
        faces_dir()
    (tmp_path / "shared" / "faces").mkdir(parents=True)
    assert faces_dir() == tmp_path / "shared" / "faces"
    (repo / "shared" / "faces").mkdir(parents=True)
    assert faces_dir() == repo / "shared" / "faces"


def test_real_data_is_present() -> None:
    """The shared photos must be there: a missing data set fails, never skips."""
    root = faces_dir()
    lfw = load_identity_set(root / "lfw-dev")
    assert len(lfw) == 5252
    assert len({i.identity for i in lfw}) == 1826
    assert lfw == sorted(lfw, key=lambda i: (i.identity, i.path.name))
    small = load_identity_set(root / "test" / "face_recognition")
    counts = {name: sum(i.identity == name for i in small) for name in {i.identity for i in small}}
    assert counts == {
        "obama": 4,
        "biden": 2,
        "kit_harington": 3,
        "rose_leslie": 2,
        "alex_lacamoire": 3,
    }
