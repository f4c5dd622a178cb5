"""The extractor end to end on real photos with the shipped models."""

from __future__ import annotations

import ast
import io
import itertools
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from extractor.decode import decode_image
from extractor.pipeline import Face, FaceExtractor, poor_quality
from extractor.selection import FaceSelection
from facegate.contract import DEFAULT_THRESHOLD
from facegate.errors import ErrorType, FacegateError
from facegate.faces import Box

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes()).pixels


def _encode(pixels: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buffer = cv2.imencode(ext, pixels)
    assert ok
    return buffer.tobytes()


def _center(box: Box) -> tuple[float, float]:
    return (box.left + box.right) / 2, (box.top + box.bottom) / 2


def test_exact_face_counts_on_compreface_group_photos(
    extractor: FaceExtractor, faces: Path
) -> None:
    for path in _images(faces / "test/compreface/_multi"):
        expected = int(path.stem.split("_")[-1])
        found = extractor.extract(path.read_bytes(), limit=20).faces
        assert len(found) == expected, path.name


def _dlib_boxes(faces: Path) -> dict[str, list[Box]]:
    boxes: dict[str, list[Box]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(faces / "test/dlib/_meta" / name).getroot().iter("image"):
            entries = boxes.setdefault(Path(image.get("file", "")).name, [])
            for b in image.iter("box"):
                left, top = int(b.get("left", 0)), int(b.get("top", 0))
                width, height = int(b.get("width", 0)), int(b.get("height", 0))
                entries.append(Box(left, top, left + width, top + height))
    return boxes


def _inside(point: tuple[float, float], box: Box, slack: float = 0.25) -> bool:
    dx, dy = slack * (box.right - box.left), slack * (box.bottom - box.top)
    return (
        box.left - dx <= point[0] <= box.right + dx and box.top - dy <= point[1] <= box.bottom + dy
    )


def test_dlib_group_photos_match_the_boxed_ground_truth(
    extractor: FaceExtractor, faces: Path
) -> None:
    truth = _dlib_boxes(faces)
    checked = 0
    for path in _images(faces / "test/dlib/_multi"):
        if path.name not in truth:
            continue
        found = [
            f.attributes.face_area for f in extractor.extract(path.read_bytes(), limit=20).faces
        ]
        centers = [_center(b) for b in found]
        for box in truth[path.name]:
            assert any(_inside(c, box) for c in centers), f"{path.name}: missed face at {box}"
        for box, center in zip(found, centers, strict=True):
            assert any(_inside(center, t) for t in truth[path.name]), f"{path.name}: extra {box}"
        assert len(found) == len(truth[path.name]), path.name
        checked += 1
    assert checked == 9


def test_a_crowd_is_capped_at_the_limit(extractor: FaceExtractor, faces: Path) -> None:
    crowd = (faces / "test/dlib/_multi/bald_guys.jpg").read_bytes()
    assert len(extractor.extract(crowd, limit=20).faces) == 20
    assert len(extractor.extract(crowd).faces) == 10  # the NEC default limit
    boxes = [f.attributes.face_area for f in extractor.extract(crowd, limit=20).faces]
    areas = [(b.right - b.left) * (b.bottom - b.top) for b in boxes]
    assert areas == sorted(areas, reverse=True)


def test_no_face_in_any_noface_photo(extractor: FaceExtractor, faces: Path) -> None:
    paths = sorted((faces / "test").glob("*/_noface/*"))
    assert len(paths) >= 9
    for path in paths:
        assert extractor.extract(path.read_bytes(), limit=20).faces == [], path.name
        with pytest.raises(FacegateError) as caught:
            extractor.extract(path.read_bytes(), selection=FaceSelection.SINGLE)
        assert caught.value.error_type is ErrorType.NO_FACE


def _identity_templates(extractor: FaceExtractor, root: Path) -> list[tuple[str, str, np.ndarray]]:
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for path in _images(folder):
            face = extractor.extract(path.read_bytes(), selection=FaceSelection.PROMINENT).faces[0]
            assert face.embedding is not None
            out.append((folder.name, path.name, face.embedding))
    return out


@pytest.mark.parametrize("dataset", ["face_recognition", "compreface", "dlib_johns", "faceapijs"])
def test_same_identity_scores_above_and_others_below_the_threshold(
    extractor: FaceExtractor, faces: Path, dataset: str
) -> None:
    templates = _identity_templates(extractor, faces / "test" / dataset)
    assert len({t[0] for t in templates}) >= 3
    for (id_a, name_a, a), (id_b, name_b, b) in itertools.combinations(templates, 2):
        _, score = extractor.compare(a, b)
        if id_a == id_b:
            assert score > DEFAULT_THRESHOLD, f"{name_a} vs {name_b}: {score}"
        else:
            assert score < DEFAULT_THRESHOLD, f"{name_a} vs {name_b}: {score}"


def test_mirroring_flips_the_sign_of_pan(extractor: FaceExtractor, faces: Path) -> None:
    turned = []
    for path in sorted((faces / "test").glob("*/_multi/*.jpg")):
        pixels = _read(path)
        for face in extractor.extract(_encode(pixels), limit=20).faces:
            if abs(face.attributes.face_pan) > 15:
                turned.append((pixels, face))
    assert len(turned) >= 5
    for pixels, face in turned[:10]:
        mirrored = extractor.extract(_encode(pixels[:, ::-1].copy()), limit=20).faces
        width = pixels.shape[1]
        area = face.attributes.face_area
        mirror_center = (width - (area.left + area.right) / 2, (area.top + area.bottom) / 2)
        twin = min(
            mirrored,
            key=lambda f: np.hypot(*np.subtract(_center(f.attributes.face_area), mirror_center)),
        )
        assert np.sign(twin.attributes.face_pan) == -np.sign(face.attributes.face_pan)
        assert abs(twin.attributes.face_pan + face.attributes.face_pan) < 10


@pytest.mark.parametrize("angle", [-30, -15, 15, 30])
def test_rotating_the_photo_changes_roll_by_the_angle(
    extractor: FaceExtractor, faces: Path, angle: int
) -> None:
    pixels = _read(faces / "test/face_recognition/obama/obama.jpg")
    upright = extractor.extract(_encode(pixels), selection=FaceSelection.PROMINENT).faces[0]
    height, width = pixels.shape[:2]
    # cv2 rotates counter-clockwise on screen for positive angles.
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    rotated = cv2.warpAffine(pixels, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    turned = extractor.extract(_encode(rotated), selection=FaceSelection.PROMINENT).faces[0]
    change = turned.attributes.face_roll - upright.attributes.face_roll
    assert abs(change - angle) < 5, (angle, change)


def _annotated_noses(faces: Path) -> dict[str, list[tuple[int, int]]]:
    """Nose points from compreface's annotations.py, read without running it."""
    tree = ast.parse((faces / "test/compreface/_meta/annotations.py").read_text())
    noses: dict[str, list[tuple[int, int]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Row":
            name = ast.literal_eval(node.args[0])
            noses[name] = [tuple(p) for p in ast.literal_eval(node.args[1])]
    return noses


def test_large_photos_report_original_pixel_coordinates(
    extractor: FaceExtractor, faces: Path
) -> None:
    noses = _annotated_noses(faces)
    for path in _images(faces / "test/compreface/person_A"):
        extraction = extractor.extract(path.read_bytes(), selection=FaceSelection.PROMINENT)
        assert max(extraction.width, extraction.height) > 3000
        area = extraction.faces[0].attributes.face_area
        (nose,) = noses[path.name]
        assert area.left < nose[0] < area.right, path.name
        assert area.top < nose[1] < area.bottom, path.name


def test_exif_orientation_is_applied(extractor: FaceExtractor, faces: Path) -> None:
    path = faces / "test/face_recognition/obama/obama.jpg"
    upright = extractor.extract(path.read_bytes(), selection=FaceSelection.PROMINENT)
    image = Image.open(path).transpose(Image.Transpose.ROTATE_90)  # stored on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the transpose above
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    restored = extractor.extract(buffer.getvalue(), selection=FaceSelection.PROMINENT)
    assert (restored.width, restored.height) == (upright.width, upright.height)
    a, b = upright.faces[0].attributes.face_area, restored.faces[0].attributes.face_area
    assert max(abs(a.left - b.left), abs(a.top - b.top), abs(a.right - b.right)) <= 4


def test_eye_centers_follow_the_nec_convention(extractor: FaceExtractor, faces: Path) -> None:
    path = faces / "test/face_recognition/obama/obama.jpg"
    face = extractor.extract(path.read_bytes(), selection=FaceSelection.PROMINENT).faces[0]
    # The subject's right eye is on the image's left for an upright, frontal face.
    assert face.attributes.right_eye_center.x < face.attributes.left_eye_center.x
    area = face.attributes.face_area
    head = face.attributes.head_area
    assert head.left <= area.left
    assert head.top <= area.top
    assert head.right >= area.right
    assert head.bottom >= area.bottom


def test_templates_are_unit_vectors_of_the_model(extractor: FaceExtractor, faces: Path) -> None:
    data = (faces / "test/compreface/_multi/016_8.jpg").read_bytes()
    extraction = extractor.extract(data, limit=20)
    assert extraction.model_id == extractor.model_id
    for face in extraction.faces:
        assert face.embedding is not None
        assert face.embedding.shape == (extractor.embedding_dim,)
        assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-4
        assert 0.0 <= face.attributes.face_quality_score <= 1.0
        assert 0.0 <= face.attributes.frontal_face_score <= 1.0
    assert extractor.extract(data, with_templates=False).faces[0].embedding is None


def _group_photos(faces: Path) -> list[Path]:
    return sorted(p for p in (faces / "test").glob("*/_multi/*") if p.suffix in IMAGE_SUFFIXES)


def test_a_probe_takes_one_of_the_photos_faces_and_reports_it(
    extractor: FaceExtractor, faces: Path
) -> None:
    groups = _group_photos(faces)
    assert len(groups) >= 20
    for path in groups:
        data = path.read_bytes()
        everyone = extractor.extract(data, limit=20).faces
        probe = extractor.extract(data, selection=FaceSelection.PROMINENT).faces
        assert len(probe) == 1, path.name
        same = [f for f in everyone if f.attributes.face_area == probe[0].attributes.face_area]
        assert len(same) == 1, path.name
        # The template is the reported face's, not another one's.
        assert same[0].embedding is not None
        assert probe[0].embedding is not None
        assert float(np.dot(same[0].embedding, probe[0].embedding)) > 0.999, path.name
        widest = max(f.attributes.face_area.right - f.attributes.face_area.left for f in everyone)
        chosen = probe[0].attributes.face_area
        assert chosen.right - chosen.left >= 0.75 * widest, path.name


def test_every_group_photo_is_refused_for_enrolment(extractor: FaceExtractor, faces: Path) -> None:
    for path in _group_photos(faces):
        with pytest.raises(FacegateError) as caught:
            extractor.extract(path.read_bytes(), selection=FaceSelection.SINGLE)
        assert caught.value.error_type is ErrorType.MULTIPLE_FACES, path.name
        assert "comparable size" in caught.value.message


@pytest.mark.parametrize(
    ("photo", "centre"),
    [
        # Biden, nearer the centre than Obama, whose face is a little wider.
        ("test/face_recognition/_multi/obama_and_biden.jpg", (843, 513)),
        # The widest of five faces is at the edge; a comparable one is near the centre.
        ("test/compreface/_multi/000_5.jpg", (474, 305)),
        # lfw-dev labels the centred face; a bystander's face, cut by the frame, is wider.
        ("lfw-dev/Cheryl_Hines/Cheryl_Hines_0001.jpg", (119, 134)),
    ],
)
def test_among_comparable_faces_a_probe_takes_the_one_nearest_the_centre(
    extractor: FaceExtractor, faces: Path, photo: str, centre: tuple[int, int]
) -> None:
    data = (faces / photo).read_bytes()
    boxes = [f.attributes.face_area for f in extractor.extract(data, limit=20).faces]
    widest = max(boxes, key=lambda b: b.right - b.left)
    chosen = extractor.extract(data, selection=FaceSelection.PROMINENT).faces[0]
    x, y = _center(chosen.attributes.face_area)
    assert abs(x - centre[0]) <= 10, (x, y)
    assert abs(y - centre[1]) <= 10, (x, y)
    assert chosen.attributes.face_area != widest


def test_an_enrolment_ignores_a_bystander_but_not_a_rival(
    extractor: FaceExtractor, faces: Path
) -> None:
    # A second face 0.62 times the subject's width: a bystander (refused before the
    # rule was decided on data, when half the width made a rival).
    with_bystander = (faces / "lfw-dev/Alejandro_Toledo/Alejandro_Toledo_0003.jpg").read_bytes()
    everyone = extractor.extract(with_bystander, limit=20).faces
    assert len(everyone) == 2
    enrolled = extractor.extract(with_bystander, selection=FaceSelection.SINGLE).faces
    assert enrolled[0].attributes.face_area == everyone[0].attributes.face_area
    rival = (faces / "lfw-dev/Cheryl_Hines/Cheryl_Hines_0001.jpg").read_bytes()
    with pytest.raises(FacegateError) as caught:
        extractor.extract(rival, selection=FaceSelection.SINGLE)
    assert caught.value.error_type is ErrorType.MULTIPLE_FACES


def test_quality_refusals(extractor: FaceExtractor, faces: Path) -> None:
    portrait = (faces / "test/face_recognition/obama/obama.jpg").read_bytes()
    face = extractor.extract(portrait, selection=FaceSelection.SINGLE).faces[0]
    quality = face.attributes.face_quality_score
    passed = extractor.extract(portrait, selection=FaceSelection.SINGLE, min_quality=quality - 0.01)
    assert len(passed.faces) == 1
    with pytest.raises(FacegateError) as caught:
        extractor.extract(
            portrait, selection=FaceSelection.SINGLE, min_quality=min(quality + 0.01, 1.0)
        )
    assert caught.value.error_type is ErrorType.POOR_QUALITY
    assert f"{quality:.3f}" in caught.value.message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"limit": 21}, "limit"),
        ({"limit": -1}, "limit"),
        ({"min_quality": 0.5}, "single-face"),
        ({"min_quality": 1.5, "selection": FaceSelection.SINGLE}, "between 0 and 1"),
    ],
)
def test_bad_arguments_are_invalid_requests(
    extractor: FaceExtractor, faces: Path, kwargs: dict[str, object], fragment: str
) -> None:
    data = (faces / "test/face_recognition/obama/obama.jpg").read_bytes()
    with pytest.raises(FacegateError) as caught:
        extractor.extract(data, **kwargs)  # type: ignore[arg-type]
    assert caught.value.error_type is ErrorType.INVALID_REQUEST
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"", "empty"),
        (b"hello, this is not an image", "supported format"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ""),
    ],
)
def test_bad_images_are_invalid_requests(
    extractor: FaceExtractor, payload: bytes, fragment: str
) -> None:
    with pytest.raises(FacegateError) as caught:
        extractor.extract(payload)
    assert caught.value.error_type is ErrorType.INVALID_REQUEST
    assert fragment in caught.value.message


def test_truncated_photo_is_an_invalid_request(extractor: FaceExtractor, faces: Path) -> None:
    data = (faces / "test/face_recognition/obama/obama.jpg").read_bytes()
    with pytest.raises(FacegateError) as caught:
        extractor.extract(data[: len(data) // 2])
    assert caught.value.error_type is ErrorType.INVALID_REQUEST


def test_concurrent_requests_get_their_own_results(extractor: FaceExtractor, faces: Path) -> None:
    paths = [
        *_images(faces / "test/compreface/_multi"),
        *_images(faces / "test/face_recognition/obama"),
    ]
    datas = [p.read_bytes() for p in paths]
    sequential = [extractor.extract(d, limit=20).faces for d in datas]

    def run(index: int) -> list[Face]:
        return extractor.extract(datas[index % len(datas)], limit=20).faces

    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(run, range(3 * len(datas))))
    for index, result in enumerate(concurrent):
        expected = sequential[index % len(datas)]
        assert [f.attributes.face_area for f in result] == [
            f.attributes.face_area for f in expected
        ]
        for got, want in zip(result, expected, strict=True):
            assert got.embedding is not None
            assert want.embedding is not None
            assert float(np.dot(got.embedding, want.embedding)) > 0.999


@pytest.mark.parametrize(
    ("score", "minimum", "printed"),
    [
        (0.4499, 0.45, "0.4499"),
        (0.44996, 0.45, "0.44996"),
        (0.3, 0.45, "0.300"),
        (0.44949, 0.45, "0.449"),
        # A minimum sent over gRPC is a float32: 0.45 arrives as 0.449999988.
        (0.4499999, float(np.float32(0.45)), "0.4499999"),
    ],
)
def test_a_quality_refusal_prints_the_score_below_the_minimum(
    score: float, minimum: float, printed: str
) -> None:
    error = poor_quality(score, minimum)
    assert error.error_type is ErrorType.POOR_QUALITY
    assert error.message == f"The face quality score {printed} is below the minimum 0.45."
