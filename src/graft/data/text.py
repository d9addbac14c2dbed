"""Find, read and check text classification data.

Text data reaches Graft as a table file (CSV, TSV, plain text, JSON Lines, JSON or Parquet), a folder of
per-split files, a list of strings, a list of ``(text, pair)`` tuples, a pandas Series or a DataFrame.
:func:`find_text_splits` turns a file or folder into per-split :class:`TextSet` objects,
:func:`read_text_table` reads one table and :func:`load_texts` accepts any of the inputs.

Every value is kept as a string: labels such as ``'0'``, ``'1'`` or ``'NA'`` are not turned into numbers or
missing values; the estimator decides how to map them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from graft.data._tables import (
    _LABEL_NAMES,
    _PAIR_PARTNERS,
    _TEXT_NAMES,
    TEXT_EXTENSIONS,
    _frame_to_table,
    _name_key,
    _plain,
    _read_table,
    _Table,
)
from graft.errors import DataError, did_you_mean

__all__ = [
    "TEXT_EXTENSIONS",
    "TextInput",
    "TextSet",
    "find_text_splits",
    "read_text_table",
    "load_texts",
]

TextInput: TypeAlias = "str | os.PathLike[str] | Sequence[Any] | np.ndarray | pd.Series | pd.DataFrame"
"""What :func:`load_texts` accepts as ``X``."""

_SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
_SPLIT_ORDER = ("train", "val", "test")
_SPLIT_COLUMN = "split"
_READ_DEFAULTS: dict[str, Any] = {
    "text_column": None,
    "text_pair_column": None,
    "label_column": None,
    "multi_label": False,
    "label_sep": None,
}
_MAX_LISTED = 20
_MAX_PATH_LEN = 4096


# --------------------------------------------------------------------------------------------------------
# Result container
# --------------------------------------------------------------------------------------------------------


@dataclass
class TextSet:
    """Texts with their labels and provenance.

    Attributes:
        texts: One text per item, exactly as read (not stripped).
        pairs: The second text of each item for sentence-pair tasks (e.g. premise/hypothesis), else ``None``.
        labels: ``None`` when no labels were given (prediction data). Single-label: one stripped string per
            item. Multi-label (``multi_label=True``): a list of distinct stripped strings per item; an empty
            list means the item has none of the labels.
        sources: Where each item came from: ``"path:row N"`` (``N`` is the 1-based data row, header and blank
            lines not counted; the line number for JSON Lines files and one-text-per-line ``.txt`` files, shown
            as ``"path:line N"``), or ``"text[i]"`` for in-memory inputs.
        hashes: Hex BLAKE2b digest (16 bytes) of the UTF-8 text, plus ``"\\x1f"`` and the pair text for
            sentence pairs. Equal hashes mean duplicate inputs; labels do not enter the hash.
        multi_label: Whether ``labels`` holds lists of labels.
        columns: For tables, which column was used for each role: keys ``"text"``, and where used ``"pair"``
            and ``"label"``. Empty for in-memory lists.
    """

    texts: list[str]
    pairs: list[str] | None
    labels: list[str] | list[list[str]] | None
    sources: list[str]
    hashes: list[str]
    multi_label: bool = False
    columns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.texts)
        sizes = [len(self.sources), len(self.hashes)]
        sizes += [len(v) for v in (self.pairs, self.labels) if v is not None]
        if any(size != n for size in sizes):
            raise ValueError(
                f"TextSet fields disagree in length: {n} texts, {len(self.sources)} sources, {len(self.hashes)} "
                f"hashes, {'no' if self.pairs is None else len(self.pairs)} pairs, "
                f"{'no' if self.labels is None else len(self.labels)} labels"
            )

    def __len__(self) -> int:
        """Return the number of texts."""
        return len(self.texts)

    def subset(self, idx: Sequence[int]) -> TextSet:
        """Return a new set holding only the items at ``idx``, in that order.

        Args:
            idx: Positions to keep (Python or numpy integers).

        Returns:
            The selected items as a new :class:`TextSet`.
        """
        positions = [int(i) for i in idx]
        labels: list[Any] | None = None
        if self.labels is not None:
            labels = [list(self.labels[i]) if self.multi_label else self.labels[i] for i in positions]
        return TextSet(
            texts=[self.texts[i] for i in positions],
            pairs=None if self.pairs is None else [self.pairs[i] for i in positions],
            labels=labels,
            sources=[self.sources[i] for i in positions],
            hashes=[self.hashes[i] for i in positions],
            multi_label=self.multi_label,
            columns=dict(self.columns),
        )


# --------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------


def _digest(text: str, pair: str | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(text.encode("utf-8"))
    if pair is not None:
        h.update(b"\x1f")
        h.update(pair.encode("utf-8"))
    return h.hexdigest()


def _scalar_text(value: Any) -> str:
    """Render a scalar cell as a string (integral floats without ``.0``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _listing(items: Sequence[str]) -> str:
    shown = "\n".join(f"  - {item}" for item in items[:_MAX_LISTED])
    more = f"\n  ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return shown + more


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _split_of_stem(stem: str, aliases: dict[str, str]) -> str | None:
    """Return the split a file stem names: the whole stem, or its last part after ``.``, ``_`` or ``-``."""
    lowered = stem.lower()
    if lowered in aliases:
        return aliases[lowered]
    last = re.split(r"[._\-]", lowered)[-1]
    return aliases.get(last)


# --------------------------------------------------------------------------------------------------------
# Assigning roles to columns
# --------------------------------------------------------------------------------------------------------


def _match_column(name: str, table: _Table, role: str) -> str:
    if name in table.columns:
        return name
    by_key: dict[str, list[str]] = {}
    for col in table.columns:
        by_key.setdefault(_name_key(col), []).append(col)
    matches = by_key.get(_name_key(name), [])
    if len(matches) == 1:
        return matches[0]
    columns = list(table.columns)
    raise DataError(
        f"{table.shown} has no column '{name}' (given as {role}_column).{did_you_mean(name, columns)} "
        f"Columns found: {_quoted(columns)}."
    )


def _find(table: _Table, candidates: Sequence[str], exclude: set[str]) -> str | None:
    keys: dict[str, str] = {}
    for col in table.columns:
        if col not in exclude:
            keys.setdefault(_name_key(col), col)
    for candidate in candidates:
        if candidate in keys:
            return keys[candidate]
    return None


def _choose_columns(
    table: _Table,
    text_column: str | None,
    text_pair_column: str | None,
    label_column: str | None,
    detect_label: bool,
) -> tuple[str, str | None, str | None]:
    """Return ``(text, pair, label)`` column names, detecting those not given."""
    text = None if text_column is None else _match_column(text_column, table, "text")
    pair = None if text_pair_column is None else _match_column(text_pair_column, table, "text_pair")
    label = None if label_column is None else _match_column(label_column, table, "label")
    given = [c for c in (text, pair, label) if c is not None]
    if len(set(given)) != len(given):
        raise DataError(
            f"The same column is given for two roles ({_quoted(given)}). Give different columns for the text, "
            "the second text and the label."
        )
    taken = set(given)
    if text is None:
        if pair is None:
            for first, partners in _PAIR_PARTNERS.items():
                found_first = _find(table, [first], taken)
                if found_first is None:
                    continue
                found_pair = _find(table, partners, taken | {found_first})
                if found_pair is not None:
                    text, pair = found_first, found_pair
                    break
        if text is None:
            text = _find(table, _TEXT_NAMES, taken)
        if text is None:
            raise DataError(
                f"{table.shown} has no text column; columns found: {_quoted(list(table.columns))}. Pass "
                "text_column='<name>' (CLI: --text-column) to choose one, or name the column one of "
                f"{', '.join(_TEXT_NAMES)}. The first row must be a header."
            )
        taken.add(text)
    elif pair is None:
        partners = _PAIR_PARTNERS.get(_name_key(text), ())
        pair = _find(table, partners, taken)
    if pair is not None:
        taken.add(pair)
    if label is None and detect_label:
        label = _find(table, _LABEL_NAMES, taken)
    return text, pair, label


# --------------------------------------------------------------------------------------------------------
# Checking values
# --------------------------------------------------------------------------------------------------------


def _texts_from_cells(cells: Sequence[Any], sources: Sequence[str], what: str, problems: list[str]) -> list[str]:
    """Convert text cells to strings, appending ``"source: reason"`` for every empty or unusable cell."""
    out: list[str] = []
    for value, source in zip(cells, sources):
        if isinstance(value, (list, dict)):
            problems.append(f"{source}: {what} is a {type(value).__name__}, not a string")
            out.append("")
            continue
        text = "" if value is None else value if isinstance(value, str) else _scalar_text(value)
        if not text.strip():
            problems.append(f"{source}: {what} is empty")
        out.append(text)
    return out


def _raise_text_problems(problems: list[str], shown: str, in_memory: bool) -> None:
    if not problems:
        return
    fix = "Remove these items or fill in their text." if in_memory else "Remove these rows or fill in their text."
    raise DataError(
        f"{shown} has {len(problems)} unusable text{'s' if len(problems) > 1 else ''}:\n{_listing(problems)}\n{fix}"
    )


def _pick_separator(cells: Sequence[Any], label_sep: str | None) -> str:
    if label_sep is not None:
        return label_sep
    strings = [c for c in cells if isinstance(c, str)]
    for sep in ("|", ","):
        if any(sep in c for c in strings):
            return sep
    return ";"


def _label_list(value: Any, sep: str) -> list[str]:
    if value is None:
        return []
    parts = value if isinstance(value, list) else _scalar_text(value).split(sep)
    out: list[str] = []
    for part in parts:
        if part is None:
            continue
        name = _scalar_text(part).strip()
        if name and name not in out:
            out.append(name)
    return out


def _labels_from_cells(
    cells: Sequence[Any],
    sources: Sequence[str],
    multi_label: bool,
    label_sep: str | None,
    shown: str,
    what: str,
) -> list[str] | list[list[str]]:
    """Convert label cells; single-label cells must be non-empty scalars, multi-label cells may be empty."""
    if multi_label:
        sep = _pick_separator(cells, label_sep)
        return [_label_list(value, sep) for value in cells]
    labels: list[str] = []
    missing: list[str] = []
    for value, source in zip(cells, sources):
        if isinstance(value, (list, dict)):
            raise DataError(
                f"{source}: the label is a {type(value).__name__} ({value!r}). For several labels per text pass "
                "multi_label=True (CLI: --multi-label); otherwise give one label per row."
            )
        text = "" if value is None else _scalar_text(value).strip()
        if not text:
            missing.append(source)
        labels.append(text)
    if missing:
        raise DataError(
            f"{shown} has {len(missing)} item{'s' if len(missing) > 1 else ''} without a label in {what}:\n"
            f"{_listing(missing)}\nFill in their labels or remove them (data without any labels needs no label "
            "column)."
        )
    return labels


def _build(
    table: _Table,
    *,
    text_column: str | None,
    text_pair_column: str | None,
    label_column: str | None,
    multi_label: bool,
    label_sep: str | None,
    detect_label: bool = True,
) -> TextSet:
    text_col, pair_col, label_col = _choose_columns(table, text_column, text_pair_column, label_column, detect_label)
    problems: list[str] = []
    texts = _texts_from_cells(table.columns[text_col], table.sources, f"the text ('{text_col}')", problems)
    pairs = None
    if pair_col is not None:
        pairs = _texts_from_cells(table.columns[pair_col], table.sources, f"the second text ('{pair_col}')", problems)
    _raise_text_problems(problems, table.shown, in_memory=False)
    labels = None
    if label_col is not None:
        labels = _labels_from_cells(
            table.columns[label_col], table.sources, multi_label, label_sep, table.shown, f"column '{label_col}'"
        )
    columns = {"text": text_col}
    if pair_col is not None:
        columns["pair"] = pair_col
    if label_col is not None:
        columns["label"] = label_col
    return TextSet(
        texts=texts,
        pairs=pairs,
        labels=labels,
        sources=list(table.sources),
        hashes=[_digest(t, None if pairs is None else pairs[i]) for i, t in enumerate(texts)],
        multi_label=multi_label,
        columns=columns,
    )


def _split_values(table: _Table, used: dict[str, str]) -> list[str] | None:
    """Canonical split name of each row from a ``split`` column not used for another role, or ``None``."""
    column = _find(table, [_SPLIT_COLUMN], set(used.values()))
    if column is None:
        return None
    out: list[str] = []
    for value, source in zip(table.columns[column], table.sources):
        raw = "" if value is None else _scalar_text(value).strip()
        canonical = _SPLIT_ALIASES.get(raw.lower())
        if canonical is None:
            hint = did_you_mean(raw.lower(), _SPLIT_ALIASES) if raw else ""
            shown = f"unknown split '{raw}'" if raw else "an empty split cell"
            raise DataError(
                f"{source}: {shown} in column '{column}'.{hint} Use train, val (or validation/dev) or test."
            )
        out.append(canonical)
    return out


# --------------------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------------------


def read_text_table(
    path: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    multi_label: bool = False,
    label_sep: str | None = None,
) -> TextSet:
    """Read one table of texts (and optionally labels).

    The format follows the extension:

    * ``.csv``: comma-separated with a header row (standard double-quote quoting).
    * ``.tsv``: tab-separated with a header row, read without quote processing (as GLUE/SST-2 files are
      written); files that only parse with CSV quoting are read with it.
    * ``.txt``: a tab- or comma-separated table (the separator found in the first line) when its first line
      names a known column; otherwise one text per non-blank line, without labels (sources ``"path:line N"``).
    * ``.jsonl`` / ``.json``: one JSON object per line, or a JSON array of objects.
    * ``.parquet``: needs ``pyarrow`` (``pip install pyarrow``).

    Every cell is read as a string: labels such as ``'0'`` or ``'NA'`` stay strings; a UTF-8 byte-order mark is
    dropped. Blank lines are skipped.

    Columns not given are found by name (case-insensitive; spaces and hyphens count as underscores):

    * text: the first of text, sentence, review, review_text, content, body, document, comment, tweet,
      utterance, question, premise, sentence1, text_a, query, question1;
    * second text of a pair: only in known pair layouts: sentence1/sentence2, premise/hypothesis,
      text_a/text_b, question1/question2, question/sentence (GLUE QNLI), question/question2, text/text_pair,
      text/text_b. A pair layout wins over a single text column. When ``text_column`` is given, its partner
      in these layouts (if present) becomes the pair unless ``text_pair_column`` is given;
    * label: the first of label, labels, class, target, sentiment, category, y, tags, topic. Optional: a table
      without a label column is prediction data and gives ``labels=None``.

    Args:
        path: The file.
        text_column: Column of the texts; found by name when ``None``.
        text_pair_column: Column of the second texts of sentence pairs; found by name when ``None``.
        label_column: Column of the labels; found by name when ``None``.
        multi_label: Each row may have several labels (or none). A cell is split on ``label_sep``; a JSON list
            (JSONL, Parquet) is taken as the list. Labels are stripped, empty ones dropped, repeats removed. A
            row with zero labels is allowed and means "none of the labels".
        label_sep: Separator of multi-label cells. Default: ``'|'`` if any cell contains ``'|'``, else ``','``
            if any contains ``','``, else ``';'``.

    Returns:
        The rows as a :class:`TextSet`, in file order.

    Raises:
        DataError: The file is missing, a folder, not UTF-8 (the message names the line and byte offset),
            malformed or empty; no text column is found; a given column does not exist; texts are empty (all
            such rows are listed); a single-label row has no label.
    """
    table = _read_table(path, (text_column, text_pair_column, label_column))
    return _build(
        table,
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
        multi_label=multi_label,
        label_sep=label_sep,
    )


def _read_file_with_splits(
    path: str | os.PathLike[str], read_kwargs: dict[str, Any], *, require_train: bool
) -> dict[str, TextSet]:
    names = (read_kwargs.get("text_column"), read_kwargs.get("text_pair_column"), read_kwargs.get("label_column"))
    table = _read_table(path, names)
    full = _build(table, **{**_READ_DEFAULTS, **read_kwargs})
    splits = _split_values(table, full.columns)
    if splits is None:
        return {"train": full}
    out: dict[str, TextSet] = {}
    for name in _SPLIT_ORDER:
        idx = [i for i, s in enumerate(splits) if s == name]
        if idx:
            out[name] = full.subset(idx)
    if require_train and "train" not in out:
        raise DataError(
            f"'{path}' has a split column but no rows with split 'train' (found: {', '.join(out)}). Mark the "
            "training rows with split=train."
        )
    return out


def find_text_splits(path: str | os.PathLike[str], **read_kwargs: Any) -> dict[str, TextSet]:
    """Read the splits of a text data set from a file or a folder.

    * A file gives ``{"train": ...}``, or, when it has a ``split`` column (values train/training,
      val/valid/validation/dev, test/testing; case-insensitive), one set per split.
    * A folder holds one file per split, recognised by its stem (or the stem's last part after ``.``, ``_`` or
      ``-``, e.g. ``sst2_train.csv``): train/training -> train; val/valid/validation/dev -> val;
      test/testing -> test, with any extension in :data:`TEXT_EXTENSIONS` (e.g. ``sst2/{train,dev,test}.tsv``).
      Other files and hidden files are ignored. A train file is required.

    Args:
        path: A file or a folder.
        **read_kwargs: Passed to :func:`read_text_table` for every file (``text_column``,
            ``text_pair_column``, ``label_column``, ``multi_label``, ``label_sep``).

    Returns:
        ``{"train": TextSet, "val": ..., "test": ...}`` with only the splits present, in that order.

    Raises:
        DataError: The path does not exist, a folder has no train file or two files for one split, a split
            value is unknown, or a file cannot be read (see :func:`read_text_table`).
    """
    unknown = sorted(set(read_kwargs) - set(_READ_DEFAULTS))
    if unknown:
        raise DataError(
            f"find_text_splits got unknown option '{unknown[0]}'.{did_you_mean(unknown[0], _READ_DEFAULTS)} "
            f"Options: {', '.join(_READ_DEFAULTS)}."
        )
    root = Path(path)
    if not root.exists():
        raise DataError(f"'{path}' does not exist. Give a text file or a folder with train/val/test files.")
    if root.is_file():
        return _read_file_with_splits(path, read_kwargs, require_train=True)
    found: dict[str, Path] = {}
    seen: list[str] = []
    with os.scandir(root) as it:
        entries = sorted((e for e in it if not e.name.startswith(".") and e.is_file()), key=lambda e: e.name)
    for entry in entries:
        seen.append(entry.name)
        file = Path(entry.path)
        if file.suffix.lower() not in TEXT_EXTENSIONS:
            continue
        split = _split_of_stem(file.stem, _SPLIT_ALIASES)
        if split is None:
            continue
        if split in found:
            raise DataError(
                f"'{path}' has two files for the {split} split: '{found[split].name}' and '{entry.name}'. Remove "
                "or rename one."
            )
        found[split] = file
    if "train" not in found:
        listing = _quoted(seen) if seen else "no files"
        raise DataError(
            f"'{path}' has no training file (found: {listing}). Name the files train, val (or dev) and test "
            f"with one of the extensions {', '.join(sorted(TEXT_EXTENSIONS))} (e.g. train.csv), or give the "
            "training file itself."
        )
    return {
        name: read_text_table(Path(path) / found[name].name, **read_kwargs) for name in _SPLIT_ORDER if name in found
    }


# --------------------------------------------------------------------------------------------------------
# In-memory inputs
# --------------------------------------------------------------------------------------------------------


def _y_values(y: Any, n: int) -> list[Any]:
    if isinstance(y, (str, bytes)):
        if n != 1:
            raise DataError(f"y must be a list of labels, one per text, not a single string ({y!r}).")
        return [y]
    if isinstance(y, pd.DataFrame):
        raise DataError("y is a DataFrame; give a list or Series of labels, one per text.")
    if isinstance(y, np.ndarray) and y.ndim != 1:
        raise DataError(
            f"y must be one-dimensional (one label per text); got shape {y.shape}. For several labels per text "
            "give a list of lists, e.g. [['sports', 'news'], []]."
        )
    try:
        values = [_plain(v) for v in (y.tolist() if isinstance(y, (np.ndarray, pd.Series)) else list(y))]
    except TypeError as exc:
        raise DataError(f"y has unsupported type {type(y).__name__}; give a list of labels, one per text.") from exc
    if len(values) != n:
        raise DataError(f"Got {n} texts but {len(values)} labels (y). Give exactly one label per text, in order.")
    return values


def _texts_from_values(values: Sequence[Any], label: str, problems: list[str]) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(values):
        value = _plain(value)
        where = f"{label}[{i}]"
        if value is None:
            problems.append(f"{where}: missing ({value!r})")
            out.append("")
        elif not isinstance(value, str):
            problems.append(f"{where}: a {type(value).__name__} ({value!r}), not a string")
            out.append("")
        else:
            if not value.strip():
                problems.append(f"{where}: empty string")
            out.append(value)
    return out


def load_texts(
    X: TextInput,
    y: Any = None,
    *,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    multi_label: bool = False,
    label_sep: str | None = None,
) -> TextSet:
    """Load texts (and labels) from a file, a list, a Series or a DataFrame.

    Args:
        X: One of

            * a path to one table file (see :func:`read_text_table`; labels come from it, so ``y`` must be
              ``None``). A folder, or a file whose ``split`` column has several splits, is refused: call
              :func:`find_text_splits`;
            * a ``str`` that is not an existing path: one text. A string without whitespace that ends in a
              table extension (e.g. ``'trian.csv'``) is taken for a mistyped path and refused;
            * a list/tuple/1-D numpy array/pandas Series of strings;
            * a list of ``(text, pair)`` 2-tuples (or 2-lists), or an ``(N, 2)`` array, for sentence pairs;
            * a pandas DataFrame; columns are found as in :func:`read_text_table`. With ``y`` given, no label
              column is looked for.
        y: Labels, one per text (strings or numbers; integral floats become ints, e.g. ``1.0`` -> ``'1'``), or
            ``None``. With ``multi_label=True``: a list of label lists, or of separator-joined strings (split on
            ``label_sep``, chosen as in :func:`read_text_table` when ``None``); ``None`` or an empty list means
            no labels for that text.
        text_column: Text column of a file or DataFrame.
        text_pair_column: Second-text column of a file or DataFrame.
        label_column: Label column of a file or DataFrame.
        multi_label: Labels are lists (see :func:`read_text_table`).
        label_sep: Separator of multi-label strings.

    Returns:
        A :class:`TextSet`; in-memory inputs have sources ``"text[i]"``.

    Raises:
        DataError: A missing path or folder, a bad input type, missing/empty/non-string texts (indexes listed),
            or labels that are missing or do not match ``X`` in number.
    """
    read_kwargs = {
        "text_column": text_column,
        "text_pair_column": text_pair_column,
        "label_column": label_column,
        "multi_label": multi_label,
        "label_sep": label_sep,
    }
    if isinstance(X, os.PathLike) or (
        isinstance(X, str) and "\n" not in X and len(X) < _MAX_PATH_LEN and os.path.exists(X)
    ):
        return _load_path(X, y, read_kwargs)
    if isinstance(X, str):
        if X.strip() and not any(ch.isspace() for ch in X) and Path(X).suffix.lower() in TEXT_EXTENSIONS:
            raise DataError(
                f"'{X}' does not exist. Check the path; to use this string as a text, pass it in a list: ['{X}']."
            )
        X = [X]

    if isinstance(X, pd.DataFrame):
        if y is not None and label_column is not None:
            raise DataError("Give labels either as y or as label_column, not both.")
        table = _frame_to_table(X.reset_index(drop=True), [f"text[{i}]" for i in range(X.shape[0])], "The DataFrame")
        if X.shape[0] == 0:
            raise DataError("The DataFrame has no rows: there are no texts to load.")
        data = _build(table, **read_kwargs, detect_label=y is None)
        if y is None:
            return data
        labels = _labels_from_cells(_y_values(y, len(data)), data.sources, multi_label, label_sep, "y", "y")
        data.labels = labels
        return data

    if isinstance(X, pd.Series):
        X = X.tolist()
    elif isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 2:
            X = [tuple(row) for row in X.tolist()]
        elif X.ndim == 1:
            X = X.tolist()
        else:
            raise DataError(
                f"X is an array of shape {X.shape}; give one text per row (1-D) or (text, pair) rows (N, 2)."
            )
    if not isinstance(X, (list, tuple)):
        raise DataError(
            f"X has unsupported type {type(X).__name__}. Give a file path, a list of strings, a list of "
            "(text, pair) tuples, a pandas Series or a DataFrame."
        )
    if len(X) == 0:
        raise DataError("X is empty: there are no texts to load.")
    if text_column is not None or text_pair_column is not None or label_column is not None:
        raise DataError("text_column, text_pair_column and label_column apply to files and DataFrames, not to lists.")

    problems: list[str] = []
    pairs: list[str] | None = None
    if isinstance(X[0], (tuple, list)):
        firsts: list[Any] = []
        seconds: list[Any] = []
        for i, item in enumerate(X):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise DataError(
                    f"X[{i}] is {item!r}; sentence pairs must all be (text, pair) 2-tuples (X[0] is one). Give "
                    "either plain strings or 2-tuples throughout."
                )
            firsts.append(item[0])
            seconds.append(item[1])
        texts = _texts_from_values(firsts, "text", problems)
        pairs = _texts_from_values(seconds, "pair", problems)
    else:
        texts = _texts_from_values(X, "text", problems)
    _raise_text_problems(problems, "X", in_memory=True)
    sources = [f"text[{i}]" for i in range(len(texts))]
    labels = None
    if y is not None:
        labels = _labels_from_cells(_y_values(y, len(texts)), sources, multi_label, label_sep, "y", "y")
    return TextSet(
        texts=texts,
        pairs=pairs,
        labels=labels,
        sources=sources,
        hashes=[_digest(t, None if pairs is None else pairs[i]) for i, t in enumerate(texts)],
        multi_label=multi_label,
    )


def _load_path(X: str | os.PathLike[str], y: Any, read_kwargs: dict[str, Any]) -> TextSet:
    if not os.path.exists(X):
        raise DataError(f"'{X}' does not exist. Check the path.")
    if os.path.isdir(X):
        raise DataError(
            f"'{X}' is a folder; load_texts takes one file. Call graft.data.find_text_splits('{X}') to read its "
            "train/val/test files, or give one file. (To use the string itself as a text, pass it in a list.)"
        )
    if y is not None:
        raise DataError(
            f"Labels come from '{X}' itself; pass y=None (choose the column with label_column=), or pass the "
            "texts as a list together with y."
        )
    splits = _read_file_with_splits(X, read_kwargs, require_train=False)
    if len(splits) > 1:
        raise DataError(
            f"'{X}' has rows for several splits ({', '.join(splits)}); load_texts takes one split at a time. "
            f"Call graft.data.find_text_splits('{X}') instead."
        )
    return next(iter(splits.values()))
