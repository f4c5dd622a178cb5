"""Compare detectors and recognizers on the shared photos, to choose the defaults.

    python -m bench.compare_models

Detection (each detector at the configured threshold and size): exact face counts on
compreface/_multi, the boxed ground truth of dlib/_multi, false faces on every
_noface photo, faces found in tight crops (dlib_johns, faceapijs) and on lfw-dev.
Recognition (each detector x recognizer, the full extractor pipeline on lfw-dev):
TAR at FAR 1e-3/1e-4 over all genuine and all impostor pairs, rank-1 and FNIR at
FPIR 0.01. Speed: detector ms per lfw-dev photo, recognizer ms per face at batch 1
and 32 (single process, this machine). Writes bench/results/models.json and the
tables in docs/models.md (between the generated-section markers).
"""

from __future__ import annotations

import argparse
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.dataset import REPO_ROOT, faces_dir, lfw_dev
from bench.embed import run_pipeline
from bench.metrics import evaluate_identification, evaluate_verification
from bench.report import machine_summary, replace_section
from extractor.align import align_face
from extractor.decode import decode_image
from extractor.detect import Detector, detect
from extractor.loader import load_extractor
from extractor.models.catalog import CATALOG, Role
from extractor.models.manifest import load_manifest
from facegate.settings import Settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _dlib_truth(faces: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    truth: dict[str, list[tuple[float, float, float, float]]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(faces / "test/dlib/_meta" / name).getroot().iter("image"):
            boxes = truth.setdefault(Path(image.get("file", "")).name, [])
            for b in image.iter("box"):
                x, y = float(b.get("left", 0)), float(b.get("top", 0))
                boxes.append((x, y, x + float(b.get("width", 0)), y + float(b.get("height", 0))))
    return truth


def _near(center: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    dx, dy = 0.25 * (box[2] - box[0]), 0.25 * (box[3] - box[1])
    return box[0] - dx <= center[0] <= box[2] + dx and box[1] - dy <= center[1] <= box[3] + dy


def detection_report(detector: Detector, faces: Path) -> dict[str, Any]:
    def found(path: Path) -> list[np.ndarray]:
        return [d.box for d in detect(detector, decode_image(path.read_bytes()).pixels)]

    counts_ok = [
        len(found(p)) == int(p.stem.split("_")[-1])
        for p in _images(faces / "test/compreface/_multi")
    ]
    truth = _dlib_truth(faces)
    missed = extra = boxes = 0
    for path in _images(faces / "test/dlib/_multi"):
        if path.name not in truth:
            continue
        centers = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in found(path)]
        boxes += len(truth[path.name])
        missed += sum(not any(_near(c, t) for c in centers) for t in truth[path.name])
        extra += sum(not any(_near(c, t) for t in truth[path.name]) for c in centers)
    noface = [p for p in (faces / "test").glob("*/_noface/*")]
    false_faces = sum(len(found(p)) for p in noface)
    crops = [
        p
        for s in ("dlib_johns", "faceapijs")
        for p in _images(faces / "test" / s)
        if "/_" not in str(p)
    ]
    crops_found = sum(bool(found(p)) for p in crops)
    lfw = [img.path for img in lfw_dev()]
    started = time.perf_counter()
    lfw_missed = sum(not found(p) for p in lfw)
    ms = 1000 * (time.perf_counter() - started) / len(lfw)
    return {
        "compreface_exact_counts": f"{sum(counts_ok)}/{len(counts_ok)}",
        "dlib_boxes": boxes,
        "dlib_missed": missed,
        "dlib_extra": extra,
        "noface_photos": len(noface),
        "noface_false_faces": false_faces,
        "tight_crops_found": f"{crops_found}/{len(crops)}",
        "lfw_dev_no_face": lfw_missed,
        "ms_per_lfw_photo": round(ms, 2),
    }


def recognizer_speed(settings: Settings, name: str) -> dict[str, float]:
    extractor = load_extractor(
        replace(settings, extractor=replace(settings.extractor, recognizer=name)), calibrating=True
    )
    photo = (faces_dir() / "test/face_recognition/obama/obama.jpg").read_bytes()
    pixels = decode_image(photo).pixels
    detection = max(detect(extractor.detector, pixels), key=lambda d: d.area)
    crop = align_face(pixels, detection.landmarks)
    out = {}
    for batch in (1, 32):
        crops = np.repeat(crop[None], batch, axis=0)
        extractor.recognizer.embed(crops)
        runs = max(3, 96 // batch)
        started = time.perf_counter()
        for _ in range(runs):
            extractor.recognizer.embed(crops)
        out[f"ms_per_face_batch{batch}"] = round(
            1000 * (time.perf_counter() - started) / (runs * batch), 2
        )
    extractor.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    settings = Settings.from_env()
    manifest = load_manifest(settings.models)
    present = {m.name for m in manifest.models}
    detectors = [s.name for s in CATALOG if s.role is Role.DETECTOR and s.name in present]
    recognizers = [s for s in CATALOG if s.role is Role.RECOGNIZER and s.name in present]
    faces = faces_dir()
    images = lfw_dev()
    result: dict[str, Any] = {"machine": machine_summary(), "detectors": {}, "pipelines": []}
    for name in detectors:
        extractor = load_extractor(
            replace(settings, extractor=replace(settings.extractor, detector=name)),
            calibrating=True,
        )
        print(f"detection: {name}", flush=True)
        result["detectors"][name] = detection_report(extractor.detector, faces)
        extractor.close()
    for spec in recognizers:
        speed = recognizer_speed(settings, spec.name)
        for name in detectors:
            print(f"pipeline: {name} + {spec.name}", flush=True)
            extractor = load_extractor(
                replace(
                    settings,
                    extractor=replace(settings.extractor, detector=name, recognizer=spec.name),
                ),
                calibrating=True,
            )
            run = run_pipeline(extractor, images)
            extractor.close()
            verification = evaluate_verification(run.embeddings)
            identification = evaluate_identification(run.embeddings, run.file_names)
            result["pipelines"].append(
                {
                    "detector": name,
                    "recognizer": spec.name,
                    "embedding_dim": spec.embedding_dim,
                    "licence": spec.licence,
                    "commercial_use": spec.commercial_use,
                    "no_face": run.embeddings.n_failed,
                    "tar_at_far": {f"{t.far:g}": round(t.tar, 4) for t in verification.tar_at_far},
                    "rank1": round(identification.rank1_hit_rate, 4),
                    "fnir_at_fpir_0.01": round(identification.fnir, 4),
                    "pipeline_photos_per_s": round(len(images) / run.seconds, 1),
                    **speed,
                }
            )
    out = REPO_ROOT / "bench" / "results" / "models.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    write_docs(result)
    print(json.dumps(result, indent=1))
    return 0


DETECTION_COLUMNS = (
    "detector",
    "compreface exact counts",
    "dlib missed / boxes",
    "dlib extra",
    "false faces on _noface",
    "tight crops found",
    "lfw-dev photos without a face",
    "ms per lfw-dev photo",
)
RECOGNITION_COLUMNS = (
    "detector",
    "recognizer",
    "TAR @ FAR 1e-3",
    "TAR @ FAR 1e-4",
    "rank-1",
    "FNIR @ FPIR 0.01",
    "recognizer ms/face (batch 1 / 32)",
    "pipeline photos/s (4 clients)",
    "commercial use",
)


def _header(columns: tuple[str, ...]) -> str:
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"


def write_docs(result: dict[str, Any]) -> None:
    det_rows = "\n".join(
        f"| {name} | {r['compreface_exact_counts']} | {r['dlib_missed']} / {r['dlib_boxes']} | "
        f"{r['dlib_extra']} | {r['noface_false_faces']} ({r['noface_photos']} photos) | "
        f"{r['tight_crops_found']} | {r['lfw_dev_no_face']} | {r['ms_per_lfw_photo']} |"
        for name, r in result["detectors"].items()
    )
    rec_rows = "\n".join(
        f"| {p['detector']} | {p['recognizer']} ({p['embedding_dim']}-d) | "
        f"{p['tar_at_far']['0.001']:.4f} | {p['tar_at_far']['0.0001']:.4f} | {p['rank1']:.4f} | "
        f"{p['fnir_at_fpir_0.01']:.4f} | {p['ms_per_face_batch1']} / {p['ms_per_face_batch32']} | "
        f"{p['pipeline_photos_per_s']} | {'yes' if p['commercial_use'] else 'no'} |"
        for p in result["pipelines"]
    )
    body = f"""Measured by `python -m bench.compare_models` on {result["machine"]}.

Detection (threshold and size from settings; "missed / boxes" against dlib's labelled
boxes; false faces over all `_noface` photos):

{_header(DETECTION_COLUMNS)}
{det_rows}

Recognition on lfw-dev (5,252 photos: all 41,018 genuine and 13.7M impostor pairs;
identification: 826 enrolled + 500 distractors, 3,426 mated and 500 non-mated probes):

{_header(RECOGNITION_COLUMNS)}
{rec_rows}
"""
    replace_section(REPO_ROOT / "docs" / "models.md", "models", body)


if __name__ == "__main__":
    raise SystemExit(main())
