"""Which columns of a table hold the text, the second text and the label, and how cells become texts and labels.

Problems are collected per cell and raised together, naming the file and row of each (at most 20 listed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graft.data._tables import _LABEL_NAMES, _PAIR_PARTNERS, _TEXT_NAMES, _name_key, _Table
from graft.errors import DataError, did_you_mean

_MAX_LISTED = 20


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
            text = _sentence_column(table, taken)
        if text is None:
            raise DataError(
                f"{table.shown} has no text column; columns found: {_quoted(list(table.columns))}. Pass "
                "text_column='<name>' (CLI: --text-column) to choose one, or name the column one of "
                f"{', '.join(_TEXT_NAMES)}. The first row must be a header. A table of features (numbers, "
                "categories) is read with task tabular-classification (CLI: --task tabular-classification)."
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


def _sentence_column(table: _Table, taken: set[str]) -> str | None:
    """The one column, not named as text, that reads as free text by the rule that tells a table's text columns
    (:func:`graft.data.tabular.infer_kind`); ``None`` when no column or several do."""
    import pandas as pd

    from graft.data.tabular import infer_kind

    found = [
        name
        for name, cells in table.columns.items()
        if name not in taken
        and _name_key(name) not in _LABEL_NAMES
        and all(isinstance(c, str) for c in cells if c is not None)  # lists and numbers are no text
        and infer_kind(name, pd.Series(cells, dtype=object))[0] == "text"
    ]
    return found[0] if len(found) == 1 else None


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
