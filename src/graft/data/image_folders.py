"""Where the images of each split are: class-folder layouts, split folders, and ``path,label[,split]`` CSV files."""

from __future__ import annotations

import csv
import errno
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from graft.data.splits import SPLIT_ALIASES as _SPLIT_ALIASES
from graft.data.splits import SPLIT_ORDER as _SPLIT_ORDER
from graft.data.splits import Splits
from graft.errors import DataError, did_you_mean

__all__ = ["GROUP_COLUMNS", "IMAGE_EXTENSIONS", "csv_image_paths", "find_groups", "find_splits", "list_images"]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".dcm", ".dicom"}
)
"""File extensions (lower-case, with the dot) that folder scans treat as images."""


_PATH_COLUMNS = ("path", "file", "filename", "image", "filepath")


_LABEL_COLUMNS = ("label", "class", "target", "y", "category")


_SPLIT_COLUMNS = ("split",)


GROUP_COLUMNS: tuple[str, ...] = ("group", "patient_id", "patient", "subject_id", "subject", "study_id", "study")
"""CSV columns (case-insensitive, first found) read as the group of each image when no group column is named: all
images of a group stay in one split, and evaluation refuses test groups seen in training."""


_LAYOUT_HINT = "Give a folder of class sub-folders (root/<class>/*.jpg) or a CSV of path,label."


def find_splits(path: str | os.PathLike[str]) -> Splits:
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
        ``{"train": (paths, labels), "val": ..., "test": ...}`` with only the splits present, in that order
        (a :class:`~graft.data.splits.Splits`; ``marked`` is False when the input had no split marks).

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
        return _read_csv(root, str(path))[0]
    split_dirs = _split_dirs(root)
    if split_dirs:
        if "train" not in split_dirs:
            found = ", ".join(f"'{d.name}'" for d in split_dirs.values())
            raise DataError(
                f"'{path}' has split folders ({found}) but no 'train' folder. Add '{Path(path) / 'train'}' "
                "with one sub-folder per class, or give the training folder itself."
            )
        return Splits(
            {
                name: _scan_class_folders(split_dirs[name], Path(path) / split_dirs[name].name)
                for name in _SPLIT_ORDER
                if name in split_dirs
            }
        )
    return Splits({"train": _scan_class_folders(root, Path(path))}, marked=False)


def _visible_subdirs(folder: Path) -> list[os.DirEntry[str]]:
    entries = []
    with os.scandir(folder) as it:
        for e in it:
            try:
                if not e.name.startswith(".") and e.is_dir():
                    entries.append(e)
            except OSError as exc:  # a symbolic link loop is no folder, as a dangling link is not
                if exc.errno != errno.ELOOP:
                    raise
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
        names = []
        with os.scandir(cls.path) as it:
            for e in it:
                if not _is_image_name(e.name):
                    continue
                try:
                    if not e.is_file():
                        continue
                except OSError as exc:  # a symbolic link loop: listed, so that reading it names the file
                    if exc.errno != errno.ELOOP:
                        raise
                names.append(e.name)
        names.sort()
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


def _csv_rows(reader: Any, shown: str) -> Iterator[list[str]]:
    """The rows of a ``csv.reader``; a row the csv module cannot split is a DataError naming the file and line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. "field larger than field limit": a quote opened and never closed
            raise DataError(
                f"CSV '{shown}' line {reader.line_num}: {exc}. Check the quoting there: a double quote that is never "
                'closed makes the rest of the file one cell; double quotes inside a quoted cell are written "".'
            ) from None
        yield row


def csv_image_paths(path: str | os.PathLike[str]) -> list[str]:
    """The image paths of a CSV in row order, for prediction: the path column as in :func:`find_splits` (relative
    paths against the CSV's folder); a label or split column may be there or not, and is ignored.

    Raises:
        DataError: the file is not a readable CSV, lacks a path column or has an empty path cell.
    """
    return _read_csv(Path(path), str(path), unlabelled=True)[0]["train"][0]


def _read_csv(
    csv_path: Path, shown: str, group_column: str | None = None, *, unlabelled: bool = False
) -> tuple[dict[str, tuple[list[str], list[str]]], dict[str, list[str]] | None, str | None]:
    """Read a ``path,label[,split]`` CSV into per-split lists, and the group (patient) of each row when the CSV has
    ``group_column`` or, without one given, a column named like a patient or study ID (:data:`GROUP_COLUMNS`).
    ``unlabelled``: only the paths matter (prediction): every row in one ``train`` list, labels empty."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"'{shown}' is not UTF-8 text ({exc}). Save the CSV as UTF-8 and try again.") from exc
    first_line = text.split("\n", 1)[0]
    delimiter = next((d for d in (",", "\t", ";") if d in first_line), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = _csv_rows(reader, shown)
    header = next(rows, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(rows, None)
    if header is None:
        raise DataError(f"CSV '{shown}' is empty. Write a header row 'path,label' and one row per image.")
    columns = {name.strip().lower(): name.strip() for name in header}
    path_col = _pick_column(columns, _PATH_COLUMNS)
    label_col = _pick_column(columns, _LABEL_COLUMNS)
    if path_col is None or (label_col is None and not unlabelled):
        found = ", ".join(f"'{c.strip()}'" for c in header)
        missing = "path" if path_col is None else "label"
        wanted = _PATH_COLUMNS if path_col is None else _LABEL_COLUMNS
        raise DataError(
            f"CSV '{shown}' has no {missing} column; columns found: {found}. Name the {missing} column "
            f"one of {', '.join(wanted)} (the first row must be a header)."
        )
    split_col = None if unlabelled else _pick_column(columns, _SPLIT_COLUMNS)
    if unlabelled:
        group_col = None
    elif group_column is not None:
        group_col = columns.get(group_column.strip().lower())
        if group_col is None:
            found = ", ".join(f"'{c.strip()}'" for c in header)
            raise DataError(
                f"CSV '{shown}' has no group column '{group_column}'; columns found: {found}."
                f"{did_you_mean(group_column.strip().lower(), columns)} Give the column that holds the patient or "
                "study ID of each image."
            )
    else:
        group_col = _pick_column(columns, GROUP_COLUMNS)
    index = {name.strip(): i for i, name in reversed(list(enumerate(header)))}
    path_i, label_i = index[path_col], None if label_col is None or unlabelled else index[label_col]
    split_i = None if split_col is None else index[split_col]
    group_i = None if group_col is None else index[group_col]
    base = csv_path.parent

    out: dict[str, tuple[list[str], list[str]]] = {}
    groups: dict[str, list[str]] = {}
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num

        def cell(i: int, what: str, row: list[str] = row, line: int = line) -> str:
            value = row[i].strip() if i < len(row) else ""
            if not value:
                raise DataError(f"CSV '{shown}' line {line}: the {what} cell is empty. Fill it in or delete the row.")
            return value

        file_value = cell(path_i, f"'{path_col}'")
        label = "" if label_i is None else cell(label_i, f"'{label_col}'")
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
        try:
            file_path = Path(file_value).expanduser()
        except RuntimeError:  # "~user/..." for a user this machine does not know, or no home folder
            raise DataError(
                f"CSV '{shown}' line {line}: the path '{file_value}' starts with '~' but that home folder is unknown "
                "here. Write the full path, or a path relative to the CSV's folder."
            ) from None
        resolved = file_path if file_path.is_absolute() else base / file_path
        paths, labels = out.setdefault(split, ([], []))
        paths.append(str(resolved))
        labels.append(label)
        if group_i is not None:
            groups.setdefault(split, []).append(cell(group_i, f"'{group_col}' (group)"))
    if not out:
        raise DataError(f"CSV '{shown}' has a header but no rows. Add one 'path,label' row per image.")
    if "train" not in out:
        raise DataError(
            f"CSV '{shown}' has no rows with split 'train' (found: {', '.join(out)}). "
            "Mark the training rows with split=train."
        )
    ordered = Splits({name: out[name] for name in _SPLIT_ORDER if name in out}, marked=split_i is not None)
    return ordered, (None if group_i is None else groups), group_col


def find_groups(
    path: str | os.PathLike[str], group_column: str | None = None
) -> tuple[dict[str, list[str]] | None, str | None]:
    """The group (patient, study) of each image of a CSV, per split, in :func:`find_splits` order.

    Args:
        path: a CSV (folders carry no groups: ``(None, None)``).
        group_column: the column of group IDs; ``None`` takes the first column named one of :data:`GROUP_COLUMNS`
            (case-insensitive), if any.

    Returns:
        ``({split: groups}, column name)``, or ``(None, None)`` when there is no group column.

    Raises:
        DataError: ``group_column`` is given but the CSV has no such column, or a row's group cell is empty.
    """
    root = Path(path)
    if not (root.is_file() and root.suffix.lower() in {".csv", ".tsv", ".txt"}):
        if group_column is not None:
            raise DataError(
                f"group_column='{group_column}' needs a CSV of path,label,{group_column}; '{path}' is not a CSV. "
                "Write one row per image with its group (patient) ID."
            )
        return None, None
    _, groups, column = _read_csv(root, str(path), group_column)
    return groups, column


def list_images(folder: str | os.PathLike[str]) -> list[str]:
    """Every image file under ``folder`` (any depth, any layout: unlabelled data), sorted; hidden entries skipped.

    Raises:
        DataError: the folder holds no image files.
    """
    root = Path(folder)
    found = sorted(
        str(p)
        for p in root.rglob("*")
        if _is_image_name(p.name)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()
    )
    if not found:
        raise DataError(
            f"'{folder}' holds no image files (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}, in any sub-folder)."
        )
    return found
