"""Split names shared by every reader: which folder, file or column value means train, validation or test."""

from __future__ import annotations

__all__ = ["SPLIT_ORDER", "SPLIT_ALIASES", "TOKEN_SPLIT_ALIASES"]

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
