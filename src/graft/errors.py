"""Exceptions users see.

Every user mistake raises a :class:`GraftError` subclass whose message says what is wrong, where
(file, row, parameter) and what to do next. The CLI prints the message without a traceback and exits 2.
"""

from __future__ import annotations

import difflib
import struct
from collections.abc import Iterable

__all__ = [
    "GraftError",
    "DataError",
    "ConfigError",
    "BundleError",
    "TrainingError",
    "DiskFullError",
    "UnwritableError",
    "DECODER_ERRORS",
    "did_you_mean",
]


class GraftError(Exception):
    """Base class of every error Graft raises for a user mistake."""


class DataError(GraftError, ValueError):
    """The data given to ``fit``/``evaluate``/``predict`` cannot be used as it is (a ``ValueError``, as scikit-learn
    estimators raise for bad input)."""


class ConfigError(GraftError, ValueError):
    """A parameter, model name or strategy name is invalid."""


class BundleError(GraftError):
    """A saved bundle is missing, incomplete, tampered with or of an unknown format."""


class TrainingError(GraftError):
    """Training diverged (non-finite loss) or cannot go on with the given settings."""


class DiskFullError(GraftError, OSError):
    """A file could not be written because the disk (or the user's quota) is full; nothing was left half-written.

    Also an ``OSError`` (its ``errno`` is ``ENOSPC`` or ``EDQUOT``), as the failed write was."""


class UnwritableError(GraftError, OSError):
    """An output cannot be written where it was asked: a file stands where a folder is needed, no permission, a
    read-only place; nothing was written. Also an ``OSError``, as the failed write was."""


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or an empty string."""
    close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


#: What image and DICOM decoders (Pillow, pydicom, numpy) raise on damaged or unexpected file content. Readers catch
#: these per file and report them as that file's reason; ``MemoryError`` and ``KeyboardInterrupt`` are not among them.
DECODER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # also PIL.UnidentifiedImageError
    ValueError,  # also UnicodeError, numpy reshape errors
    TypeError,
    LookupError,  # KeyError, IndexError
    AttributeError,
    EOFError,
    SyntaxError,  # Pillow raises it for malformed headers
    struct.error,
    ArithmeticError,  # ZeroDivisionError, OverflowError
    RuntimeError,  # also NotImplementedError
    AssertionError,
    BufferError,
)
