"""Guess the task of a dataset path (used by ``graft train`` when ``--task`` is ``auto``)."""

from __future__ import annotations

import json
import re
from itertools import islice
from pathlib import Path

from ..errors import DataError
from .images import IMAGE_EXTENSIONS

__all__ = ["TASKS", "detect_task"]

TASKS = ("image-classification", "text-classification", "token-classification", "tabular-classification")
_TABLE = {".csv", ".tsv", ".parquet", ".json"}
_PATH_COLUMNS = {"path", "file", "filename", "image", "filepath", "image_path"}


_TAG = re.compile(r"^(O|[BIESLU]-\S+)$")


def _looks_conll(path: Path) -> bool:
    """Token-per-line with at least two columns, blank lines between sentences."""
    try:
        lines = [ln for ln in islice(path.open(encoding="utf-8", errors="replace"), 200)]
    except OSError:
        return False
    body = [ln.split() for ln in lines if ln.strip() and not ln.startswith("-DOCSTART-")]
    return (
        bool(body)
        and any(not ln.strip() for ln in lines)
        and all(2 <= len(p) <= 10 and _TAG.match(p[-1]) for p in body[:50])  # "word ... TAG", not short sentences
    )


def _file_task(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image-classification"
    if (
        suffix in (".conll", ".bio", ".iob")
        or path.name.lower().startswith("eng.")
        or (suffix in ("", ".txt") and _looks_conll(path))
    ):
        return "token-classification"
    if suffix == ".jsonl":
        try:
            first = json.loads(next(ln for ln in path.open(encoding="utf-8") if ln.strip()))
        except (OSError, StopIteration, json.JSONDecodeError, UnicodeDecodeError):
            return "text-classification"
        return (
            "token-classification"
            if isinstance(first, dict) and ("tokens" in first or "words" in first)
            else ("text-classification")
        )
    if suffix in _TABLE or suffix == ".txt":
        if suffix in (".csv", ".tsv"):
            try:
                header = path.open(encoding="utf-8-sig").readline().lower()
            except (OSError, UnicodeDecodeError):
                return "text-classification"
            cols = {c.strip().strip('"') for c in header.replace("\t", ",").split(",")}
            if cols & _PATH_COLUMNS:
                return "image-classification"
        if suffix in (".csv", ".tsv", ".parquet") and _looks_tabular(path):
            return "tabular-classification"
        return "text-classification"
    return None


def _looks_tabular(path: Path) -> bool:
    """A table of features rather than of texts: no free-text column, or free text beside several other columns."""
    import pandas as pd

    from .tabular import infer_kind

    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path).head(500)
        else:
            df = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", nrows=500)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return False
    if df.shape[1] < 2:
        return False
    from ._tables import _TEXT_NAMES

    kinds = {str(c): infer_kind(str(c), df[c])[0] for c in df.columns}
    texts = [c for c, k in kinds.items() if k == "text" or c.lower() in _TEXT_NAMES]
    others = [c for c, k in kinds.items() if k not in ("text", None) and c not in texts]
    # "text,label" (and pairs) stay text classification; one label column plus two or more features is a table
    return bool(others) and (not texts or len(others) >= 4)


def detect_task(path: str | Path) -> str:
    """``image-classification`` for image folders/CSVs of image paths, ``token-classification`` for CoNLL or
    token JSONL, ``text-classification`` for text tables.

    Raises:
        DataError: the path does not exist or holds nothing recognisable.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"'{p}' does not exist. Give a folder of images, a text table (CSV/TSV/JSONL/Parquet) or "
            "a CoNLL file/folder."
        )
    if p.is_file():
        task = _file_task(p)
        if task is None:
            raise DataError(f"Cannot tell what task '{p}' is for; pass --task ({', '.join(TASKS)}).")
        return task
    files = [f for f in islice(p.rglob("*"), 5000) if f.is_file() and not f.name.startswith(".")]
    if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in files):
        return "image-classification"
    found = [t for t in (_file_task(f) for f in files) if t]
    if "token-classification" in found:
        return "token-classification"
    if found:
        return found[0]
    raise DataError(f"'{p}' holds no images, text tables or CoNLL files; pass --task ({', '.join(TASKS)}).")
