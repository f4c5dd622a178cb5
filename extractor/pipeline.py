"""The extractor's domain logic: encoded image -> NEC face attributes and templates.

Steps for one image (bounded by a semaphore so hostile or huge inputs cannot exhaust
memory): read the header, decode at the coarsest scale that still gives the detector
its full input (a JPEG at 1/2, 1/4 or 1/8 by DCT scaling), detect, order faces largest
first, apply the caller's selection (extractor/selection.py), then for each kept face
align a 112 x 112 crop for the recognizer and a 120 x 120 crop for the pose model from
the coarsest decoded scale that holds the face at full detail (align.FULL_DETAIL_SCALE),
decoding a finer scale only for faces too small at the detector's. Model runs go
through micro-batchers shared by all concurrent requests. Coordinates are reported in
the pixels of the upright (EXIF-oriented) original, whatever scale was decoded.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from extractor.align import align_face, face_reduction
from extractor.batching import MicroBatcher
from extractor.decode import DecodedImage, DecodeLimits, open_image
from extractor.detect import Detection, Detector
from extractor.pose import Pose, PoseEstimator
from extractor.quality import QualityFeatures, QualityModel, contrast, eye_distance, sharpness
from extractor.recognize import Recognizer
from extractor.scores import ScoreMap
from extractor.selection import FaceSelection, select_faces
from facegate.errors import ErrorType, FacegateError, invalid_request
from facegate.faces import Box, FaceAttributes, Point
from facegate.metrics import BATCH_SIZE, EXTRACTOR_STAGE, FACES_PER_IMAGE, timed

# Head box around the detector's face box, as fractions of the face box's size: the
# face box runs from brow to chin, the head adds hair and the sides of the head.
HEAD_MARGIN_SIDE = 0.20
HEAD_MARGIN_TOP = 0.45
HEAD_MARGIN_BOTTOM = 0.20
# frontalFaceScore falls to one half at this many degrees off-axis (pan and tilt combined).
FRONTAL_HALF_ANGLE = 30.0


@dataclass(frozen=True)
class ExtractorConfig:
    max_faces: int = 20
    default_limit: int = 10


@dataclass(frozen=True)
class Face:
    attributes: FaceAttributes
    embedding: np.ndarray | None
    """Unit-length float32 embedding, when templates were asked for."""
    quality_features: QualityFeatures


@dataclass(frozen=True)
class Extraction:
    faces: list[Face]
    width: int
    height: int
    model_id: str


class FaceExtractor:
    """Thread-safe: one instance serves every concurrent request of a process."""

    def __init__(
        self,
        *,
        detector: Detector,
        recognizer: Recognizer,
        pose: PoseEstimator,
        quality: QualityModel,
        score_map: ScoreMap,
        model_id: str,
        detector_id: str,
        embedding_dim: int,
        decode_limits: DecodeLimits,
        config: ExtractorConfig,
        max_batch: int,
        max_concurrent_images: int,
    ) -> None:
        self.detector = detector
        self.recognizer = recognizer
        self.pose = pose
        self.quality = quality
        self.score_map = score_map
        self.model_id = model_id
        self.detector_id = detector_id
        self.embedding_dim = embedding_dim
        self.decode_limits = decode_limits
        self.config = config
        self._images = threading.BoundedSemaphore(max_concurrent_images)
        self._detect = MicroBatcher(
            detector.run,
            max_batch=max_batch if detector.batchable else 1,
            name="detector",
            on_batch=BATCH_SIZE.labels("detector").observe,
        )
        self._embed = MicroBatcher(
            self._embed_rows,
            max_batch=max_batch,
            name="recognizer",
            on_batch=BATCH_SIZE.labels("recognizer").observe,
        )
        self._pose = MicroBatcher(
            pose.estimate,
            max_batch=max_batch,
            name="pose",
            on_batch=BATCH_SIZE.labels("pose").observe,
        )

    def close(self) -> None:
        for batcher in (self._detect, self._embed, self._pose):
            batcher.close()

    def _embed_rows(self, crops: np.ndarray) -> list[tuple[np.ndarray, float]]:
        result = self.recognizer.embed(crops)
        return list(zip(result.vectors, result.norms.tolist(), strict=True))

    def extract(
        self,
        data: bytes,
        *,
        limit: int | None = None,
        selection: FaceSelection = FaceSelection.ALL,
        min_quality: float | None = None,
        with_templates: bool = True,
    ) -> Extraction:
        limit = self._check_arguments(limit, selection, min_quality)
        with self._images:
            with timed(EXTRACTOR_STAGE, "decode"):
                source = open_image(data, self.decode_limits)
                view = source.decode(source.coarsest_reduction(self.detector.config.max_side))
            with timed(EXTRACTOR_STAGE, "detect"):
                letterbox = self.detector.prepare(view.pixels, view.reduction)
                outputs = self._detect.submit(letterbox.tensor)[0]
                detections = sorted(
                    (_in_original(d, view) for d in self.detector.decode(outputs, letterbox)),
                    key=lambda d: d.area,
                    reverse=True,
                )
            FACES_PER_IMAGE.observe(len(detections))
            width, height = source.width, source.height
            chosen = select_faces(detections, selection, limit, width=width, height=height)
            views = {view.reduction: view}
            with timed(EXTRACTOR_STAGE, "decode_faces"):
                reductions = [
                    face_reduction(d.landmarks, source.reductions, view.reduction) for d in chosen
                ]
                for reduction in set(reductions) - views.keys():
                    views[reduction] = source.decode(reduction)
            with timed(EXTRACTOR_STAGE, "describe"):
                faces = self._describe([views[r] for r in reductions], chosen, width, height)
            # The pixels go before the next image may take this one's slot.
            del views, view
        if min_quality is not None and faces[0].attributes.face_quality_score < min_quality:
            raise poor_quality(faces[0].attributes.face_quality_score, min_quality)
        if not with_templates:
            faces = [Face(f.attributes, None, f.quality_features) for f in faces]
        return Extraction(faces, width, height, self.model_id)

    def _check_arguments(
        self, limit: int | None, selection: FaceSelection, min_quality: float | None
    ) -> int:
        if limit is None or limit == 0:
            limit = self.config.default_limit
        if not 1 <= limit <= self.config.max_faces:
            raise invalid_request(f"limit must be between 1 and {self.config.max_faces}.")
        if min_quality is not None:
            if selection is FaceSelection.ALL:
                raise invalid_request("min_quality needs a single-face selection.")
            if not 0.0 <= min_quality <= 1.0 or math.isnan(min_quality):
                raise invalid_request("min_quality must be between 0 and 1.")
        return limit

    def _describe(
        self, views: list[DecodedImage], detections: list[Detection], width: int, height: int
    ) -> list[Face]:
        """Attributes and embeddings, each face read from its view; the recognizer
        always runs, as quality needs it."""
        if not detections:
            return []
        pose_crops = []
        crops = []
        for view, detection in zip(views, detections, strict=True):
            box = view.from_original(detection.box.reshape(2, 2)).ravel()
            pose_crops.append(self.pose.crop(view.pixels, box))
            crops.append(align_face(view.pixels, view.from_original(detection.landmarks)))
        # The pose model and the recognizer run at the same time on their own threads.
        pending_poses = self._pose.start(np.stack(pose_crops))
        embedded = self._embed.submit(np.stack(crops))
        poses = pending_poses.result()
        faces = []
        for detection, pose, crop, (vector, norm) in zip(
            detections, poses, crops, embedded, strict=True
        ):
            features = QualityFeatures(
                log_eye_distance=math.log(max(eye_distance(detection.landmarks), 1.0)),
                abs_pan=abs(pose.pan),
                abs_tilt=abs(pose.tilt),
                face_score=detection.score,
                sharpness=sharpness(crop),
                contrast=contrast(crop),
                embedding_norm=norm,
            )
            quality = self.quality.score(features, vector)
            faces.append(
                Face(
                    _attributes(detection, pose, quality, width=width, height=height),
                    vector,
                    features,
                )
            )
        return faces

    def compare(self, a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
        similarity = float(np.clip(np.dot(a, b), -1.0, 1.0))
        return similarity, self.score_map.score(similarity)


def _in_original(detection: Detection, view: DecodedImage) -> Detection:
    return Detection(
        view.to_original(detection.box.reshape(2, 2)).ravel(),
        detection.score,
        view.to_original(detection.landmarks),
    )


def poor_quality(score: float, minimum: float) -> FacegateError:
    """PoorQuality, with the score printed to as many decimals as it takes to show it
    below the minimum (0.4499 is not "0.450 below 0.45")."""
    decimals = 3
    while decimals < 9 and float(f"{score:.{decimals}f}") >= minimum:
        decimals += 1
    return FacegateError(
        ErrorType.POOR_QUALITY,
        f"The face quality score {score:.{decimals}f} is below the minimum {minimum:g}.",
    )


def _attributes(
    detection: Detection, pose: Pose, quality: float, *, width: int, height: int
) -> FaceAttributes:
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    w, h = x2 - x1, y2 - y1
    off_axis = math.hypot(pose.pan, pose.tilt)
    frontal = 0.5 ** ((off_axis / FRONTAL_HALF_ANGLE) ** 2)
    right_eye, left_eye = detection.landmarks[0], detection.landmarks[1]
    return FaceAttributes(
        face_area=_clipped_box((x1, y1, x2, y2), width, height),
        head_area=_clipped_box(
            (
                x1 - HEAD_MARGIN_SIDE * w,
                y1 - HEAD_MARGIN_TOP * h,
                x2 + HEAD_MARGIN_SIDE * w,
                y2 + HEAD_MARGIN_BOTTOM * h,
            ),
            width,
            height,
        ),
        right_eye_center=Point(round(float(right_eye[0])), round(float(right_eye[1]))),
        left_eye_center=Point(round(float(left_eye[0])), round(float(left_eye[1]))),
        frontal_face_score=frontal,
        face_roll=pose.roll,
        face_pan=pose.pan,
        face_tilt=pose.tilt,
        face_score=detection.score,
        face_quality_score=quality,
    )


def _clipped_box(corners: tuple[float, float, float, float], width: int, height: int) -> Box:
    x1, y1, x2, y2 = corners
    return Box(
        left=int(np.clip(round(x1), 0, width)),
        top=int(np.clip(round(y1), 0, height)),
        right=int(np.clip(round(x2), 0, width)),
        bottom=int(np.clip(round(y2), 0, height)),
    )
