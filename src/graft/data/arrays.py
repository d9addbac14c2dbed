"""Array inputs (``fit(X, y)`` with a matrix): the checks scikit-learn users expect, in their words."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["dense_2d"]


def dense_2d(X: Any, what: str, *, shape: str, dense: str = "a dense array (X.toarray())") -> np.ndarray:
    """``X`` as a 2-D numpy array of any real dtype with at least one row and column; otherwise a :class:`DataError`
    naming what is wrong (``shape`` says what ``X`` should be, e.g. ``"a table (N rows, F columns)"``; ``dense`` what
    to pass instead of a sparse matrix)."""
    import scipy.sparse

    if scipy.sparse.issparse(X):
        raise DataError(f"{what}: sparse input is not supported; pass {dense}.")
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what} must be {shape}; could not read it ({e}).") from None
    if arr.dtype.kind == "c":
        raise DataError(f"{what}: Complex data not supported; pass real numbers.")
    if arr.ndim != 2:
        raise DataError(
            f"{what} must be {shape}; got an array of shape {arr.shape}. Reshape your data: "
            "X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single sample."
        )
    if arr.shape[1] == 0:
        raise DataError(f"{what}: 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if len(arr) == 0:
        raise DataError(f"{what}: 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required.")
    return arr
