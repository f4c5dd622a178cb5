"""Which face of a photo a request is about.

A probe (search, verify) is about its most prominent face, whatever else the photo
holds; an enrolment must also be unambiguous, because enrolling a bystander puts the
wrong person in the gallery for good. The rules and the measurements that set
:data:`COMPARABLE_WIDTH_RATIO` are in docs/attributes.md.
"""

from __future__ import annotations

import enum
import math

from extractor.detect import Detection
from facegate.errors import ErrorType, FacegateError

# Two faces are comparable in size when the narrower is at least this share of the
# wider one's width: either could be the photo's subject. Chosen on lfw-dev and the
# group photos of the test set (docs/attributes.md has the table): the largest value
# with no wrong choice on lfw-dev (where the labelled person is the centred face) that
# also refuses to enrol from every group photo.
COMPARABLE_WIDTH_RATIO = 0.8


class FaceSelection(enum.Enum):
    ALL = "all"
    """Up to ``limit`` faces, largest first."""
    SINGLE = "single"
    """Enrolment: the most prominent face, which no other face may rival in size (a
    comparable face is MultipleFaces); none is NoFace."""
    PROMINENT = "prominent"
    """Probes: the most prominent face, whatever else the photo holds; none is NoFace."""


def most_prominent(
    detections: list[Detection],
    *,
    width: int,
    height: int,
    comparable_ratio: float = COMPARABLE_WIDTH_RATIO,
) -> Detection:
    """The largest face, or among faces comparable in size to it, the one whose centre
    is nearest the image's centre (a photo is framed on its subject)."""
    widest = max(d.width for d in detections)
    rivals = [d for d in detections if d.width >= comparable_ratio * widest]

    def off_centre(d: Detection) -> float:
        x1, y1, x2, y2 = (float(v) for v in d.box)
        return math.hypot((x1 + x2 - width) / 2, (y1 + y2 - height) / 2)

    return min(rivals, key=off_centre)


def select_faces(
    detections: list[Detection],
    selection: FaceSelection,
    limit: int,
    *,
    width: int,
    height: int,
    comparable_ratio: float = COMPARABLE_WIDTH_RATIO,
) -> list[Detection]:
    """The faces a request keeps, from ``detections`` in the image's ``width`` x
    ``height`` pixels ordered largest first. ``comparable_ratio`` is there for the
    benchmark that chose :data:`COMPARABLE_WIDTH_RATIO` (bench/face_selection.py)."""
    if selection is FaceSelection.ALL:
        return detections[:limit]
    if not detections:
        raise FacegateError(ErrorType.NO_FACE, "No face was found in the provided image.")
    chosen = most_prominent(
        detections, width=width, height=height, comparable_ratio=comparable_ratio
    )
    if selection is FaceSelection.SINGLE:
        comparable = [d for d in detections if d.width >= comparable_ratio * chosen.width]
        if len(comparable) > 1:
            raise FacegateError(
                ErrorType.MULTIPLE_FACES,
                f"{len(comparable)} faces of comparable size were found in the image, so it "
                "is not clear whose it is. Only one is permitted for this type of request: "
                f"other faces must be narrower than {comparable_ratio:g} times the "
                "subject's face.",
            )
    return [chosen]
