"""Systems we benchmark: a common protocol, and embedding a labelled set with a cache.

Anything with ``name``, ``version`` and ``embed(image_bytes) -> vector | None`` is an
:class:`Embedder`: a peer such as :class:`bench.peers.face_recognition_peer.FaceRecognitionPeer`
or facegate's own pipeline. :func:`embed_images` runs one over a labelled set and
caches the result in ``bench/.cache/`` (gitignored) as ``.npz``, keyed by the
embedder's name and version and by the set's file list, so reruns are fast.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bench.dataset import LabelledImage
from bench.metrics import EmbeddingSet, evaluate_identification, evaluate_verification

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache"


class Embedder(Protocol):
    """Image bytes -> one L2-normalised embedding (the largest face), or None if no face."""

    @property
    def name(self) -> str:
        """Short stable name, e.g. ``face_recognition``."""
        ...

    @property
    def version(self) -> str:
        """Everything that changes the embeddings: code and model versions."""
        ...

    def embed(self, image_bytes: bytes) -> NDArray[np.float32] | None:
        """Embedding of the largest face, or None when no face is found."""
        ...


def _relative_name(image: LabelledImage) -> str:
    return f"{image.identity}/{image.path.name}"


def dataset_key(images: Sequence[LabelledImage]) -> str:
    """Hex digest of the set's ``identity/file`` names and sizes, in order."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(f"{_relative_name(image)}\t{image.path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def cache_path(embedder: Embedder, images: Sequence[LabelledImage], cache_dir: Path) -> Path:
    """``<cache_dir>/<name>-<version>-<dataset key>.npz`` (unsafe characters become ``_``)."""
    stem = re.sub(r"[^A-Za-z0-9.+_-]", "_", f"{embedder.name}-{embedder.version}")
    return cache_dir / f"{stem}-{dataset_key(images)}.npz"


def embed_images(
    embedder: Embedder,
    images: Sequence[LabelledImage],
    *,
    cache_dir: Path | None = CACHE_DIR,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddingSet:
    """Embed every image (failures kept as such), reading/writing the cache if given.

    ``progress(done, total)`` is called every 100 images and at the end.
    """
    path = cache_path(embedder, images, cache_dir) if cache_dir is not None else None
    names = [_relative_name(image) for image in images]
    labels = [image.identity for image in images]
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as cached:
            if [str(x) for x in cached["names"]] == names:
                vectors = cached["vectors"]
                valid = cached["valid"]
                return EmbeddingSet.from_optional(
                    [vectors[i] if valid[i] else None for i in range(len(names))], labels
                )
    embeddings: list[NDArray[np.float32] | None] = []
    for done, image in enumerate(images, start=1):
        embeddings.append(embedder.embed(image.path.read_bytes()))
        if progress is not None and (done % 100 == 0 or done == len(images)):
            progress(done, len(images))
    es = EmbeddingSet.from_optional(embeddings, labels)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            names=np.asarray(names, dtype=str),
            vectors=es.vectors.astype(np.float32),
            valid=es.valid,
            embedder=np.asarray([embedder.name, embedder.version], dtype=str),
        )
        os.replace(tmp, path)
    return es


def accuracy_report(es: EmbeddingSet, images: Sequence[LabelledImage]) -> dict[str, Any]:
    """Verification (TAR at FAR 1e-3 and 1e-4, ROC table) and identification (rank-1,
    FNIR at FPIR 0.01) of a labelled set's embeddings, as plain dicts."""
    file_names = [image.path.name for image in images]
    return {
        "images": len(es),
        "identities": len(set(es.labels)),
        "detection_failures": es.n_failed,
        "verification": evaluate_verification(es).to_dict(),
        "identification": evaluate_identification(es, file_names).to_dict(),
    }


def print_progress(label: str) -> Callable[[int, int], None]:
    """A ``progress`` callback printing ``label: done/total, images/s`` lines."""
    start = time.perf_counter()

    def report(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - start, 1e-9)
        print(f"{label}: {done}/{total} ({rate:.1f} images/s)", flush=True)

    return report
