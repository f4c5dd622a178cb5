"""Peer system: face_recognition (ageitgey) on dlib, with the library's defaults.

Installed from PyPI (``make bench`` does it): ``dlib-bin`` (a prebuilt wheel
providing the ``dlib`` module), ``face-recognition-models==0.3.0`` (the model
files), Click and Pillow, and ``face_recognition==1.3.0`` with ``--no-deps`` (its
metadata asks for ``dlib``, which would be built from source).

Pipeline, all library defaults: ``face_locations(img)`` (HOG detector,
``number_of_times_to_upsample=1``), then ``face_encodings(img, [box])``
(``num_jitters=1``, ``model="small"``: 5-point landmarks) -> 128-d ResNet descriptor.
The image is decoded like ``face_recognition.load_image_file`` (Pillow,
``convert("RGB")``, no EXIF rotation).

Metric: face_recognition itself compares the raw 128-d descriptors by Euclidean
distance (``compare_faces`` tolerance 0.6). The benchmark instead scores every
system by cosine similarity of L2-normalised vectors, so :meth:`embed` normalises.
The raw norms vary (1.27-1.60 on lfw-dev), but the ranking is essentially the
same, and cosine does not handicap the peer. Measured once on all lfw-dev pairs
(41,018 genuine, 13.7M impostor): AUC 0.9925 cosine vs 0.9922 Euclidean; TAR at FAR
1e-3 0.933 vs 0.904, at 1e-4 0.792 vs 0.685. ``python -m
bench.peers.face_recognition_peer`` repeats a smaller check (``metric_check``: AUC
and TAR at FAR 1e-3 under both metrics on the pairs of 400 photos).

``face_recognition_models`` 0.3.0 imports ``pkg_resources``, which setuptools
removed in recent releases; when it is missing we register a minimal stand-in
(``resource_filename`` over :mod:`importlib.resources`) before importing it.

Thread safety: face_recognition keeps one module-level dlib detector, shape
predictor and encoder, and they are not safe to call from several threads at once:
measured on 300 lfw-dev photos with 8 threads, 37 photos got a different face count
and embeddings moved by up to 0.056 versus serial calls. So every dlib call here
runs under one lock: concurrent clients queue, as they would behind a
single-process face_recognition service (the calls mostly hold the GIL anyway, so
unlocked threads ran no faster).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import io
import json
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bench.dataset import LabelledImage, lfw_dev
from bench.metrics import roc_auc, tar_at_far
from bench.peers import accuracy_report, embed_images, print_progress
from bench.throughput import measure_throughput

PEER_NAME = "face_recognition"


def _ensure_pkg_resources() -> None:
    """Register a tiny ``pkg_resources`` (``resource_filename`` only) if there is none."""
    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        return

    def resource_filename(package: str, resource: str) -> str:
        return str(importlib.resources.files(package).joinpath(resource))

    shim = types.ModuleType("pkg_resources")
    shim.__dict__["resource_filename"] = resource_filename
    sys.modules["pkg_resources"] = shim


def _import_face_recognition() -> Any:
    """Import face_recognition, raising ImportError (it calls ``quit()`` on a missing model)."""
    _ensure_pkg_resources()
    try:
        importlib.import_module("face_recognition_models")
    except ImportError as exc:
        raise ImportError(
            "face_recognition's models are missing: run `make bench` or pip install "
            "'.[bench]' and then face_recognition==1.3.0 with --no-deps"
        ) from exc
    return importlib.import_module("face_recognition")


def _dist_version(*names: str) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


Box = tuple[int, int, int, int]
"""A face box as face_recognition gives it: (top, right, bottom, left)."""


def _area(box: Box) -> int:
    top, right, bottom, left = box
    return max(0, bottom - top) * max(0, right - left)


class FaceRecognitionPeer:
    """face_recognition 1.3.0 with its defaults: HOG detection, 128-d dlib descriptors."""

    def __init__(self) -> None:
        self._fr = _import_face_recognition()
        self._lock = threading.Lock()  # dlib's shared models are not thread-safe
        self._version = (
            f"{_dist_version('face_recognition', 'face-recognition')}"
            f"+dlib{_dist_version('dlib-bin', 'dlib')}"
            f"+models{_dist_version('face_recognition_models', 'face-recognition-models')}"
        )

    @property
    def name(self) -> str:
        """``face_recognition``."""
        return PEER_NAME

    @property
    def version(self) -> str:
        """Distribution versions, e.g. ``1.3.0+dlib20.0.1.post1+models0.3.0``.

        (``face_recognition.__version__`` says 1.2.3 in the 1.3.0 release, so the
        installed distributions' metadata is used instead.)
        """
        return self._version

    @staticmethod
    def decode(image_bytes: bytes) -> NDArray[np.uint8]:
        """RGB uint8 array, decoded as ``face_recognition.load_image_file`` does."""
        with Image.open(io.BytesIO(image_bytes)) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)

    def detect(self, rgb: NDArray[np.uint8]) -> list[Box]:
        """Face boxes with the default HOG detector, upsampled once (library default)."""
        with self._lock:
            found = self._fr.face_locations(rgb)
        return [
            (int(top), int(right), int(bottom), int(left)) for top, right, bottom, left in found
        ]

    def encode_raw(self, rgb: NDArray[np.uint8], boxes: list[Box]) -> list[NDArray[np.float64]]:
        """The library's raw (not normalised) 128-d descriptors of the given boxes."""
        if not boxes:
            return []
        with self._lock:
            encodings = self._fr.face_encodings(rgb, boxes)
        return [np.asarray(e, dtype=np.float64) for e in encodings]

    def embed_raw(self, image_bytes: bytes) -> NDArray[np.float64] | None:
        """Raw descriptor of the largest face (by box area), or None when no face."""
        rgb = self.decode(image_bytes)
        boxes = self.detect(rgb)
        if not boxes:
            return None
        return self.encode_raw(rgb, [max(boxes, key=_area)])[0]

    def embed(self, image_bytes: bytes) -> NDArray[np.float32] | None:
        """L2-normalised descriptor of the largest face, or None when no face."""
        raw = self.embed_raw(image_bytes)
        if raw is None:
            return None
        return (raw / np.linalg.norm(raw)).astype(np.float32)

    def process(self, image_bytes: bytes) -> int:
        """Detect and encode every face, as a service would; returns the face count."""
        rgb = self.decode(image_bytes)
        return len(self.encode_raw(rgb, self.detect(rgb)))


def metric_check(
    peer: FaceRecognitionPeer, images: list[LabelledImage], limit: int = 400
) -> dict[str, Any]:
    """ROC AUC of cosine (normalised) vs -Euclidean (raw) on the pairs of ``limit`` images.

    Takes whole identities with >= 2 photos, in order, until ``limit`` photos, and
    scores all their pairs; also TAR at FAR 1e-3 under both metrics.
    """
    by_identity: dict[str, list[LabelledImage]] = {}
    for image in images:
        by_identity.setdefault(image.identity, []).append(image)
    chosen: list[LabelledImage] = []
    for members in by_identity.values():
        if len(members) >= 2 and len(chosen) + len(members) <= limit:
            chosen.extend(members)
    raws = [peer.embed_raw(image.path.read_bytes()) for image in chosen]
    kept = [(img.identity, r) for img, r in zip(chosen, raws, strict=True) if r is not None]
    labels = np.asarray([identity for identity, _ in kept])
    raw = np.stack([r for _, r in kept])
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    i, j = np.triu_indices(len(kept), 1)
    same = labels[i] == labels[j]
    cosine = np.einsum("ij,ij->i", unit[i], unit[j])
    neg_euclid = -np.linalg.norm(raw[i] - raw[j], axis=1)
    norms = np.linalg.norm(raw, axis=1)
    return {
        "images": len(chosen),
        "failed": len(chosen) - len(kept),
        "genuine_pairs": int(same.sum()),
        "impostor_pairs": int((~same).sum()),
        "auc_cosine_normalised": roc_auc(cosine[same], cosine[~same]),
        "auc_euclidean_raw": roc_auc(neg_euclid[same], neg_euclid[~same]),
        "tar_at_far_1e-3_cosine": tar_at_far(cosine[same], cosine[~same], 1e-3).tar,
        "tar_at_far_1e-3_euclidean": tar_at_far(neg_euclid[same], neg_euclid[~same], 1e-3).tar,
        "raw_norm_min": float(norms.min()),
        "raw_norm_max": float(norms.max()),
        "raw_norm_mean": float(norms.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    """Validate the peer on lfw-dev: accuracy, metric check and throughput; prints JSON."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--throughput-images", type=int, default=300)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--metric-check-images", type=int, default=400)
    args = parser.parse_args(argv)

    peer = FaceRecognitionPeer()
    images = lfw_dev()
    es = embed_images(peer, images, progress=print_progress(f"{peer.name} embed"))
    report: dict[str, Any] = {"peer": peer.name, "version": peer.version}
    report["accuracy"] = accuracy_report(es, images)
    report["metric_check"] = metric_check(peer, images, args.metric_check_images)
    step = max(1, len(images) // args.throughput_images)
    subset = [image.path.read_bytes() for image in images[::step][: args.throughput_images]]
    report["throughput"] = [
        measure_throughput(peer.process, subset, clients).to_dict() for clients in args.clients
    ]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
