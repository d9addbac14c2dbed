"""Classification on fixed embeddings / numeric feature vectors: :class:`EmbeddingClassifier`.

The backbone is the identity: the inputs already are features (from any model, or tabular columns). This is
the fast path of domain adaptation and of linear probing when the embeddings were computed elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..backbones.base import Backbone
from ..data.arrays import dense_2d
from ..data.labels import check_label_array
from ..errors import DataError
from ..strategies.base import Strategy
from ..tasks.base import Task
from ..tasks.classification import SingleLabel
from ._fitting import FitData, split_val
from .base import TransferEstimator

__all__ = ["EmbeddingClassifier"]


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Vectors:
    """Rows of a float32 matrix (``subset`` keeps the estimator's split logic modality-free)."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X

    def subset(self, idx: Any) -> _Vectors:
        return _Vectors(self.X[list(idx)])


def _vectors(X: Any, what: str) -> np.ndarray:
    """``X`` as a float32 matrix ``(N, F)``, or a :class:`DataError` saying what is wrong with it."""
    arr = dense_2d(X, what, shape="a 2-D array of feature vectors (N, F)")
    try:
        return arr.astype(np.float32)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what} must be numeric vectors (N, F); could not convert it ({e}).") from None


class EmbeddingClassifier(TransferEstimator):
    """A classifier on ``(N, F)`` feature vectors, with the same strategies, loop and bundle as the others.

    Args:
        strategy: ``feature-extraction`` (a linear probe) or a domain-adaptation strategy (``dann``, ``cdan``,
            ``mcc``, ``coral``, ``mmd``, ``adabn``, ``self-training``, ``source-only``) with ``fit(..., target=)``.
        standardize: scale each feature by the training data's mean and standard deviation (stored in the
            bundle and applied to every input).
        epochs, lr, batch_size, weight_decay, patience, val_fraction, seed, device, output_dir, overwrite,
        verbose: as for :class:`graft.ImageClassifier`.

    Example:
        >>> clf = graft.EmbeddingClassifier("dann").fit(X_source, y_source, target=X_target)  # doctest: +SKIP
    """

    task: ClassVar[str] = "embedding-classification"
    modality: ClassVar[str] = "embedding"
    noun: ClassVar[str] = "rows"
    trainable_backbone: ClassVar[bool] = False

    def __init__(
        self,
        strategy: str | Strategy = "feature-extraction",
        *,
        standardize: bool = True,
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int = 64,
        weight_decay: float = 0.01,
        grad_accum: int = 1,
        precision: str = "fp32",
        schedule: str = "cosine",
        patience: int | None = None,
        val_fraction: float = 0.2,
        seed: int = 0,
        device: str = "cpu",
        output_dir: str | Path | None = None,
        overwrite: bool = False,
        verbose: bool | None = None,
        log_with: str | None = None,
        backend: str = "torch",
    ) -> None:
        self.strategy = strategy
        self.standardize = standardize
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.grad_accum = grad_accum
        self.precision = precision
        self.schedule = schedule
        self.patience = patience
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.output_dir = output_dir
        self.overwrite = overwrite
        self.verbose = verbose
        self.log_with = log_with
        self.backend = backend

    # estimator settings the shared code reads
    backbone = "identity"
    pretrained = True
    cache = False

    def _build_backbone(self, pretrained: bool = True) -> Backbone:
        return Backbone(module=_Identity(), modality="embedding", feature_dim=0, spec={"source": "identity"})

    def _make_task(self) -> Task:
        return SingleLabel()

    def _read_fit_data(self, X: Any, y: Any, val: Any) -> tuple[Any, Any, Any, Any]:
        if y is None:
            raise DataError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: pass the labels."
            )
        Xva, yva = split_val(val)
        return X, y, Xva, yva

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        arr = _vectors(X, what)
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(bad):
            raise DataError(f"{what} has NaN or infinite values in rows {bad[:10].tolist()}; impute or drop them.")
        if self.backbone_.feature_dim == 0:
            self.backbone_.feature_dim = arr.shape[1]
        elif arr.shape[1] != self.backbone_.feature_dim:
            raise DataError(
                f"{what}: X has {arr.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.backbone_.feature_dim} features as input."
            )
        if what == "training data" and len(arr) < 2:
            raise DataError(f"{what} has 1 sample; training needs at least 2 rows (of 2 or more classes).")
        labels = None if y is None else check_label_array(y, len(arr), what)
        hashes = [hashlib.blake2b(r.tobytes(), digest_size=16).hexdigest() for r in arr]
        return FitData(_Vectors(arr), None, hashes, [f"row {i}" for i in range(len(arr))]), labels

    def _scale(self, X: np.ndarray) -> np.ndarray:
        if not self.standardize:
            return X
        return (X - self.mean_) / self.scale_

    def _head_features(self, data: FitData) -> tuple[torch.Tensor, Any, list[int] | None]:
        return torch.from_numpy(self._scale(data.items.X).astype(np.float32)), data.y, None

    def _cache_key_parts(self) -> dict[str, Any]:
        return {}

    def _batches(self, data: FitData, rows: Sequence[int], batch_size: int = 1024) -> Iterable[tuple[list[int], Any]]:
        X, rows = self._scale(data.items.X), list(rows)
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            yield list(range(s, s + len(chunk))), torch.from_numpy(X[chunk].astype(np.float32))

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> EmbeddingClassifier:  # type: ignore[override]
        arr = _vectors(X, "training data")
        self.mean_ = arr.mean(axis=0)
        self.scale_ = np.where(arr.std(axis=0) > 1e-12, arr.std(axis=0), 1.0).astype(np.float32)
        super().fit(arr, y, **kwargs)
        self.n_features_in_ = arr.shape[1]
        return self

    def _bundle_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"embedding": {"dim": int(self.backbone_.feature_dim)}}
        if self.standardize:
            extra["embedding"].update(mean=self.mean_.tolist(), scale=self.scale_.tolist())
        return extra

    def _backbone_from_bundle(self, path: Path, manifest: dict[str, Any]) -> Backbone:
        emb = manifest["embedding"]
        if self.standardize:
            self.mean_ = np.asarray(emb["mean"], np.float32)
            self.scale_ = np.asarray(emb["scale"], np.float32)
        return Backbone(
            module=_Identity(), modality="embedding", feature_dim=int(emb["dim"]), spec={"source": "identity"}
        )
