"""Five-point alignment: Umeyama similarity transform and the 112 x 112 ArcFace crop."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from extractor.align import (
    ARCFACE_TEMPLATE,
    CROP_SIZE,
    align_face,
    face_reduction,
    similarity_transform,
)

# Centroid measurements below are good to about 0.03 crop pixels.
LANDMARK_TOLERANCE_PX = 0.1


def rotation(degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def place(
    points: np.ndarray, scale: float, degrees: float, offset: tuple[float, float]
) -> np.ndarray:
    result: np.ndarray = scale * points @ rotation(degrees).T + np.asarray(offset)
    return result


def blob_image(landmarks: np.ndarray, sigma: float, margin: float) -> np.ndarray:
    """A black BGR image with one Gaussian blob (peak 255) centred on each landmark."""
    height = math.ceil(landmarks[:, 1].max() + margin)
    width = math.ceil(landmarks[:, 0].max() + margin)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    total = np.zeros((height, width), np.float32)
    for x, y in landmarks:
        total += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2.0 * sigma * sigma))
    grey = np.round(np.clip(total, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def blob_centres(crop: np.ndarray, near: np.ndarray, radius: int = 8) -> np.ndarray:
    """Intensity centroid of the crop around each expected position."""
    grey = crop[:, :, 0].astype(np.float64)
    centres = []
    for x, y in near:
        x0, y0 = round(x) - radius, round(y) - radius
        window = grey[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
        ys, xs = np.mgrid[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]]
        centres.append(((window * xs).sum() / window.sum(), (window * ys).sum() / window.sum()))
    return np.array(centres)


def smooth_image(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    b = 128 + 100 * np.sin(xs / 37.0) * np.cos(ys / 53.0)
    g = 128 + 90 * np.sin((xs + ys) / 71.0)
    r = 128 + 80 * np.cos(xs / 29.0 - ys / 41.0)
    image: np.ndarray = np.clip(np.stack([b, g, r], axis=2), 0, 255).astype(np.uint8)
    return image


@pytest.mark.parametrize(
    ("scale", "degrees", "offset"),
    [(1.0, 0.0, (0.0, 0.0)), (2.5, 17.0, (40.0, -12.0)), (0.3, -120.0, (500.0, 250.0))],
)
def test_similarity_transform_recovers_a_known_transform(
    scale: float, degrees: float, offset: tuple[float, float]
) -> None:
    rng = np.random.default_rng(11)
    src = rng.uniform(0, 200, (5, 2))
    dst = place(src, scale, degrees, offset)
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation(degrees), atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], offset, atol=1e-7)
    mapped = src @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, dst, atol=1e-7)


def test_similarity_transform_is_least_squares_under_noise() -> None:
    rng = np.random.default_rng(12)
    src = rng.uniform(0, 100, (50, 2))
    dst = place(src, 1.7, 33.0, (5.0, 9.0)) + rng.normal(0, 0.5, (50, 2))
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], 1.7 * rotation(33.0), atol=0.02)
    residual = np.linalg.norm(src @ matrix[:, :2].T + matrix[:, 2] - dst, axis=1).mean()
    # Any perturbation of the fit does worse.
    for delta in (np.array([[0.01, 0, 0], [0, 0.01, 0]]), np.array([[0, 0, 0.3], [0, 0, 0]])):
        worse = matrix + delta
        other = np.linalg.norm(src @ worse[:, :2].T + worse[:, 2] - dst, axis=1).mean()
        assert other > residual


def test_similarity_transform_never_reflects() -> None:
    mirrored = ARCFACE_TEMPLATE * np.array([-1.0, 1.0])
    matrix = similarity_transform(mirrored, ARCFACE_TEMPLATE)
    assert np.linalg.det(matrix[:, :2]) > 0


@pytest.mark.parametrize(
    ("face_scale", "degrees"),
    [(1.0, 0.0), (1.6, 12.0), (0.7, -25.0)],
    ids=["identity", "bigger-rotated", "smaller-rotated"],
)
def test_align_face_puts_landmarks_on_the_template(face_scale: float, degrees: float) -> None:
    """Direct path (the face is at most 2x the crop's scale)."""
    landmarks = place(ARCFACE_TEMPLATE, face_scale, degrees, (60.0, 80.0))
    image = blob_image(landmarks, sigma=2.5 * face_scale, margin=60.0 * face_scale)
    crop = align_face(image, landmarks)
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    assert crop.dtype == np.uint8
    error = blob_centres(crop, ARCFACE_TEMPLATE) - ARCFACE_TEMPLATE
    assert np.abs(error).max() < LANDMARK_TOLERANCE_PX, error


@pytest.mark.parametrize("face_scale", [4.0, 8.0])
def test_large_face_landmarks_land_on_the_template(face_scale: float) -> None:
    """Pre-scaled path (the face is more than 2x the crop's scale): same accuracy required."""
    landmarks = place(ARCFACE_TEMPLATE, face_scale, 10.0, (50.0, 60.0))
    image = blob_image(landmarks, sigma=2.5 * face_scale, margin=60.0 * face_scale)
    crop = align_face(image, landmarks)
    error = blob_centres(crop, ARCFACE_TEMPLATE) - ARCFACE_TEMPLATE
    assert np.abs(error).max() < LANDMARK_TOLERANCE_PX, f"mean offset {error.mean(axis=0)}"


def test_large_face_prescale_matches_direct_warp_on_a_smooth_image() -> None:
    face_scale = 6.0
    landmarks = place(ARCFACE_TEMPLATE, face_scale, -8.0, (100.0, 90.0))
    image = smooth_image(1000, 900)
    crop = align_face(image, landmarks).astype(np.float64)
    direct = cv2.warpAffine(
        image,
        similarity_transform(landmarks, ARCFACE_TEMPLATE),
        (CROP_SIZE, CROP_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float64)
    assert np.abs(crop - direct).mean() < 1.0


def test_large_face_prescale_removes_aliasing() -> None:
    """A one-pixel checkerboard seen at 1/6 scale must average to grey, not alias."""
    face_scale = 6.0
    landmarks = place(ARCFACE_TEMPLATE, face_scale, 7.0, (30.0, 30.0))
    ys, xs = np.mgrid[0:800, 0:760]
    image = np.repeat((((xs + ys) % 2) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    crop = align_face(image, landmarks).astype(np.float64)
    direct = cv2.warpAffine(
        image, similarity_transform(landmarks, ARCFACE_TEMPLATE), (CROP_SIZE, CROP_SIZE)
    ).astype(np.float64)
    assert abs(crop.mean() - 127.5) < 10
    assert crop.std() < 20
    assert direct.std() > 2 * crop.std()


def test_align_face_reads_a_face_near_the_image_border() -> None:
    landmarks = place(ARCFACE_TEMPLATE, 3.0, 0.0, (-60.0, -90.0))
    image = smooth_image(300, 300)
    crop = align_face(image, landmarks)
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)


def test_face_reduction_keeps_full_detail() -> None:
    # Landmarks of a face exactly 4x the crop: crop scale 0.25, full detail up to 1/2.
    landmarks = ARCFACE_TEMPLATE * 4.0
    assert face_reduction(landmarks, (1, 2, 4, 8), 8) == 2
    assert face_reduction(landmarks * 4.0, (1, 2, 4, 8), 8) == 8
    assert face_reduction(landmarks * 4.0, (1, 2, 4, 8), 4) == 4  # never coarser than asked
    assert face_reduction(landmarks * 4.0, (1,), 8) == 1  # what the format can decode
    assert face_reduction(ARCFACE_TEMPLATE, (1, 2, 4, 8), 8) == 1  # too small at any scale
