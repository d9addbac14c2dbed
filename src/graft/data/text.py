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
from typing import Any

from graft.data._tables import (
    TEXT_EXTENSIONS,
    _read_table,
    _Table,
)
from graft.data.splits import SPLIT_ALIASES as _SPLIT_ALIASES
from graft.data.splits import SPLIT_ORDER as _SPLIT_ORDER
from graft.data.splits import Splits
from graft.data.text_cells import (
    _choose_columns,
    _find,
    _labels_from_cells,
    _quoted,
    _raise_text_problems,
    _scalar_text,
    _texts_from_cells,
)
from graft.errors import DataError, did_you_mean

__all__ = [
    "TEXT_EXTENSIONS",
    "TextSet",
    "find_text_splits",
    "read_text_table",
]


_SPLIT_COLUMN = "split"
_READ_DEFAULTS: dict[str, Any] = {
    "text_column": None,
    "text_pair_column": None,
    "label_column": None,
    "multi_label": False,
    "label_sep": None,
}


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
        table_columns: For tables, every column the table has (in file order).
    """

    texts: list[str]
    pairs: list[str] | None
    labels: list[str] | list[list[str]] | None
    sources: list[str]
    hashes: list[str]
    multi_label: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    table_columns: list[str] = field(default_factory=list)

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
            table_columns=list(self.table_columns),
        )

    def extended(self, texts: Sequence[str], labels: Sequence[str], source: str) -> TextSet:
        """This set followed by single texts (``source``: how their provenance reads, numbered from 1).

        Example:
            >>> s = TextSet(["a"], None, ["x"], ["text[0]"], [_digest("a", None)]).extended(["b"], ["y"], "prompt")
            >>> s.texts, s.sources
            (['a', 'b'], ['text[0]', 'prompt 1'])
        """
        if self.pairs is not None or self.multi_label:
            raise ValueError("only a single-label set of single texts can be extended")
        return TextSet(
            texts=[*self.texts, *texts],
            pairs=None,
            labels=None if self.labels is None else [*self.labels, *labels],  # type: ignore[list-item]
            sources=[*self.sources, *(f"{source} {i + 1}" for i in range(len(texts)))],
            hashes=[*self.hashes, *(_digest(t, None) for t in texts)],
            columns=dict(self.columns),
            table_columns=list(self.table_columns),
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


# --------------------------------------------------------------------------------------------------------
# Checking values
# --------------------------------------------------------------------------------------------------------


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
        table_columns=list(table.columns),
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


def _read_file_with_splits(path: str | os.PathLike[str], read_kwargs: dict[str, Any], *, require_train: bool) -> Splits:
    names = (read_kwargs.get("text_column"), read_kwargs.get("text_pair_column"), read_kwargs.get("label_column"))
    table = _read_table(path, names)
    full = _build(table, **{**_READ_DEFAULTS, **read_kwargs})
    splits = _split_values(table, full.columns)
    if splits is None:
        return Splits({"train": full}, marked=False)
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
    return Splits(out)


def find_text_splits(path: str | os.PathLike[str], **read_kwargs: Any) -> Splits:
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
        ``{"train": TextSet, "val": ..., "test": ...}`` with only the splits present, in that order
        (a :class:`~graft.data.splits.Splits`; ``marked`` is False when the input had no split marks).

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
        other = _other_kind(root)
        if other is not None:
            raise DataError(
                f"'{path}' holds {other[0]}, and text classification reads text tables: give a CSV/TSV/JSONL/Parquet "
                f"of texts and labels (or a folder with train/dev/test files), or train {other[1]} on it (graft "
                f"train {path})."
            )
        listing = _quoted(seen) if seen else "no files"
        raise DataError(
            f"'{path}' has no training file (found: {listing}). Name the files train, val (or dev) and test "
            f"with one of the extensions {', '.join(sorted(TEXT_EXTENSIONS))} (e.g. train.csv), or give the "
            "training file itself."
        )
    return Splits(
        {name: read_text_table(Path(path) / found[name].name, **read_kwargs) for name in _SPLIT_ORDER if name in found}
    )


def _other_kind(root: Path) -> tuple[str, str] | None:
    """What a folder without text-table splits holds instead, if it is images or CoNLL files: ``(what, model)``."""
    from graft.data.detect import detect_task

    try:
        task = detect_task(root)
    except DataError:
        return None
    return {
        "image-classification": ("images", "an image model"),
        "token-classification": ("CoNLL token files", "a token-classification (NER) model"),
    }.get(task)


# --------------------------------------------------------------------------------------------------------
# In-memory inputs
# --------------------------------------------------------------------------------------------------------
