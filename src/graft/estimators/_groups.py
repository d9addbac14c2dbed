"""Groups (patients, studies) of examples: validation split by group, and no evaluation on groups seen in training.

Images of one patient are not independent: with one of them in training and another in validation or test, the
scores measure recognising the patient, not the disease. Group IDs are kept only as salted hashes (in the bundle):
they are patient metadata and never appear in messages or logs.
"""

from __future__ import annotations

import hashlib
import secrets
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import DataError

__all__ = ["holdout", "group_record", "check_group_leak"]


def _hashes(groups: Iterable[str], salt: str) -> set[str]:
    return {hashlib.blake2b(f"{salt}\0{g}".encode(), digest_size=8).hexdigest() for g in groups}


def holdout(
    task: Any, labels: Sequence[Any], groups: Sequence[str] | None, fraction: float, seed: int, noun: str
) -> tuple[list[int], list[int]]:
    """The task's seeded validation split, or with ``groups`` a stratified split that keeps each group whole."""
    if groups is None:
        return task.split(labels, fraction, seed, noun=noun)  # type: ignore[no-any-return]
    from ..data.labels import stratified_group_split
    from ..tasks.base import label_key

    return stratified_group_split([label_key(v) for v in labels], groups, fraction, seed, noun=noun)


def group_record(train: Any, val: Any | None, column: str | None) -> dict[str, Any] | None:
    """What the bundle keeps of the training and validation groups: salted hashes, the column name and counts.

    An explicit validation set that shares groups with training is warned about (its scores are optimistic)."""
    if train.groups is None:
        return None
    val_groups = [] if val is None or val.groups is None else val.groups
    shared = set(train.groups) & set(val_groups)
    if shared:
        warnings.warn(
            f"{len(shared)} group(s) of the validation data also appear in the training data: validation scores will "
            "be optimistic. Split by group (the group column) so that every patient is in one split.",
            stacklevel=3,
        )
    salt = secrets.token_hex(8)
    return {
        "column": column,
        "salt": salt,
        "hashes": sorted(_hashes([*train.groups, *val_groups], salt)),
        "train_groups": len(set(train.groups)),
        "val_groups": len(set(val_groups)),
    }


def check_group_leak(record: dict[str, Any] | None, data: Any, what: str = "evaluation data") -> None:
    """Refuse data whose groups were seen in training or validation (when both sides know their groups).

    Raises:
        DataError: naming how many groups and images overlap and the first such file (never a group ID).
    """
    if not record or data.groups is None:
        return
    seen, salt = set(record["hashes"]), record["salt"]
    hashed = {g: next(iter(_hashes([g], salt))) for g in set(data.groups)}
    rows = [i for i, g in enumerate(data.groups) if hashed[g] in seen]
    if rows:
        n_groups = len({data.groups[i] for i in rows})
        column = record.get("column") or "group"
        raise DataError(
            f"{what}: {n_groups} {column} value(s) ({len(rows)} of {len(data.groups)} images, e.g. "
            f"'{data.sources[rows[0]]}') also appear in the model's training or validation data, so the scores would "
            "measure recognising those patients. Evaluate on groups the model never saw (split by group before "
            "training)."
        )
