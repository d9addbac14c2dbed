"""Find, decode and check image data sets.

Image data reaches Graft as a folder of class sub-folders, a folder of split folders, a CSV of
``path,label`` rows, a list of file paths, a list of PIL images, or a numpy array. :func:`find_splits`
turns a folder or CSV into per-split ``(paths, labels)`` lists; :func:`load_images` decodes any of the
inputs into uniform ``uint8`` RGB arrays resized so that the shortest side is ``short_side`` pixels.
:func:`check_labels` and :func:`stratified_split` catch label problems before any training starts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from graft.errors import DataError, did_you_mean

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageSet",
    "ImageInput",
    "find_splits",
    "load_images",
    "check_labels",
    "stratified_split",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
"""File extensions (lower-case, with the dot) that folder scans treat as images."""

ImageInput: TypeAlias = "str | os.PathLike[str] | Sequence[Any] | np.ndarray"
"""What :func:`load_images` accepts as ``X``."""

_SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
_SPLIT_ORDER = ("train", "val", "test")
_PATH_COLUMNS = ("path", "file", "filename", "image", "filepath")
_LABEL_COLUMNS = ("label", "class", "target", "y", "category")
_SPLIT_COLUMNS = ("split",)
_MAX_LISTED = 20
_LAYOUT_HINT = "Give a folder of class sub-folders (root/<class>/*.jpg) or a CSV of path,label."
_SKIP_HINT = "Fix or remove these files, or pass skip_invalid=True (CLI: --skip-invalid) to leave them out."
_HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa", "P"})

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


def find_splits(path: str | os.PathLike[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Find the images and labels of each split in a folder or CSV.

    Supported layouts:

    * ``root/{train,val,test}/<class>/<images>``; ``valid``/``validation`` count as ``val``,
      ``training`` as ``train`` and ``testing`` as ``test``. ``train`` is required.
    * ``root/<class>/<images>``: everything is ``train``.
    * A CSV file with a header row. The path column is the first of ``path``, ``file``, ``filename``,
      ``image``, ``filepath`` and the label column the first of ``label``, ``class``, ``target``, ``y``,
      ``category`` (case-insensitive). Relative paths resolve against the CSV's folder. An optional
      ``split`` column with values ``train``/``val``/``test`` (or their aliases) splits the rows.

    In folders, class folders and files are sorted by name; hidden entries (starting with ``.``) and
    files without an image extension (:data:`IMAGE_EXTENSIONS`) are ignored. CSV rows keep file order.

    Args:
        path: A folder or a CSV file.

    Returns:
        ``{"train": (paths, labels), "val": ..., "test": ...}`` with only the splits present, in that order.

    Raises:
        DataError: ``path`` does not exist, the layout is not recognised, a class folder holds no images,
            or the CSV lacks a path/label column or has an empty cell or unknown split value.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"'{path}' does not exist. {_LAYOUT_HINT}")
    if root.is_file():
        if root.suffix.lower() not in {".csv", ".tsv", ".txt"}:
            raise DataError(f"'{path}' is a file but not a CSV (it ends in '{root.suffix}'). {_LAYOUT_HINT}")
        return _read_csv(root, str(path))
    split_dirs = _split_dirs(root)
    if split_dirs:
        if "train" not in split_dirs:
            found = ", ".join(f"'{d.name}'" for d in split_dirs.values())
            raise DataError(
                f"'{path}' has split folders ({found}) but no 'train' folder. Add '{Path(path) / 'train'}' "
                "with one sub-folder per class, or give the training folder itself."
            )
        return {
            name: _scan_class_folders(split_dirs[name], Path(path) / split_dirs[name].name)
            for name in _SPLIT_ORDER
            if name in split_dirs
        }
    return {"train": _scan_class_folders(root, Path(path))}


def _visible_subdirs(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as it:
        entries = [e for e in it if not e.name.startswith(".") and e.is_dir()]
    return sorted(entries, key=lambda e: e.name)


def _split_dirs(root: Path) -> dict[str, Path]:
    """Return ``{canonical split: folder}`` if ``root`` uses the split layout, else ``{}``.

    The split layout applies when at least one split-named folder holds sub-folders (class folders); a class
    that happens to be called ``test`` and holds images directly keeps the class layout.
    """
    named = [(e, _SPLIT_ALIASES[e.name.lower()]) for e in _visible_subdirs(root) if e.name.lower() in _SPLIT_ALIASES]
    if not any(_visible_subdirs(Path(e.path)) for e, _ in named):
        return {}
    found: dict[str, Path] = {}
    for entry, canonical in named:
        if canonical in found:
            raise DataError(
                f"'{root}' has two folders for the {canonical} split: '{found[canonical].name}' and "
                f"'{entry.name}'. Merge them or rename one."
            )
        found[canonical] = Path(entry.path)
    return found


def _scan_class_folders(folder: Path, shown: Path) -> tuple[list[str], list[str]]:
    """List ``shown/<class>/<image>`` paths and their class names for a class-folder layout."""
    classes = _visible_subdirs(folder)
    if not classes:
        has_images = any(_is_image_name(name) for name in os.listdir(folder))
        what = "image files but no class sub-folders" if has_images else "no class sub-folders"
        raise DataError(
            f"'{shown}' contains {what}. Put each class's images in its own sub-folder "
            f"('{shown / '<class>'}/*.jpg'), or give a CSV of path,label."
        )
    paths: list[str] = []
    labels: list[str] = []
    for cls in classes:
        with os.scandir(cls.path) as it:
            names = sorted(e.name for e in it if _is_image_name(e.name) and e.is_file())
        if not names:
            raise DataError(
                f"Class folder '{shown / cls.name}' contains no images (looked for "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}). Add images to it or remove the folder."
            )
        paths.extend(str(shown / cls.name / name) for name in names)
        labels.extend([cls.name] * len(names))
    return paths, labels


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _pick_column(columns: dict[str, str], candidates: Sequence[str]) -> str | None:
    for candidate in candidates:
        if candidate in columns:
            return columns[candidate]
    return None


def _read_csv(csv_path: Path, shown: str) -> dict[str, tuple[list[str], list[str]]]:
    """Read a ``path,label[,split]`` CSV into per-split lists."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"'{shown}' is not UTF-8 text ({exc}). Save the CSV as UTF-8 and try again.") from exc
    first_line = text.split("\n", 1)[0]
    delimiter = next((d for d in (",", "\t", ";") if d in first_line), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)
    if header is None:
        raise DataError(f"CSV '{shown}' is empty. Write a header row 'path,label' and one row per image.")
    columns = {name.strip().lower(): name.strip() for name in header}
    path_col = _pick_column(columns, _PATH_COLUMNS)
    label_col = _pick_column(columns, _LABEL_COLUMNS)
    if path_col is None or label_col is None:
        found = ", ".join(f"'{c.strip()}'" for c in header)
        missing = "path" if path_col is None else "label"
        wanted = _PATH_COLUMNS if path_col is None else _LABEL_COLUMNS
        raise DataError(
            f"CSV '{shown}' has no {missing} column; columns found: {found}. Name the {missing} column "
            f"one of {', '.join(wanted)} (the first row must be a header)."
        )
    split_col = _pick_column(columns, _SPLIT_COLUMNS)
    index = {name.strip(): i for i, name in reversed(list(enumerate(header)))}
    path_i, label_i = index[path_col], index[label_col]
    split_i = None if split_col is None else index[split_col]
    base = csv_path.parent

    out: dict[str, tuple[list[str], list[str]]] = {}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num

        def cell(i: int, what: str, row: list[str] = row, line: int = line) -> str:
            value = row[i].strip() if i < len(row) else ""
            if not value:
                raise DataError(f"CSV '{shown}' line {line}: the {what} cell is empty. Fill it in or delete the row.")
            return value

        file_value = cell(path_i, f"'{path_col}'")
        label = cell(label_i, f"'{label_col}'")
        split = "train"
        if split_i is not None:
            raw = cell(split_i, f"'{split_col}'")
            canonical = _SPLIT_ALIASES.get(raw.lower())
            if canonical is None:
                raise DataError(
                    f"CSV '{shown}' line {line}: unknown split '{raw}'."
                    f"{did_you_mean(raw.lower(), _SPLIT_ALIASES)} Use train, val or test."
                )
            split = canonical
        file_path = Path(file_value).expanduser()
        resolved = file_path if file_path.is_absolute() else base / file_path
        paths, labels = out.setdefault(split, ([], []))
        paths.append(str(resolved))
        labels.append(label)
    if not out:
        raise DataError(f"CSV '{shown}' has a header but no rows. Add one 'path,label' row per image.")
    if "train" not in out:
        raise DataError(
            f"CSV '{shown}' has no rows with split 'train' (found: {', '.join(out)}). "
            "Mark the training rows with split=train."
        )
    return {name: out[name] for name in _SPLIT_ORDER if name in out}


# --------------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------------


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


def _scale_to_uint8(a: np.ndarray) -> np.ndarray:
    """Stretch an array linearly from its own min/max to 0..255 (constant or all-NaN input → zeros)."""
    a = a.astype(np.float64, copy=False)
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, np.uint8)
    lo, hi = float(a[finite].min()), float(a[finite].max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    out = np.rint((np.where(finite, a, lo) - lo) * (255.0 / (hi - lo)))
    return out.astype(np.uint8)


def _white_composite(rgba: np.ndarray) -> np.ndarray:
    """Composite an ``(H, W, 4)`` uint8 array over white and return ``(H, W, 3)`` uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) * (1.0 / 255.0)
    rgb = rgba[..., :3].astype(np.float32)
    return np.rint(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def _pil_to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB (alpha over white, high-bit grey stretched by its own min/max)."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _HIGH_BIT_MODES:
        grey = _scale_to_uint8(np.asarray(im))
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
    except Exception as exc:  # noqa: BLE001 - every decoder failure is reported per file
        text = str(exc) or type(exc).__name__
        kind = "truncated image" if "truncat" in text.lower() else "corrupt image data"
        return _Decoded(None, digest, f"{kind} ({text})")


def _decode_pil(im: Image.Image, short_side: int | None) -> _Decoded:
    try:
        digest = _digest(im.mode.encode(), repr(im.size).encode(), im.tobytes())
        upright = ImageOps.exif_transpose(im)  # a copy: the caller's image is left untouched
        return _Decoded(_to_array(upright, short_side), digest)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a lazily loaded image whose file is truncated
        return _Decoded(None, "", f"cannot decode image ({exc or type(exc).__name__})")


def _array_item_to_rgb(item: np.ndarray, scale: float | None) -> np.ndarray:
    """Turn one validated ``(H, W)`` / ``(H, W, C)`` array (C in 1, 3, 4) into contiguous uint8 RGB."""
    a = item
    if a.dtype == np.uint16:
        a = _scale_to_uint8(a)
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


# --------------------------------------------------------------------------------------------------------
# load_images
# --------------------------------------------------------------------------------------------------------


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
              (stretched by each image's min/max) or float (values in [0, 1] or [0, 255]).
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


def _decode_array(item: tuple[np.ndarray, float | None], short_side: int | None) -> np.ndarray:
    raw, scale = item
    rgb = _array_item_to_rgb(raw, scale)
    if short_side is not None:
        rgb = np.array(_resize(Image.fromarray(rgb, "RGB"), short_side), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def _array_digest(a: np.ndarray) -> str:
    raw = np.ascontiguousarray(a)
    return _digest(str(raw.dtype).encode(), repr(raw.shape).encode(), raw.tobytes())


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


# --------------------------------------------------------------------------------------------------------
# Label checks and splitting
# --------------------------------------------------------------------------------------------------------


def _counts_text(counts: Sequence[tuple[str, int]]) -> str:
    shown = ", ".join(f"'{c}' ({n})" for c, n in counts[:_MAX_LISTED])
    return shown + (f", ... and {len(counts) - _MAX_LISTED} more" if len(counts) > _MAX_LISTED else "")


def check_labels(
    train_labels: Sequence[str],
    other: Sequence[str] | None = None,
    *,
    other_name: str = "val",
    min_per_class: int = 2,
) -> list[str]:
    """Check that the training labels support classification and that ``other`` only uses known classes.

    Args:
        train_labels: One label per training image.
        other: Labels of another split (validation/test), or ``None``.
        other_name: Name of that split, used in messages.
        min_per_class: Fewest training images a class may have.

    Returns:
        The sorted class names found in ``train_labels``.

    Raises:
        DataError: There are no labels or only one class, a class has fewer than ``min_per_class`` images,
            or ``other`` contains labels that never occur in ``train_labels``.
    """
    counts = Counter(str(label) for label in train_labels)
    if not counts:
        raise DataError("There are no training labels. Give at least 2 classes with labelled images.")
    if len(counts) == 1:
        ((only, n),) = counts.items()
        raise DataError(
            f"Classification needs at least 2 classes; found only '{only}' in the training labels "
            f"({n} images). Add images of at least one more class (another class folder or more CSV rows)."
        )
    few = sorted((c, n) for c, n in counts.items() if n < min_per_class)
    if few:
        raise DataError(
            f"Each class needs at least {min_per_class} training images; too few in {_counts_text(few)}. "
            "Add more images of these classes or remove them."
        )
    if other is not None:
        unseen = Counter(str(label) for label in other if str(label) not in counts)
        if unseen:
            listed = _counts_text(sorted(unseen.items()))
            raise DataError(
                f"The {other_name} split has labels that never occur in train: {listed}. Every {other_name} "
                f"class must also appear in train; add training images for them or remove those "
                f"{other_name} images."
            )
    return sorted(counts)


def stratified_split(labels: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split indices into train and validation parts, stratified by label.

    Each class with at least 2 items puts ``round(count * fraction)`` of them, but at least 1 and at most
    ``count - 1``, into validation; classes with a single item stay in train. The choice is a seeded
    permutation per class, so the same labels, fraction and seed always give the same split.

    Args:
        labels: One label per item.
        fraction: Share of each class to hold out, strictly between 0 and 1.
        seed: Random seed.

    Returns:
        ``(train_idx, val_idx)``, each sorted ascending.

    Raises:
        DataError: ``fraction`` is not in (0, 1), or no class has 2 or more items.
    """
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0.0 < fraction < 1.0:
        raise DataError(f"The validation fraction must be between 0 and 1 (exclusive); got {fraction!r}.")
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(str(label), []).append(i)
    if not any(len(idx) >= 2 for idx in by_class.values()):
        raise DataError(
            f"Cannot hold out a validation split: none of the {len(by_class)} classes has 2 or more images. "
            "Add images, or give a separate validation set."
        )
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for name in sorted(by_class):
        idx = by_class[name]
        if len(idx) < 2:
            train.extend(idx)
            continue
        n_val = min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        order = rng.permutation(len(idx))
        val.extend(idx[j] for j in order[:n_val])
        train.extend(idx[j] for j in order[n_val:])
    return sorted(train), sorted(val)
