"""Seeded photo degradations, to teach the quality model what bad captures look like.

lfw-dev holds press photos that are nearly all easy to recognise; a quality model fitted
on them alone never sees a face it cannot read. Each degradation mimics a real capture
fault at a random strength: too few pixels on the face, defocus, heavy compression,
underexposure, sensor noise, and sunglasses- or mask-like occlusion. The occlusions
assume lfw-dev's framing (250 x 250, face centred, eyes near row 110).
"""

from __future__ import annotations

import enum

import cv2
import numpy as np


class Degradation(enum.StrEnum):
    LOW_RESOLUTION = "low-resolution"
    BLUR = "blur"
    JPEG = "jpeg"
    DARK = "dark"
    NOISE = "noise"
    EYES_COVERED = "eyes-covered"
    MOUTH_COVERED = "mouth-covered"


def degrade(pixels: np.ndarray, kind: Degradation, strength: float) -> bytes:
    """The photo with one fault at ``strength`` in [0, 1], JPEG-encoded."""
    quality = 95
    out = pixels
    height, width = pixels.shape[:2]
    if kind is Degradation.LOW_RESOLUTION:
        factor = 2.0 + 16.0 * strength
        small = cv2.resize(
            pixels,
            (max(4, round(width / factor)), max(4, round(height / factor))),
            interpolation=cv2.INTER_AREA,
        )
        out = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    elif kind is Degradation.BLUR:
        out = cv2.GaussianBlur(pixels, (0, 0), sigmaX=1.0 + 9.0 * strength)
    elif kind is Degradation.JPEG:
        quality = round(20 - 19 * strength)
    elif kind is Degradation.DARK:
        gain = 0.35 - 0.32 * strength
        out = np.clip(pixels.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    elif kind is Degradation.NOISE:
        rng = np.random.default_rng(int(strength * 1e6))
        noise = rng.normal(0.0, 10.0 + 80.0 * strength, pixels.shape)
        out = np.clip(pixels.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    elif kind in (Degradation.EYES_COVERED, Degradation.MOUTH_COVERED):
        out = pixels.copy()
        sy, sx = height / 250.0, width / 250.0
        band = (96, 126) if kind is Degradation.EYES_COVERED else (140, 200)
        half_width = 30 + 40 * strength
        top, bottom = round(band[0] * sy), round(band[1] * sy)
        left, right = round((125 - half_width) * sx), round((125 + half_width) * sx)
        out[top:bottom, left:right] = 32
    ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()


def plan(count: int, share: float, seed: int) -> list[tuple[int, Degradation, float]]:
    """Which images to degrade, how, and how strongly: (index, kind, strength)."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(count, size=round(share * count), replace=False))
    kinds = list(Degradation)
    return [(int(i), kinds[int(rng.integers(len(kinds)))], float(rng.uniform())) for i in chosen]
