"""Read text data files into an internal table of cells, before column roles are assigned.

:func:`_read_table` reads CSV, TSV, plain text, JSON Lines, JSON and Parquet files by extension; the helpers for
decoding, reading bytes and normalising column names are shared with :mod:`graft.data.text` (and, through it,
:mod:`graft.data.tokens`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graft.errors import DataError

TEXT_EXTENSIONS: frozenset[str] = frozenset({".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet"})
"""File extensions (lower-case, with the dot) that :func:`find_text_splits` reads as text tables."""

_TEXT_NAMES = (
    "text",
    "sentence",
    "review",
    "review_text",
    "content",
    "body",
    "document",
    "comment",
    "tweet",
    "utterance",
    "question",
    "premise",
    "sentence1",
    "text_a",
    "query",
    "question1",
)
# First text column of a sentence-pair layout -> the second-text columns that may go with it, in order.
_PAIR_PARTNERS: dict[str, tuple[str, ...]] = {
    "sentence1": ("sentence2",),
    "premise": ("hypothesis",),
    "text_a": ("text_b",),
    "question1": ("question2",),
    "question": ("sentence", "question2"),  # GLUE QNLI: question + sentence
    "text": ("text_pair", "text_b"),
}
_LABEL_NAMES = ("label", "labels", "class", "target", "sentiment", "category", "y", "tags", "topic")
_UTF8_HINT = (
    "Re-save the file as UTF-8 (in a spreadsheet choose 'CSV UTF-8'; on the command line "
    "`iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv`) and try again."
)


@dataclass
class _Table:
    """Cells of a table by column, before roles are assigned. Missing cells are ``None``."""

    columns: dict[str, list[Any]]
    sources: list[str]
    shown: str


# --------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _plain(value: Any) -> Any:
    """Turn numpy scalars/arrays into Python values and every kind of missing value into ``None``."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return None if _is_missing(value) else value


def _decode_utf8(data: bytes, shown: str) -> str:
    """Decode ``data`` as strict UTF-8 (a leading BOM is dropped) or raise a DataError naming the first bad byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"'{shown}' is UTF-16 text (it starts with a UTF-16 byte-order mark). {_UTF8_HINT}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"'{shown}' is not valid UTF-8: line {line}, byte offset {exc.start} (column {column} of that line, "
            f"byte 0x{data[exc.start]:02x}) cannot be decoded. {_UTF8_HINT}"
        ) from exc
    return text.removeprefix("\ufeff")


def _read_bytes(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise DataError(f"Cannot read '{shown}': permission denied. Check the file's permissions.") from exc
    except OSError as exc:
        raise DataError(f"Cannot read '{shown}' ({exc.strerror or exc}).") from exc


def _name_key(name: str) -> str:
    """Normalise a column name for matching: lower-case, spaces and hyphens as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


# --------------------------------------------------------------------------------------------------------
# Reading tables
# --------------------------------------------------------------------------------------------------------


def _frame_to_table(df: pd.DataFrame, sources: list[str], shown: str) -> _Table:
    columns: dict[str, list[Any]] = {}
    for i, name in enumerate(df.columns):
        key = str(name).strip().removeprefix("\ufeff").strip()
        if key in columns:
            key = f"{key}.{i}"
        columns[key] = [_plain(v) for v in df.iloc[:, i].tolist()]
    return _Table(columns, sources, shown)


def _first_long_row(text: str, sep: str, quote_none: bool) -> tuple[int, int, int] | None:
    """Return ``(line, fields, header fields)`` of the first row with more fields than the header, if any."""
    quoting = csv.QUOTE_NONE if quote_none else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=quoting)
    width: int | None = None
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if width is None:
                width = len(row)
            elif len(row) > width:
                return reader.line_num, len(row), width
    except csv.Error:
        return None
    return None


def _read_delimited(text: str, sep: str, shown: str, path: Path) -> _Table:
    """Parse CSV (``sep=','``) or TSV (``sep='\\t'``) text with a header row; every cell is a string.

    TSV files are first read without quote processing (GLUE/SST-2 style: quotes are part of the text); when
    that does not parse, standard CSV quoting is tried. A row with more fields than the header is an error
    (never silently dropped or used as an index); a row with fewer fields gets empty cells.
    """
    kwargs: dict[str, Any] = {
        "sep": sep,
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "skip_blank_lines": True,
        "index_col": False,
        "engine": "c",
    }
    attempts = [True, False] if sep == "\t" else [False]
    first_error: Exception | None = None
    for quote_none in attempts:
        extra = {"quoting": csv.QUOTE_NONE} if quote_none else {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                df = pd.read_csv(io.StringIO(text), **kwargs, **extra)
            break
        except pd.errors.EmptyDataError as exc:
            raise DataError(
                f"'{shown}' is empty. Write a header row (e.g. 'text,label') and one row per text."
            ) from exc
        except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError) as exc:
            first_error = first_error or exc
    else:
        kind, sep_name = ("TSV", "tabs") if sep == "\t" else ("CSV", "commas")
        long_row = _first_long_row(text, sep, quote_none=attempts[0])
        if long_row is not None:
            line, fields, width = long_row
            what = f"line {line} has {fields} fields but the header has {width}"
        else:
            what = str(first_error)
        raise DataError(
            f"'{shown}' cannot be parsed as {kind}: {what}. Every row needs as many {sep_name} as the header; "
            'put texts that contain the separator, quotes or line breaks in double quotes (doubling quotes inside: "").'
        ) from first_error
    if df.shape[0] == 0:
        raise DataError(f"'{shown}' has a header but no rows. Add one row per text.")
    return _frame_to_table(df, [f"{path}:row {i + 1}" for i in range(df.shape[0])], f"'{shown}'")


def _loads(text: str, where: str) -> Any:
    """``json.loads`` with the parser's limits as a DataError naming ``where``: nesting too deep for it, or an integer
    of more digits than Python converts. Syntax errors (``json.JSONDecodeError``) are left to the caller, whose message
    says what the file must hold."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise DataError(
            f"{where} nests JSON arrays or objects too deeply to be read. Give flat records such as "
            '{"text": "...", "label": "..."}.'
        ) from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise DataError(f"{where} cannot be read as JSON ({exc}). Write very long numbers as strings.") from None


def _read_json(text: str, shown: str, path: Path) -> _Table:
    """Parse JSON Lines (one object per line) or a JSON array of objects."""
    records: list[tuple[str, dict[str, Any]]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = _loads(text, f"'{shown}'")
        except json.JSONDecodeError as exc:
            raise DataError(
                f"'{shown}' is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
                "Give a JSON array of objects or one JSON object per line."
            ) from exc
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise DataError(
                    f"'{shown}' item {i + 1} is a {type(item).__name__}, not an object. Give objects such as "
                    '{"text": "...", "label": "..."}.'
                )
            records.append((f"{path}:row {i + 1}", item))
    else:
        for lineno, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                item = _loads(line, f"'{shown}' line {lineno}")
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"'{shown}' line {lineno} is not valid JSON ({exc.msg}, column {exc.colno}). Each line must "
                    'be one JSON object such as {"text": "...", "label": "..."}; fix or remove the line.'
                ) from exc
            if not isinstance(item, dict):
                raise DataError(
                    f"'{shown}' line {lineno} is a JSON {type(item).__name__}, not an object. Each line must be "
                    'one JSON object such as {"text": "...", "label": "..."}.'
                )
            records.append((f"{path}:line {lineno}", item))
    if not records:
        raise DataError(f"'{shown}' holds no records. Write one JSON object per text.")
    names: dict[str, None] = {}
    for _, item in records:
        names.update(dict.fromkeys(str(k) for k in item))
    columns = {name: [_plain(item.get(name)) for _, item in records] for name in names}
    return _Table(columns, [src for src, _ in records], f"'{shown}'")


def _arrow_error() -> type[Exception]:
    """pyarrow's base exception (``ArrowInvalid`` and friends), or ``OSError`` when pyarrow is not installed."""
    try:
        import pyarrow
    except ImportError:
        return OSError
    return pyarrow.ArrowException  # type: ignore[no-any-return]


def _read_parquet(path: Path, shown: str) -> _Table:
    try:
        df = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(
            f"Reading '{shown}' needs a Parquet engine, and none is installed. Run `pip install pyarrow` "
            "(or save the data as CSV/JSONL)."
        ) from exc
    except (OSError, ValueError, TypeError, KeyError, IndexError, _arrow_error()) as exc:  # corrupt or not Parquet
        raise DataError(f"'{shown}' cannot be read as Parquet ({exc}). Check that it is a Parquet file.") from exc
    if df.shape[0] == 0:
        raise DataError(f"'{shown}' has no rows. Add one row per text.")
    sources = [f"{path}:row {i + 1}" for i in range(df.shape[0])]
    try:
        return _frame_to_table(df.reset_index(drop=True), sources, f"'{shown}'")
    except _arrow_error() as exc:  # string cells are decoded only now, e.g. bytes that are not UTF-8
        raise DataError(
            f"'{shown}' holds cells that cannot be read ({exc}). Write the Parquet file again (strings as UTF-8)."
        ) from exc


def _read_plain_lines(text: str, path: Path) -> _Table:
    texts: list[Any] = []
    sources: list[str] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            texts.append(line)
            sources.append(f"{path}:line {lineno}")
    if not texts:
        raise DataError(f"'{path}' is empty. Write one text per line, or a table with a header row.")
    return _Table({"text": texts}, sources, f"'{path}'")


def _read_table(path: str | os.PathLike[str], names_given: Sequence[str | None]) -> _Table:
    """Read ``path`` into a :class:`_Table` by its extension."""
    file = Path(path)
    shown = str(path)
    if not file.exists():
        raise DataError(f"'{shown}' does not exist. Check the path.")
    if file.is_dir():
        raise DataError(
            f"'{shown}' is a folder; give one file, or call graft.data.find_text_splits('{shown}') to read a "
            "folder of train/val/test files."
        )
    suffix = file.suffix.lower()
    if suffix not in TEXT_EXTENSIONS:
        raise DataError(
            f"'{shown}' has an unsupported extension '{file.suffix}'. Give one of {', '.join(sorted(TEXT_EXTENSIONS))}."
        )
    if suffix == ".parquet":
        return _read_parquet(file, shown)
    text = _decode_utf8(_read_bytes(file, shown), shown)
    if suffix in {".jsonl", ".json"}:
        return _read_json(text, shown, file)
    if suffix == ".csv":
        return _read_delimited(text, ",", shown, file)
    if suffix == ".tsv":
        return _read_delimited(text, "\t", shown, file)
    # .txt: a tab- or comma-separated table with a known header, or one text per line.
    first = next((line for line in text.split("\n") if line.strip()), "")
    sep = "\t" if "\t" in first else ","
    header = {_name_key(cell) for cell in first.split(sep)}
    known = set(_TEXT_NAMES) | set(_LABEL_NAMES) | {p for ps in _PAIR_PARTNERS.values() for p in ps}
    known |= {_name_key(n) for n in names_given if n}
    if header & known:
        return _read_delimited(text, sep, shown, file)
    return _read_plain_lines(text, file)
