"""Image bytes in, a safe upright BGR image out.

:func:`open_image` (and :func:`decode_image`, which decodes at full scale) is the one
place where untrusted image bytes become pixels. It

* identifies the format from its magic bytes (JPEG, PNG, BMP, WebP, TIFF, GIF) and
  opens only that format's Pillow plugin, so no other parser ever sees the bytes;
* reads the dimensions from the header and refuses absurd or too small images
  *before* any pixel memory is allocated (our own limits, never Pillow's global
  ``Image.MAX_IMAGE_PIXELS``);
* refuses truncated JPEG and PNG files with its own structural check, since some
  OpenCV builds return a half-grey image for a truncated JPEG;
* decodes JPEG pixels with OpenCV (2-3x faster than Pillow, see
  ``docs/adr/0002-image-decoding.md``), at 1/2, 1/4 or 1/8 scale when the caller asks
  (:meth:`EncodedImage.decode`, libjpeg's DCT scaling: a 36 MP photo never needs its
  full-size pixels when its faces are large enough), and every other format with Pillow;
* composites alpha over white, scales 16-bit samples to 8 bits (``>> 8``), and applies
  the EXIF orientation so the pixels are upright.

Every bad input raises :class:`~facegate.errors.FacegateError` of type
``INVALID_REQUEST`` with a message saying what is wrong; decoder exceptions are caught
narrowly and converted, and ``MemoryError``/``KeyboardInterrupt`` pass through.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from facegate.errors import image_too_large, invalid_request

__all__ = [
    "JPEG_REDUCTIONS",
    "SUPPORTED_FORMATS",
    "DecodeLimits",
    "DecodedImage",
    "EncodedImage",
    "decode_image",
    "open_image",
]

SUPPORTED_FORMATS: Final = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF")
_SUPPORTED_TEXT: Final = "JPEG, PNG, BMP, WebP, TIFF (first page) and GIF (first frame)"

# Exceptions the decoders raise for malformed input. Anything else is a bug and is not
# hidden; MemoryError and KeyboardInterrupt always pass through. ``Warning`` covers
# decoder warnings (Pillow's DecompressionBombWarning, "Corrupt EXIF data", ...) in a
# process that turned warnings into errors.
_DECODER_ERRORS: Final = (
    OSError,  # includes PIL.UnidentifiedImageError and "image file is truncated"
    SyntaxError,  # Pillow: "not a PNG file", broken chunk structure, ...
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
    Image.DecompressionBombError,
    cv2.error,
    Warning,
)

# A JPEG with more scans than this is refused: libjpeg's cost grows with scans x blocks,
# so a small progressive file with thousands of empty scans is a CPU bomb. Real encoders
# write at most a few dozen; 500 is TurboJPEG's recommended scan limit.
_MAX_JPEG_SCANS: Final = 500
# Inside entropy-coded JPEG data 0xFF is followed by 0x00 (stuffing), 0xD0-0xD7 (restart
# markers) or more 0xFF (fill); anything else starts the next marker segment.
_JPEG_NEXT_MARKER: Final = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PNG_IEND: Final = b"\x00\x00\x00\x00IEND"
_TIFF_MAGICS: Final = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_EXIF_ORIENTATION: Final = 0x0112
# libjpeg's DCT scaling as OpenCV exposes it: the decoder computes 1/r of each 8 x 8
# block's coefficients, so a reduced decode skips most of the inverse-DCT and colour
# work of a full one (the entropy decoding remains).
_JPEG_READ_FLAGS: Final = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
JPEG_REDUCTIONS: Final = tuple(_JPEG_READ_FLAGS)
_MAX_DETAIL: Final = 200

Pixels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on what :func:`decode_image` accepts; checked before decoding pixels."""

    max_bytes: int = 32 * 1024 * 1024
    max_side: int = 16384  # either dimension above -> error
    max_pixels: int = 120_000_000  # width*height above -> error, checked from the header
    min_side: int = 16  # either dimension below -> error ("too small")

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_side", "max_pixels", "min_side"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DecodeLimits.{name} must be a positive int, got {value!r}")
        if self.min_side > self.max_side:
            raise ValueError("DecodeLimits.min_side must not exceed max_side")


@dataclass(frozen=True)
class DecodedImage:
    """Upright 8-bit BGR pixels of an image, possibly at a reduced scale.

    A JPEG decoded at ``reduction`` r has one pixel per r x r block of the stored
    original (libjpeg's DCT scaling), the last row and column covering what is left.
    :meth:`to_original` and :meth:`from_original` map coordinates between these pixels
    and the upright original's, pixel centres at integers (the convention of OpenCV's
    warps), so callers see original pixels whatever scale was decoded.
    """

    pixels: Pixels  # H x W x 3, uint8, BGR, C-contiguous, EXIF orientation applied
    format: str  # "JPEG", "PNG", "BMP", "WEBP", "TIFF" or "GIF"
    reduction: int = 1
    offset: tuple[float, float] = (0.0, 0.0)
    """How far the partial last block, turned to the start of an axis by the EXIF
    orientation, reaches before the original's first pixel (x, y)."""

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def to_original(self, points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """N x 2 (x, y) coordinates in these pixels -> the upright original's."""
        shifted: npt.NDArray[np.float64] = (points + 0.5) * self.reduction
        shifted -= 0.5 + np.asarray(self.offset)
        return shifted

    def from_original(self, points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """N x 2 (x, y) coordinates in the upright original -> these pixels'."""
        shifted: npt.NDArray[np.float64] = points + (0.5 + np.asarray(self.offset))
        shifted /= self.reduction
        shifted -= 0.5
        return shifted


@dataclass(frozen=True)
class EncodedImage:
    """A checked image whose header has been read; a JPEG's pixels are decoded on demand,
    at the scale asked for, other formats' when the image is opened."""

    data: bytes
    format: str
    width: int
    """Of the upright original (after the EXIF orientation)."""
    height: int
    orientation: int
    stored_size: tuple[int, int]
    """Width and height as stored, before the EXIF orientation."""
    decoded: DecodedImage | None = field(default=None, repr=False)
    """The full-scale pixels of a format that cannot be decoded at a reduced scale."""

    @property
    def reductions(self) -> tuple[int, ...]:
        """The scales :meth:`decode` can reduce to without decoding the full image."""
        return JPEG_REDUCTIONS if self.format == "JPEG" else (1,)

    def coarsest_reduction(self, min_long_side: int) -> int:
        """The largest reduction that keeps the longer side at least ``min_long_side``."""
        long_side = max(self.width, self.height)
        fitting = [r for r in self.reductions if -(-long_side // r) >= min_long_side]
        return max(fitting, default=1)

    def decode(self, reduction: int = 1) -> DecodedImage:
        """The upright pixels at 1/``reduction`` scale (one of :attr:`reductions`).

        Raises :class:`FacegateError` (``INVALID_REQUEST``) when the pixels are corrupt.
        """
        if reduction not in self.reductions:
            raise ValueError(f"a {self.format} image cannot be decoded at 1/{reduction}")
        if self.decoded is not None:
            return self.decoded
        stored_width, stored_height = self.stored_size
        pixels = _decode_jpeg_pixels(self.data, stored_width, stored_height, reduction)
        # Along an axis the orientation reverses, the partial last block comes first.
        excess_x = pixels.shape[1] * reduction - stored_width
        excess_y = pixels.shape[0] * reduction - stored_height
        if self.orientation in (5, 6, 7, 8):
            excess_x, excess_y = excess_y, excess_x
        offset = (
            float(excess_x if self.orientation in (2, 3, 6, 7) else 0),
            float(excess_y if self.orientation in (3, 4, 7, 8) else 0),
        )
        pixels = np.ascontiguousarray(_apply_orientation(pixels, self.orientation))
        return DecodedImage(pixels, self.format, reduction, offset)


_DEFAULT_LIMITS: Final = DecodeLimits()


def open_image(
    data: bytes | bytearray | memoryview, limits: DecodeLimits = _DEFAULT_LIMITS
) -> EncodedImage:
    """Check untrusted image bytes and read their header, without decoding pixels.

    Raises :class:`FacegateError` (``INVALID_REQUEST``) for empty, oversized,
    unrecognised, truncated, absurdly large or too small images.
    """
    buf = _as_bytes(data)
    if not buf:
        raise invalid_request("image is empty")
    if len(buf) > limits.max_bytes:
        raise image_too_large(len(buf), limits.max_bytes)
    fmt = _sniff_format(buf)
    header_size = _header_size(fmt, buf)
    if header_size is not None:
        # Before Pillow parses anything else: its WebP plugin allocates the canvas while
        # opening, and a header-only PNG should still say its size is the problem.
        _check_dimensions(fmt, *header_size, limits)
    elif fmt == "WEBP":
        raise invalid_request("WEBP image is corrupt: its header could not be read")
    image = _open(fmt, buf)
    _check_dimensions(fmt, image.width, image.height, limits)
    stored_size = (image.width, image.height)
    decoded = None
    if fmt == "JPEG":
        _check_jpeg_complete(buf)
    else:
        if fmt == "PNG" and buf.rfind(_PNG_IEND) < len(_PNG_MAGIC):
            raise invalid_request("PNG image is truncated: its IEND chunk is missing")
        pixels = _pillow_pixels(fmt, image)
    # Read after the pixels: a PNG may carry its EXIF chunk after the image data.
    orientation = _orientation(image)
    if fmt != "JPEG":
        upright = np.ascontiguousarray(_apply_orientation(pixels, orientation))
        decoded = DecodedImage(upright, fmt)
    width, height = stored_size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return EncodedImage(buf, fmt, width, height, orientation, stored_size, decoded)


def decode_image(
    data: bytes | bytearray | memoryview, limits: DecodeLimits = _DEFAULT_LIMITS
) -> DecodedImage:
    """Decode untrusted image bytes into an upright H x W x 3 uint8 BGR image.

    Raises :class:`FacegateError` (``INVALID_REQUEST``) for empty, oversized,
    unrecognised, truncated, corrupt, absurdly large or too small images.
    """
    return open_image(data, limits).decode()


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise invalid_request(f"image must be bytes, not {type(data).__name__}")


def _sniff_format(buf: bytes) -> str:
    if buf.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if buf.startswith(_PNG_MAGIC):
        return "PNG"
    if buf.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if buf.startswith(b"RIFF") and buf[8:12] == b"WEBP":
        return "WEBP"
    if buf.startswith(_TIFF_MAGICS):
        return "TIFF"
    if buf.startswith(b"BM"):
        return "BMP"
    if buf[4:8] == b"ftyp":
        raise invalid_request(
            "ISO media images (HEIC/AVIF) are not supported; supported formats: " + _SUPPORTED_TEXT
        )
    if buf.lstrip()[:5] in (b"/9j/4", b"iVBOR"):
        raise invalid_request(
            "image looks base64-encoded; send the decoded bytes (supported formats: "
            + _SUPPORTED_TEXT
            + ")"
        )
    raise invalid_request("data is not an image in a supported format: " + _SUPPORTED_TEXT)


_OPENERS: Final[dict[str, Callable[[io.BytesIO], ImageFile.ImageFile]]] = {
    # The plugin classes are used directly rather than Image.open(): only the sniffed
    # format's parser runs, and Pillow's process-global decompression-bomb check (with
    # its warning) is not involved -- _check_dimensions applies our own limits.
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "GIF": GifImagePlugin.GifImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
}


def _open(fmt: str, buf: bytes) -> ImageFile.ImageFile:
    try:
        return _OPENERS[fmt](io.BytesIO(buf))
    except Image.DecompressionBombError as exc:
        raise invalid_request(f"{fmt} image dimensions are too large: {_detail(exc)}") from exc
    except _DECODER_ERRORS as exc:
        raise invalid_request(
            f"{fmt} image is corrupt: its header could not be read ({_detail(exc)})"
        ) from exc


def _check_dimensions(fmt: str, width: int, height: int, limits: DecodeLimits) -> None:
    if width > limits.max_side or height > limits.max_side:
        raise invalid_request(
            f"{fmt} image is {width}x{height} pixels; each side must be at most "
            f"{limits.max_side} pixels"
        )
    if width * height > limits.max_pixels:
        raise invalid_request(
            f"{fmt} image is {width}x{height} = {width * height} pixels, more than the "
            f"limit of {limits.max_pixels} pixels"
        )
    if width < limits.min_side or height < limits.min_side:
        raise invalid_request(
            f"{fmt} image is {width}x{height} pixels, too small: each side must be at "
            f"least {limits.min_side} pixels"
        )


def _header_size(fmt: str, buf: bytes) -> tuple[int, int] | None:
    """Width and height read straight from a PNG IHDR or WebP header, if present."""
    if fmt == "PNG":
        if len(buf) >= 24 and buf[12:16] == b"IHDR":
            width, height = struct.unpack_from(">II", buf, 16)
            return int(width), int(height)
        return None
    if fmt != "WEBP":
        return None
    # RIFF container, then a VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk.
    chunk = buf[12:16]
    if chunk == b"VP8 " and len(buf) >= 30 and buf[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", buf, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(buf) >= 25 and buf[20] == 0x2F:
        bits = int.from_bytes(buf[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(buf) >= 30:
        return int.from_bytes(buf[24:27], "little") + 1, int.from_bytes(buf[27:30], "little") + 1
    return None


def _check_jpeg_complete(buf: bytes) -> None:
    """Walk the JPEG marker segments to EOI: refuse truncation and scan bombs.

    Segment lengths are followed exactly; entropy-coded data after each SOS is skipped
    with one C-level regex search, so this costs well under 1 ms for a 2.5 MB photo.
    """
    end = len(buf)
    pos = 2  # after SOI
    scans = 0
    while True:
        pos = buf.find(b"\xff", pos)  # tolerate stray bytes between segments, as libjpeg does
        if pos < 0:
            break
        while pos < end and buf[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            break
        marker = buf[pos]
        pos += 1
        if marker == 0xD9:  # EOI: the image is complete
            return
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            continue
        if pos + 2 > end:
            break
        length = int.from_bytes(buf[pos : pos + 2], "big")
        if length < 2:
            raise invalid_request("JPEG image is corrupt: a marker segment has a bad length")
        pos += length
        if pos > end:
            break
        if marker == 0xDA:  # SOS: entropy-coded data follows until the next marker
            scans += 1
            if scans > _MAX_JPEG_SCANS:
                raise invalid_request(
                    f"JPEG image has more than {_MAX_JPEG_SCANS} scans; refusing to decode it"
                )
            found = _JPEG_NEXT_MARKER.search(buf, pos)
            if found is None:
                break
            pos = found.start()
    raise invalid_request("JPEG image is truncated: the data ends before the end-of-image marker")


def _decode_jpeg_pixels(buf: bytes, width: int, height: int, reduction: int) -> Pixels:
    try:
        decoded = cv2.imdecode(
            np.frombuffer(buf, dtype=np.uint8),
            _JPEG_READ_FLAGS[reduction] | cv2.IMREAD_IGNORE_ORIENTATION,
        )
    except cv2.error as exc:
        raise invalid_request(f"JPEG image is corrupt ({_detail(exc)})") from exc
    if decoded is None:
        raise invalid_request("JPEG image is corrupt or truncated: its pixels could not be decoded")
    expected = (-(-height // reduction), -(-width // reduction), 3)
    if decoded.dtype != np.uint8 or decoded.shape != expected:
        raise invalid_request(
            f"JPEG image is corrupt: decoded shape {decoded.shape}, header says {width}x{height}"
        )
    return _u8(decoded)


def _pillow_pixels(fmt: str, image: ImageFile.ImageFile) -> Pixels:
    try:
        image.load()
        pixels = _to_bgr(image)
    except Image.DecompressionBombError as exc:
        raise invalid_request(f"{fmt} image dimensions are too large: {_detail(exc)}") from exc
    except _DECODER_ERRORS as exc:
        raise invalid_request(f"{fmt} image is corrupt or truncated ({_detail(exc)})") from exc
    if pixels.shape != (image.height, image.width, 3):  # pragma: no cover - defensive
        raise invalid_request(f"{fmt} image is corrupt: decoded shape {pixels.shape}")
    return pixels


def _to_bgr(image: Image.Image) -> Pixels:
    """Any Pillow mode -> H x W x 3 uint8 BGR; alpha over white, 16-bit scaled by >> 8."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        samples = np.asarray(image)
        if mode == "I":  # 32-bit int greyscale (TIFF, 16-bit signed): read as 16-bit range
            samples = np.clip(samples, 0, 0xFFFF)
        grey = (samples >> 8).astype(np.uint8)
        return _u8(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    if mode == "F":
        raise invalid_request("images with 32-bit float samples are not supported")
    if image.has_transparency_data:
        rgba = image if mode == "RGBA" else image.convert("RGBA")
        return _composite_on_white(np.asarray(rgba))
    if mode == "L":
        return _u8(cv2.cvtColor(np.asarray(image), cv2.COLOR_GRAY2BGR))
    rgb = image if mode == "RGB" else image.convert("RGB")
    return _u8(cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR))


def _composite_on_white(rgba: Pixels) -> Pixels:
    """Blend RGBA over a white background, vectorised: (c*a + 255*(255-a)) / 255."""
    out = rgba[:, :, 2::-1].astype(np.uint16)  # BGR, contiguous copy
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    out *= alpha
    np.subtract(255, alpha, out=alpha)
    alpha *= 255
    out += alpha
    out += 127
    out //= 255
    return out.astype(np.uint8)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8); 1 when absent or unreadable (a bad tag is not fatal)."""
    try:
        value = image.getexif().get(_EXIF_ORIENTATION)
    except _DECODER_ERRORS:
        return 1
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    return 1


def _apply_orientation(pixels: Pixels, orientation: int) -> Pixels:
    """Turn pixels stored with EXIF ``orientation`` upright (same as ImageOps.exif_transpose)."""
    if orientation == 2:
        return _u8(cv2.flip(pixels, 1))
    if orientation == 3:
        return _u8(cv2.rotate(pixels, cv2.ROTATE_180))
    if orientation == 4:
        return _u8(cv2.flip(pixels, 0))
    if orientation == 5:
        return _u8(cv2.transpose(pixels))
    if orientation == 6:
        return _u8(cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE))
    if orientation == 7:
        return _u8(cv2.rotate(cv2.transpose(pixels), cv2.ROTATE_180))
    if orientation == 8:
        return _u8(cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE))
    return pixels


def _u8(mat: object) -> Pixels:
    return np.asarray(mat, dtype=np.uint8)


def _detail(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
