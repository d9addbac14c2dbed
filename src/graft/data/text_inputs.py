"""Texts from memory or a path: lists, arrays, pandas Series and DataFrames, a table file or a folder of split files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from graft.data._tables import TEXT_EXTENSIONS, _frame_to_table, _plain
from graft.data.text import (
    TextSet,
    _build,
    _digest,
    _read_file_with_splits,
)
from graft.data.text_cells import _labels_from_cells, _raise_text_problems
from graft.errors import DataError

__all__ = ["TextInput", "load_texts"]


TextInput: TypeAlias = "str | os.PathLike[str] | Sequence[Any] | np.ndarray | pd.Series | pd.DataFrame"
"""What :func:`load_texts` accepts as ``X``."""


_MAX_PATH_LEN = 4096


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
