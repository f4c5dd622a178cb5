"""What the signs of facePan and faceTilt mean, read from the face itself.

The nose tip stands out of the face, so when the head turns or nods it moves further
than the eyes and the mouth: towards the image's right of the eyes when the face points
that way, and down towards the mouth when the subject looks down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from extractor.decode import decode_image
from extractor.detect import detect
from extractor.pipeline import FaceExtractor
from extractor.selection import FaceSelection


def test_pan_and_tilt_follow_the_nose(extractor: FaceExtractor, faces: Path) -> None:
    sideways, down, pans, tilts = [], [], [], []
    for path in sorted((faces / "lfw-dev").glob("*/*.jpg"))[:120]:
        detections = detect(extractor.detector, decode_image(path.read_bytes()).pixels)
        if len(detections) != 1:  # the attributes below must be this face's
            continue
        marks = detections[0].landmarks
        eyes, mouth = (marks[0] + marks[1]) / 2, (marks[3] + marks[4]) / 2
        sideways.append((marks[2][0] - eyes[0]) / np.linalg.norm(marks[1] - marks[0]))
        down.append((marks[2][1] - eyes[1]) / (mouth[1] - eyes[1]))
        face = extractor.extract(path.read_bytes(), selection=FaceSelection.PROMINENT).faces[0]
        pans.append(face.attributes.face_pan)
        tilts.append(face.attributes.face_tilt)
    assert len(pans) >= 80
    # Pointing towards the image's right (nose right of the eyes) is a negative pan.
    assert np.corrcoef(sideways, pans)[0, 1] < -0.6
    # Looking down (nose tip nearer the mouth) is a positive tilt.
    assert np.corrcoef(down, tilts)[0, 1] > 0.5
