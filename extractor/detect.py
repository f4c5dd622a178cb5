"""Face detectors: image -> boxes, confidences and five landmarks, in original pixels.

Two published detectors are supported, each a small decoder around one ONNX graph:
RetinaFace (MobileNet-0.25) and YuNet (2023mar). Both see the image downscaled so its
longer side is at most ``max_side`` and padded to a multiple of 32; every coordinate
they return is mapped back to the pixels of the image the caller gave them.

Landmark order is the models' own: the eye on the image's left first (the subject's
right eye for an upright face), then the other eye, nose tip, and the mouth corners
in the same left/right order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from extractor.models.catalog import Preprocess
from extractor.runtime import OnnxModel

STRIDE_MULTIPLE = 32


@dataclass(frozen=True)
class Detection:
    box: np.ndarray
    """x1, y1, x2, y2 (float, original pixels)."""
    score: float
    landmarks: np.ndarray
    """5 x 2 (float, original pixels)."""

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


class Detector(Protocol):
    """Detection in three steps, so that the network run in the middle can be batched."""

    batchable: bool
    """Whether the graph accepts more than one image per run."""
    config: DetectorConfig

    def prepare(self, image: np.ndarray, reduction: int = 1) -> Letterbox:
        """The network input for a BGR uint8 image that has one pixel per ``reduction``
        original pixels (so ``min_face`` stays in original pixels)."""
        ...

    def run(self, tensors: np.ndarray) -> list[list[np.ndarray]]:
        """Network outputs for N prepared inputs of one size, one list per input."""
        ...

    def decode(self, outputs: list[np.ndarray], letterbox: Letterbox) -> list[Detection]:
        """Faces above the confidence threshold, in original pixels, any order."""
        ...


def detect(detector: Detector, image: np.ndarray) -> list[Detection]:
    """Unbatched detection, for tools and tests."""
    letterbox = detector.prepare(image)
    return detector.decode(detector.run(letterbox.tensor)[0], letterbox)


@dataclass(frozen=True)
class DetectorConfig:
    max_side: int = 640
    score_threshold: float = 0.8
    nms_iou: float = 0.4
    min_face: float = 8.0
    """Boxes narrower than this many original pixels are dropped."""


@dataclass(frozen=True)
class Letterbox:
    tensor: np.ndarray
    """1 x 3 x H x W float32, H and W multiples of 32."""
    scale: float
    """Network pixels per pixel of the image given to ``prepare``."""
    reduction: int = 1
    """Original pixels per pixel of that image."""


def _letterbox(image: np.ndarray, max_side: int, pre: Preprocess, reduction: int) -> Letterbox:
    """Downscale to ``max_side``, pad to a multiple of 32 and normalise, NCHW float32."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # Shrinking by at most 2 (what a reduced decode leaves), bilinear sampling reads
        # every source pixel and gave the same faces on every test photo; OpenCV's area
        # filter at a fractional factor costs several times more.
        interpolation = cv2.INTER_LINEAR if scale >= 0.5 else cv2.INTER_AREA
        image = cv2.resize(image, size, interpolation=interpolation)
    h, w = image.shape[:2]
    padded_h = math.ceil(h / STRIDE_MULTIPLE) * STRIDE_MULTIPLE
    padded_w = math.ceil(w / STRIDE_MULTIPLE) * STRIDE_MULTIPLE
    padded = cv2.copyMakeBorder(image, 0, padded_h - h, 0, padded_w - w, cv2.BORDER_CONSTANT)
    # One C pass for the channel swap, mean subtraction and NCHW layout; numpy's
    # several passes over a float canvas cost more than the detector's resize.
    tensor: np.ndarray = np.asarray(
        cv2.dnn.blobFromImage(
            padded, 1.0, mean=pre.mean, swapRB=pre.channel_order == "RGB", crop=False
        ),
        dtype=np.float32,
    )
    std = np.asarray(pre.std, dtype=np.float32)
    if np.any(std != 1.0):
        tensor /= std[None, :, None, None]
    # The padding is zero after normalisation, as if it had been the mean.
    tensor[:, :, h:, :] = 0.0
    tensor[:, :, :, w:] = 0.0
    return Letterbox(tensor, scale, reduction)


def _split_rows(outputs: list[np.ndarray], count: int) -> list[list[np.ndarray]]:
    return [[np.asarray(o)[i : i + 1] for o in outputs] for i in range(count)]


def _nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    landmarks: np.ndarray,
    config: DetectorConfig,
    letterbox: Letterbox,
) -> list[Detection]:
    keep_mask = (scores >= config.score_threshold) & (boxes[:, 2] - boxes[:, 0] >= 1.0)
    boxes, scores, landmarks = boxes[keep_mask], scores[keep_mask], landmarks[keep_mask]
    if len(scores) == 0:
        return []
    xywh = np.column_stack((boxes[:, :2], boxes[:, 2:] - boxes[:, :2]))
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), config.score_threshold, config.nms_iou)
    out = [
        Detection(boxes[i].astype(np.float64), float(scores[i]), landmarks[i].astype(np.float64))
        for i in np.asarray(kept, dtype=np.int64).ravel()
    ]
    return [d for d in out if d.width * letterbox.reduction >= config.min_face]


class RetinaFaceDetector:
    """RetinaFace with priors (16, 32) / (64, 128) / (256, 512) at strides 8 / 16 / 32."""

    _steps = (8, 16, 32)
    _min_sizes = ((16, 32), (64, 128), (256, 512))
    _variance = (0.1, 0.2)

    def __init__(self, model: OnnxModel, pre: Preprocess, config: DetectorConfig) -> None:
        self.model = model
        self.pre = pre
        self.config = config
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    def _priors_for(self, height: int, width: int) -> np.ndarray:
        cached = self._priors.get((height, width))
        if cached is not None:
            return cached
        parts = []
        for step, sizes in zip(self._steps, self._min_sizes, strict=True):
            rows, cols = math.ceil(height / step), math.ceil(width / step)
            ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
            centers = np.column_stack(((xs.ravel() + 0.5) * step, (ys.ravel() + 0.5) * step))
            for_cell = []
            for size in sizes:
                wh = np.full_like(centers, float(size))
                for_cell.append(np.hstack((centers, wh)))
            parts.append(np.stack(for_cell, axis=1).reshape(-1, 4))
        priors = np.concatenate(parts).astype(np.float32)
        self._priors[(height, width)] = priors
        return priors

    batchable = True

    def prepare(self, image: np.ndarray, reduction: int = 1) -> Letterbox:
        return _letterbox(image, self.config.max_side, self.pre, reduction)

    def run(self, tensors: np.ndarray) -> list[list[np.ndarray]]:
        return _split_rows(self.model.run(tensors), len(tensors))

    def decode(self, outputs: list[np.ndarray], letterbox: Letterbox) -> list[Detection]:
        _, _, height, width = letterbox.tensor.shape
        loc, conf, landms = (o[0] for o in outputs)
        # Only anchors above the threshold can become faces; decoding all of them (tens
        # of thousands at the detector's full input) costs more than the rest together.
        candidates = np.flatnonzero(conf[:, 1] >= self.config.score_threshold)
        loc, conf, landms = loc[candidates], conf[candidates], landms[candidates]
        priors = self._priors_for(height, width)[candidates]
        centers, sizes = priors[:, :2], priors[:, 2:]
        v_center, v_size = self._variance
        box_centers = centers + loc[:, :2] * v_center * sizes
        box_sizes = sizes * np.exp(loc[:, 2:] * v_size)
        boxes = np.hstack((box_centers - box_sizes / 2, box_centers + box_sizes / 2))
        points = centers[:, None, :] + landms.reshape(-1, 5, 2) * v_center * sizes[:, None, :]
        scale = letterbox.scale
        return _nms(boxes / scale, conf[:, 1], points / scale, self.config, letterbox)


class YuNetDetector:
    """YuNet 2023mar: anchor-free, per-cell class x objectness scores at strides 8/16/32."""

    _steps = (8, 16, 32)

    def __init__(self, model: OnnxModel, pre: Preprocess, config: DetectorConfig) -> None:
        self.model = model
        self.pre = pre
        self.config = config
        names = [o.name for o in model.session.get_outputs()]
        self._index = {name: i for i, name in enumerate(names)}

    # The graph's output Reshapes hard-code a batch of one.
    batchable = False

    def prepare(self, image: np.ndarray, reduction: int = 1) -> Letterbox:
        return _letterbox(image, self.config.max_side, self.pre, reduction)

    def run(self, tensors: np.ndarray) -> list[list[np.ndarray]]:
        return [list(self.model.run(tensors[i : i + 1])) for i in range(len(tensors))]

    def decode(self, outputs: list[np.ndarray], letterbox: Letterbox) -> list[Detection]:
        width = letterbox.tensor.shape[3]
        all_boxes, all_scores, all_points = [], [], []
        for step in self._steps:
            cls = np.asarray(outputs[self._index[f"cls_{step}"]])[0, :, 0]
            obj = np.asarray(outputs[self._index[f"obj_{step}"]])[0, :, 0]
            reg = np.asarray(outputs[self._index[f"bbox_{step}"]])[0]
            kps = np.asarray(outputs[self._index[f"kps_{step}"]])[0].reshape(-1, 5, 2)
            cols = width // step
            cells = np.arange(len(cls))
            grid = np.column_stack((cells % cols, cells // cols)).astype(np.float32)
            centers = (grid + reg[:, :2]) * step
            sizes = np.exp(reg[:, 2:]) * step
            all_boxes.append(np.hstack((centers - sizes / 2, centers + sizes / 2)))
            all_scores.append(np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1)))
            all_points.append((kps + grid[:, None, :]) * step)
        return _nms(
            np.concatenate(all_boxes) / letterbox.scale,
            np.concatenate(all_scores),
            np.concatenate(all_points) / letterbox.scale,
            self.config,
            letterbox,
        )
