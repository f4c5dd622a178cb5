"""Where the labelled face photos are and what is in them.

The photos live in ``shared/faces`` (see its README): sets laid out as
``<set>/<identity>/<file>``. Folders whose name starts with ``_`` (``_multi``,
``_noface``, ``_meta`` ...) are not identities and are skipped.

Missing data is an error, never a silent skip: a benchmark or test that cannot
find its photos must fail loudly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FACES_DIR_ENV = "FACEGATE_FACES_DIR"
"""Environment variable that overrides where the labelled photos are."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
"""File suffixes (lower case) counted as photos by :func:`load_identity_set`."""

REPO_ROOT = Path(__file__).resolve().parent.parent


class FacesNotFoundError(FileNotFoundError):
    """The labelled photos could not be found."""


@dataclass(frozen=True, order=True)
class LabelledImage:
    """One photo and the identity it shows (the name of its folder)."""

    path: Path
    identity: str


def faces_dir() -> Path:
    """Return the folder holding the labelled photo sets.

    The first of: ``$FACEGATE_FACES_DIR`` when set (it must then exist: no fallback),
    ``<repo>/shared/faces``, ``<repo>/../shared/faces``.

    Raises:
        FacesNotFoundError: none of them is an existing folder.
    """
    override = os.environ.get(FACES_DIR_ENV)
    if override:
        path = Path(override)
        if not path.is_dir():
            raise FacesNotFoundError(
                f"${FACES_DIR_ENV} is set to {override!r}, which is not a folder"
            )
        return path
    candidates = [REPO_ROOT / "shared" / "faces", REPO_ROOT.parent / "shared" / "faces"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FacesNotFoundError(
        f"labelled face photos not found (tried {tried}); set ${FACES_DIR_ENV} "
        "to the folder that holds test/ and lfw-dev/"
    )


def load_identity_set(root: Path) -> list[LabelledImage]:
    """List the photos of an ``<identity>/<file>`` tree.

    Identity folders starting with ``_`` or ``.`` are skipped, as are hidden files
    and files whose suffix is not in :data:`IMAGE_SUFFIXES`. The result is sorted
    by identity name, then file name (plain code-point order, independent of the
    locale and of the file system's listing order).

    Raises:
        FacesNotFoundError: ``root`` is not a folder.
        ValueError: the tree holds no photo.
    """
    if not root.is_dir():
        raise FacesNotFoundError(f"identity set {root} is not a folder")
    images: list[LabelledImage] = []
    for identity_dir in root.iterdir():
        if identity_dir.name.startswith(("_", ".")) or not identity_dir.is_dir():
            continue
        for file in identity_dir.iterdir():
            if (
                file.name.startswith(".")
                or file.suffix.lower() not in IMAGE_SUFFIXES
                or not file.is_file()
            ):
                continue
            images.append(LabelledImage(path=file, identity=identity_dir.name))
    if not images:
        raise ValueError(f"identity set {root} holds no photo")
    images.sort(key=lambda image: (image.identity, image.path.name))
    return images


def lfw_dev() -> list[LabelledImage]:
    """The ``lfw-dev`` set (5,252 photos of 1,826 identities), sorted."""
    return load_identity_set(faces_dir() / "lfw-dev")
