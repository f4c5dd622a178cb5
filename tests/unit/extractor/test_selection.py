"""Face selection rules on hand-placed boxes: which face a probe and an enrolment take."""

from __future__ import annotations

import numpy as np
import pytest

from extractor.detect import Detection
from extractor.selection import COMPARABLE_WIDTH_RATIO, FaceSelection, select_faces
from facegate.errors import ErrorType, FacegateError

SIZE = 1000  # a 1000 x 1000 photo, centre (500, 500)


def _face(centre_x: float, centre_y: float, width: float) -> Detection:
    half = width / 2
    box = np.array([centre_x - half, centre_y - half, centre_x + half, centre_y + half])
    return Detection(box=box, score=0.99, landmarks=np.zeros((5, 2)))


def _select(faces: list[Detection], selection: FaceSelection) -> list[Detection]:
    ordered = sorted(faces, key=lambda d: d.area, reverse=True)
    return select_faces(ordered, selection, 10, width=SIZE, height=SIZE)


def test_the_largest_face_wins_over_smaller_central_faces() -> None:
    subject = _face(150, 200, 200)
    bystander = _face(500, 500, 200 * COMPARABLE_WIDTH_RATIO - 1)
    for selection in (FaceSelection.PROMINENT, FaceSelection.SINGLE):
        assert _select([bystander, subject], selection) == [subject]


def test_among_comparable_faces_the_probe_takes_the_one_nearest_the_centre() -> None:
    edge = _face(100, 100, 200)
    centre = _face(520, 480, 200 * COMPARABLE_WIDTH_RATIO)
    assert _select([edge, centre], FaceSelection.PROMINENT) == [centre]
    # Moved off centre, beyond the edge face, it loses.
    far = _face(950, 950, 200 * COMPARABLE_WIDTH_RATIO)
    assert _select([edge, far], FaceSelection.PROMINENT) == [edge]


def test_an_enrolment_with_a_comparable_face_is_refused() -> None:
    edge = _face(100, 100, 200)
    centre = _face(500, 500, 200 * COMPARABLE_WIDTH_RATIO)
    with pytest.raises(FacegateError) as caught:
        _select([edge, centre], FaceSelection.SINGLE)
    assert caught.value.error_type is ErrorType.MULTIPLE_FACES
    assert "2 faces of comparable size" in caught.value.message


def test_an_enrolment_counts_only_comparable_faces() -> None:
    subject = _face(500, 500, 200)
    rival = _face(800, 500, 190)
    bystanders = [_face(100 + 60 * i, 900, 100) for i in range(5)]
    with pytest.raises(FacegateError) as caught:
        _select([subject, rival, *bystanders], FaceSelection.SINGLE)
    assert caught.value.message.startswith("2 faces of comparable size")
    assert _select([subject, *bystanders], FaceSelection.SINGLE) == [subject]


def test_no_face_is_no_face_for_every_single_face_selection() -> None:
    for selection in (FaceSelection.PROMINENT, FaceSelection.SINGLE):
        with pytest.raises(FacegateError) as caught:
            _select([], selection)
        assert caught.value.error_type is ErrorType.NO_FACE
    assert _select([], FaceSelection.ALL) == []


def test_all_keeps_the_detector_order_up_to_the_limit() -> None:
    faces = [_face(100 * i + 50, 500, 90 - i) for i in range(8)]
    kept = select_faces(faces, FaceSelection.ALL, 3, width=SIZE, height=SIZE)
    assert kept == faces[:3]
