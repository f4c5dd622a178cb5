"""Tests for extractor.decode: formats, colours, alpha, 16-bit, EXIF orientation, errors, fuzz."""

from __future__ import annotations

import base64
import io
import os
import random
import struct
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageFile, ImageOps

from extractor.decode import DecodedImage, DecodeLimits, decode_image, open_image
from facegate.errors import ErrorType, FacegateError
from tests.support.images import STORED_AS

RED_BGR = (0, 0, 255)
BLUE_BGR = (255, 0, 0)
WHITE_BGR = (255, 255, 255)

_REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def faces_dir() -> Path:
    candidates = [_REPO / "shared" / "faces", _REPO.parent / "shared" / "faces"]
    env = os.environ.get("FACEGATE_FACES_DIR")
    if env:
        candidates.insert(0, Path(env))
    for candidate in candidates:
        if (candidate / "test").is_dir():
            return candidate
    pytest.fail(
        "test photos not found: set FACEGATE_FACES_DIR or provide one of "
        + ", ".join(str(c) for c in candidates)
    )


@pytest.fixture(scope="module")
def real_jpeg(faces_dir: Path) -> bytes:
    return (faces_dir / "test/face_recognition/_edge_cases/obama_small.jpg").read_bytes()


@pytest.fixture(scope="module")
def real_png(faces_dir: Path) -> bytes:
    """A 64x64 RGBA crop of a real photo with an alpha channel, as PNG."""
    with Image.open(faces_dir / "test/face_recognition/_edge_cases/32bit.png") as im:
        return _encode(im.crop((280, 300, 344, 364)), "PNG")


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _halves(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Left half red, right half blue."""
    width, height = size
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, : width // 2] = (255, 0, 0)
    rgb[:, width // 2 :] = (0, 0, 255)
    image = Image.fromarray(rgb)
    return image if mode == "RGB" else image.convert(mode)


def _png_raw(width: int, height: int, colour_type: int, bit_depth: int, rows: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _assert_colour(
    pixels: npt.NDArray[np.uint8], y: int, x: int, bgr: tuple[int, int, int], tol: int = 40
) -> None:
    got = pixels[y, x].astype(int)
    assert np.abs(got - np.array(bgr)).max() <= tol, f"pixel ({x},{y}) is {got}, want {bgr}"


def _assert_invalid(
    data: Any, *fragments: str, limits: DecodeLimits | None = None
) -> FacegateError:
    with pytest.raises(FacegateError) as caught:
        decode_image(data, limits or DecodeLimits())
    error = caught.value
    assert error.error_type is ErrorType.INVALID_REQUEST
    for fragment in fragments:
        assert fragment in error.message, f"{fragment!r} not in {error.message!r}"
    return error


def _check_result(result: DecodedImage, width: int, height: int, fmt: str) -> None:
    assert result.format == fmt
    assert (result.width, result.height) == (width, height)
    assert result.pixels.shape == (height, width, 3)
    assert result.pixels.dtype == np.uint8
    assert result.pixels.flags.c_contiguous


# --- formats and colours ------------------------------------------------------------------

_FORMATS: list[tuple[str, str, dict[str, Any], int]] = [
    # (id, Pillow format, save params, colour tolerance)
    ("jpeg", "JPEG", {"quality": 90}, 40),
    ("jpeg-progressive", "JPEG", {"quality": 90, "progressive": True}, 40),
    ("png", "PNG", {}, 0),
    ("bmp", "BMP", {}, 0),
    ("webp-lossy", "WEBP", {"quality": 90}, 40),
    ("webp-lossless", "WEBP", {"lossless": True}, 0),
    ("tiff", "TIFF", {}, 0),
    ("tiff-lzw", "TIFF", {"compression": "tiff_lzw"}, 0),
    ("gif", "GIF", {}, 0),
]


@pytest.mark.parametrize(
    ("fmt", "params", "tol"), [f[1:] for f in _FORMATS], ids=[f[0] for f in _FORMATS]
)
def test_formats_decode_to_size_and_bgr_colours(fmt: str, params: dict[str, Any], tol: int) -> None:
    result = decode_image(_encode(_halves(), fmt, **params))
    _check_result(result, 64, 48, fmt)
    _assert_colour(result.pixels, 24, 8, RED_BGR, tol)
    _assert_colour(result.pixels, 24, 56, BLUE_BGR, tol)


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_greyscale_and_cmyk_jpeg(mode: str) -> None:
    result = decode_image(_encode(_halves(mode), "JPEG", quality=95))
    _check_result(result, 64, 48, "JPEG")
    if mode == "CMYK":
        _assert_colour(result.pixels, 24, 8, RED_BGR)
        _assert_colour(result.pixels, 24, 56, BLUE_BGR)
    else:  # red -> luma 76, blue -> luma 29, all three channels equal
        assert (result.pixels[:, :, 0] == result.pixels[:, :, 2]).all()
        _assert_colour(result.pixels, 24, 8, (76, 76, 76), 6)
        _assert_colour(result.pixels, 24, 56, (29, 29, 29), 6)


@pytest.mark.parametrize("mode", ["L", "P", "1", "RGBA", "LA"])
def test_png_modes(mode: str) -> None:
    image = _halves(mode)
    assert image.mode == mode
    result = decode_image(_encode(image, "PNG"))
    _check_result(result, 64, 48, "PNG")
    expected = np.asarray(image.convert("RGB"))[:, :, ::-1]
    assert np.array_equal(result.pixels, expected)


def test_jpeg_pixels_match_pillow_on_a_real_photo(real_jpeg: bytes) -> None:
    result = decode_image(real_jpeg)
    with Image.open(io.BytesIO(real_jpeg)) as im:
        reference = np.asarray(im.convert("RGB"))[:, :, ::-1]
    _check_result(result, 320, 240, "JPEG")
    assert np.abs(result.pixels.astype(int) - reference).max() <= 2


def test_tiff_first_page_and_gif_first_frame() -> None:
    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    for fmt in ("TIFF", "GIF"):
        data = _encode(red, fmt, save_all=True, append_images=[blue])
        with Image.open(io.BytesIO(data)) as check:
            assert getattr(check, "n_frames", 1) == 2
        result = decode_image(data)
        _check_result(result, 32, 32, fmt)
        _assert_colour(result.pixels, 16, 16, RED_BGR, 0)


# --- alpha and 16-bit ---------------------------------------------------------------------


def _rgba_with_hole() -> Image.Image:
    """Left: opaque red. Right: fully transparent green (must not show). Centre: 50% red."""
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[:, :32] = (255, 0, 0, 255)
    rgba[:, 32:] = (0, 255, 0, 0)
    rgba[20:28, 28:36] = (255, 0, 0, 128)
    return Image.fromarray(rgba)


@pytest.mark.parametrize(
    ("fmt", "params", "tol"),
    [("PNG", {}, 0), ("WEBP", {"lossless": True}, 0), ("WEBP", {"quality": 95}, 40)],
)
def test_transparent_areas_composite_to_white(fmt: str, params: dict[str, Any], tol: int) -> None:
    result = decode_image(_encode(_rgba_with_hole(), fmt, **params))
    _check_result(result, 64, 48, fmt)
    _assert_colour(result.pixels, 10, 8, RED_BGR, tol)
    _assert_colour(result.pixels, 10, 56, WHITE_BGR, tol)
    _assert_colour(result.pixels, 24, 31, (127, 127, 255), max(tol, 1))  # half red on white


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_composites_to_white(fmt: str) -> None:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 255, 0, 255, 0, 0])  # index 0 green (transparent), 1 red
    image.paste(1, (0, 0, 16, 32))
    result = decode_image(_encode(image, fmt, transparency=0))
    _assert_colour(result.pixels, 16, 8, RED_BGR, 0)
    _assert_colour(result.pixels, 16, 24, WHITE_BGR, 0)


def test_real_rgba_png_composites_over_white(faces_dir: Path) -> None:
    data = (faces_dir / "test/face_recognition/_edge_cases/32bit.png").read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float64)
    result = decode_image(data)
    _check_result(result, 626, 1200, "PNG")
    alpha = rgba[:, :, 3:4] / 255
    expected = rgba[:, :, 2::-1] * alpha + 255 * (1 - alpha)
    assert np.abs(result.pixels - expected).max() <= 1


def test_16bit_grey_png_keeps_its_contrast() -> None:
    ramp = (np.arange(64 * 64, dtype=np.uint32) * 16).astype(np.uint16).reshape(64, 64)
    data = _encode(Image.fromarray(ramp), "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "I;16"
    pixels = decode_image(data).pixels
    assert np.array_equal(pixels[:, :, 1], (ramp >> 8).astype(np.uint8))
    assert pixels.min() == 0
    assert pixels.max() == 255
    assert (pixels[:, :, 0] == pixels[:, :, 2]).all()


def test_16bit_colour_png_is_scaled_not_clipped() -> None:
    bgr16 = np.zeros((32, 32, 3), np.uint16)
    bgr16[..., 0], bgr16[..., 1], bgr16[..., 2] = 0x1234, 0x8000, 0xABCD
    ok, encoded = cv2.imencode(".png", bgr16)
    assert ok
    pixels = decode_image(encoded.tobytes()).pixels
    assert tuple(pixels[5, 5]) == (0x12, 0x80, 0xAB)


def test_16bit_grey_alpha_png() -> None:
    samples = np.zeros((16, 16, 2), ">u2")
    samples[:8] = (0xABCD, 0xFFFF)  # opaque grey 0xAB
    samples[8:] = (0x0000, 0x0000)  # transparent black -> white
    rows = b"".join(b"\x00" + samples[y].tobytes() for y in range(16))
    pixels = decode_image(_png_raw(16, 16, 4, 16, rows)).pixels
    _assert_colour(pixels, 2, 2, (0xAB, 0xAB, 0xAB), 0)
    _assert_colour(pixels, 12, 2, WHITE_BGR, 0)


# --- EXIF orientation ---------------------------------------------------------------------


def _upright() -> npt.NDArray[np.uint8]:
    """48x32 RGB, four differently coloured quadrants: no symmetry survives a wrong turn."""
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:16, :24] = (255, 0, 0)
    rgb[:16, 24:] = (0, 255, 0)
    rgb[16:, :24] = (0, 0, 255)
    rgb[16:, 24:] = (255, 255, 255)
    return rgb


def _save_oriented(fmt: str, orientation: int) -> bytes:
    op = STORED_AS[orientation]
    stored = Image.fromarray(_upright())
    if op is not None:
        stored = stored.transpose(op)
    if fmt == "TIFF":
        return _encode(stored, fmt, tiffinfo={0x0112: orientation})
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, Any] = {"exif": exif}
    if fmt == "JPEG":
        params |= {"quality": 95, "subsampling": 0}
    if fmt == "WEBP":
        params["lossless"] = True
    return _encode(stored, fmt, **params)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_image(fmt: str, orientation: int) -> None:
    data = _save_oriented(fmt, orientation)
    expected = _upright()[:, :, ::-1]
    with Image.open(io.BytesIO(data)) as check:  # the fixture itself is right
        assert check.getexif().get(0x0112) == orientation
        upright = ImageOps.exif_transpose(check)
        fixture_error = np.abs(np.asarray(upright.convert("RGB")).astype(int) - _upright()).max()
        assert fixture_error <= (64 if fmt == "JPEG" else 0)
    result = decode_image(data)
    _check_result(result, 48, 32, fmt)
    if fmt == "JPEG":
        for y, x in ((8, 12), (8, 36), (24, 12), (24, 36)):  # quadrant centres
            blue, green, red = (int(v) for v in expected[y, x])
            _assert_colour(result.pixels, y, x, (blue, green, red), 12)
    else:
        assert np.array_equal(result.pixels, expected)


def test_bad_orientation_value_is_ignored() -> None:
    exif = Image.Exif()
    exif[0x0112] = 42
    result = decode_image(_encode(Image.fromarray(_upright()), "PNG", exif=exif))
    assert np.array_equal(result.pixels, _upright()[:, :, ::-1])


# --- real photos --------------------------------------------------------------------------


def test_edge_case_photos_decode(faces_dir: Path) -> None:
    files = sorted((faces_dir / "test/face_recognition/_edge_cases").iterdir())
    assert files
    for path in files:
        with Image.open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        result = decode_image(path.read_bytes())
        _check_result(result, width, height, "PNG" if path.suffix == ".png" else "JPEG")
        assert result.pixels.std() > 10, f"{path.name} decoded to a flat image"


def test_large_real_photo(faces_dir: Path) -> None:
    path = faces_dir / "test/compreface/person_A/004_A.jpg"
    result = decode_image(path.read_bytes())
    _check_result(result, 3024, 4032, "JPEG")


# --- bad input ----------------------------------------------------------------------------


def test_empty_input() -> None:
    _assert_invalid(b"", "image is empty")


@pytest.mark.parametrize("value", [None, "text", 42])
def test_non_bytes_input(value: Any) -> None:
    _assert_invalid(value, "must be bytes")


def test_bytearray_and_memoryview_are_accepted() -> None:
    data = _encode(_halves(), "PNG")
    assert decode_image(bytearray(data)).width == 64
    assert decode_image(memoryview(data)).width == 64


def test_text_is_not_an_image() -> None:
    error = _assert_invalid(b"hello, this is not an image\n" * 3, "not an image")
    for name in ("JPEG", "PNG", "BMP", "WebP", "TIFF", "GIF"):
        assert name in error.message


def test_random_bytes_are_not_an_image() -> None:
    data = random.Random(7).randbytes(4096)
    _assert_invalid(data, "not an image", "supported")


def test_base64_and_heic_get_a_hint(real_jpeg: bytes) -> None:
    _assert_invalid(base64.b64encode(real_jpeg), "base64")
    _assert_invalid(b"\x00\x00\x00\x18ftypheic" + bytes(64), "HEIC")


def test_truncated_jpeg(real_jpeg: bytes) -> None:
    _assert_invalid(real_jpeg[: len(real_jpeg) // 2], "JPEG", "truncated")
    _assert_invalid(real_jpeg[:-2], "truncated")  # only the end-of-image marker missing


def test_truncated_progressive_jpeg() -> None:
    data = _encode(_halves(size=(256, 256)), "JPEG", progressive=True)
    _assert_invalid(data[: int(len(data) * 0.8)], "truncated")


def test_truncated_png(real_png: bytes) -> None:
    _assert_invalid(real_png[: len(real_png) // 2], "PNG", "truncated")
    _assert_invalid(real_png[:-12], "truncated")  # IEND chunk missing


def test_truncation_is_caught_even_if_pillow_is_told_to_load_truncated_images(
    monkeypatch: pytest.MonkeyPatch, real_jpeg: bytes, real_png: bytes
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    _assert_invalid(real_jpeg[: len(real_jpeg) // 2], "truncated")
    _assert_invalid(real_png[: len(real_png) // 2], "truncated")


def test_jpeg_scan_bomb_is_refused(real_jpeg: bytes) -> None:
    sos = real_jpeg.index(b"\xff\xda")
    scan_header = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    data = real_jpeg[:sos] + scan_header * 600 + b"\xff\xd9"
    _assert_invalid(data, "scans")


def _timed_invalid(data: bytes, *fragments: str) -> None:
    start = time.perf_counter()
    _assert_invalid(data, *fragments)
    assert time.perf_counter() - start < 0.5


def _png_header_only(width: int, height: int) -> bytes:
    return _png_raw(width, height, 2, 8, b"")[:33]  # signature + IHDR, nothing else


def test_png_header_claiming_100000_square_fails_fast() -> None:
    data = _png_header_only(100_000, 100_000)
    assert len(data) == 33
    _timed_invalid(data, "100000x100000", "at most 16384")
    _timed_invalid(_png_raw(100_000, 100_000, 2, 8, b""), "100000x100000")  # with IDAT/IEND


def test_too_many_pixels_from_header_fails_fast() -> None:
    data = _png_header_only(12_000, 12_000)  # each side fine, 144 MP > 120 MP
    _timed_invalid(data, "144000000 pixels", "120000000")


def test_other_formats_with_absurd_header_sizes_fail_fast() -> None:
    bmp = bytearray(_encode(_halves(), "BMP"))
    struct.pack_into("<ii", bmp, 18, 60_000, 60_000)
    _timed_invalid(bytes(bmp), "BMP", "60000x60000")

    gif = bytearray(_encode(_halves(), "GIF"))
    struct.pack_into("<HH", gif, 6, 65_535, 65_535)
    _timed_invalid(bytes(gif), "GIF", "65535x65535")

    # VP8X canvas 16384x16384 (268 MP): refused before Pillow allocates the canvas.
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (16383).to_bytes(3, "little") * 2
    webp = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    _timed_invalid(webp, "WEBP", "16384x16384")


def test_oversized_input(real_jpeg: bytes) -> None:
    _assert_invalid(
        real_jpeg, "33395 bytes", "limit of 1000 bytes", limits=DecodeLimits(max_bytes=1000)
    )
    huge = real_jpeg + bytes(32 * 1024 * 1024)
    _assert_invalid(huge, "more than the limit of 33554432 bytes")


def test_too_small_image() -> None:
    _assert_invalid(_encode(_halves(size=(10, 10)), "PNG"), "10x10", "too small")
    _assert_invalid(_encode(_halves(size=(100, 8)), "JPEG"), "100x8", "too small")


def test_custom_limits_apply() -> None:
    data = _encode(_halves(size=(64, 48)), "PNG")
    _assert_invalid(data, "at most 32", limits=DecodeLimits(max_side=32))
    _assert_invalid(data, "3072 pixels", limits=DecodeLimits(max_pixels=3000))
    assert decode_image(data, DecodeLimits(min_side=48)).height == 48


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_side"):
        DecodeLimits(max_side=0)
    with pytest.raises(ValueError, match="min_side"):
        DecodeLimits(min_side=100, max_side=50)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF"])
def test_independent_of_pillow_global_bomb_limit(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Our limits rule, not Image.MAX_IMAGE_PIXELS; and no Pillow warning escapes."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert decode_image(_encode(_halves(), fmt)).width == 64


def test_pillow_bomb_error_is_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # WebP's open-time check fires
    _assert_invalid(_encode(_halves(), "WEBP", lossless=True), "WEBP", "too large")


def test_corrupt_headers() -> None:
    png = bytearray(_encode(_halves(), "PNG"))
    png[16:20] = (65).to_bytes(4, "big")  # width 64 -> 65, now with a bad CRC
    _assert_invalid(bytes(png), "PNG", "corrupt")
    _assert_invalid(b"\xff\xd8\xff\xe0" + bytes(100), "JPEG", "corrupt")
    _assert_invalid(b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8), "WEBP", "corrupt")


# --- fuzz ---------------------------------------------------------------------------------


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    kind = rng.random()
    if kind < 0.25:
        return bytes(data[: rng.randrange(len(data))])
    if kind < 0.7:
        for _ in range(rng.randint(1, 8)):
            span = 300 if rng.random() < 0.6 else len(data)  # headers are where parsers break
            data[rng.randrange(min(span, len(data)))] = rng.randrange(256)
    elif kind < 0.85:
        start = rng.randrange(len(data))
        del data[start : start + rng.randint(1, 64)]
    else:
        start = rng.randrange(len(data))
        data[start:start] = rng.randbytes(rng.randint(1, 32))
    return bytes(data)


@pytest.mark.parametrize("which", ["jpeg", "png"])
def test_fuzz_only_facegate_errors(
    which: str, real_jpeg: bytes, real_png: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    seed = real_jpeg if which == "jpeg" else real_png
    rng = random.Random(20240611 + len(which))
    limits = DecodeLimits(max_pixels=4_000_000)  # keeps mutated headers cheap to decode
    decoded: list[DecodedImage] = []
    refused: list[FacegateError] = []
    for _ in range(300):
        data = _mutate(rng, seed)
        try:  # any exception other than FacegateError fails the test
            source = open_image(data, limits)
            # Every scale the pipeline may ask for (a JPEG's reduced ones too).
            decoded.extend(source.decode(reduction) for reduction in source.reductions)
        except FacegateError as error:
            refused.append(error)
    assert len(refused) > 50
    assert all(e.error_type is ErrorType.INVALID_REQUEST and e.message for e in refused)
    for result in decoded:
        assert result.pixels.dtype == np.uint8
        assert result.pixels.ndim == 3
        assert result.pixels.shape[2] == 3
        assert result.pixels.flags.c_contiguous
    capfd.readouterr()  # libjpeg's "Corrupt JPEG data" chatter on stderr
