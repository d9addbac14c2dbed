"""Split names shared by every reader: which folder, file or column value means train, validation or test."""

from __future__ import annotations

from typing import Any

__all__ = ["SPLIT_ORDER", "SPLIT_ALIASES", "TOKEN_SPLIT_ALIASES", "Splits"]

SPLIT_ORDER: tuple[str, ...] = ("train", "val", "test")
"""The canonical splits, in the order they are listed."""

SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
"""Lower-case names of split folders, files and ``split`` column values, and the split each one means."""

TOKEN_SPLIT_ALIASES: dict[str, str] = {**SPLIT_ALIASES, "testa": "val", "testb": "test"}
"""The same plus the CoNLL-2003 file names (``eng.testa`` is the development set, ``eng.testb`` the test set)."""


class Splits(dict[str, Any]):
    """The parts of a folder or table, ``{split: data}`` in :data:`SPLIT_ORDER` order.

    ``marked`` is False when the input had no split folders, files or ``split`` column: its one part, ``"train"``,
    is then the whole input (an evaluation of it reports no split).
    """

    def __init__(self, parts: dict[str, Any], *, marked: bool = True) -> None:
        super().__init__(parts)
        self.marked = marked


def split_name(splits: dict[str, Any], chosen: str) -> str | None:
    """``chosen``, or None when ``splits`` is a whole input without split marks."""
    return chosen if getattr(splits, "marked", True) else None
