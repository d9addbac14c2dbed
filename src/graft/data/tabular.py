"""Tables of mixed columns for :class:`graft.TabularClassifier`: reading, column kinds, and the fitted preprocessing.

:class:`TableSchema` is fitted on the training table and stored in the bundle. It infers each column's kind
(``numeric``, ``categorical``, ``boolean``, ``date``, ``text``: free text, embedded by a sentence encoder), drops
columns that cannot help (an ID, a constant, an all-missing column) and says why, and turns any later table into one
float32 matrix: standardised numbers (missing values → the training median, plus a missing-value indicator when the
training data had gaps) and the sentence embeddings of text columns, then integer category codes (0 = missing,
1 = unseen or rare, 2... = categories seen in training). Category codes ride in the float matrix so that every
model input is one tensor (exact up to 2**24).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["KINDS", "TABLE_EXTENSIONS", "ColumnSpec", "TableSchema", "infer_kind", "read_frame", "label_column_of"]

KINDS = ("numeric", "categorical", "boolean", "date", "text")
TABLE_EXTENSIONS = (".csv", ".tsv", ".parquet", ".jsonl")
#: most categories kept per column (the rest share the "rare" code)
MAX_CATEGORIES = 1000
_TRUE = {"true", "yes", "y", "t"}
_FALSE = {"false", "no", "n", "f"}
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$|^(id|index)$", re.IGNORECASE)
_LABEL_NAMES = ("label", "target", "class", "y", "default", "bad", "fraud", "is_fraud")
_FORMAT_HINTS = {
    ".csv": "Give a comma-separated table with a header row; quote cells that hold commas or line breaks.",
    ".tsv": "Give a tab-separated table with a header row.",
    ".jsonl": 'Give one JSON object per line, such as {"age": 41, "label": "yes"}.',
    ".parquet": "Check that it is a complete Parquet file (save it again, e.g. with pandas' DataFrame.to_parquet).",
}


def read_frame(source: Any, *, what: str) -> pd.DataFrame:
    """A DataFrame from a DataFrame, a dict of columns, or a CSV/TSV/Parquet/JSONL path."""
    import scipy.sparse

    if scipy.sparse.issparse(source):
        raise DataError(f"{what}: sparse input is not supported; pass a dense array (X.toarray()) or a DataFrame.")
    if isinstance(source, pd.DataFrame):
        out = source.reset_index(drop=True)
        out.columns = [str(c) for c in out.columns]  # column names are strings throughout (0 and "0" alike)
        return out
    if isinstance(source, Mapping):
        return pd.DataFrame(dict(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{what}: '{path}' is not a file; give a CSV, TSV, Parquet or JSONL table.")
        suffix = path.suffix.lower()
        try:
            if suffix == ".parquet":
                return pd.read_parquet(path)
            if suffix == ".jsonl":
                return pd.read_json(path, lines=True)
            if suffix in (".csv", ".tsv"):
                return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", low_memory=False)
        except UnicodeDecodeError:
            raise DataError(f"{what}: '{path}' is not UTF-8 text; re-save it as UTF-8.") from None
        except (ValueError, OSError, pd.errors.ParserError) as e:
            raise DataError(
                f"{what}: cannot read '{path}' as a table ({type(e).__name__}: {e}). {_FORMAT_HINTS.get(suffix, '')}"
            ) from None
        except TypeError as e:  # pandas' JSON reader, for lines that are JSON but not objects (``0``, ``[1]``)
            raise DataError(f"{what}: cannot read '{path}' as a table ({e}). {_FORMAT_HINTS.get(suffix, '')}") from None
        raise DataError(f"{what}: '{path}' has extension '{suffix}'; give one of {', '.join(TABLE_EXTENSIONS)}.")
    raise DataError(f"{what} must be a pandas DataFrame or a table file path; got {type(source).__name__}.")


def label_column_of(df: pd.DataFrame, given: str | None, *, what: str) -> str:
    """The label column: ``given`` (checked), else a column with a usual label name."""
    if given is not None:
        if given not in df.columns:
            raise DataError(
                f"{what} has no column '{given}' (--label-column); its columns: {', '.join(map(str, df.columns[:30]))}."
            )
        return given
    lower = {str(c).lower(): c for c in df.columns}
    for name in _LABEL_NAMES:
        if name in lower:
            return str(lower[name])
    raise DataError(
        f"{what}: which column holds the labels? Pass --label-column NAME (label_column=); columns: "
        f"{', '.join(map(str, df.columns[:30]))}."
    )


@dataclass
class ColumnSpec:
    """One kept column and what was fitted on it."""

    name: str
    kind: str
    median: float = 0.0  # numeric, date (days): the fill value
    mean: float = 0.0
    std: float = 1.0
    indicator: bool = False  # numeric, date: a missing-value indicator feature follows
    dayfirst: bool = False  # date: dd/mm/yyyy (found in training: a first field over 12), else mm/dd/yyyy
    categories: list[str] = field(default_factory=list)  # categorical, boolean
    model: str | None = None  # text: the sentence encoder
    dim: int = 0  # text: its embedding size


def _as_text(values: pd.Series, boolean: bool = False) -> list[str | None]:
    """Category values as strings (``1`` and ``1.0`` alike; booleans as ``True``/``False``), missing as ``None``."""

    def norm(v: Any) -> str | None:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        text = str(v).strip()
        return str(text.lower() in _TRUE) if boolean else text

    return [norm(v) for v in values.astype(object).tolist()]


def _boolean(values: pd.Series) -> bool:
    if values.dtype == bool:
        return True
    present = {v.lower() for v in _as_text(values) if v is not None}
    return bool(present) and present <= (_TRUE | _FALSE) and len(present) <= 2


def _date(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return False
    sample = values.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}").mean() > 0.95:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.95)


def infer_kind(name: str, values: pd.Series) -> tuple[str | None, str]:
    """``(kind, reason)``; kind ``None`` means the column is left out (the reason says why)."""
    present = values.dropna()
    if present.empty:
        return None, "all values missing"
    if present.nunique() == 1 and len(present) == len(values):
        return None, "one value in every row"
    n = len(values)
    unique_ratio = present.nunique() / max(1, len(present))
    if _boolean(values):
        return "boolean", ""
    if pd.api.types.is_numeric_dtype(values):
        integral = pd.api.types.is_integer_dtype(values) or bool((present == np.round(present)).all())
        if integral and unique_ratio == 1.0 and n >= 20 and (_ID_NAME.search(name) or present.is_monotonic_increasing):
            return None, "an ID (a different whole number in every row)"
        return "numeric", ""
    if _date(values):
        return "date", ""
    text = present.astype(str)
    if unique_ratio > 0.5 and text.str.count(" ").mean() >= 3:  # sentences, not codes
        return "text", ""
    if unique_ratio == 1.0 and n >= 20 and (_ID_NAME.search(name) or text.str.len().mean() < 40):
        return None, "an ID (a different value in every row)"
    return "categorical", ""


_SLASH_DATE = r"^\s*(\d{1,2})/(\d{1,2})/\d{2,4}"


def _day_first(name: str, values: pd.Series) -> bool:
    """Whether a date column's ``a/b/yyyy`` dates are day-first: some first field is over 12 (``13/01/2020``). Refused
    when others are month-first (a second field over 12); with neither, month-first, as pandas reads them."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return False
    fields = values.dropna().astype(str).str.extract(_SLASH_DATE).dropna().astype(int)
    day_first, month_first = fields.index[fields[0] > 12], fields.index[fields[1] > 12]
    if len(day_first) and len(month_first):
        d, m = day_first[0], month_first[0]
        raise DataError(
            f"column '{name}' has dates written day first (row {d}: {values[d]!r}) and month first (row {m}: "
            f"{values[m]!r}); write them all one way, best as YYYY-MM-DD."
        )
    return bool(len(day_first))


def _days(values: pd.Series, dayfirst: bool = False) -> np.ndarray:
    """Days since 1970 (NaN: missing or unreadable). ISO dates (``2020-01-13``) are read as such; ``a/b/yyyy`` dates
    all one way, day-first or month-first, as the training data showed (pandas alone would flip single rows)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        cells = values.astype(object).where(values.notna(), None)
        slash = cells.astype(str).str.match(_SLASH_DATE) if dayfirst else None
        parsed = pd.to_datetime(cells if slash is None else cells.where(~slash, None), errors="coerce", format="mixed")
        if slash is not None:  # each cell parsed once: the a/b/yyyy ones day-first
            swapped = pd.to_datetime(cells.where(slash, None), errors="coerce", format="mixed", dayfirst=True)
            parsed = parsed.where(~slash, swapped)
    days = (parsed - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return days.to_numpy(dtype=np.float64, na_value=np.nan)


def _numbers(values: pd.Series, name: str, where: str) -> np.ndarray:
    if values.dtype == bool:
        return values.to_numpy(np.float64)
    out = pd.to_numeric(values, errors="coerce")
    bad = out.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{where}: column '{name}' holds numbers in training but row {row} has {values.iloc[row]!r}; fix the "
            "value or leave the cell empty (missing)."
        )
    v = out.to_numpy(np.float64)
    if np.isinf(v).any():
        rows = np.flatnonzero(np.isinf(v))
        shown = ", ".join(str(int(r)) for r in rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        raise DataError(
            f"{where}: column '{name}' is infinite in row(s) {shown}; use a finite number or leave the cell empty "
            "(missing)."
        )
    return v


@dataclass
class TableSchema:
    """The fitted preprocessing of a table (JSON-able; stored in the bundle)."""

    label: str | None
    columns: list[ColumnSpec]
    dropped: dict[str, str]

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        df: pd.DataFrame,
        *,
        label: str | None,
        kinds: Mapping[str, str] | None = None,
        drop: Sequence[str] = (),
        min_frequency: int = 1,
        text_model: str = "minilm",
    ) -> TableSchema:
        """Infer column kinds on ``df`` (``kinds`` overrides, ``drop`` leaves columns out) and fit each one; free-text
        columns are embedded with ``text_model`` (a Graft text backbone name)."""
        kinds = dict(kinds or {})
        for name, kind in kinds.items():
            if name not in df.columns:
                raise DataError(f"column kinds: the table has no column '{name}'.")
            if kind not in KINDS:
                raise DataError(f"column '{name}': kind must be one of {', '.join(KINDS)}; got '{kind}'.")
        unknown = [c for c in drop if c not in df.columns]
        if unknown:
            raise DataError(f"drop_columns: the table has no column(s) {', '.join(unknown)}.")
        columns: list[ColumnSpec] = []
        dropped: dict[str, str] = {c: "left out by request" for c in drop}
        for name in df.columns:
            name = str(name)
            if name == label or name in dropped:
                continue
            values = df[name]
            kind, reason = (kinds[name], "") if name in kinds else infer_kind(name, values)
            if kind is None:
                dropped[name] = reason
                continue
            if kind == "text":
                columns.append(ColumnSpec(name, "text", model=text_model, dim=_encoder(text_model).feature_dim))
                continue
            columns.append(_fit_column(name, kind, values, min_frequency))
        if not columns:
            raise DataError(
                "the table has no usable feature columns"
                + (f" (left out: {'; '.join(f'{k}: {v}' for k, v in dropped.items())})" if dropped else "")
                + "."
            )
        return cls(label=label, columns=columns, dropped=dropped)

    # ------------------------------------------------------------------ applying
    @property
    def numeric(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.kind in ("numeric", "date")]

    @property
    def texts(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.kind == "text"]

    @property
    def categorical(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.kind in ("categorical", "boolean")]

    @property
    def n_numeric(self) -> int:
        """Width of the numeric block (values, missing-value indicators, text embeddings)."""
        return sum(1 + c.indicator for c in self.numeric) + sum(c.dim for c in self.texts)

    @property
    def cardinalities(self) -> list[int]:
        """Codes per categorical column: missing, rare/unseen, then each category."""
        return [2 + len(c.categories) for c in self.categorical]

    @property
    def width(self) -> int:
        return self.n_numeric + len(self.categorical)

    def check(self, df: pd.DataFrame, *, where: str, rename: Mapping[str, str] | None = None) -> pd.DataFrame:
        """``df`` with renamed columns; a clear error when a column the model needs is missing."""
        if rename:
            df = df.rename(columns=dict(rename))
        need = [c.name for c in self.columns]
        missing = [c for c in need if c not in df.columns]
        if missing:
            extra = [str(c) for c in df.columns if c not in need and c != self.label and c not in self.dropped]
            hint = f" It has other columns: {', '.join(extra[:20])}." if extra else ""
            raise DataError(
                f"{where} lacks column(s) the model was trained on: {', '.join(missing)}.{hint} Rename those "
                "columns in the table (in Python: column_map={'new name': 'trained name'}) or add them (empty cells "
                "count as missing values)."
            )
        return df

    def transform(self, df: pd.DataFrame, *, where: str) -> np.ndarray:
        """``(N, width)`` float32: the numeric block, then category codes."""
        n = len(df)
        out = np.zeros((n, self.width), np.float32)
        j = 0
        for c in self.numeric:
            v = _days(df[c.name], c.dayfirst) if c.kind == "date" else _numbers(df[c.name], c.name, where)
            miss = np.isnan(v)
            v = np.where(miss, c.median, v)
            out[:, j] = np.clip((v - c.mean) / c.std, -1e4, 1e4)
            j += 1
            if c.indicator:
                out[:, j] = miss
                j += 1
        for c in self.texts:
            out[:, j : j + c.dim] = embed_texts(_as_text(df[c.name]), str(c.model))
            j += c.dim
        for c in self.categorical:
            index = {v: i + 2 for i, v in enumerate(c.categories)}
            text = _as_text(df[c.name], boolean=c.kind == "boolean")
            out[:, j] = [0 if v is None else index.get(v, 1) for v in text]
            j += 1
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "columns": [asdict(c) for c in self.columns], "dropped": dict(self.dropped)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableSchema:
        return cls(label=d.get("label"), columns=[ColumnSpec(**c) for c in d["columns"]], dropped=dict(d["dropped"]))

    def describe(self) -> str:
        kinds: dict[str, int] = {}
        for c in self.columns:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        parts = ", ".join(f"{v} {k}" for k, v in kinds.items())
        left = "; ".join(f"{k} ({v})" for k, v in self.dropped.items())
        return f"{len(self.columns)} feature columns ({parts})" + (f"; left out: {left}" if left else "")


def _fit_column(name: str, kind: str, values: pd.Series, min_frequency: int) -> ColumnSpec:
    if kind in ("numeric", "date"):
        dayfirst = kind == "date" and _day_first(name, values)
        v = _days(values, dayfirst) if kind == "date" else _numbers(values, name, "training data")
        present = v[~np.isnan(v)]
        if present.size == 0:
            raise DataError(f"column '{name}' has no values to learn from.")
        median = float(np.median(present))
        filled = np.where(np.isnan(v), median, v)
        std = float(filled.std())
        return ColumnSpec(
            name,
            kind,
            median=median,
            mean=float(filled.mean()),
            std=std if std > 1e-12 else 1.0,
            indicator=bool(np.isnan(v).any()),
            dayfirst=dayfirst,
        )
    counts = pd.Series([v for v in _as_text(values, boolean=kind == "boolean") if v is not None]).value_counts()
    kept = [str(k) for k, c in counts.items() if c >= min_frequency][:MAX_CATEGORIES]
    return ColumnSpec(name, kind, categories=sorted(kept))


_ENCODERS: dict[str, Any] = {}


def _encoder(name: str) -> Any:
    """The text backbone ``name`` (loaded once per process)."""
    if name not in _ENCODERS:
        from ..backbones import create_backbone

        _ENCODERS[name] = create_backbone(name, modality="text", pretrained=True)
    return _ENCODERS[name]


def embed_texts(texts: Sequence[str | None], model: str, batch_size: int = 64) -> np.ndarray:
    """Unit-length sentence embeddings ``(N, dim)`` of ``texts`` (a missing text: zeros)."""
    import torch

    backbone = _encoder(model)
    out = np.zeros((len(texts), backbone.feature_dim), np.float32)
    rows = [i for i, t in enumerate(texts) if t]
    with torch.no_grad():
        for s in range(0, len(rows), batch_size):
            idx = rows[s : s + batch_size]
            batch = backbone.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            z = backbone.module.eval()(dict(batch)).float()
            out[idx] = torch.nn.functional.normalize(z, dim=1).numpy()
    return out
