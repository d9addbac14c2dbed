"""Classification of table rows: :class:`TabularClassifier`.

A backbone for tables is trained on one population (a source table) and reused for another: ``backbone="mlp"`` or
``"ft-transformer"`` trains from random weights; ``backbone=RUN`` (a tabular bundle) starts from that run's network
and its fitted preprocessing, so the target table is read exactly as the source was, and every Graft strategy
(feature extraction, fine-tune, LoRA, domain adaptation with ``target=``) applies.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..backbones.base import Backbone
from ..backbones.tabular import TABULAR_ARCHITECTURES, build_tabular
from ..data.arrays import dense_2d
from ..data.labels import check_label_array
from ..data.tabular import TableSchema, label_column_of, read_frame
from ..errors import ConfigError, DataError
from ..strategies.base import Strategy, resolve_strategy
from ..strategies.finetune import FineTune
from ..tasks.base import Task
from ..tasks.decision import ClassDecision
from ._fitting import FitData, split_val
from .base import TransferEstimator

__all__ = ["TabularClassifier"]


class _Rows:
    """Rows of the preprocessed float32 matrix."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X

    def subset(self, idx: Any) -> _Rows:
        return _Rows(self.X[list(idx)])


class _RowSet(Dataset):
    """Training items ``(row, label)``; with ``views=("weak", "strong")`` unlabelled items ``((row, corrupted), 0)``,
    the corrupted copy taking 30% of its features from other random rows (SCARF, Bahri et al., ICLR 2022)."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None, views: tuple[str, ...], seed: int) -> None:
        self.X, self.y, self.two = torch.from_numpy(X), y, views == ("weak", "strong")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> Any:
        x = self.X[i]
        if self.two:
            mask = torch.from_numpy(self.rng.random(x.shape[0]) < 0.3)
            other = self.X[int(self.rng.integers(len(self.X)))]
            return (x, torch.where(mask, other, x)), 0
        return x, int(self.y[i]) if self.y is not None else 0


def _array_frame(X: Any, what: str) -> pd.DataFrame:
    """An array-like table (numbers or objects) as a DataFrame with columns ``x0, x1, ...``."""
    arr = dense_2d(X, what, shape="a table (N rows, F columns)", dense="a dense array (X.toarray()) or a DataFrame")
    if arr.dtype.kind == "f" and np.isinf(arr).any():
        row, col = (int(v[0]) for v in np.nonzero(np.isinf(arr)))
        raise DataError(f"{what}: row {row}, column x{col} is infinite; use a finite number or leave it missing (NaN).")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])]).infer_objects()


class TabularClassifier(TransferEstimator):
    """Classify table rows (credit scoring, fraud, churn) with transfer from another population.

    Args:
        backbone: ``"mlp"`` (numbers + categorical embeddings → MLP), ``"ft-transformer"``, or the path of a
            tabular run to transfer from (its network and its fitted preprocessing).
        strategy: ``fine-tune`` (default), ``feature-extraction`` (a head on the source network's features),
            ``lora``, or a domain-adaptation strategy with ``fit(..., target=UNLABELLED)``. From random weights,
            ``fine-tune`` trains everything at one learning rate, batch statistics updated.
        label_column: the label column of tables (default: ``label``, ``target``, ``class``, ``default``, ...).
        column_kinds: ``{column: kind}`` overrides the inferred kinds (numeric, categorical, boolean, date).
        drop_columns: columns never used as features (IDs are found and left out anyway).
        column_map: ``{name in new tables: name in training}`` for renamed columns.
        class_weight: ``"balanced"`` weighs the loss by inverse class frequency.
        focal_gamma: > 0 trains with the focal loss.
        calibration: ``"platt"`` or ``"isotonic"`` calibration of the positive-class probability on validation.
        cost: ``(false positive, false negative)`` costs: the decision threshold minimises expected cost on
            validation; ``target_recall`` / ``target_precision`` pick it by a recall or precision instead.
        positive: the positive class of a two-class task (default: 1/True/yes/y, else the rarer class).
        text_model: the text backbone that embeds free-text columns (e.g. transaction descriptions).
        hidden: widths of the MLP's layers (``mlp``).
        epochs, lr, batch_size, weight_decay, patience, val_fraction, seed, device, output_dir, overwrite,
        verbose, backend: as for :class:`graft.ImageClassifier`.

    Example:
        >>> src = graft.TabularClassifier(label_column="default", output_dir="runs/src")  # doctest: +SKIP
        >>> src.fit("source.csv")  # doctest: +SKIP
        >>> tgt = graft.TabularClassifier("runs/src", label_column="default").fit("target.csv")  # doctest: +SKIP
    """

    task: ClassVar[str] = "tabular-classification"
    modality: ClassVar[str] = "tabular"
    noun: ClassVar[str] = "rows"

    def __init__(
        self,
        backbone: str | Path = "mlp",
        strategy: str | Strategy = "fine-tune",
        *,
        label_column: str | None = None,
        column_kinds: Mapping[str, str] | None = None,
        drop_columns: Sequence[str] = (),
        column_map: Mapping[str, str] | None = None,
        class_weight: str | dict[Any, float] | None = None,
        focal_gamma: float = 0.0,
        calibration: str | None = None,
        cost: Sequence[float] | None = None,
        target_recall: float | None = None,
        target_precision: float | None = None,
        positive: Any = None,
        text_model: str = "minilm",
        hidden: Sequence[int] = (128, 64),
        epochs: int | None = 30,
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
        self.backbone = backbone
        self.strategy = strategy
        self.label_column = label_column
        self.column_kinds = column_kinds
        self.drop_columns = drop_columns
        self.column_map = column_map
        self.class_weight = class_weight
        self.focal_gamma = focal_gamma
        self.calibration = calibration
        self.cost = cost
        self.target_recall = target_recall
        self.target_precision = target_precision
        self.positive = positive
        self.text_model = text_model
        self.hidden = hidden
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

    cache = False  # rows are cheap to embed again; nothing is cached on disk

    @property
    def pretrained(self) -> bool:
        """Whether the backbone starts from a source run (not from random weights)."""
        return str(self.backbone) not in TABULAR_ARCHITECTURES

    # ------------------------------------------------------------------ backbone and schema
    def _source(self) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
        from ..bundle import read_manifest, read_tensors

        path = Path(self.backbone)
        if not path.is_dir():
            raise ConfigError(
                f"backbone '{self.backbone}' is neither a tabular architecture ({', '.join(TABULAR_ARCHITECTURES)}) "
                "nor a run folder to transfer from."
            )
        m = read_manifest(path)
        if m.get("task") != self.task:
            raise ConfigError(f"backbone '{path}' is a {m.get('task')} model; a tabular run is needed.")
        return m, read_tensors(path, m), path

    def _build_backbone(self, pretrained: bool = True) -> Backbone:
        """The source run's network and preprocessing; a random architecture is built once the schema is fitted."""
        if not self.pretrained:
            self.schema_: TableSchema | None = None
            return Backbone(module=torch.nn.Identity(), modality="tabular", feature_dim=0, spec={})
        m, tensors, path = self._source()
        self.schema_ = TableSchema.from_dict(m["tabular"]["schema"])
        backbone = build_tabular(m["backbone"])
        own = {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
        backbone.module.load_state_dict(own, strict=True)
        backbone.spec = {**m["backbone"], "transferred_from": str(path)}
        return backbone

    def _strategy(self) -> Strategy:
        strategy = resolve_strategy(self.strategy).for_modality(self.modality)
        if not self.pretrained and isinstance(strategy, FineTune):
            # from random weights there is nothing to protect: no head warm-up on random features, one learning
            # rate for every layer, batch statistics learned
            strategy = copy.copy(strategy)
            strategy.head_warmup, strategy.freeze_bn, strategy.lr_decay = False, False, 1.0
            return strategy
        if not self.pretrained and strategy.frozen_backbone:
            raise ConfigError(
                f"strategy '{strategy.name}' keeps the backbone frozen, but backbone='{self.backbone}' has random "
                "weights: train a source run first (graft train SOURCE.csv -o runs/src) and start from it "
                "(backbone='runs/src'; CLI: --model runs/src)"
                + (", or use strategy='fine-tune'." if not strategy.adaptation else ".")
            )
        return strategy

    def _make_task(self) -> Task:
        return ClassDecision(
            class_weight=self.class_weight,
            focal_gamma=self.focal_gamma,
            calibration=self.calibration,
            cost=self.cost,
            target_recall=self.target_recall,
            target_precision=self.target_precision,
            positive=self.positive,
        )

    # ------------------------------------------------------------------ reading
    def _frame(self, X: Any, y: Any, what: str) -> tuple[pd.DataFrame, Any, str | None]:
        """The feature table, its labels (``None`` for unlabelled inputs) and the label column's name."""
        import scipy.sparse

        if not scipy.sparse.issparse(X) and isinstance(X, (pd.DataFrame, str, os.PathLike, Mapping)):
            df = read_frame(X, what=what)
        else:  # an array-like: numbered columns x0, x1, ...
            df = _array_frame(X, what)
            if y is None and what == "training data":
                raise DataError(
                    f"{type(self).__name__} requires y to be passed, but the target y is None: an array has no label "
                    "column; pass the labels as y."
                )
            expected = getattr(self, "n_features_in_", None)
            if expected is not None and what != "training data" and df.shape[1] != expected:
                raise DataError(
                    f"{what}: X has {df.shape[1]} features, but {type(self).__name__} is expecting {expected} features "
                    "as input."
                )
        if df.empty:
            raise DataError(f"{what}: 0 sample(s) (shape={df.shape}) while a minimum of 1 is required.")
        if what == "training data" and len(df) < 2:
            raise DataError(f"{what} has 1 sample; training needs at least 2 rows (of 2 or more classes).")
        if y is not None:
            return df, check_label_array(y, len(df), what), None
        if what == "input" or what == "target data":
            return df, None, None
        label = label_column_of(df, self.label_column or (self.schema_.label if self.schema_ else None), what=what)
        values = df[label]
        missing = np.flatnonzero(values.isna().to_numpy())
        if len(missing):
            raise DataError(
                f"{what}: {len(missing)} row(s) have no label in column '{label}' (first rows: "
                f"{missing[:5].tolist()}); fill or drop them."
            )
        labels = [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]
        return df.drop(columns=[label]), labels, label

    def _read_fit_data(self, X: Any, y: Any, val: Any) -> tuple[Any, Any, Any, Any]:
        Xva, yva = split_val(val)
        if self.schema_ is None:  # from random weights: fit the preprocessing and build the architecture now
            df, _, label = self._frame(X, y, "training data")
            self.schema_ = TableSchema.fit(
                df, label=label, kinds=self.column_kinds, drop=tuple(self.drop_columns), text_model=self.text_model
            )
            torch.manual_seed(self.seed)
            spec: dict[str, Any] = {
                "source": "tabular",
                "architecture": str(self.backbone),
                "n_numeric": self.schema_.n_numeric,
                "cardinalities": self.schema_.cardinalities,
            }
            if self.backbone == "mlp":
                spec["hidden"] = [int(h) for h in self.hidden]
            self.backbone_ = build_tabular(spec)
        return X, y, Xva, yva

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> TabularClassifier:  # type: ignore[override]
        self.__dict__.pop("n_features_in_", None)
        super().fit(X, y, **kwargs)
        if not isinstance(X, (pd.DataFrame, str, os.PathLike, Mapping)):
            self.n_features_in_ = int(np.asarray(X).shape[1])
        else:
            self.n_features_in_ = len(self.schema_.columns) + len(self.schema_.dropped)  # type: ignore[union-attr]
        return self

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        assert self.schema_ is not None
        df, labels, _ = self._frame(X, y, what)
        df = self.schema_.check(df, where=what, rename=self.column_map)
        arr = self.schema_.transform(df, where=what)
        hashes = [hashlib.blake2b(r.tobytes(), digest_size=16).hexdigest() for r in arr]
        return FitData(_Rows(arr), None, hashes, [f"row {i}" for i in range(len(arr))]), labels

    def _cache_key_parts(self) -> dict[str, Any]:
        return {"schema": self.schema_.to_dict() if self.schema_ else None}

    def _batches(self, data: FitData, rows: Sequence[int], batch_size: int = 1024) -> Iterable[tuple[list[int], Any]]:
        rows = list(rows)
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            yield list(range(s, s + len(chunk))), torch.from_numpy(data.items.X[chunk])

    def _weighting_features(self, data: FitData) -> np.ndarray:
        """The numbers as they are, each category one-hot (codes are labels, not quantities)."""
        assert self.schema_ is not None
        X, k = data.items.X, self.schema_.n_numeric
        parts = [X[:, :k]]
        for j, card in enumerate(self.schema_.cardinalities):
            parts.append(np.eye(card, dtype=np.float32)[X[:, k + j].astype(np.int64)])
        return np.hstack(parts)

    def _train_dataset(self, data: FitData, views: tuple[str, ...] = ("train",)) -> Dataset:
        return _RowSet(data.items.X, data.y, views, self.seed)

    # ------------------------------------------------------------------ bundle
    def _bundle_extra(self) -> dict[str, Any]:
        assert self.schema_ is not None
        return {"tabular": {"schema": self.schema_.to_dict()}}

    def _backbone_from_bundle(self, path: Path, manifest: dict[str, Any]) -> Backbone:
        self.schema_ = TableSchema.from_dict(manifest["tabular"]["schema"])
        return build_tabular(manifest["backbone"])
