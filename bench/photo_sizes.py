"""Cost per photo by size: facegate's extractor against face_recognition, same files.

    python -m bench.photo_sizes [--per-class N] [--peer-per-class M] [--skip-peer]
                                [--baseline REF]

The corpus (built once into bench/.cache/photo-sizes/, the same files every run):

- lfw-dev crops: the first N photos of lfw-dev as they are (250 x 250 JPEG);
- test photos: every photo of ``faces/test`` whose longer side exceeds 300 px, by
  size (compreface person_A's camera photos are the 12-36 MP ones);
- lfw-dev upscaled: the next N photos re-encoded as 3, 12 and 36 MP JPEGs (bicubic,
  quality 90), every third stored on its side or upside down with the EXIF
  orientation (6, 8, 3 in turn) that turns it upright. Fine for cost, not for
  accuracy: the pixels hold no more detail than the crop.

facegate: the shipped extractor in this process, one photo at a time, every face with
its template. CPU ms is the process's CPU time for the extraction, all threads (the
model runs of the batcher threads included); the stage columns are the wall time of
each stage from the extractor's own stage histogram (decode: header and the
detector's scale; detect; describe: finer decodes for small faces, alignment, pose,
recognizer, quality) -- with one client the caller waits while a batcher runs, so a
stage's wall time is its CPU time plus a hand-off. face_recognition 1.3.0 at its
documented defaults: ``load_image_file`` (Pillow), ``face_locations`` (HOG, upsample
1), ``face_encodings`` of every face found; its CPU per stage (one thread). Photos/s
and faces/s are per wall second of one client. The allocator is tuned as ``facegate
serve`` tunes it (facegate/allocator.py). ``--baseline REF`` also measures the extractor
as of git revision REF, on the same files in the same run (this module runs in an
export of that revision, as that revision's service ran).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from prometheus_client import REGISTRY

from bench.dataset import IMAGE_SUFFIXES, REPO_ROOT, faces_dir, lfw_dev
from bench.report import machine_summary, publish
from bench.revisions import current_revision, revision, source_tree
from extractor.decode import decode_image
from extractor.loader import load_extractor
from facegate.settings import Settings

CACHE = REPO_ROOT / "bench" / ".cache" / "photo-sizes"
RESULTS = REPO_ROOT / "bench" / "results" / "photo_sizes.json"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
UPSCALED_MEGAPIXELS = (3, 12, 36)
# Stored transposed so that this EXIF orientation turns the photo upright.
_ROTATIONS = {
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
    3: Image.Transpose.ROTATE_180,
}
STAGES = ("decode", "detect", "decode_faces", "describe")
LFW_CLASS = "lfw-dev crop, 250 px"


@dataclass(frozen=True)
class Photo:
    size_class: str
    name: str
    path: Path
    megapixels: float


def _test_class(megapixels: float) -> str:
    if megapixels < 1:
        return "test photos, < 1 MP"
    if megapixels < 3:
        return "test photos, 1-3 MP"
    return "test photos, 12-36 MP"


def _upscaled(path: Path, megapixels: int, orientation: int) -> Path:
    cached = CACHE / f"{megapixels}mp-o{orientation}-{path.stem}.jpg"
    if cached.exists():
        return cached
    pixels = decode_image(path.read_bytes()).pixels
    factor = (megapixels * 1e6 / (pixels.shape[0] * pixels.shape[1])) ** 0.5
    large = cv2.resize(pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    image = Image.fromarray(large[:, :, ::-1])
    exif = Image.Exif()
    if orientation != 1:
        image = image.transpose(_ROTATIONS[orientation])
        exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif.tobytes())
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(out.getvalue())
    return cached


def build_corpus(per_class: int) -> list[Photo]:
    lfw = lfw_dev()
    photos = [Photo(LFW_CLASS, i.path.name, i.path, 0.0625) for i in lfw[:per_class]]
    orientations = (1, 6, 1, 1, 8, 1, 1, 3, 1)
    for megapixels in UPSCALED_MEGAPIXELS:
        for n, source in enumerate(lfw[per_class : 2 * per_class]):
            orientation = orientations[n % len(orientations)]
            path = _upscaled(source.path, megapixels, orientation)
            label = f"lfw-dev upscaled, {megapixels} MP"
            photos.append(Photo(label, f"{source.path.name} o{orientation}", path, megapixels))
    root = faces_dir() / "test"
    tests = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        with Image.open(path) as image:
            width, height = image.size
        if max(width, height) > 300:
            mp = width * height / 1e6
            name = str(path.relative_to(root))
            tests.append(Photo(_test_class(mp), name, path, mp))
    photos += sorted(tests, key=lambda photo: (photo.megapixels >= 1) + (photo.megapixels >= 3))
    return photos


def _stage_seconds() -> dict[str, float]:
    sums = {}
    for stage in STAGES:
        value = REGISTRY.get_sample_value("facegate_extractor_stage_seconds_sum", {"stage": stage})
        sums[stage] = value or 0.0
    return sums


def measure_facegate(photos: list[Photo]) -> dict[str, list[dict[str, Any]]]:
    extractor = load_extractor(Settings.from_env())
    try:
        # Warm-up, one photo of each class: sessions, each input shape's priors, allocator.
        for photo in {p.size_class: p for p in photos}.values():
            extractor.extract(photo.path.read_bytes(), limit=20)
        rows: dict[str, list[dict[str, Any]]] = {photo.size_class: [] for photo in photos}
        # In a fixed shuffled order, so that a slow minute of a shared machine falls on
        # every size class alike rather than on whichever class runs then.
        for photo in random.Random(0).sample(photos, len(photos)):
            data = photo.path.read_bytes()
            before = _stage_seconds()
            cpu, wall = time.process_time(), time.perf_counter()
            extraction = extractor.extract(data, limit=20)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            after = _stage_seconds()
            stage = {s: (after[s] - before[s]) * 1000 for s in STAGES}
            rows[photo.size_class].append(
                {
                    "name": photo.name,
                    "decode": stage["decode"],
                    "detect": stage["detect"],
                    "describe": stage["decode_faces"] + stage["describe"],
                    "cpu": cpu * 1000,
                    "wall": wall * 1000,
                    "faces": len(extraction.faces),
                }
            )
        return rows
    finally:
        extractor.close()


def measure_peer(
    photos: list[Photo], per_class: int
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    from bench.peers.face_recognition_peer import FaceRecognitionPeer

    peer = FaceRecognitionPeer()
    rows: dict[str, list[dict[str, Any]]] = {}
    for photo in photos:
        done = rows.setdefault(photo.size_class, [])
        if len(done) >= per_class:
            continue
        data = photo.path.read_bytes()
        wall = time.perf_counter()
        t0 = time.thread_time()
        rgb = peer.decode(data)
        t1 = time.thread_time()
        boxes = peer.detect(rgb)
        t2 = time.thread_time()
        peer.encode_raw(rgb, boxes)
        t3 = time.thread_time()
        done.append(
            {
                "name": photo.name,
                "decode": (t1 - t0) * 1000,
                "detect": (t2 - t1) * 1000,
                "describe": (t3 - t2) * 1000,
                "cpu": (t3 - t0) * 1000,
                "wall": (time.perf_counter() - wall) * 1000,
                "faces": len(boxes),
            }
        )
    return rows, peer.version


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    def p(key: str, q: float) -> float:
        return float(np.percentile([r[key] for r in rows], q))

    wall = sum(r["wall"] for r in rows) / 1000
    faces = sum(r["faces"] for r in rows)
    summary = {f"{k}_p50": p(k, 50) for k in ("decode", "detect", "describe", "cpu")}
    summary |= {"cpu_p99": p("cpu", 99), "photos": len(rows), "faces": faces}
    summary |= {"photos_per_s": len(rows) / wall, "faces_per_s": faces / wall}
    return summary


def cpu_ratio(peer_rows: list[dict[str, Any]], our_rows: list[dict[str, Any]]) -> float:
    """The peer's CPU over facegate's on the photos both measured."""
    ours = {r["name"]: r["cpu"] for r in our_rows}
    return float(sum(r["cpu"] for r in peer_rows) / sum(ours[r["name"]] for r in peer_rows))


def _line(size_class: str, system: str, s: dict[str, float], lfw_cpu: float, ratio: str) -> str:
    digits = 1 if s["cpu_p50"] < 1000 else 0
    return (
        f"| {size_class} | {system} | {s['photos']:.0f} | {s['decode_p50']:.{digits}f} "
        f"| {s['detect_p50']:.{digits}f} | {s['describe_p50']:.{digits}f} "
        f"| {s['cpu_p50']:.{digits}f} | {s['cpu_p99']:.{digits}f} | {s['photos_per_s']:.2f} "
        f"| {s['faces_per_s']:.2f} | {s['cpu_p50'] / lfw_cpu:.2f} | {ratio} |"
    )


def render(result: dict[str, Any]) -> str:
    ours, peer = result["facegate"], result.get("face_recognition", {})
    before, revision = result.get("baseline", {}), result.get("baseline_revision", "")
    lines = [
        f"`{result['command']}` ({result['machine']}). {result['corpus_note']}",
        "",
        "| size class | system | photos | decode ms | detect ms | describe ms | CPU ms p50 "
        "| CPU ms p99 | photos/s | faces/s | CPU / lfw crop | this CPU / facegate's |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size_class, s in ours.items():
        lfw_cpu = ours[LFW_CLASS]["cpu_p50"]
        lines.append(_line(size_class, "facegate", s, lfw_cpu, "1"))
        if size_class in before:
            b = before[size_class]
            ratio = f"{result['baseline_cpu_ratio'][size_class]:.2f}"
            lfw_before = before[LFW_CLASS]["cpu_p50"]
            lines.append(_line(size_class, f"facegate {revision} (before)", b, lfw_before, ratio))
        if size_class in peer:
            ratio = f"{result['peer_cpu_ratio'][size_class]:.0f}"
            lfw_peer = peer[LFW_CLASS]["cpu_p50"]
            lines.append(_line(size_class, "face_recognition", peer[size_class], lfw_peer, ratio))
    lines += [
        "",
        "Stage columns and CPU are medians per photo, p99 of a handful of photos is their "
        "maximum; \"CPU / lfw crop\" is against the same system's lfw-dev crops. facegate's "
        "stage columns are wall time (see the module docstring), face_recognition's CPU. "
        f"Peer: face_recognition {result.get('peer_version', '-')}, on the first photos of "
        "each class only (seconds to tens of seconds per large photo). The last column is "
        "that system's CPU over facegate's on the same photos.",
    ]
    return "\n".join(lines)


def measure_revision(ref: str, photos: list[Photo]) -> dict[str, list[dict[str, Any]]]:
    """:func:`measure_facegate` of the extractor as of git revision ``ref``: this module
    runs inside an export of that revision, on the same files, in a child process."""
    with source_tree(ref) as folder, tempfile.TemporaryDirectory() as work:
        for module in ("photo_sizes.py", "revisions.py"):
            shutil.copy(Path(__file__).with_name(module), folder / "bench" / module)
        listing, out = Path(work) / "corpus.json", Path(work) / "rows.json"
        entries = [[p.size_class, p.name, str(p.path), p.megapixels] for p in photos]
        listing.write_text(json.dumps({"photos": entries, "out": str(out)}))
        subprocess.run(
            [sys.executable, "-m", "bench.photo_sizes", "--measure", str(listing)],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(folder)},
            check=True,
        )
        rows: dict[str, list[dict[str, Any]]] = json.loads(out.read_text())
        return rows


def _measure_listed(listing: Path) -> None:
    spec = json.loads(listing.read_text())
    photos = [Photo(c, n, Path(p), mp) for c, n, p, mp in spec["photos"]]
    Path(spec["out"]).write_text(json.dumps(measure_facegate(photos)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--peer-per-class", type=int, default=3)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--baseline", help="also measure the extractor of this git revision")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # a baseline's child
    args = parser.parse_args(argv)
    if args.measure:
        _measure_listed(args.measure)
        return 0
    # Imported here, after the baseline's branch: earlier revisions have no such module.
    from facegate.allocator import tune_allocator

    tune_allocator()  # as `facegate serve` does
    photos = build_corpus(args.per_class)
    print(f"photo sizes: {len(photos)} photos", flush=True)
    ours = measure_facegate(photos)
    given = argv if argv is not None else sys.argv[1:]
    result: dict[str, Any] = {
        "command": " ".join(["python -m bench.photo_sizes", *given]),
        "machine": machine_summary(),
        "revision": current_revision(),
        "corpus_note": (
            f"{args.per_class} lfw-dev crops, every test photo over 300 px, "
            f"{args.per_class} lfw-dev photos upscaled to each of 3, 12 and 36 MP "
            "(a third with an EXIF rotation)."
        ),
        "facegate": {k: summarise(v) for k, v in ours.items()},
    }
    if args.baseline:
        print(f"photo sizes: the extractor of {args.baseline}", flush=True)
        before = measure_revision(args.baseline, photos)
        result["baseline_revision"] = revision(args.baseline)
        result["baseline"] = {k: summarise(v) for k, v in before.items()}
        result["baseline_cpu_ratio"] = {k: cpu_ratio(v, ours[k]) for k, v in before.items()}
    if not args.skip_peer:
        theirs, result["peer_version"] = measure_peer(photos, args.peer_per_class)
        result["face_recognition"] = {k: summarise(v) for k, v in theirs.items()}
        result["peer_cpu_ratio"] = {k: cpu_ratio(v, ours[k]) for k, v in theirs.items()}
    publish(result, RESULTS, DOCS, "photo-sizes", render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
