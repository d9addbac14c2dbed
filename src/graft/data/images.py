"""Find, decode and check image data sets.

Image data reaches Graft as a folder of class sub-folders, a folder of split folders, a CSV of
``path,label`` rows, a list of file paths, a list of PIL images, or a numpy array. :func:`find_splits`
turns a folder or CSV into per-split ``(paths, labels)`` lists; :func:`load_images` decodes any of the
inputs into uniform ``uint8`` RGB arrays resized so that the shortest side is ``short_side`` pixels.
:func:`~graft.data.labels.check_labels` and :func:`~graft.data.labels.stratified_split` catch label problems before
any training starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import numpy as np
from PIL import Image

from graft.data.image_decode import (
    _KNOWN,
    _array_digest,
    _array_scale,
    _check_image_shape,
    _decode_array,
    _decode_file,
    _decode_pil,
    _Decoded,
)
from graft.data.image_folders import IMAGE_EXTENSIONS, find_splits
from graft.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageSet",
    "center_crop",
    "ImageInput",
    "find_splits",
    "load_images",
]

ImageInput: TypeAlias = "str | os.PathLike[str] | Sequence[Any] | np.ndarray"
"""What :func:`load_images` accepts as ``X``."""

_MAX_LISTED = 20
_SKIP_HINT = (
    "Fix or remove these files, or leave them out: skip_invalid=True in Python, --skip-invalid with graft train; "
    "graft predict --output FILE skips and lists them."
)

_T = TypeVar("_T")
_R = TypeVar("_R")


# --------------------------------------------------------------------------------------------------------
# Result container
# --------------------------------------------------------------------------------------------------------


@dataclass
class ImageSet:
    """Decoded images with their labels and provenance.

    Attributes:
        images: ``uint8`` arrays of shape ``(H, W, 3)`` (RGB, C-contiguous), shortest side resized to the
            requested ``short_side`` with the aspect ratio kept; ``None`` for files skipped by ``known``.
        labels: One label per image as a string, or ``None`` when no labels were given.
        sources: Where each image came from: the file path as given, or ``"array[i]"`` / ``"image[i]"``
            for in-memory inputs.
        hashes: Hex BLAKE2b digest (16 bytes) of each file's raw bytes, or of the raw pixel bytes plus
            shape for in-memory inputs, computed before any resizing. Equal hashes mean duplicate inputs.
        skipped: ``(source, reason)`` for every input left out because ``skip_invalid=True``.
    """

    images: list[np.ndarray | None]
    labels: list[str] | None
    sources: list[str]
    hashes: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.images)
        if len(self.sources) != n or len(self.hashes) != n or (self.labels is not None and len(self.labels) != n):
            raise ValueError(
                f"ImageSet fields disagree in length: {n} images, {len(self.sources)} sources, "
                f"{len(self.hashes)} hashes, {'no' if self.labels is None else len(self.labels)} labels"
            )

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.images)

    def subset(self, idx: Sequence[int]) -> ImageSet:
        """Return a new set holding only the items at ``idx``, in that order.

        The arrays are shared, not copied. ``skipped`` is carried over unchanged.

        Args:
            idx: Positions to keep (Python or numpy integers).

        Returns:
            The selected items as a new :class:`ImageSet`.
        """
        positions = [int(i) for i in idx]
        return ImageSet(
            images=[self.images[i] for i in positions],
            labels=None if self.labels is None else [self.labels[i] for i in positions],
            sources=[self.sources[i] for i in positions],
            hashes=[self.hashes[i] for i in positions],
            skipped=list(self.skipped),
        )


# --------------------------------------------------------------------------------------------------------
# Finding files
# --------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------
# load_images
# --------------------------------------------------------------------------------------------------------


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` x ``size`` crop of a pre-resized uint8 image (a view); an image smaller than the crop (only
    with odd preprocessing) is resized to it instead."""
    h, w = image.shape[:2]
    top, left = max(0, int(round((h - size) / 2.0))), max(0, int(round((w - size) / 2.0)))
    crop = image[top : top + size, left : left + size]
    if crop.shape[0] != size or crop.shape[1] != size:
        crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))
    return crop


def _normalize_labels(y: Any, n: int) -> list[str]:
    if isinstance(y, (str, bytes)):
        raise DataError(f"y must be a list of labels, one per image, not a single string ({y!r}).")
    values = y.tolist() if isinstance(y, np.ndarray) else list(y)
    if isinstance(y, np.ndarray) and y.ndim != 1:
        raise DataError(f"y must be one-dimensional (one label per image); got shape {y.shape}.")
    if len(values) != n:
        raise DataError(
            f"Got {n} images but {len(values)} labels (y). Give exactly one label per image, in the same order."
        )
    labels: list[str] = []
    for i, value in enumerate(values):
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType":
            raise DataError(f"Label y[{i}] is missing ({value!r}). Give every image a label or drop it.")
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))
        elif isinstance(value, bytes):
            text = value.decode("utf-8", "replace")
        else:
            text = str(value)
        if not text.strip():
            raise DataError(f"Label y[{i}] is an empty string. Give every image a label or drop it.")
        labels.append(text)
    return labels


def _is_pathlike(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _parallel_map(fn: Callable[[_T], _R], items: Sequence[_T], workers: int) -> list[_R]:
    if workers <= 1 or len(items) < 4:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="graft-decode") as pool:
        return list(pool.map(fn, items))


def load_images(
    X: ImageInput,
    y: Any = None,
    *,
    short_side: int | None,
    skip_invalid: bool = False,
    workers: int = 2,
    known: Callable[[str], bool] | None = None,
) -> ImageSet:
    """Decode images from files, PIL images or arrays into uniform uint8 RGB arrays.

    Args:
        X: One of

            * a folder of class sub-folders or a CSV of ``path,label`` (labels come from it; ``y`` must be
              ``None``). A folder with train/val/test sub-folders or a CSV with val/test rows is refused:
              call :func:`find_splits` and load each split's paths;
            * a list/tuple of file paths;
            * a list of ``PIL.Image.Image`` objects (they are not modified);
            * a list of numpy arrays ``(H, W)`` / ``(H, W, C)`` (sizes may differ);
            * a numpy array ``(N, H, W)`` or ``(N, H, W, C)`` with ``C`` in 1, 3, 4, of dtype uint8, uint16
              (windowed to its 0.5th-99.5th percentiles) or float (values in [0, 1] or [0, 255]).
        y: Labels, one per image (any array-like; converted to ``str``, integral floats as ints), or ``None``.
        short_side: Resize so the shortest side is this many pixels (bicubic, aspect kept; small images are
            upscaled). ``None`` keeps the original size.
        skip_invalid: Leave out unreadable files and record them in :attr:`ImageSet.skipped` instead of
            raising.
        workers: Decoding threads.
        known: For file inputs: a predicate on the content hash; files it accepts are read and hashed but
            not decoded, and their entry in :attr:`ImageSet.images` is ``None``. Used to skip decoding
            files whose embeddings are already cached (a file is only cached after it decoded cleanly).

    Returns:
        The decoded :class:`ImageSet`, in input order.

    Raises:
        DataError: Unreadable files (all of them listed in one message, unless ``skip_invalid``), a bad
            input type, shape, dtype or value range, or labels that are missing or do not match ``X``.
    """
    if short_side is not None and (isinstance(short_side, bool) or not isinstance(short_side, int) or short_side < 1):
        raise DataError(f"short_side must be a positive integer or None; got {short_side!r}.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DataError(f"workers must be a positive integer; got {workers!r}.")

    if _is_pathlike(X):
        if y is not None:
            raise DataError(
                f"Labels come from '{X}' itself; pass y=None, or pass a list of file paths together with y."
            )
        sources, labels = _paths_from_location(X)  # type: ignore[arg-type]
        return _load_files(sources, labels, short_side, skip_invalid, workers, known)

    if isinstance(X, np.ndarray) and X.dtype.kind in "UO" and X.ndim == 1:
        X = X.tolist()

    if isinstance(X, np.ndarray):
        where = f"The image array (shape {X.shape}, dtype {X.dtype})"
        _check_image_shape(X.shape, where, batched=True)
        labels = None if y is None else _normalize_labels(y, X.shape[0])
        scale = _array_scale(X, where)
        arrays = [(X[i], scale) for i in range(X.shape[0])]
        return _load_arrays(arrays, labels, short_side, workers)

    if not isinstance(X, (list, tuple)):
        raise DataError(
            f"X has unsupported type {type(X).__name__}. Give a folder or CSV path, a list of file paths, "
            "a list of PIL images, or a numpy array (N, H, W[, C])."
        )
    if not X:
        raise DataError("X is empty: there are no images to load.")
    n = len(X)
    labels = None if y is None else _normalize_labels(y, n)
    first = X[0]
    if _is_pathlike(first):
        kind, check = "file paths", _is_pathlike
    elif isinstance(first, Image.Image):
        kind, check = "PIL images", lambda v: isinstance(v, Image.Image)
    elif isinstance(first, np.ndarray):
        kind, check = "numpy arrays", lambda v: isinstance(v, np.ndarray)
    else:
        raise DataError(
            f"X[0] has unsupported type {type(first).__name__}. Give file paths, PIL images or numpy arrays."
        )
    for i, value in enumerate(X):
        if not check(value):
            raise DataError(
                f"X mixes input types: X[0] is one of {kind} but X[{i}] is a {type(value).__name__}. "
                "Give one kind of input."
            )

    if kind == "file paths":
        return _load_files([os.fspath(p) for p in X], labels, short_side, skip_invalid, workers, known)

    if kind == "numpy arrays":
        arrays = []
        for i, a in enumerate(X):
            where = f"X[{i}] (shape {a.shape}, dtype {a.dtype})"
            _check_image_shape(a.shape, where, batched=False)
            arrays.append((a, _array_scale(a, where)))
        return _load_arrays(arrays, labels, short_side, workers)

    sources = [f"image[{i}]" for i in range(n)]
    results = _parallel_map(lambda im: _decode_pil(im, short_side), list(X), workers)
    return _collect(results, sources, labels, skip_invalid, "images")


def _load_arrays(
    arrays: list[tuple[np.ndarray, float | None]],
    labels: list[str] | None,
    short_side: int | None,
    workers: int,
) -> ImageSet:
    """Convert validated in-memory arrays; hashes cover the raw pixels and shape as given."""
    return ImageSet(
        images=_parallel_map(lambda item: _decode_array(item, short_side), arrays, workers),
        labels=labels,
        sources=[f"array[{i}]" for i in range(len(arrays))],
        hashes=[_array_digest(a) for a, _ in arrays],
    )


def _paths_from_location(X: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    root = Path(X)
    if root.is_file() and root.suffix.lower() in IMAGE_EXTENSIONS:
        raise DataError(
            f"'{X}' is a single image file; load_images takes a folder, a CSV, or a list of image paths. "
            f"Pass ['{X}'] to load just this image."
        )
    splits = find_splits(X)
    extra = [name for name in splits if name != "train"]
    if extra:
        kind = "split sub-folders" if root.is_dir() else "rows for several splits"
        raise DataError(
            f"'{X}' has {kind} (train, {', '.join(extra)}); load_images takes one split at a time. Call "
            f"graft.data.find_splits('{X}') and load each split's paths, or point at the training data only."
        )
    return splits["train"]


def _load_files(
    sources: list[str],
    labels: list[str] | None,
    short_side: int | None,
    skip_invalid: bool,
    workers: int,
    known: Callable[[str], bool] | None = None,
) -> ImageSet:
    results = _parallel_map(lambda s: _decode_file(s, short_side, known), sources, workers)
    return _collect(results, sources, labels, skip_invalid, "files")


def _collect(
    results: list[_Decoded], sources: list[str], labels: list[str] | None, skip_invalid: bool, noun: str
) -> ImageSet:
    bad = [(src, r.reason) for src, r in zip(sources, results, strict=True) if r.image is None and r.reason != _KNOWN]
    if bad and (not skip_invalid or len(bad) == len(results)):
        listed = "\n".join(f"  - {src}: {reason}" for src, reason in bad[:_MAX_LISTED])
        more = f"\n  ... and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        if skip_invalid:
            raise DataError(
                f"None of the {len(results)} {noun} could be read, so nothing is left to load:\n"
                f"{listed}{more}\nCheck that the paths point at image files."
            )
        raise DataError(f"Could not read {len(bad)} of {len(results)} {noun}:\n{listed}{more}\n{_SKIP_HINT}")
    keep = [i for i, r in enumerate(results) if r.image is not None or r.reason == _KNOWN]
    return ImageSet(
        images=[results[i].image for i in keep],  # type: ignore[misc]
        labels=None if labels is None else [labels[i] for i in keep],
        sources=[sources[i] for i in keep],
        hashes=[results[i].digest for i in keep],
        skipped=bad,
    )
