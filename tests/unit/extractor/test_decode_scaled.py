"""Reduced-scale decoding: sizes, pixels, and coordinates mapped back to the original."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from extractor.decode import JPEG_REDUCTIONS, decode_image, open_image
from tests.support.images import STORED_AS

# Neither side a multiple of 8, so the partial last block is visible at every reduction.
_WIDTH, _HEIGHT = 1203, 901
_SQUARE = (977, 141, 1057, 221)  # left, top, right, bottom: near the top right corner


def _upright_marker() -> np.ndarray:
    rgb = np.zeros((_HEIGHT, _WIDTH, 3), dtype=np.uint8)
    left, top, right, bottom = _SQUARE
    rgb[top:bottom, left:right] = 255
    return rgb


def _jpeg(rgb: np.ndarray, orientation: int) -> bytes:
    stored = Image.fromarray(rgb)
    op = STORED_AS[orientation]
    if op is not None:
        stored = stored.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def _centroid(pixels: np.ndarray) -> np.ndarray:
    weight = pixels.astype(np.float64).mean(axis=2)
    ys, xs = np.mgrid[: weight.shape[0], : weight.shape[1]]
    total = weight.sum()
    return np.array([(xs * weight).sum() / total, (ys * weight).sum() / total])


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("reduction", JPEG_REDUCTIONS)
def test_reduced_coordinates_map_to_the_upright_original(orientation: int, reduction: int) -> None:
    source = open_image(_jpeg(_upright_marker(), orientation))
    assert (source.width, source.height) == (_WIDTH, _HEIGHT)
    view = source.decode(reduction)
    assert (view.width, view.height) == (-(-_WIDTH // reduction), -(-_HEIGHT // reduction))
    left, top, right, bottom = _SQUARE
    expected = np.array([(left + right - 1) / 2, (top + bottom - 1) / 2])
    found = view.to_original(_centroid(view.pixels)[None])[0]
    # A wrong offset for the partial block would be off by 3 to 5 pixels here.
    assert np.abs(found - expected).max() < 1.0, (found, expected)
    assert np.allclose(view.from_original(found[None])[0], _centroid(view.pixels))


def test_reduced_pixels_are_the_block_means_of_a_real_photo(faces: Path) -> None:
    source = open_image((faces / "test/compreface/person_A/004_A.jpg").read_bytes())
    full = source.decode(1).pixels
    for reduction in (2, 4, 8):
        view = source.decode(reduction)
        height, width = full.shape[0] // reduction, full.shape[1] // reduction
        blocks = full[: height * reduction, : width * reduction].reshape(
            height, reduction, width, reduction, 3
        )
        means = blocks.mean(axis=(1, 3))
        error = np.abs(view.pixels[:height, :width].astype(np.float64) - means)
        assert error.mean() < 2.0, reduction


def test_coarsest_reduction_keeps_the_long_side() -> None:
    def jpeg(width: int, height: int) -> bytes:
        ok, buffer = cv2.imencode(".jpg", np.zeros((height, width, 3), np.uint8))
        assert ok
        return buffer.tobytes()

    assert open_image(jpeg(7360, 16)).coarsest_reduction(640) == 8
    assert open_image(jpeg(4032, 16)).coarsest_reduction(640) == 4
    assert open_image(jpeg(5100, 16)).coarsest_reduction(640) == 4  # 638 at 1/8 is short
    assert open_image(jpeg(1277, 16)).coarsest_reduction(640) == 1  # 639 at 1/2
    assert open_image(jpeg(1280, 16)).coarsest_reduction(640) == 2
    assert open_image(jpeg(250, 250)).coarsest_reduction(640) == 1


def test_other_formats_decode_once_at_full_scale() -> None:
    rgb = _upright_marker()
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    source = open_image(out.getvalue())
    assert source.reductions == (1,)
    assert source.coarsest_reduction(640) == 1
    assert np.array_equal(source.decode().pixels, rgb[:, :, ::-1])
    with pytest.raises(ValueError, match="cannot be decoded at 1/2"):
        source.decode(2)


def test_decode_image_is_the_full_scale_decode() -> None:
    data = _jpeg(_upright_marker(), 6)
    assert np.array_equal(decode_image(data).pixels, open_image(data).decode(1).pixels)
