"""The extractor on photos of phone and camera size: reduced decoding must not change
what it finds, where, or how the faces match."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from extractor.decode import decode_image
from extractor.pipeline import FaceExtractor
from extractor.selection import FaceSelection
from facegate.contract import DEFAULT_THRESHOLD

PROMINENT = FaceSelection.PROMINENT
HIGH_RESOLUTION_IDENTITIES = (
    "compreface/person_A",
    "face_recognition/obama",
    "face_recognition/biden",
    "face_recognition/alex_lacamoire",
    "face_recognition/kit_harington",
    "face_recognition/rose_leslie",
)


def test_high_resolution_identities_match_and_do_not_mix(
    extractor: FaceExtractor, faces: Path
) -> None:
    templates = []
    for folder in HIGH_RESOLUTION_IDENTITIES:
        for path in sorted((faces / "test" / folder).glob("*.jp*g")):
            face = extractor.extract(path.read_bytes(), selection=PROMINENT).faces[0]
            templates.append((folder, path.name, face.embedding))
    assert len(templates) >= 15
    for (id_a, name_a, a), (id_b, name_b, b) in itertools.combinations(templates, 2):
        assert a is not None
        assert b is not None
        score = extractor.compare(a, b)[1]
        if id_a == id_b:
            assert score >= DEFAULT_THRESHOLD, (name_a, name_b, score)
        else:
            assert score < DEFAULT_THRESHOLD, (name_a, name_b, score)


def _lfw_photo(faces: Path) -> Path:
    return sorted((faces / "lfw-dev").glob("*/*.jpg"))[0]


def test_a_36_megapixel_rotated_photo_gives_the_face_of_its_source(
    extractor: FaceExtractor, faces: Path
) -> None:
    path = _lfw_photo(faces)
    small = extractor.extract(path.read_bytes(), selection=PROMINENT).faces[0]
    factor = 24  # 250 px -> 6000 px: 36 MP
    pixels = decode_image(path.read_bytes()).pixels
    large = cv2.resize(pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    stored = Image.fromarray(large[:, :, ::-1]).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the transpose
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=90, exif=exif.tobytes())
    extraction = extractor.extract(out.getvalue(), selection=PROMINENT)
    assert (extraction.width, extraction.height) == (large.shape[1], large.shape[0])
    face = extraction.faces[0]
    expected = (
        np.array(
            [
                small.attributes.face_area.left,
                small.attributes.face_area.top,
                small.attributes.face_area.right,
                small.attributes.face_area.bottom,
            ],
            float,
        )
        * factor
    )
    box = face.attributes.face_area
    found = np.array([box.left, box.top, box.right, box.bottom], float)
    # The detector saw the source at 250 px and the large photo at 640: its boxes differ
    # by a few per cent of the face; a mapping error would be off by thousands of pixels.
    assert np.abs(found - expected).max() < 0.06 * (expected[2] - expected[0]), (found, expected)
    assert small.embedding is not None
    assert face.embedding is not None
    assert float(np.dot(small.embedding, face.embedding)) > 0.95


def test_a_small_face_in_a_large_photo_is_read_at_full_scale(
    extractor: FaceExtractor, faces: Path
) -> None:
    path = _lfw_photo(faces)
    canvas = np.full((1500, 2000, 3), 128, np.uint8)
    canvas[600:850, 900:1150] = decode_image(path.read_bytes()).pixels
    ok, jpeg = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    decoded = decode_image(jpeg.tobytes()).pixels
    ok, png = cv2.imencode(".png", decoded)  # the same pixels, decodable only at full scale
    assert ok
    scaled = extractor.extract(jpeg.tobytes(), selection=PROMINENT).faces[0]
    full = extractor.extract(png.tobytes(), selection=PROMINENT).faces[0]
    box = scaled.attributes.face_area
    assert 900 <= box.left < box.right <= 1150
    assert 600 <= box.top < box.bottom <= 850
    assert scaled.embedding is not None
    assert full.embedding is not None
    assert float(np.dot(scaled.embedding, full.embedding)) > 0.99
    assert abs(scaled.attributes.face_quality_score - full.attributes.face_quality_score) < 0.02
