"""Reading DICOM files, and the windowing rule shared by every image with more than 8 bits per sample.

A file is read as DICOM when its name ends in ``.dcm`` / ``.dicom`` or when it carries the ``DICM`` marker at byte
offset 128 (:func:`is_dicom`). :func:`decode_dicom` turns it into the ``uint8`` RGB array every Graft image is:

1. **Modality LUT.** ``RescaleSlope`` / ``RescaleIntercept`` (or a Modality LUT Sequence) turn the stored values into
   modality units (Hounsfield units for CT), in float64. Grayscale only, as in the DICOM standard.
2. **Window.** The first window found wins:

   * the file's ``WindowCenter`` / ``WindowWidth`` (the first value when several are stored), applied with the DICOM
     VOI LUT Function (``LINEAR`` by default, ``LINEAR_EXACT`` and ``SIGMOID`` when the file says so);
   * the file's VOI LUT Sequence (its first table: values below its first input take its first entry, values past
     its end its last), the output scaled from its bit depth to 0..255;
   * the caller's ``window=(center, width)``, applied with the DICOM ``LINEAR`` formula;
   * the robust percentile window (below).

   The window maps to 0..255.
3. **MONOCHROME1** images (low values drawn white) are inverted after windowing, so that bright means dense as in
   MONOCHROME2.
4. **Color.** RGB images (``SamplesPerPixel`` 3; YCbCr is converted to RGB) are used as they are when 8-bit; 16-bit
   color goes through the same window choice. PALETTE COLOR images are expanded through their palette.
5. **Grayscale** is replicated to three channels.

Refused, with a :class:`~graft.errors.DataError` that says why and what to do (and never quotes patient data such as
names, IDs or dates; only technical attributes):

* multi-frame files (``NumberOfFrames`` > 1): Graft reads one 2-D image per file, so save one frame per file;
* files without pixel data (no (7FE0,0010) element), e.g. structured reports;
* compressed transfer syntaxes that the installed pixel handlers cannot decode (the message names the syntax and the
  packages that decode it);
* any other pixel decoding failure.

**Percentile window.** Images that carry no window of their own (DICOM without window tags, 16-bit and 32-bit
grayscale PNG/TIFF, ``uint16`` arrays) are mapped linearly from their 0.5th percentile (rounded down to a pixel value)
to their 99.5th percentile (rounded up to a pixel value) onto 0..255, values outside clipped. A few hot or dead
pixels therefore do not crush the contrast of the rest; images of fewer than 200 pixels keep their own min/max.
A constant image becomes black; NaN becomes 0.
"""

from __future__ import annotations

import io
import re
from pathlib import PurePath
from types import ModuleType
from typing import Any

import numpy as np

from graft.errors import DECODER_ERRORS, ConfigError, DataError

__all__ = [
    "DICOM_EXTENSIONS",
    "decode_dicom",
    "is_dicom",
    "percentile_window",
    "robust_to_uint8",
    "window_to_uint8",
]

DICOM_EXTENSIONS: frozenset[str] = frozenset({".dcm", ".dicom"})
"""File extensions (lower-case, with the dot) read as DICOM whatever their content."""

_MAGIC = b"DICM"
_MAGIC_OFFSET = 128
_LOW_PERMILLE = 5  # 0.5th percentile
_HIGH_PERMILLE = 995  # 99.5th percentile
_NEEDS_PYDICOM = 'reading DICOM needs pydicom: pip install "graft[medical]"'
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_IDENTIFYING = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "OtherPatientIDs",
    "OtherPatientNames",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StudyID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "StudyTime",
)
_MAX_DETAIL = 300


# --------------------------------------------------------------------------------------------------------
# Windowing shared with 16-bit PNG/TIFF and uint16 arrays
# --------------------------------------------------------------------------------------------------------


def _dicom_errors() -> tuple[type[BaseException], ...]:
    """What reading or decoding a damaged DICOM raises: the decoders' usual errors and pydicom's own two."""
    from pydicom.errors import BytesLengthException, InvalidDicomError

    return (*DECODER_ERRORS, InvalidDicomError, BytesLengthException)


def percentile_window(values: np.ndarray) -> tuple[float, float] | None:
    """Return the robust window ``(low, high)`` of an image: its 0.5th and 99.5th percentiles.

    The low end is rounded down and the high end up to actual pixel values (numpy's ``"lower"`` / ``"higher"``
    percentile methods), so images of fewer than 200 pixels get their own min/max.

    Args:
        values: Pixel values of any shape and numeric dtype; non-finite values are ignored.

    Returns:
        ``(low, high)``, or ``None`` when there is no finite value.
    """
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]
    n = flat.size
    if n == 0:
        return None
    k_lo = (_LOW_PERMILLE * (n - 1)) // 1000
    k_hi = -((-_HIGH_PERMILLE * (n - 1)) // 1000)
    part = np.partition(flat, (k_lo, k_hi))
    return float(part[k_lo]), float(part[k_hi])


def window_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low..high`` linearly onto 0..255, clipping outside values (``high <= low`` or NaN → 0).

    Args:
        values: Pixel values of any shape.
        low: Value drawn black.
        high: Value drawn white.

    Returns:
        A ``uint8`` array of the same shape.
    """
    a = np.asarray(values, dtype=np.float64)
    if not high > low:
        return np.zeros(a.shape, np.uint8)
    out = (a - low) * (255.0 / (high - low))
    out = np.clip(np.nan_to_num(out, nan=0.0, posinf=255.0, neginf=0.0), 0.0, 255.0)
    return np.rint(out).astype(np.uint8)


def robust_to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale an image to ``uint8`` through its :func:`percentile_window` (all-NaN or constant input → zeros).

    Args:
        values: Pixel values of any shape (channels, if any, share one window).

    Returns:
        A ``uint8`` array of the same shape.
    """
    window = percentile_window(values)
    if window is None:
        return np.zeros(np.shape(values), np.uint8)
    return window_to_uint8(values, *window)


def _voi_to_uint8(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Apply a DICOM VOI window (PS3.3 C.11.2.1.2) with an output range of 0..255."""
    x = np.asarray(values, dtype=np.float64)
    if function == "LINEAR_EXACT":
        y = (x - center) / width + 0.5
    elif function == "SIGMOID":
        y = 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - center) / width, -700.0, 700.0)))
    elif width <= 1.0:
        y = (x > center - 0.5).astype(np.float64)
    else:
        y = (x - (center - 0.5)) / (width - 1.0) + 0.5
    return np.rint(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------------------


def is_dicom(name: str, data: bytes) -> bool:
    """Tell whether a file is to be read as DICOM: by its extension or its ``DICM`` marker at byte 128.

    Args:
        name: The file's path or name.
        data: The file's bytes (only bytes 128..131 are looked at).

    Returns:
        ``True`` for a ``.dcm`` / ``.dicom`` name or a ``DICM`` marker.
    """
    return PurePath(name).suffix.lower() in DICOM_EXTENSIONS or data[_MAGIC_OFFSET : _MAGIC_OFFSET + 4] == _MAGIC


def decode_dicom(data: bytes, *, window: tuple[float, float] | None = None) -> np.ndarray:
    """Decode one single-frame DICOM file into a ``uint8`` RGB array (not resized).

    Grayscale: Modality LUT (``RescaleSlope``/``RescaleIntercept``) in float64, then the file's
    ``WindowCenter``/``WindowWidth`` (first value; DICOM VOI LUT Function, ``LINEAR`` by default), else its VOI LUT
    Sequence (first table), else ``window``, else the 0.5th–99.5th percentile window, onto 0..255; MONOCHROME1 is
    inverted afterwards; the gray level is replicated to three channels. Color: YCbCr is converted to RGB, palettes
    are expanded, 8-bit RGB is kept as is and 16-bit RGB goes through the same window choice (without the VOI LUT).
    Multi-frame files are refused: save one frame per file.

    Args:
        data: The file's bytes.
        window: ``(center, width)`` in modality units (e.g. ``(40, 400)`` for a CT soft-tissue window), used for
            files that carry no window of their own. ``None`` uses the percentile window.

    Returns:
        A C-contiguous ``uint8`` array of shape ``(H, W, 3)``.

    Raises:
        DataError: pydicom is missing, or the file is not DICOM, has no pixel data, is multi-frame, is compressed
            with a transfer syntax the installed handlers cannot decode, or its pixel data cannot be decoded.
            Messages quote only technical attributes, never patient data.
        ConfigError: ``window`` is not a ``(center, width)`` pair with a positive width.
    """
    caller_window = _check_window(window)
    pydicom = _import_pydicom()
    ds = _read_dataset(pydicom, data)
    try:
        return _pixels(ds, caller_window)
    except (DataError, MemoryError):
        raise
    except _dicom_errors() as exc:  # any pydicom decoding failure becomes one clear message
        raise DataError(f"cannot decode the DICOM pixel data ({_detail(exc, ds)})") from None


def _check_window(window: Any) -> tuple[float, float] | None:
    if window is None:
        return None
    try:
        center, width = (float(v) for v in window)
    except (TypeError, ValueError):
        raise ConfigError(f"window must be a (center, width) pair of numbers; got {window!r}.") from None
    if not (np.isfinite(center) and np.isfinite(width) and width > 0):
        raise ConfigError(f"window must have a finite center and a positive width; got {window!r}.")
    return center, width


def _import_pydicom() -> ModuleType:
    try:
        import pydicom
        import pydicom.pixels  # noqa: F401 - the pixel handlers live there
    except ImportError:
        raise DataError(_NEEDS_PYDICOM) from None
    return pydicom


def _read_dataset(pydicom: ModuleType, data: bytes) -> Any:
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError:
        pass  # no preamble and DICM marker: maybe a bare data set, read below
    except MemoryError:
        raise
    except _dicom_errors() as exc:  # a damaged header is reported, not raised
        raise DataError(f"not a readable DICOM file ({_detail(exc, None)})") from None
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        usable = "Rows" in ds and any(k in ds for k in _PIXEL_KEYWORDS)
    except MemoryError:
        raise
    except _dicom_errors():  # not DICOM at all
        usable = False
    if not usable:
        raise DataError(
            f"not a DICOM file: no 'DICM' marker at byte {_MAGIC_OFFSET} and no DICOM image elements could be read "
            f"({len(data)} bytes). Check the file, or rename it if it is not DICOM."
        )
    return ds


def _int_attr(ds: Any, keyword: str, default: int) -> int:
    value = ds.get(keyword, None)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"DICOM attribute {keyword} has an invalid value ({str(value)[:40]!r}).") from None


def _transfer_syntax(ds: Any) -> Any:
    from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID", None) if meta is not None else None
    if uid:
        return UID(str(uid))
    implicit, _little = getattr(ds, "original_encoding", (True, True))
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def _install_hint(uid: Any) -> str:
    name = uid.name.upper()
    if "2000" in name:
        plugin = "pylibjpeg-openjpeg"
    elif "RLE" in name:
        plugin = "pylibjpeg-rle"
    else:
        plugin = "pylibjpeg-libjpeg"
    return f"pip install pylibjpeg {plugin} (or pip install python-gdcm)"


def _decode_array(ds: Any) -> tuple[np.ndarray, dict[str, Any]]:
    from pydicom.pixels import get_decoder

    uid = _transfer_syntax(ds)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise DataError(
            f"transfer syntax '{uid.name}' ({uid}) is not supported by pydicom's pixel decoders. Convert the file "
            "to an uncompressed transfer syntax (e.g. with gdcmconv --raw) first."
        ) from None
    if uid.is_compressed and not decoder.is_available:
        raise DataError(
            f"pixel data compressed as '{uid.name}' ({uid}) cannot be decoded: no installed handler supports it. "
            f"Install one: {_install_hint(uid)}."
        )
    try:
        arr, meta = decoder.as_array(ds)
    except (DataError, MemoryError):
        raise
    except _dicom_errors() as exc:  # reported with the transfer syntax that failed
        if not uid.is_compressed:
            raise
        raise DataError(
            f"cannot decode pixel data compressed as '{uid.name}' ({uid}): {_detail(exc, ds)}. The data may be "
            f"damaged, or the installed handlers may not support it: {_install_hint(uid)}."
        ) from None
    return arr, meta


def _pixels(ds: Any, caller_window: tuple[float, float] | None) -> np.ndarray:
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise DataError(
            "DICOM file has no pixel data (no (7FE0,0010) element): it is not an image (e.g. a structured report or "
            "a presentation state). Leave it out of the image data."
        )
    frames = _int_attr(ds, "NumberOfFrames", 1)
    if frames > 1:
        raise DataError(
            f"multi-frame DICOM ({frames} frames) is not supported: Graft reads one 2-D image per file. Save one "
            "frame per file (e.g. with pydicom: ds.pixel_array[i] for each frame i) and give each file its own label."
        )
    arr, meta = _decode_array(ds)
    if arr.ndim == 4 and arr.shape[0] == 1:  # a single frame returned with a frame axis
        arr = arr[0]
    samples = int(meta.get("samples_per_pixel", _int_attr(ds, "SamplesPerPixel", 1)))
    photometric = str(meta.get("photometric_interpretation", ds.get("PhotometricInterpretation", ""))).strip().upper()
    bits = int(meta.get("bits_allocated", _int_attr(ds, "BitsAllocated", 8)))
    if samples == 1 and arr.ndim == 2:
        return _grayscale(ds, arr, photometric, caller_window)
    if samples == 3 and arr.ndim == 3 and arr.shape[2] == 3:
        return _color(ds, arr, photometric, bits, caller_window)
    raise DataError(
        f"unsupported DICOM image layout: SamplesPerPixel {samples}, PhotometricInterpretation '{photometric}', "
        f"decoded shape {arr.shape}. Graft reads single-frame grayscale or 3-sample color images."
    )


def _grayscale(ds: Any, arr: np.ndarray, photometric: str, caller_window: tuple[float, float] | None) -> np.ndarray:
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        rgb = rgb if rgb.dtype == np.uint8 else np.rint(rgb.astype(np.float64) / 257.0).astype(np.uint8)
        return np.ascontiguousarray(rgb)
    try:
        values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"invalid Modality LUT / RescaleSlope / RescaleIntercept ({_detail(exc, ds)})") from None
    gray = _window(ds, values, caller_window, voi_lut=True)
    if photometric == "MONOCHROME1":
        gray = 255 - gray
    return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))


def _color(
    ds: Any, arr: np.ndarray, photometric: str, bits: int, caller_window: tuple[float, float] | None
) -> np.ndarray:
    from pydicom.pixels import convert_color_space

    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        arr = convert_color_space(arr, photometric, "RGB")
    if bits <= 8:
        return np.ascontiguousarray(arr.astype(np.uint8, copy=False))
    return np.ascontiguousarray(_window(ds, arr.astype(np.float64), caller_window))


def _first_float(ds: Any, keyword: str) -> float | None:
    value = ds.get(keyword, None)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, bytes, int, float)):
        try:
            value = next(iter(value))
        except (TypeError, StopIteration):
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _window(
    ds: Any, values: np.ndarray, caller_window: tuple[float, float] | None, *, voi_lut: bool = False
) -> np.ndarray:
    center, width = _first_float(ds, "WindowCenter"), _first_float(ds, "WindowWidth")
    function = str(ds.get("VOILUTFunction", "") or "LINEAR").strip().upper()
    if center is not None and width is not None and (width >= 1.0 or (function != "LINEAR" and width > 0)):
        return _voi_to_uint8(values, center, width, function)
    table = _voi_lut(ds, values) if voi_lut else None  # grayscale only, as in the standard
    if table is not None:
        return table
    if caller_window is not None:
        return _voi_to_uint8(values, *caller_window)
    return robust_to_uint8(values)


def _voi_lut(ds: Any, values: np.ndarray) -> np.ndarray | None:
    """The first table of the file's VOI LUT Sequence (PS3.3 C.11.2.1.1) applied to ``values``, scaled to 0..255;
    ``None`` without one. Not pydicom's ``apply_voi``: it indexes an 8-bit table of more than 256 entries in ``uint8``,
    so the indices wrap (pydicom 3.0)."""
    sequence = ds.get("VOILUTSequence", None)
    if not sequence:
        return None
    item = sequence[0]
    try:
        entries, first, bits = (int(v) for v in item.LUTDescriptor)
        data = item.LUTData
        if isinstance(data, bytes):
            little = getattr(ds, "original_encoding", (None, True))[1] is not False
            lut = np.frombuffer(data, "<u2" if little else ">u2").astype(np.int64)
        else:
            lut = np.asarray([data] if isinstance(data, int) else list(data), dtype=np.int64)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"invalid VOI LUT Sequence: unreadable LUT Descriptor or Data ({_detail(exc, ds)})") from None
    entries = entries or 65536  # 0 means 2**16 entries
    if first >= 32768 and int(ds.get("PixelRepresentation", 0) or 0) == 1:
        first -= 65536  # the first input value of a signed image, read as unsigned
    if entries < 1 or len(lut) < entries or not 8 <= bits <= 16 or lut.min() < 0:
        raise DataError(
            f"invalid VOI LUT Sequence: LUT Descriptor says {entries} entries of {bits} bits, LUT Data has {len(lut)} "
            "entries. Fix the file's VOI LUT, or remove the VOI LUT Sequence so that a window is used."
        )
    lut = lut[:entries]
    index = np.clip(np.rint(np.nan_to_num(values)) - first, 0, entries - 1).astype(np.int64)
    top = float(2 ** max(bits, int(lut.max()).bit_length()) - 1)  # data past the nominal depth: its own
    return np.rint(lut[index] * (255.0 / top)).astype(np.uint8)


def _identifying_values(ds: Any) -> list[str]:
    """Raw strings of the identifying elements present (read without converting them), longest first."""
    from pydicom.datadict import tag_for_keyword
    from pydicom.multival import MultiValue

    found: set[str] = set()
    for keyword in _IDENTIFYING:
        tag = tag_for_keyword(keyword)
        try:
            elem = ds.get_item(tag) if tag is not None else None
        except _dicom_errors():  # a damaged element: nothing to redact from it
            elem = None
        value = getattr(elem, "value", None)
        if value is None:
            continue
        items = list(value) if isinstance(value, MultiValue) else [value]
        for item in items:
            text = item.decode("latin-1", "replace") if isinstance(item, bytes) else str(item)
            for part in [*re.split(r"[\\^=]", text), text]:
                part = part.strip(" \x00")
                if len(part) >= 3:
                    found.add(part)
    return sorted(found, key=len, reverse=True)


def _detail(exc: BaseException, ds: Any) -> str:
    """One line describing ``exc``: object addresses dropped, identifying values redacted, length capped."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "<data>", text)
    if ds is not None:
        for value in _identifying_values(ds):
            text = text.replace(value, "<redacted>")
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
