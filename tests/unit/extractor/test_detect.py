"""The detector's input tensor and its face-size floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extractor.decode import open_image
from extractor.detect import (
    STRIDE_MULTIPLE,
    DetectorConfig,
    RetinaFaceDetector,
    _letterbox,
    detect,
)
from extractor.models.catalog import Preprocess
from extractor.pipeline import FaceExtractor


@pytest.mark.parametrize(
    "pre",
    [
        Preprocess("BGR", (104.0, 117.0, 123.0), (1.0, 1.0, 1.0), None),
        Preprocess("RGB", (127.5, 120.0, 110.0), (127.5, 128.0, 60.0), None),
    ],
)
@pytest.mark.parametrize("shape", [(250, 250), (333, 517), (700, 1300)])
def test_letterbox_is_the_normalised_padded_image(pre: Preprocess, shape: tuple[int, int]) -> None:
    image = np.random.default_rng(7).integers(0, 256, (*shape, 3), dtype=np.uint8)
    letterbox = _letterbox(image, 640, pre, 1)
    scale = min(1.0, 640 / max(shape))
    assert letterbox.scale == scale
    _, channels, height, width = letterbox.tensor.shape
    assert channels == 3
    assert height % STRIDE_MULTIPLE == 0
    assert width % STRIDE_MULTIPLE == 0
    h, w = round(shape[0] * scale), round(shape[1] * scale)
    assert (height - h, width - w) < (STRIDE_MULTIPLE, STRIDE_MULTIPLE)
    assert not letterbox.tensor[0, :, h:, :].any()
    assert not letterbox.tensor[0, :, :, w:].any()
    if scale == 1.0:
        pixels = image if pre.channel_order == "BGR" else image[:, :, ::-1]
        expected = (pixels - np.asarray(pre.mean)) / np.asarray(pre.std)
        found = letterbox.tensor[0, :, :h, :w].transpose(1, 2, 0)
        assert np.abs(found - expected).max() < 1e-4


def test_min_face_is_in_original_pixels(extractor: FaceExtractor, faces: Path) -> None:
    shipped = extractor.detector
    assert isinstance(shipped, RetinaFaceDetector)
    view = open_image((faces / "test/compreface/person_A/001_A.jpg").read_bytes()).decode(8)
    (face,) = detect(shipped, view.pixels)
    # A floor of four times the face's width in the 1/8 image: twice its original width
    # is above it, so the face is kept only when the detector knows the scale.
    strict = RetinaFaceDetector(shipped.model, shipped.pre, DetectorConfig(min_face=4 * face.width))
    for reduction, expected in ((8, 1), (1, 0)):
        letterbox = strict.prepare(view.pixels, reduction)
        assert len(strict.decode(strict.run(letterbox.tensor)[0], letterbox)) == expected
