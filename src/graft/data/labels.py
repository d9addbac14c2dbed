"""Label checks and validation splits shared by every modality (images, texts, vectors, tables)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["check_labels", "stratified_group_split", "stratified_split"]

_MAX_LISTED = 20


def _counts_text(counts: Sequence[tuple[str, int]]) -> str:
    shown = ", ".join(f"'{c}' ({n})" for c, n in counts[:_MAX_LISTED])
    return shown + (f", ... and {len(counts) - _MAX_LISTED} more" if len(counts) > _MAX_LISTED else "")


def check_labels(
    train_labels: Sequence[str],
    other: Sequence[str] | None = None,
    *,
    other_name: str = "val",
    min_per_class: int = 2,
    noun: str = "examples",
) -> list[str]:
    """Check that the training labels support classification and that ``other`` only uses known classes.

    Args:
        train_labels: One label per training example.
        other: Labels of another split (validation/test), or ``None``.
        other_name: Name of that split, used in messages.
        min_per_class: Fewest training examples a class may have.
        noun: What the examples are called in messages (``images``, ``texts``, ``rows``).

    Returns:
        The sorted class names found in ``train_labels``.

    Raises:
        DataError: There are no labels or only one class, a class has fewer than ``min_per_class`` images,
            or ``other`` contains labels that never occur in ``train_labels``.
    """
    counts = Counter(str(label) for label in train_labels)
    if not counts:
        raise DataError(f"There are no training labels. Give at least 2 classes with labelled {noun}.")
    if len(counts) == 1:
        ((only, n),) = counts.items()
        raise DataError(
            f"Classification needs at least 2 classes; found only '{only}' in the training labels "
            f"({n} {noun}). Add {noun} of at least one more class."
        )
    few = sorted((c, n) for c, n in counts.items() if n < min_per_class)
    if few:
        raise DataError(
            f"Each class needs at least {min_per_class} training {noun}; too few in {_counts_text(few)}. "
            f"Add more {noun} of these classes or remove them."
        )
    if other is not None:
        unseen = Counter(str(label) for label in other if str(label) not in counts)
        if unseen:
            listed = _counts_text(sorted(unseen.items()))
            raise DataError(
                f"The {other_name} split has labels that never occur in train: {listed}. Every {other_name} "
                f"class must also appear in train; add training {noun} for them or remove those "
                f"{other_name} {noun}."
            )
    return sorted(counts)


def stratified_split(
    labels: Sequence[str], fraction: float, seed: int, *, noun: str = "examples"
) -> tuple[list[int], list[int]]:
    """Split indices into train and validation parts, stratified by label.

    Each class with at least 2 items puts ``round(count * fraction)`` of them, but at least 1 and at most
    ``count - 1``, into validation; classes with a single item stay in train. The choice is a seeded
    permutation per class, so the same labels, fraction and seed always give the same split.

    Args:
        labels: One label per item.
        fraction: Share of each class to hold out, strictly between 0 and 1.
        seed: Random seed.

    Returns:
        ``(train_idx, val_idx)``, each sorted ascending.

    Raises:
        DataError: ``fraction`` is not in (0, 1), or no class has 2 or more items.
    """
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0.0 < fraction < 1.0:
        raise DataError(f"The validation fraction must be between 0 and 1 (exclusive); got {fraction!r}.")
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(str(label), []).append(i)
    if not any(len(idx) >= 2 for idx in by_class.values()):
        raise DataError(
            f"Cannot hold out a validation split: none of the {len(by_class)} classes has 2 or more {noun}. "
            f"Add {noun}, or give a separate validation set."
        )
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for name in sorted(by_class):
        idx = by_class[name]
        if len(idx) < 2:
            train.extend(idx)
            continue
        n_val = min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        order = rng.permutation(len(idx))
        val.extend(idx[j] for j in order[:n_val])
        train.extend(idx[j] for j in order[n_val:])
    return sorted(train), sorted(val)


def stratified_group_split(
    labels: Sequence[str], groups: Sequence[str], fraction: float, seed: int, *, noun: str = "examples"
) -> tuple[list[int], list[int]]:
    """Split indices into train and validation parts so that no group (patient, study) is in both.

    Classes are balanced across the parts as far as whole groups allow (scikit-learn's ``StratifiedGroupKFold``
    with ``round(1 / fraction)`` folds, seeded; the first fold is validation).

    Args:
        labels: One label per item.
        groups: One group ID per item.
        fraction: Share to hold out, strictly between 0 and 1.
        seed: Random seed.

    Returns:
        ``(train_idx, val_idx)``, each sorted ascending, sharing no group.

    Raises:
        DataError: ``fraction`` is not in (0, 1), or there are fewer than 2 groups.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0.0 < fraction < 1.0:
        raise DataError(f"The validation fraction must be between 0 and 1 (exclusive); got {fraction!r}.")
    if len(groups) != len(labels):
        raise DataError(f"{len(groups)} group IDs for {len(labels)} {noun}: give one group per item.")
    n_groups = len(set(groups))
    if n_groups < 2:
        raise DataError(
            f"Cannot hold out a validation split by group: all {len(labels)} {noun} belong to one group. Give a "
            "separate validation set, or check the group column."
        )
    folds = min(n_groups, max(2, round(1.0 / fraction)))
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():  # "the least populated class has only k members": expected with few groups
        warnings.simplefilter("ignore", UserWarning)
        train, val = next(cv.split(np.zeros(len(labels)), [str(v) for v in labels], [str(g) for g in groups]))
    return sorted(train.tolist()), sorted(val.tolist())


def check_label_array(y: Any, n: int, what: str) -> list[Any]:
    """Labels given as an array (``fit(X, y)``) as a list of Python values, after scikit-learn's checks: one label
    per row, a column vector accepted with a ``DataConversionWarning``, no NaN or infinity, and class labels rather
    than a continuous target."""
    import warnings

    from sklearn.exceptions import DataConversionWarning
    from sklearn.utils.multiclass import type_of_target

    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the shape of y to (n_samples,), "
            "for example using ravel().",
            DataConversionWarning,
            stacklevel=4,
        )
        arr = arr.ravel()
    if arr.ndim != 1:
        raise DataError(f"{what}: y must be one label per row (a 1-D array); got shape {arr.shape}.")
    if len(arr) != n:
        raise DataError(f"{what}: {n} rows but {len(arr)} labels.")
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        raise DataError(f"{what}: y has NaN or infinite values; every row needs a class label.")
    if arr.dtype.kind == "f" and type_of_target(arr) == "continuous":
        raise DataError(
            f"{what}: Unknown label type: continuous (y holds fractional numbers). Classification needs class labels; "
            "for a numeric target, bin it into classes first."
        )
    return [v.item() if isinstance(v, np.generic) else v for v in arr.tolist()]
