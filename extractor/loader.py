"""Builds a :class:`FaceExtractor` from settings and the model manifest (the only place
models are opened)."""

from __future__ import annotations

import numpy as np

from extractor.decode import DecodeLimits
from extractor.detect import DetectorConfig, RetinaFaceDetector, YuNetDetector
from extractor.models.catalog import Role
from extractor.models.manifest import Manifest, ModelEntry, ModelError, load_manifest
from extractor.pipeline import ExtractorConfig, FaceExtractor
from extractor.pose import PoseEstimator
from extractor.quality import QualityFeatures, QualityModel
from extractor.recognize import Recognizer
from extractor.runtime import OnnxModel, choose_providers, default_threads, usable_cpus
from extractor.scores import ScoreMap
from facegate.contract import MAX_SCORE
from facegate.settings import Settings

DETECTORS: dict[str, type[RetinaFaceDetector] | type[YuNetDetector]] = {
    "retinaface": RetinaFaceDetector,
    "yunet": YuNetDetector,
}


def _pick(manifest: Manifest, role: Role, name: str) -> ModelEntry:
    entry = manifest.entry(name) if name else manifest.default(role)
    if entry.role is not role:
        raise ModelError(f"model {entry.name!r} is a {entry.role}, not a {role}")
    return entry


def uncalibrated_quality(embedding_dim: int) -> QualityModel:
    """A constant quality (0.5 before priors), for the calibration tool before a fit exists."""
    width = len(QualityFeatures.names()) + embedding_dim
    zeros, ones = (0.0,) * width, (1.0,) * width
    return QualityModel(QualityFeatures.names(), embedding_dim, zeros, ones, zeros, 0.0)


def load_extractor(settings: Settings, *, calibrating: bool = False) -> FaceExtractor:
    """``calibrating`` ignores any calibration: raw similarities, constant quality (for
    ``bench.calibrate``, which produces the calibration)."""
    cfg = settings.extractor
    manifest = load_manifest(settings.models)
    threads = cfg.threads or default_threads()
    providers = choose_providers(cfg.providers or None)

    def session(entry: ModelEntry) -> OnnxModel:
        return OnnxModel(manifest.path_of(entry), threads=threads, providers=providers)

    detector_entry = _pick(manifest, Role.DETECTOR, cfg.detector)
    recognizer_entry = _pick(manifest, Role.RECOGNIZER, cfg.recognizer)
    pose_entry = _pick(manifest, Role.POSE, cfg.pose)
    detector_cls = DETECTORS.get(detector_entry.architecture)
    if detector_cls is None:
        raise ModelError(
            f"detector architecture {detector_entry.architecture!r} is not supported "
            f"(supported: {', '.join(sorted(DETECTORS))})"
        )
    detector = detector_cls(
        session(detector_entry),
        detector_entry.preprocess,
        DetectorConfig(max_side=cfg.detection_max_side, score_threshold=cfg.detection_threshold),
    )
    calibration = recognizer_entry.score_calibration
    quality = recognizer_entry.quality_model
    if calibrating:
        score_map = ScoreMap([(-1.0, 0), (1.0, MAX_SCORE)])
        quality = uncalibrated_quality(recognizer_entry.embedding_dim)
    elif calibration is None or quality is None:
        raise ModelError(
            f"recognizer {recognizer_entry.name!r} has no score/quality calibration in the "
            "manifest: run `python -m bench.calibrate` for it first"
        )
    else:
        score_map = ScoreMap(calibration.knots)
    stats = pose_entry.aux.get("param_stats")
    if stats is None:
        raise ModelError(f"pose model {pose_entry.name!r} lacks its parameter statistics")
    pose = PoseEstimator(
        session(pose_entry),
        pose_entry.preprocess,
        np.asarray(stats["mean"]),
        np.asarray(stats["std"]),
    )
    concurrent_images = cfg.max_concurrent_images or 2 * usable_cpus()
    return FaceExtractor(
        detector=detector,
        recognizer=Recognizer(session(recognizer_entry), recognizer_entry.preprocess),
        pose=pose,
        quality=quality,
        score_map=score_map,
        model_id=recognizer_entry.model_id,
        detector_id=detector_entry.model_id,
        embedding_dim=recognizer_entry.embedding_dim,
        decode_limits=DecodeLimits(max_bytes=cfg.max_image_bytes, max_pixels=cfg.max_image_pixels),
        config=ExtractorConfig(max_faces=cfg.max_faces, default_limit=cfg.default_limit),
        max_batch=cfg.max_batch,
        max_concurrent_images=concurrent_images,
    )
