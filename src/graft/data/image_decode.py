"""Decoding one image (a file, a PIL image or an array) into a ``uint8`` RGB array resized once, with a content hash.

Grayscale, palette, 16-bit and float images are scaled to 8 bits; transparency is composited on white; EXIF
orientation is applied. Files already known (their embedding is cached) are hashed but not decoded.

High-bit-depth grayscale (PNG/TIFF modes ``I;16*``, ``I`` and ``F``, and ``uint16`` arrays) is mapped to 8 bits through
its robust percentile window: its 0.5th percentile (rounded down to a pixel value) becomes 0 and its 99.5th percentile
(rounded up) becomes 255, values outside are clipped, so a few hot pixels do not crush the rest (images of fewer than
200 pixels keep their min/max; constant images become black). DICOM files (``.dcm`` / ``.dicom`` or a ``DICM`` marker
at byte 128) are decoded by :func:`graft.data.dicom.decode_dicom` with the same rule when they carry no window, then
resized like any other image.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from graft.data.dicom import decode_dicom, is_dicom, robust_to_uint8
from graft.errors import DECODER_ERRORS, DataError

_HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa", "P"})


_KNOWN = "<known: not decoded>"


@dataclass
class _Decoded:
    image: np.ndarray | None
    digest: str
    reason: str = ""


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part)
    return h.hexdigest()


def _target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def _resize(im: Image.Image, short_side: int | None) -> Image.Image:
    if short_side is None:
        return im
    size = _target_size(im.width, im.height, short_side)
    if size == im.size:
        return im
    return im.resize(size, Image.Resampling.BICUBIC, reducing_gap=None)


def _white_composite(rgba: np.ndarray) -> np.ndarray:
    """Composite an ``(H, W, 4)`` uint8 array over white and return ``(H, W, 3)`` uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) * (1.0 / 255.0)
    rgb = rgba[..., :3].astype(np.float32)
    return np.rint(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def _pil_to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB (alpha over white, high-bit grey through its percentile window)."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _HIGH_BIT_MODES:
        grey = robust_to_uint8(np.asarray(im))
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
    if mode == "1":
        return im.convert("L").convert("RGB")
    if mode in _ALPHA_MODES:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")  # L, CMYK, YCbCr, RGBX, LAB, HSV, ...


def _to_array(im: Image.Image, short_side: int | None) -> np.ndarray:
    return np.ascontiguousarray(np.array(_resize(_pil_to_rgb(im), short_side), dtype=np.uint8))


def _decode_file(source: str, short_side: int | None, known: Callable[[str], bool] | None = None) -> _Decoded:
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        return _Decoded(None, "", "file does not exist")
    except IsADirectoryError:
        return _Decoded(None, "", "is a folder, not an image file")
    except PermissionError:
        return _Decoded(None, "", "permission denied")
    except OSError as exc:
        return _Decoded(None, "", f"cannot read file ({exc.strerror or exc})")
    digest = _digest(data)
    if not data:
        return _Decoded(None, digest, "empty file (0 bytes)")
    if known is not None and known(digest):
        return _Decoded(None, digest, _KNOWN)
    if is_dicom(source, data):
        return _decode_dicom_file(data, digest, short_side)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if short_side is not None and im.format == "JPEG" and min(im.size) >= 2 * short_side:
                im.draft("RGB", (short_side, short_side))
            im.load()
            ImageOps.exif_transpose(im, in_place=True)
            return _Decoded(_to_array(im, short_side), digest)
    except UnidentifiedImageError:
        return _Decoded(None, digest, f"not an image Pillow can read ({len(data)} bytes of unknown format)")
    except Image.DecompressionBombError as exc:
        return _Decoded(None, digest, f"image too large ({exc})")
    except MemoryError:
        raise
    except DECODER_ERRORS as exc:  # every decoder failure is reported per file
        text = str(exc) or type(exc).__name__
        kind = "truncated image" if "truncat" in text.lower() else "corrupt image data"
        return _Decoded(None, digest, f"{kind} ({text})")


def _decode_dicom_file(data: bytes, digest: str, short_side: int | None) -> _Decoded:
    try:
        rgb = decode_dicom(data)
    except DataError as exc:
        return _Decoded(None, digest, str(exc))
    except MemoryError:
        raise
    except DECODER_ERRORS as exc:  # reported per file; the message may quote file content, so it is left out
        return _Decoded(None, digest, f"cannot decode DICOM file ({type(exc).__name__})")
    return _Decoded(_to_array(Image.fromarray(rgb, "RGB"), short_side), digest)


def decode_pil(im: Image.Image, short_side: int | None) -> np.ndarray:
    """``im`` as a model reads it: EXIF orientation applied, RGB ``uint8``, shortest side resized to ``short_side``;
    the same array as :func:`graft.data.images.load_images` gives, without its content hash (for callers that cache
    nothing, such as the server). The caller's image is left untouched.

    Raises:
        OSError, ValueError, ...: (``graft.errors.DECODER_ERRORS``) when the image data cannot be decoded.
    """
    return _to_array(ImageOps.exif_transpose(im), short_side)  # exif_transpose copies


def _decode_pil(im: Image.Image, short_side: int | None) -> _Decoded:
    try:
        digest = _digest(im.mode.encode(), repr(im.size).encode(), im.tobytes())
        return _Decoded(decode_pil(im, short_side), digest)
    except MemoryError:
        raise
    except DECODER_ERRORS as exc:  # e.g. a lazily loaded image whose file is truncated
        return _Decoded(None, "", f"cannot decode image ({exc or type(exc).__name__})")


def _array_item_to_rgb(item: np.ndarray, scale: float | None) -> np.ndarray:
    """Turn one validated ``(H, W)`` / ``(H, W, C)`` array (C in 1, 3, 4) into contiguous uint8 RGB."""
    a = item
    if a.dtype == np.uint16:
        a = robust_to_uint8(a)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif scale is not None:
        a = np.clip(np.rint(a.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = a.astype(np.uint8)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        return np.repeat(a, 3, axis=2)
    if a.shape[2] == 4:
        return _white_composite(a)
    return np.ascontiguousarray(a)


def _array_scale(a: np.ndarray, where: str) -> float | None:
    """Validate an image array's dtype and values; return the factor to 0..255 for floats, else ``None``."""
    kind = a.dtype.kind
    if kind == "f":
        if not np.isfinite(a).all():
            raise DataError(f"{where} contains NaN or infinite values. Replace them before passing the array.")
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            return 255.0
        if lo >= 0.0 and hi <= 255.0:
            return 1.0
        raise DataError(
            f"{where} is a float array with values from {lo:g} to {hi:g}; expected values in [0, 1] or "
            "[0, 255]. Undo any normalisation (mean/std) before passing images."
        )
    if a.dtype in (np.uint8, np.uint16) or kind == "b":
        return None
    if kind in "iu":
        lo_i, hi_i = int(a.min()), int(a.max())
        if lo_i >= 0 and hi_i <= 255:
            return None
        raise DataError(
            f"{where} is an {a.dtype} array with values from {lo_i} to {hi_i}; expected 0..255. "
            "Convert it to uint8 (or uint16 for 16-bit images) first."
        )
    raise DataError(f"{where} has dtype {a.dtype}; give uint8, uint16 or float pixel values.")


def _check_image_shape(shape: tuple[int, ...], where: str, batched: bool) -> None:
    if batched and len(shape) in (3, 4) and shape[0] == 0:
        raise DataError(f"{where} holds no images (N = 0). Give at least one image.")
    inner = shape[1:] if batched else shape
    ok = (len(inner) == 2 or (len(inner) == 3 and inner[2] in (1, 3, 4))) and all(d > 0 for d in inner[:2])
    if not ok:
        expected = "(N, H, W) or (N, H, W, C)" if batched else "(H, W) or (H, W, C)"
        raise DataError(f"{where} has an unsupported shape; expected {expected} with C in 1, 3 or 4 and H, W > 0.")


def _decode_array(item: tuple[np.ndarray, float | None], short_side: int | None) -> np.ndarray:
    raw, scale = item
    rgb = _array_item_to_rgb(raw, scale)
    if short_side is not None:
        rgb = np.array(_resize(Image.fromarray(rgb, "RGB"), short_side), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def _array_digest(a: np.ndarray) -> str:
    raw = np.ascontiguousarray(a)
    return _digest(str(raw.dtype).encode(), repr(raw.shape).encode(), raw.tobytes())
