"""The estimator facade every modality shares: scikit-learn conventions over a task, a strategy's plan and a bundle.

A modality (images, texts, token sequences, vectors) subclasses :class:`TransferEstimator` and supplies how to build
its backbone, read inputs, batch them for inference and training, and write its own bundle files. What the labels
mean is the task's (:mod:`graft.tasks`); what trains, in which phases, is the strategy's plan
(:mod:`graft.training.phases`); the bundle is plain I/O (:mod:`graft.bundle`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn
from torch.utils.data import Dataset

from .._cache import EmbeddingCache, model_key, weights_fingerprint
from .._utils import resolve_device, tune_allocator, watched
from ..backbones.base import Backbone
from ..errors import ConfigError, DataError
from ..strategies.base import Strategy, resolve_strategy
from ..tasks.base import Task
from ..tasks.classification import ClassificationHead, TransferModel
from ..training.phases import FitContext, run_plan, split_rows
from ..training.predict import gather_rows, predict_batches
from . import _fitting
from ._fitting import FitData, check_settings, describe_data, prepare_run_dir, process_state, summarize_fit
from ._groups import check_group_leak, group_record, holdout

__all__ = ["TransferEstimator", "FitData"]


class TransferEstimator(ClassifierMixin, BaseEstimator):
    """Base class of Graft's estimators (scikit-learn conventions: fit returns self, get/set_params)."""

    #: the name bundles record; :func:`graft.load` finds the estimator class by it
    task: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    noun: ClassVar[str] = "examples"  # what the examples are called in messages
    #: the backbone can train (an identity backbone cannot)
    trainable_backbone: ClassVar[bool] = True

    # ------------------------------------------------------------------ modality hooks (subclasses)
    def _build_backbone(self, pretrained: bool = True) -> Backbone:
        raise NotImplementedError

    def _make_task(self) -> Task:
        raise NotImplementedError

    def _read_fit_data(self, X: Any, y: Any, val: Any) -> tuple[Any, Any, Any, Any]:
        """Return raw ``(X_train, y_train, X_val, y_val)``; ``X_val`` None when no validation split was given."""
        raise NotImplementedError

    def _read(self, X: Any, y: Any, *, what: str) -> tuple[FitData, list[Any] | None]:
        """Read inputs; return data (``y`` unset) and the raw labels (or None)."""
        raise NotImplementedError

    def _cache_key_parts(self) -> dict[str, Any]:
        """What, besides the backbone's spec and weights, decides an embedding (preprocessing, tokenizer, ...)."""
        raise NotImplementedError

    def _batches(self, data: FitData, rows: Sequence[int]) -> Iterable[tuple[Sequence[int], Any]]:
        """Inference batches of ``rows`` of ``data``: ``(positions in rows, model inputs)``."""
        raise NotImplementedError

    def _train_dataset(self, data: FitData, views: tuple[str, ...] = ("train",)) -> Dataset:
        """Training items ``(inputs, target)``; ``views=("weak", "strong")`` asks for two augmentations of each."""
        raise NotImplementedError

    def _collate_fn(self) -> Callable[[list[Any]], Any] | None:
        """How training items become a batch (``None``: stack tensors)."""
        return None

    def _forward(self, tta: bool) -> Callable[[nn.Module, Any], torch.Tensor] | None:
        """The forward pass of inference when it is not ``module(inputs)`` (e.g. flip test-time augmentation)."""
        return None

    def _head_features(self, data: FitData) -> tuple[torch.Tensor, Any, list[int] | None]:
        """Frozen-backbone features the head learns from, their targets, and rows per example (sequence tasks)."""
        return torch.from_numpy(self._embed(data)), data.y, None

    def _weighting_features(self, data: FitData) -> np.ndarray:  # what importance weights compare
        return self._embed(data)

    def _bundle_extra(self) -> dict[str, Any]:
        """Extra ``graft.json`` entries of this modality."""
        return {}

    def _save_files(self, directory: Path) -> list[Path]:
        """Write this modality's extra bundle files (e.g. the tokenizer) into ``directory``; return their paths."""
        return []

    def _backbone_from_bundle(self, path: Path, manifest: dict[str, Any]) -> Backbone:
        raise NotImplementedError

    # ------------------------------------------------------------------ inference through the one predict loop
    def _outputs(
        self,
        module: nn.Module,
        data: FitData,
        *,
        autocast: Callable[[], Any] | None = None,
        device: torch.device | None = None,
        tta: bool = False,
        what: str = "predicting",
        runner: Any = None,
        rows: Sequence[int] | None = None,
    ) -> Any:
        """Outputs of ``module`` (or of ``runner``, another backend of it) on ``rows`` (default: all) of ``data``."""
        rows = range(len(data)) if rows is None else rows
        pieces = predict_batches(
            module,
            self._batches(data, rows),
            total=len(rows),
            device=device,
            autocast=autocast,
            forward=self._forward(tta),
            channels_last=self.modality == "image",
            verbose=self._verbose() and len(rows) > 256,
            what=what,
            runner=runner,
        )
        return gather_rows(pieces, len(rows))

    def _embed_uncached(self, data: FitData, rows: Sequence[int]) -> np.ndarray:
        """Backbone embeddings of ``rows`` of ``data``, with the backbone as it is now (no cache)."""
        module, tta = self.backbone_.module, self._strategy_now().tta
        runner = self._runner(module, data, rows)
        return self._outputs(module, data, device=self._device(), tta=tta, what="embedding", runner=runner, rows=rows)

    def _embedding_cache(self) -> EmbeddingCache:
        """The embedding store of the current backbone, keyed by its spec, weights and preprocessing; made once."""
        parts = {**self._cache_key_parts(), "tta": self._strategy_now().tta}
        ident = (id(self.backbone_), self.cache, repr(sorted(parts.items())))
        if getattr(self, "_cache_ident", None) != ident:
            key = model_key(spec=self.backbone_.spec, weights=weights_fingerprint(self.backbone_.module), **parts)
            self._cache_obj, self._cache_ident = EmbeddingCache(key, enabled=self.cache), ident
        return self._cache_obj

    def _embed(self, data: FitData) -> np.ndarray:
        """Frozen-backbone embeddings ``(N, feature_dim)``, computed only for inputs missing from the cache."""
        cache = self._embedding_cache()
        found = cache.get_many(data.hashes)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            fresh = self._embed_uncached(data, todo)
            cache.put_many([data.hashes[i] for i in todo], fresh)
            for j, i in enumerate(todo):
                found[i] = fresh[j]
        return np.stack(found).astype(np.float32)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ fit
    def _strategy(self) -> Strategy:
        return resolve_strategy(self.strategy).for_modality(self.modality)

    def _strategy_now(self) -> Strategy:
        return self.strategy_ if hasattr(self, "strategy_") else self._strategy()

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        val: Any = None,
        target: Any = None,
        resume: bool = False,
        callbacks: Sequence[Callable[[str, int, dict[str, Any]], None]] = (),
    ) -> TransferEstimator:
        """Adapt the pretrained backbone to the labelled data.

        Args:
            X: training inputs (folder, table, list of paths/objects, array; see the subclass).
            y: labels when ``X`` does not carry them.
            val: validation inputs (same forms as ``X``; a ``(X, y)`` tuple for arrays and lists). Without it, a
                folder's ``val/`` split is used, else a seeded ``val_fraction`` of ``X``.
            target: unlabelled data of the domain the model will be used on (same forms as ``X``, labels ignored),
                for domain-adaptation strategies (``dann``, ``cdan``, ``mcc``, ``coral``, ``mmd``, ``adabn``,
                ``self-training``, ``source-only``).
            resume: continue the run in ``output_dir`` from its last checkpoint.
            callbacks: called as ``callback(phase, epoch, logs)`` after each epoch.

        Returns:
            self
        """
        tune_allocator()
        t0 = time.perf_counter()
        self.__dict__.pop("_runners", None)  # runners of an earlier fit run its weights
        strategy = self._strategy()
        strategy.validate()
        check_settings(self, strategy)
        plan = strategy.plan()
        needs_target = any(p.needs_target for p in plan)
        if not self.trainable_backbone and any(p.trains_backbone for p in plan):
            raise ConfigError(
                f"{strategy.name} trains a backbone; {type(self).__name__} has none. Use deep=False / a strategy "
                "that trains a head on the vectors."
            )
        if needs_target and target is None:
            raise ConfigError(
                f"Strategy '{strategy.name}' adapts to a target domain: pass target=UNLABELLED_DATA "
                "(CLI: --target PATH)."
            )
        if target is not None and not needs_target:
            raise ConfigError(
                f"target= (CLI: --target) is for domain-adaptation strategies; '{strategy.name}' is not one. Use e.g. "
                "strategy='dann' (CLI: --strategy dann; graft.strategies.list_strategies() lists them)."
            )
        torch.manual_seed(self.seed)  # random-init backbones (pretrained=False) depend on it too
        self.strategy_, self.embed_seconds_ = strategy, 0.0
        self.backbone_ = self._build_backbone(pretrained=self.pretrained)
        # Data before the run directory: a bad file must fail before anything is written.
        Xtr, ytr, Xva, yva = self._read_fit_data(X, y, val)
        # A frozen backbone never needs the pixels of inputs whose embeddings are cached: skip decoding them.
        self._skip_known = strategy.frozen_backbone and self.cache
        try:
            train, train_labels = self._read(Xtr, ytr, what="training data")
            if train_labels is None:
                raise DataError("fit needs labels: give a labelled folder/table, or pass y.")
            val_data, val_labels = self._read(Xva, yva, what="validation data") if Xva is not None else (None, None)
            target_data = self._read(target, None, what="target data")[0] if needs_target else None
        finally:
            self._skip_known = False
        task = self.task_ = self._make_task()
        classes = self.classes_ = task.label_space(train_labels, val_labels, noun=self.noun)
        train.y = task.encode(train_labels, classes, where="training data")
        if val_data is None and self.val_fraction and self.val_fraction > 0:
            tr_idx, va_idx = holdout(task, train_labels, train.groups, self.val_fraction, self.seed, self.noun)
            train, val_data = train.subset(tr_idx), train.subset(va_idx)
        elif val_data is not None:
            val_data.y = task.encode(val_labels, classes, where="validation data")  # type: ignore[arg-type]
        self.groups_ = group_record(train, val_data, getattr(self, "group_column_", None))
        self.data_ = describe_data(X, val, target, train)
        run_dir = prepare_run_dir(self.output_dir, resume=resume, overwrite=self.overwrite, device=self.device)
        with _fitting.discard_if_empty(run_dir, resume=resume, device=self.device):
            torch.manual_seed(self.seed)
            head = ClassificationHead(
                self.backbone_.feature_dim,
                len(classes),
                dropout=strategy.dropout,
                hidden=strategy.bottleneck if needs_target else None,
                normalize=strategy.normalize,
            )
            self.model_ = TransferModel(self.backbone_.module, head)
            self.n_train_, self.n_val_ = len(train), (len(val_data) if val_data is not None else 0)
            ctx = FitContext(self, strategy, task, classes, train, val_data, target_data, run_dir, resume, callbacks)
            results = run_plan(plan, ctx)
            self.history_ = [{"phase": phase, **h} for phase, res in results.items() for h in res.history]
            last = results.get(self.kept_phase_ or "") or list(results.values())[-1]
            self.best_epoch_, self.best_metrics_ = last.best_epoch, last.best
            self.best_epochs_ = {phase: res.best_epoch for phase, res in results.items()}
            self.val_metrics_, logits = None, None
            if val_data is not None:
                if strategy.frozen_backbone:  # the head's inputs are the cached embeddings
                    logits = self._head_outputs(*ctx.features("val"))
                else:
                    logits = self._predict_outputs(val_data)
                task.calibrate(logits, val_data.y)
                self.val_metrics_ = task.metrics(logits, val_data.y, classes)
            self.fit_seconds_, self.backend_used_ = time.perf_counter() - t0, "torch"
            if run_dir is not None and process_state(self.device).is_main_process:
                from ..evaluation.runs import write_run

                write_run(self, run_dir, val=(val_data, logits))
        return self

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"This {type(self).__name__} is not fitted yet. Call fit(...) or graft.load(...).")

    def _predict_outputs(self, data: FitData) -> Any:
        runner = self._runner(self.model_, data, range(len(data)))
        return self._outputs(self.model_, data, device=self._device(), tta=self.strategy_.tta, runner=runner)

    def _runner(self, module: nn.Module, data: FitData, rows: Sequence[int]) -> Any:
        """The ``backend``'s runner of the frozen ``module`` (``None``: eager PyTorch), made once per module."""
        from ..inference import runner_for

        return runner_for(self, module, data, rows)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities ``(N, C)``, columns in ``classes_`` order."""
        self._check_fitted()
        return self.task_.probabilities(self._predict_outputs(self._read(X, None, what="input")[0]))

    def predict(self, X: Any) -> Any:
        """Predicted labels (same type as the training labels)."""
        self._check_fitted()
        return self.task_.predict(self._predict_outputs(self._read(X, None, what="input")[0]), self.classes_)

    def evaluate(self, X: Any, y: Any = None) -> dict[str, Any]:
        """The task's metrics on labelled data (a folder with a ``test/`` or ``val/`` split uses that split).

        Models that are the frozen backbone plus a head read the test embeddings through the embedding cache:
        evaluating a test set twice, or several such models on it, runs the backbone once.
        """
        self._check_fitted()
        data, labels = self._read(X, y, what="evaluation data")
        if labels is None:
            raise DataError("evaluate needs labels: give labelled data, or pass y.")
        data.y = self.task_.encode(labels, self.classes_, where="evaluation data")
        check_group_leak(getattr(self, "groups_", None), data)
        self.evaluated_split_ = data.split
        if self.cache and self.strategy_.frozen_backbone and not self.strategy_.tta:
            outputs = self._head_outputs(*self._head_features(data))
        else:
            outputs = self._predict_outputs(data)
        if getattr(self, "_keep_evaluated", False):  # the CLI's report shows the most confident errors
            self.evaluated_ = (data, outputs)
        return self.task_.metrics(outputs, data.y, self.classes_)

    def _head_outputs(self, features: torch.Tensor, y: Any, lengths: list[int] | None) -> Any:
        """The head's logits on frozen-backbone features (per example again for sequence tasks)."""
        head = self.model_.head.eval()
        device = next((p.device for p in head.parameters()), torch.device("cpu"))
        with torch.inference_mode():
            logits, _ = split_rows(head(features.to(device)).float().cpu(), None, lengths)
        return logits.numpy() if isinstance(logits, torch.Tensor) else logits

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model bundle (``graft.json`` + ``model.safetensors``) to ``path``."""
        from ..bundle import write_bundle
        from .bundles import bundle_parts

        self._check_fitted()
        path = Path(path)
        in_place = self.output_dir is not None and path.resolve() == Path(self.output_dir).resolve()
        return write_bundle(path, *bundle_parts(self), overwrite=overwrite, in_place=in_place)

    def training_summary(self) -> dict[str, Any]:
        """Rows, best epoch and metrics, times, adaptation diagnostics and importance weights of the fit."""
        self._check_fitted()
        return summarize_fit(self)

    def _verbose(self) -> bool:
        """``verbose``, or when it is ``None``, whether a person is watching (a terminal or a notebook)."""
        return watched() if self.verbose is None else bool(self.verbose)

    def _device(self) -> torch.device:
        return torch.device(resolve_device(self.device))
